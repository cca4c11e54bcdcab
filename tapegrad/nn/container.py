"""Containers, with torch.nn's names and methods.

`Sequential`    modules applied one after the other
`ModuleList`    a list of modules, registered (their parameters are the container's)
`ModuleDict`    a dict of modules, registered
`ParameterList` a list of parameters (tensors put in are wrapped as Parameters)
`ParameterDict` a dict of parameters, likewise

A list-like container names its items "0", "1", ... as its children (so
``named_parameters()`` gives "0.weight", "layers.1.bias", ...), and
renumbers them after a deletion or an insertion, as torch does. A change
that fails (a non-Module put in, an index out of range) changes nothing.
"""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from itertools import chain

import torch

from ..tape import _state
from ..tensor import Tensor
from .module import Module, _addindent, _typename
from .parameter import Parameter


def _index(container, idx) -> int:
    """`idx` as a position in 0..len-1 (negative counts from the end), or IndexError."""
    idx = operator.index(idx)
    size = len(container)
    if not -size <= idx < size:
        raise IndexError(
            f"index {idx} is out of range for a {type(container).__name__} of length {size}"
        )
    return idx % size


def _check_modules(owner: str, modules) -> list:
    """The modules of an iterable as a list, after checking that every one is a Module."""
    if not isinstance(modules, Iterable):
        raise TypeError(
            f"{owner} should be called with an iterable, but got {type(modules).__name__}"
        )
    modules = list(modules)
    for position, module in enumerate(modules):
        if not isinstance(module, Module):
            raise TypeError(
                f"{owner}: item {position} is a {_typename(module)}, which is not a Module subclass"
            )
    return modules


class Sequential(Module):
    """Modules applied in order: ``Sequential(Linear(2, 25), ReLU(), ...)``.

    Also ``Sequential(OrderedDict([("fc", Linear(2, 25)), ("act", ReLU())]))``
    for named layers. Indexable (a slice is a Sequential, keeping the
    names), iterable, with len(), append/insert/extend/pop, ``del``, ``+``
    and ``*`` as in torch.
    """

    def __init__(self, *args: Module):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            items = list(args[0].items())
        else:
            items = [(str(index), module) for index, module in enumerate(args)]
        for index, (name, module) in enumerate(items):
            if not isinstance(module, Module):
                which = f"argument {index}" if name == str(index) else f"entry {name!r}"
                raise TypeError(f"Sequential takes Modules; {which} is a {type(module).__name__}")
            self.add_module(name, module)

    def forward(self, x):
        # Called through a module call (the common case), a layer whose call would only run
        # its forward (its class keeps Module.__call__, no forward hooks) runs that forward
        # here, recorded as its own, without the call: a Python call per layer less. Called
        # directly, every layer is called, and keeps its output for the course API. (A
        # class whose __call__ is replaced after its layers were made is not noticed.)
        state = _state.__dict__  # this thread's settings: one thread-local lookup
        outer = state["module"]
        inline = outer is not None
        try:
            for name, module in self._modules.items():
                try:
                    if (
                        inline
                        and module is not None
                        and module._plain_call
                        and not (module._forward_pre_hooks or module._forward_hooks)
                    ):
                        state["module"] = module._weakref
                        x = module.forward(x)
                    else:
                        x = module(x)
                except (TypeError, ValueError, RuntimeError) as error:
                    # Several layers may print alike: say which one failed, by its dotted name
                    # (as in named_modules()). Python prints notes under the message.
                    _name_layer(error, name, type(self).__name__)
                    raise
        finally:
            state["module"] = outer
        return x

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return self.__class__(OrderedDict(list(self._modules.items())[idx]))
        return list(self._modules.values())[_index(self, idx)]

    def __setitem__(self, idx: int, module: Module) -> None:
        setattr(self, list(self._modules)[_index(self, idx)], module)

    def __delitem__(self, idx) -> None:
        keys = list(self._modules)
        if isinstance(idx, slice):
            gone = set(keys[idx])
        else:
            gone = {keys[_index(self, idx)]}
        kept = [module for key, module in self._modules.items() if key not in gone]
        self._replace_children((str(i), module) for i, module in enumerate(kept))

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __dir__(self):
        return [key for key in super().__dir__() if not key.isdigit()]

    def append(self, module: Module) -> Sequential:
        """Add `module` at the end; returns self."""
        self.add_module(str(len(self)), module)
        return self

    def insert(self, index: int, module: Module) -> Sequential:
        """Put `module` at position `index` (-len..len), renumbering the layers after it."""
        if not isinstance(module, Module):
            raise TypeError(f"Sequential.insert() takes a Module, got {_typename(module)}")
        size = len(self)
        index = operator.index(index)
        if not -size <= index <= size:
            raise IndexError(
                f"Sequential.insert(): index {index} is out of range for {size} layers"
            )
        modules = list(self._modules.values())
        modules.insert(index, module)
        self._replace_children((str(i), m) for i, m in enumerate(modules))
        return self

    def extend(self, sequential) -> Sequential:
        """Append every module of an iterable (e.g. another Sequential); returns self."""
        for module in _check_modules("Sequential.extend", sequential):
            self.append(module)
        return self

    def pop(self, key) -> Module:
        module = self[key]
        del self[key]
        return module

    def __add__(self, other) -> Sequential:
        if not isinstance(other, Sequential):
            raise ValueError(
                "add operator supports only objects of Sequential class, but "
                f"{type(other)} is given."
            )
        return Sequential(*self, *other)

    def __iadd__(self, other) -> Sequential:
        if not isinstance(other, Sequential):
            raise ValueError(
                "add operator supports only objects of Sequential class, but "
                f"{type(other)} is given."
            )
        return self.extend(other)

    def __mul__(self, times: int) -> Sequential:
        _check_times(self, times)
        return Sequential(*(list(self) * times))

    __rmul__ = __mul__

    def __imul__(self, times: int) -> Sequential:
        _check_times(self, times)
        return self.extend(list(self) * (times - 1))


def _check_times(sequential, times) -> None:
    if isinstance(times, bool) or not isinstance(times, int):
        raise TypeError(f"unsupported operand type(s) for *: {type(sequential)} and {type(times)}")
    if times <= 0:
        raise ValueError(f"Non-positive multiplication factor {times} for {type(sequential)}")


_NOTE = "  in layer "


def _name_layer(error: BaseException, name: str, owner: str) -> None:
    """Add (or, from a nested Sequential, extend) the note 'in layer 2.1 of Sequential'."""
    notes = getattr(error, "__notes__", None)
    if notes and notes[-1].startswith(_NOTE):
        inner = notes[-1][len(_NOTE) :].split(" ", 1)[0]
        notes[-1] = f"{_NOTE}{name}.{inner} of {owner}"
    else:
        error.add_note(f"{_NOTE}{name} of {owner}")


class ModuleList(Module):
    """A list of modules whose parameters, buffers and submodules are the container's.

    ``self.layers = ModuleList([Linear(4, 4) for _ in range(3)])``: index,
    slice (a ModuleList), iterate, len(), append/insert/extend/pop, ``del``,
    ``+``. It has no forward: loop over it in yours.
    """

    def __init__(self, modules: Iterable[Module] | None = None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return self.__class__(list(self._modules.values())[idx])
        return self._modules[str(_index(self, idx))]

    def __setitem__(self, idx: int, module: Module) -> None:
        setattr(self, str(_index(self, idx)), module)

    def __delitem__(self, idx) -> None:
        modules = list(self._modules.values())
        if isinstance(idx, slice):
            del modules[idx]
        else:
            del modules[_index(self, idx)]
        self._replace_children((str(i), module) for i, module in enumerate(modules))

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __iadd__(self, modules: Iterable[Module]) -> ModuleList:
        return self.extend(modules)

    def __add__(self, other: Iterable[Module]) -> ModuleList:
        return ModuleList(chain(self, _check_modules("ModuleList +", other)))

    def __dir__(self):
        return [key for key in super().__dir__() if not key.isdigit()]

    def insert(self, index: int, module: Module) -> None:
        """Insert `module` before position `index`, as list.insert does."""
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList.insert() takes a Module, got {_typename(module)}")
        modules = list(self._modules.values())
        modules.insert(operator.index(index), module)
        self._replace_children((str(i), m) for i, m in enumerate(modules))

    def append(self, module: Module) -> ModuleList:
        """Add `module` at the end; returns self."""
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        """Append every module of an iterable; returns self."""
        for module in _check_modules("ModuleList.extend", modules):
            self.append(module)
        return self

    def pop(self, key) -> Module:
        module = self[key]
        del self[key]
        return module

    def __repr__(self):
        # torch's compact form: a run of identical layers is printed once, "(0-2): 3 x ReLU()".
        reprs = [repr(module) for module in self]
        if not reprs:
            return self._get_name() + "()"
        runs = []  # [first index, last index, repr]
        for i, text in enumerate(reprs):
            if runs and runs[-1][2] == text:
                runs[-1][1] = i
            else:
                runs.append([i, i, text])
        lines = []
        for first, last, text in runs:
            line = (
                f"({first}): {text}"
                if first == last
                else f"({first}-{last}): {last - first + 1} x {text}"
            )
            lines.append(_addindent(line, 2))
        return self._get_name() + "(\n  " + "\n  ".join(lines) + "\n)"


def _pairs(owner: str, items) -> list:
    """(key, value) pairs from a mapping or an iterable of pairs, checked as torch checks them."""
    if not isinstance(items, Iterable):
        raise TypeError(
            f"{owner} should be called with an iterable of key/value pairs, but got "
            f"{type(items).__name__}"
        )
    if isinstance(items, (Mapping, ModuleDict, ParameterDict)):
        return list(items.items())
    pairs = []
    for j, pair in enumerate(items):
        if not isinstance(pair, Iterable):
            raise TypeError(
                f"{owner} sequence element #{j} should be Iterable; is {type(pair).__name__}"
            )
        pair = list(pair)
        if len(pair) != 2:
            raise ValueError(f"{owner} sequence element #{j} has length {len(pair)}; 2 is required")
        pairs.append(tuple(pair))
    return pairs


class ModuleDict(Module):
    """An ordered dict of modules whose parameters are the container's.

    ``self.heads = ModuleDict({"class": Linear(8, 3), "box": Linear(8, 4)})``:
    ``heads["box"]``, ``in``, len(), keys/items/values, update, pop, clear,
    ``del``. It has no forward.
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module | None:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        if key not in self._modules:
            raise KeyError(key)
        delattr(self, key)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key) -> bool:
        return key in self._modules

    def clear(self) -> None:
        self._replace_children([])

    def pop(self, key: str) -> Module | None:
        module = self[key]
        del self[key]
        return module

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def update(self, modules) -> None:
        """Add or replace the (key, module) pairs of a mapping or an iterable of pairs.

        Every pair is checked before any is added.
        """
        pairs = _pairs("ModuleDict.update", modules)
        for key, module in pairs:
            if not isinstance(module, Module):
                raise TypeError(
                    f"ModuleDict.update: {key!r} is a {_typename(module)}, which is "
                    "not a Module subclass"
                )
            self._check_name("module", key, self._modules)
        for key, module in pairs:
            self[key] = module


def _as_parameter(value):
    """A tensor (tapegrad or torch) that is not yet a Parameter becomes one; the rest is kept."""
    if isinstance(value, (Tensor, torch.Tensor)) and not isinstance(value, Parameter):
        return Parameter(value)
    return value


def _describe(value, typename) -> str:
    if isinstance(value, (Tensor, torch.Tensor)):
        data = value.data if isinstance(value, Tensor) else value
        kind = "Parameter" if isinstance(value, Parameter) else "Tensor"
        size = "x".join(str(n) for n in data.shape)
        device = f" ({data.device})" if data.device.type != "cpu" else ""
        return f"{kind} containing: [{typename(data)} of size {size}{device}]"
    return f"Object of type: {type(value).__name__}"


class ParameterList(Module):
    """A list of parameters, registered as "0", "1", ...; tensors put in become Parameters.

    ``self.scales = ParameterList([torch.ones(3) for _ in range(4)])``:
    index, slice, iterate, len(), append, extend. It cannot be called.
    """

    def __init__(self, values: Iterable | None = None):
        super().__init__()
        self._size = 0
        if values is not None:
            self.extend(values)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return self.__class__([self[i] for i in range(len(self))[idx]])
        return getattr(self, str(_index(self, idx)))

    def __setitem__(self, idx: int, value) -> None:
        setattr(self, str(_index(self, idx)), _as_parameter(value))

    def __len__(self) -> int:
        return self._size

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __iadd__(self, values: Iterable) -> ParameterList:
        return self.extend(values)

    def __dir__(self):
        return [key for key in super().__dir__() if not key.isdigit()]

    def append(self, value) -> ParameterList:
        """Add `value` at the end (a tensor becomes a Parameter); returns self."""
        setattr(self, str(len(self)), _as_parameter(value))
        self._size += 1
        return self

    def extend(self, values: Iterable) -> ParameterList:
        """Append every value of an iterable (converted first, so a bad one adds nothing)."""
        if not isinstance(values, Iterable) or isinstance(values, (Tensor, torch.Tensor)):
            raise TypeError(
                "ParameterList.extend should be called with an iterable, but got "
                f"{type(values).__name__}"
            )
        for value in [_as_parameter(value) for value in values]:
            self.append(value)
        return self

    def extra_repr(self) -> str:
        return "\n".join(
            f"  ({i}): {_describe(value, lambda t: t.dtype)}" for i, value in enumerate(self)
        )

    def __call__(self, *args, **kwargs):
        raise RuntimeError("ParameterList should not be called.")


class ParameterDict(Module):
    """An ordered dict of parameters; tensors put in become Parameters.

    ``self.scales = ParameterDict({"left": torch.ones(3), "right": torch.ones(3)})``:
    ``scales["left"]``, ``in``, len(), keys/items/values, get, setdefault,
    update, pop, popitem, clear, copy, ``|``. It cannot be called.
    """

    def __init__(self, parameters=None):
        super().__init__()
        self._keys: dict = {}
        if parameters is not None:
            self.update(parameters)

    @staticmethod
    def _key(key) -> str:
        if not isinstance(key, str):
            raise TypeError(
                "Index given to ParameterDict cannot be used as a key as it is not a "
                f"string (type is '{type(key).__name__}')"
            )
        return key

    def __getitem__(self, key: str):
        return getattr(self, self._key(key))

    def __setitem__(self, key: str, value) -> None:
        setattr(self, self._key(key), _as_parameter(value))
        self._keys[key] = None

    def __delitem__(self, key: str) -> None:
        del self._keys[key]
        delattr(self, self._key(key))

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self):
        return iter(self._keys)

    def __reversed__(self):
        return reversed(self._keys)

    def __contains__(self, key) -> bool:
        return key in self._keys

    def copy(self) -> ParameterDict:
        """A new ParameterDict holding the same parameters."""
        return ParameterDict(OrderedDict((k, self[k]) for k in self._keys))

    def setdefault(self, key: str, default=None):
        if key not in self:
            self[key] = default
        return self[key]

    def clear(self) -> None:
        for key in list(self._keys):
            del self[key]

    def pop(self, key: str):
        value = self[key]
        del self[key]
        return value

    def popitem(self):
        """Remove and return the last (key, parameter) pair."""
        if not self._keys:
            raise KeyError("popitem(): ParameterDict is empty")
        key = next(reversed(self._keys))
        return key, self.pop(key)

    def get(self, key: str, default=None):
        return self[key] if key in self else default

    def fromkeys(self, keys: Iterable[str], default=None) -> ParameterDict:
        return ParameterDict((k, default) for k in keys)

    def keys(self):
        return self._keys.keys()

    def items(self):
        return ((k, self[k]) for k in self._keys)

    def values(self):
        return (self[k] for k in self._keys)

    def update(self, parameters) -> None:
        """Add or replace pairs from a mapping or an iterable of pairs.

        A plain dict is taken in sorted key order, as torch does. Every value
        is converted before any is added.
        """
        pairs = _pairs("ParameterDict.update", parameters)
        if isinstance(parameters, Mapping) and not isinstance(parameters, OrderedDict):
            pairs.sort(key=lambda pair: pair[0])
        pairs = [(self._key(key), _as_parameter(value)) for key, value in pairs]
        for key, value in pairs:
            self[key] = value

    def extra_repr(self) -> str:
        return "\n".join(
            f"  ({k}): {_describe(value, torch.typename)}" for k, value in self.items()
        )

    def __call__(self, *args, **kwargs):
        raise RuntimeError("ParameterDict should not be called.")

    def __or__(self, other: ParameterDict) -> ParameterDict:
        copy = self.copy()
        copy.update(other)
        return copy

    def __ror__(self, other: ParameterDict) -> ParameterDict:
        copy = other.copy()
        copy.update(self)
        return copy

    def __ior__(self, other: ParameterDict) -> ParameterDict:
        self.update(other)
        return self
