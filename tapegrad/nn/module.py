"""`Module`: the base class of layers, losses and networks, with torch.nn's API.

A module owns parameters, buffers and submodules, registered by attribute
assignment, and computes `forward`. Calling a module runs its forward hooks
around `forward`, records its ops on the tape (tagged with the module, so
pictures can group them) and remembers its output, so that the course-style
``model.backward(grad_output)`` can run the reverse sweep from it.

What ``module.name = value`` does (torch's rules, in this order):

    value is a Parameter       -> a parameter (forgetting any buffer, submodule or plain
                                  attribute of that name)
    name is a parameter        -> value must be None (kept registered, as None); anything
                                  else is a TypeError: the parameter would silently vanish
                                  from parameters() and from the optimizer
    value is a Module          -> a submodule (forgetting any parameter, buffer, attribute)
    name is a submodule        -> value must be None, else TypeError
    value is a Buffer, or
    name is a buffer           -> a buffer: a tensor (tapegrad or torch) or None, else TypeError
    anything else              -> a plain attribute (a tensor too: use register_buffer
                                  to make it part of the state)

Parameters and submodules need ``super().__init__()`` to have run
(AttributeError otherwise). Each registered value lives in its registry
(``_parameters``, ``_buffers``, ``_modules``: the truth, read by every
traversal) and also as a plain instance attribute, so that ``self.weight``
in a forward is an ordinary, fast attribute lookup (unless the class has an
attribute of that name, such as a method, which then wins as in torch).
Change them through assignment, ``del``, ``register_*``/``add_module`` or
the containers, never by editing the registries directly: torch finds a value
put straight into ``_parameters`` through a ``__getattr__``, and tapegrad has
none, since a class with ``__getattr__`` makes every attribute lookup on its
instances slower (about 2 us of a 75 us forward of the course network,
measured), so ``module.name`` would not see it. For the same reason a registered value whose
name the class holds when it is registered (a property, a method) is reached only through its
registry, also if that class attribute later raises AttributeError or is deleted (torch falls
back to the registry there); assigning ``__class__`` decides again for the new class.
A shallow copy (``copy.copy``) shares the registries with its original, as in torch, and
a change made through either shows in both one's attributes (`Module.__copy__`).
"""

from __future__ import annotations

import copy
import copyreg
import itertools
import threading
import warnings
import weakref
from collections import OrderedDict, namedtuple
from collections.abc import Callable, Mapping
from typing import Any

import torch

from ..tape import _state, no_grad
from ..tensor import Tensor
from .parameter import Buffer, Parameter


class IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What load_state_dict returns, with torch's names (it unpacks as a pair)."""

    __slots__ = ()

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


class RemovableHandle:
    """What the ``register_*_hook`` methods return: ``handle.remove()`` unregisters the hook.

    Also a context manager: ``with module.register_forward_hook(f):`` removes
    the hook on leaving the block. It holds the hook tables weakly, so a
    forgotten handle keeps no module alive.
    """

    _ids = itertools.count()

    def __init__(self, hooks: OrderedDict, *extra: OrderedDict):
        self.id = next(RemovableHandle._ids)
        self._tables = tuple(weakref.ref(table) for table in (hooks, *extra))

    def remove(self) -> None:
        for ref in self._tables:
            table = ref()
            if table is not None:
                table.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc_info) -> None:
        self.remove()


_COPIES = "_tapegrad_shallow_copies"  # where a module keeps its _ShallowCopies
# where a shallow copy keeps the names of its plain attributes that a value registered
# through another copy does not replace (in torch the attribute wins): {name, ...}
_SHADOWED = "_tapegrad_shadowed"


def _shadows(module, name: str) -> bool:
    """Does `module` hold a plain attribute `name` that wins over the registered value?"""
    shadowed = module.__dict__.get(_SHADOWED)
    return shadowed is not None and name in shadowed


def _unshadow(module, name: str) -> None:
    shadowed = module.__dict__.get(_SHADOWED)
    if shadowed is not None:
        shadowed.discard(name)


def _on_class(cls: type, name: str) -> bool:
    """Do instances of `cls` see a class attribute `name`? (In a class of its MRO: hasattr(cls,
    name) would also find the metaclass's, such as type's own `mro`, which instances do not see.)
    """
    return any(name in vars(klass) for klass in cls.__mro__)


def _is_tensor(value) -> bool:
    return isinstance(value, (Tensor, torch.Tensor))


def _data(value) -> torch.Tensor:
    """The torch tensor behind a tapegrad Tensor, or the torch tensor itself."""
    return value.data if isinstance(value, Tensor) else value


def _typename(value) -> str:
    """torch.typename(value), with tapegrad's tensors named as such."""
    if isinstance(value, Tensor):
        kind = type(value).__name__
        return "tapegrad.Tensor" if kind == "Tensor" else f"tapegrad.nn.{kind}"
    return torch.typename(value)


def _addindent(text: str, spaces: int) -> str:
    """Indent every line but the first (blank lines stay empty), as torch's repr does."""
    first, *rest = text.split("\n")
    if not rest:
        return text
    return "\n".join([first] + [" " * spaces + line if line.strip() else "" for line in rest])


class Module:
    """Base class for all layers and networks.

    Subclasses call ``super().__init__()`` first, assign parameters,
    buffers and submodules as attributes (see the rules in this file's
    docstring), and define ``forward``.
    """

    # The instance attributes __init__ sets (annotations only: for readers and type checkers)
    training: bool
    _parameters: OrderedDict[str, Parameter | None]
    _buffers: OrderedDict[str, Any]
    _non_persistent_buffers_set: set[str]
    _forward_pre_hooks: OrderedDict[int, Callable]
    _forward_pre_hooks_with_kwargs: OrderedDict[int, bool]
    _forward_hooks: OrderedDict[int, Callable]
    _forward_hooks_with_kwargs: OrderedDict[int, bool]
    _forward_hooks_always_called: OrderedDict[int, bool]
    _modules: OrderedDict[str, Module | None]
    # What copy.deepcopy and pickle leave out (None in the copy): the latest output, a tape.
    _not_copied: tuple[str, ...] = ("_last_output",)

    def __init__(self):
        set_ = object.__setattr__
        set_(self, "training", True)
        set_(self, "_parameters", OrderedDict())
        set_(self, "_buffers", OrderedDict())
        set_(self, "_non_persistent_buffers_set", set())
        set_(self, "_forward_pre_hooks", OrderedDict())
        set_(self, "_forward_pre_hooks_with_kwargs", OrderedDict())
        set_(self, "_forward_hooks", OrderedDict())
        set_(self, "_forward_hooks_with_kwargs", OrderedDict())
        set_(self, "_forward_hooks_always_called", OrderedDict())
        set_(self, "_modules", OrderedDict())
        set_(self, "_last_output", None)
        # What the tape nodes recorded in forward point at: a weak reference, as this
        # module keeps its latest output (and so that output's tape) alive.
        set_(self, "_weakref", _ModuleRef(self))
        # Does its class keep Module.__call__? Then a Sequential may run it without the call
        # (see Sequential.forward). An instance attribute: one cheap read per layer and step.
        set_(self, "_plain_call", type(self).__call__ is Module.__call__)

    # --- registration -------------------------------------------------------
    def __setattr__(self, name: str, value) -> None:
        own = self.__dict__
        if name == "__class__":  # another class: another __call__, perhaps
            object.__setattr__(self, name, value)
            own["_plain_call"] = value.__call__ is Module.__call__
            for registry in ("_parameters", "_buffers", "_modules"):  # which class names win
                for key, held in own.get(registry, {}).items():
                    if not _shadows(self, key):
                        self._mirror(key, held)
            return
        params = own.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise self._before_init_error("parameters")
            self._check_name("parameter", name, params, replacing=True)
            self._forget(name, keep=params, own=True)  # a replaced parameter keeps its place
            self._add(params, name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{_typename(value)}' as parameter '{name}' of "
                    f"{type(self).__name__} (tapegrad.nn.Parameter or None "
                    f"expected). To replace it, wrap the values: .{name} = "
                    f"nn.Parameter(value); to change its values in place: "
                    f".{name}.data.copy_(value)"
                )
            self._add(params, name, None)
        elif isinstance(value, Module):
            if "_modules" not in own:
                raise self._before_init_error("module")
            self._forget(name, keep=self._modules, own=True)
            self._add(self._modules, name, value)
        elif "_modules" in own and name in self._modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{_typename(value)}' as child module '{name}' of "
                    f"{type(self).__name__} (tapegrad.nn.Module or None expected)"
                )
            self._add(self._modules, name, None)
        elif isinstance(value, Buffer) or ("_buffers" in own and name in self._buffers):
            persistent = (
                value.persistent
                if isinstance(value, Buffer)
                else name not in self._non_persistent_buffers_set
            )
            if value is not None and not _is_tensor(value):
                raise TypeError(
                    f"cannot assign '{_typename(value)}' as buffer '{name}' of "
                    f"{type(self).__name__} (nn.Buffer, a tensor or None expected)"
                )
            self.register_buffer(name, value, persistent)
        else:
            object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if name in self._parameters or name in self._buffers or name in self._modules:
            self._forget(name)
        else:
            object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or None: a name kept for one, as Linear's bias=False)."""
        if "_parameters" not in self.__dict__:
            raise self._before_init_error("parameter")
        self._check_name("parameter", name, self._parameters)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign '{_typename(param)}' object to parameter '{name}' "
                "(tapegrad.nn.Parameter or None required)"
            )
        self._add(self._parameters, name, param)

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """Add a buffer: a tensor that is module state but not a parameter (e.g. running means).

        A tapegrad Tensor or a torch tensor (or None). Buffers move with
        ``.to()``; persistent ones are saved in ``state_dict()``.
        """
        if "_buffers" not in self.__dict__:
            raise self._before_init_error("buffer")
        self._check_name("buffer", name, self._buffers)
        if tensor is not None and not _is_tensor(tensor):
            raise TypeError(
                f"cannot assign '{_typename(tensor)}' object to buffer '{name}' "
                "(a tensor or None required)"
            )
        if isinstance(tensor, torch.Tensor) and tensor.requires_grad:
            tensor = tensor.detach()  # no torch autograd inside tapegrad
        self._add(self._buffers, name, tensor)
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module (or None), reachable as ``self.<name>``."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{_typename(module)} is not a Module subclass")
        if "_modules" not in self.__dict__:
            raise self._before_init_error("module")
        self._check_name("module", name, self._modules)
        self._add(self._modules, name, module)

    def register_module(self, name: str, module: Module | None) -> None:
        """Alias for `add_module`."""
        self.add_module(name, module)

    def _check_name(self, kind: str, name, registry, replacing: bool = False) -> None:
        """torch's checks on a new name; `replacing`: what is there now will be forgotten first."""
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string. Got {_typename(name)}")
        if "." in name:
            raise KeyError(f'{kind} name can\'t contain ".", got: {name!r}')
        if name == "":
            raise KeyError(f'{kind} name can\'t be empty string ""')
        taken = _on_class(type(self), name) if replacing else hasattr(self, name)
        if taken and name not in registry:
            raise KeyError(f"attribute '{name}' already exists")

    def _add(self, registry, name: str, value) -> None:
        new = name not in registry
        registry[name] = value
        for module in self._family():
            if _shadows(module, name):
                continue
            if new and name in module.__dict__:
                # a shallow copy's own plain attribute meets a value registered through
                # another copy: the attribute wins there, as in torch
                module.__dict__.setdefault(_SHADOWED, set()).add(name)
                continue
            module._mirror(name, value)

    def _mirror(self, name: str, value) -> None:
        """Keep registered `value` as the plain attribute `name` (see the module docstring),
        unless the class has an attribute of that name (a submodule named 'forward': the
        method wins, as in torch)."""
        if _on_class(type(self), name):
            self.__dict__.pop(name, None)
        else:
            self.__dict__[name] = value

    def _family(self) -> list:
        """The modules whose attributes mirror this one's registries: this one, and the
        shallow copies that share them (see `__copy__`)."""
        copies = self.__dict__.get(_COPIES)
        if copies is None:
            return [self]
        registry = self._parameters
        found = {id(m): m for m in (self, *copies.modules())}.values()
        return [m for m in found if m.__dict__.get("_parameters") is registry]

    def _forget(self, name: str, keep=None, own: bool = False) -> None:
        """Remove `name` from every registry but `keep`, and the attributes that mirror it;
        `own`: this module's plain attribute of that name too (torch removes it before it
        registers a value under that name)."""
        if own:
            self.__dict__.pop(name, None)
            _unshadow(self, name)
        removed = False
        for registry in (self._parameters, self._buffers, self._modules):
            if registry is not keep and name in registry:
                del registry[name]
                removed = True
        if keep is not self._buffers:
            self._non_persistent_buffers_set.discard(name)
        if removed:
            for module in self._family():
                if _shadows(module, name):
                    _unshadow(module, name)  # its plain attribute shadows nothing now
                else:
                    module.__dict__.pop(name, None)

    def _replace_children(self, items) -> None:
        """Make `items` ((name, module) pairs) the children, in order (containers renumber so)."""
        family = self._family()
        for name in self._modules:
            for module in family:
                if not _shadows(module, name):
                    module.__dict__.pop(name, None)
        self._modules.clear()
        for name, module in items:
            self._add(self._modules, name, module)

    def _before_init_error(self, what: str) -> AttributeError:
        return AttributeError(
            f"cannot assign {what} before Module.__init__() call: call "
            f"super().__init__() first in {type(self).__name__}.__init__"
        )

    # --- running -------------------------------------------------------------
    def forward(self, *inputs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        state = _state.__dict__  # this thread's settings: one thread-local lookup
        outer = state["module"]
        state["module"] = self._weakref
        try:
            if self._forward_pre_hooks or self._forward_hooks:
                out = self._call_with_hooks(args, kwargs)
            else:  # the common case: no hooks, nothing more to do (and often no keywords)
                out = self.forward(*args, **kwargs) if kwargs else self.forward(*args)
        finally:
            state["module"] = outer
        if outer is None:
            # Called by the user, not from another module's forward: keep the output for
            # the course API's backward(). Layers inside a model keep nothing, or every
            # layer's output would stay alive until the next step. (A plain attribute:
            # __setattr__'s registration is skipped.)
            self.__dict__["_last_output"] = out
        return out

    def _call_with_hooks(self, args: tuple, kwargs: dict):
        """forward with the pre-hooks before it and the forward hooks after it (torch's order)."""
        called = set()
        out = None
        try:
            for key, hook in tuple(self._forward_pre_hooks.items()):
                if key in self._forward_pre_hooks_with_kwargs:
                    result = hook(self, args, kwargs)
                    if result is not None:
                        if not (isinstance(result, tuple) and len(result) == 2):
                            raise RuntimeError(
                                "forward pre-hook must return None or a tuple of "
                                f"(new_args, new_kwargs), but got {result}."
                            )
                        args, kwargs = result
                else:
                    result = hook(self, args)
                    if result is not None:
                        args = result if isinstance(result, tuple) else (result,)
            out = self.forward(*args, **kwargs)
            for key, hook in tuple(self._forward_hooks.items()):
                called.add(key)
                if key in self._forward_hooks_with_kwargs:
                    result = hook(self, args, kwargs, out)
                else:
                    result = hook(self, args, out)
                if result is not None:
                    out = result
            return out
        except Exception:
            # Hooks registered with always_call=True run even when forward failed.
            for key, hook in tuple(self._forward_hooks.items()):
                if key in self._forward_hooks_always_called and key not in called:
                    try:
                        if key in self._forward_hooks_with_kwargs:
                            hook(self, args, kwargs, out)
                        else:
                            hook(self, args, out)
                    except Exception as error:
                        warnings.warn(
                            "module forward hook with ``always_call=True`` raised an "
                            "exception that was silenced as another error was raised "
                            f"in forward: {error}",
                            stacklevel=2,
                        )
            raise

    def register_forward_pre_hook(
        self, hook, *, prepend: bool = False, with_kwargs: bool = False
    ) -> RemovableHandle:
        """Call ``hook(module, args)`` before every forward; returns a handle to remove it.

        The hook may return replacement inputs: a tuple, or a single value
        (wrapped into a 1-tuple). With ``with_kwargs=True`` it is called as
        ``hook(module, args, kwargs)`` and may return ``(new_args, new_kwargs)``.
        Hooks run in registration order (``prepend=True``: before the others).
        """
        _check_hook(hook, "register_forward_pre_hook")
        handle = RemovableHandle(self._forward_pre_hooks, self._forward_pre_hooks_with_kwargs)
        self._forward_pre_hooks[handle.id] = hook
        if with_kwargs:
            self._forward_pre_hooks_with_kwargs[handle.id] = True
        if prepend:
            self._forward_pre_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_forward_hook(
        self, hook, *, prepend: bool = False, with_kwargs: bool = False, always_call: bool = False
    ) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after every forward; returns a handle to remove it.

        A hook that returns something other than None replaces the output
        (the next hook, and the caller, see the replacement). With
        ``with_kwargs=True`` it is called as ``hook(module, args, kwargs,
        output)``; with ``always_call=True`` it also runs when forward raised.
        """
        _check_hook(hook, "register_forward_hook")
        handle = RemovableHandle(
            self._forward_hooks, self._forward_hooks_with_kwargs, self._forward_hooks_always_called
        )
        self._forward_hooks[handle.id] = hook
        if with_kwargs:
            self._forward_hooks_with_kwargs[handle.id] = True
        if always_call:
            self._forward_hooks_always_called[handle.id] = True
        if prepend:
            self._forward_hooks.move_to_end(handle.id, last=False)
        return handle

    def backward(self, grad_output):
        """The course API: sweep the tape back from this module's latest output.

        ``model.backward(loss_fn.backward())`` accumulates the same
        gradients into the parameters as ``loss.backward()``. Returns None.
        The latest output is that of the latest call made directly, not from
        inside another module's forward (call it on the whole model).
        """
        out = self._last_output
        if out is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward(): this module has not been called "
                "directly yet (a layer called by its model keeps no output); run a "
                "forward pass first, and call backward() on the module you called"
            )
        if not isinstance(out, Tensor) or not out.requires_grad:
            raise RuntimeError(
                f"{type(self).__name__}.backward(): its latest output was not "
                "recorded (computed under no_grad, or nothing required grad)"
            )
        out.backward(grad_output)

    # --- parameters, buffers and submodules ----------------------------------
    def _named_members(self, registry: str, prefix: str, recurse: bool, remove_duplicate: bool):
        seen = set()
        modules = (
            self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
            if recurse
            else [(prefix, self)]
        )
        for module_prefix, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or id(value) in seen:
                    continue
                if remove_duplicate:
                    seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ):
        """Yield (dotted name, parameter), e.g. ('0.weight', ...); a shared one once by default."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True):
        """Yield the parameters (each once): what an optimizer takes."""
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def param(self):
        """The course API: a list of (parameter, gradient) pairs."""
        return [(p, p.grad) for p in self.parameters()]

    def named_buffers(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        """Yield (dotted name, buffer), persistent or not, like `named_parameters`."""
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True):
        """Yield the buffers (each once)."""
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def named_children(self):
        """Yield (name, child module) for the direct children (not None, each once)."""
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        """Yield the direct child modules (not None, each once)."""
        for _, module in self.named_children():
            yield module

    def named_modules(
        self, memo: set | None = None, prefix: str = "", remove_duplicate: bool = True
    ):
        """Yield (dotted name, module) for this module and every descendant, depth first.

        A module reached twice is yielded once (the first name), unless
        ``remove_duplicate=False``. `memo`: modules to skip (it is updated).
        """
        if memo is None:
            memo = set()
        # A stack of (name, module, its ancestors): the ancestors only catch a module that
        # contains itself, which without remove_duplicate would never end.
        stack = [(prefix, self, ())]
        while stack:
            name, module, ancestors = stack.pop()
            if module in memo:
                continue
            if remove_duplicate:
                memo.add(module)
            yield name, module
            inner = () if remove_duplicate else ancestors + (module,)
            children: list = []
            for child_name, child in module._modules.items():
                if child is None:
                    continue
                if any(child is a for a in inner):
                    raise RuntimeError(
                        f"{type(self).__name__}: submodule "
                        f"'{name + '.' if name else ''}{child_name}' is one of its "
                        "own ancestors (a cycle), so its dotted names never end"
                    )
                children.append((f"{name}.{child_name}" if name else child_name, child, inner))
            stack.extend(reversed(children))

    def modules(self, remove_duplicate: bool = True):
        """Yield this module and every descendant, depth first (see `named_modules`)."""
        for _, module in self.named_modules(remove_duplicate=remove_duplicate):
            yield module

    def get_submodule(self, target: str) -> Module:
        """The submodule at a dotted name such as ``'body.0'`` ('' is this module)."""
        module = self
        if target == "":
            return module
        for item in target.split("."):
            if not hasattr(module, item):
                raise AttributeError(f"{type(module).__name__} has no attribute `{item}`")
            module = getattr(module, item)
            if not isinstance(module, Module):
                raise AttributeError(f"`{item}` is not a tapegrad.nn.Module")
        return module

    def get_parameter(self, target: str) -> Parameter:
        """The parameter at a dotted name such as ``'body.0.weight'``."""
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if not hasattr(module, name):
            raise AttributeError(f"{type(module).__name__} has no attribute `{name}`")
        param = getattr(module, name)
        if not isinstance(param, Parameter):
            raise AttributeError(f"`{name}` is not a tapegrad.nn.Parameter")
        return param

    def get_buffer(self, target: str):
        """The buffer at a dotted name such as ``'norm.running_mean'``."""
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if not hasattr(module, name):
            raise AttributeError(f"{type(module).__name__} has no attribute `{name}`")
        if name not in module._buffers:
            raise AttributeError(f"`{name}` is not a buffer")
        return getattr(module, name)

    def apply(self, fn) -> Module:
        """Call ``fn(module)`` on every child (recursively, children first), then on self."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # --- gradients and modes ---------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient (None), or zero it in place with set_to_none=False."""
        for p in self.parameters():
            if set_to_none:
                p._grad = None
            else:
                p._zero_grad()

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Set requires_grad on every parameter (False freezes them); returns self."""
        named = list(self.named_parameters())
        for name, p in named:
            if requires_grad and not (p.data.is_floating_point() or p.data.is_complex()):
                raise TypeError(
                    f"requires_grad_(): parameter {name!r} is {p.dtype}; only "
                    "floating-point tensors can require gradients (nothing was "
                    "changed)"
                )
        for _, p in named:
            p.requires_grad_(requires_grad)
        return self

    def train(self, mode: bool = True) -> Module:
        """Set training mode on this module and every descendant; returns self."""
        if not isinstance(mode, bool):
            raise ValueError(f"training mode is expected to be boolean, got {mode!r}")
        self.training = mode
        for module in self.children():
            module.train(mode)
        return self

    def eval(self) -> Module:
        """``train(False)``: evaluation mode on this module and every descendant; returns self."""
        return self.train(False)

    # --- devices and dtypes ------------------------------------------------------
    def to(self, device=None, dtype=None, non_blocking: bool = False) -> Module:
        """Move parameters (with their gradients) and buffers to `device` and/or `dtype`.

        ``to(device)``, ``to(dtype)``, ``to(device, dtype)`` or ``to(tensor)``
        (its device and dtype). As in torch, only floating-point values take
        the new dtype (an integer buffer keeps its own), parameters stay the
        same objects (an optimizer keeps working), and it returns self.
        """
        if isinstance(device, torch.dtype):
            device, dtype = None, device
        elif _is_tensor(device):
            device, dtype = device.device, device.dtype
        if dtype is not None and not (dtype.is_floating_point or dtype.is_complex):
            raise TypeError(
                f"Module.to() takes a floating-point dtype, got {dtype} (or a "
                "complex one; integer buffers keep their own dtype anyway)"
            )

        def convert(t: torch.Tensor) -> torch.Tensor:
            cast = dtype if (t.is_floating_point() or t.is_complex()) else None
            return t.to(device, cast, non_blocking)

        return self._apply(convert)

    def _apply(self, fn) -> Module:
        """Give each parameter, gradient and buffer the values fn(values): all or nothing."""
        modules = list(self.modules())
        params = {}  # id(parameter) -> fn(its values and .grad): all converted before any change
        buffers = {}  # id(buffer) -> fn(its values), for buffers that are not also parameters
        for module in modules:
            for p in module._parameters.values():
                if p is not None and id(p) not in params:
                    grad = p._grad
                    params[id(p)] = (fn(p.data), None if grad is None else fn(grad))
        for module in modules:
            for b in module._buffers.values():
                if b is not None and id(b) not in params and id(b) not in buffers:
                    buffers[id(b)] = fn(_data(b))
        done = set()  # each registry once: a module and its shallow copies share theirs
        for module in modules:
            for p in module._parameters.values():
                if p is not None:
                    p.data, p._grad = params[id(p)]
            if id(module._buffers) in done:
                continue
            done.add(id(module._buffers))
            for name, b in list(module._buffers.items()):
                if b is None or id(b) in params:  # (a parameter elsewhere: converted as one)
                    continue
                if isinstance(b, Tensor):
                    b.data = buffers[id(b)]
                else:  # a torch tensor: replaced, as torch does
                    module._add(module._buffers, name, buffers[id(b)])
        return self

    def double(self) -> Module:
        """``to(torch.float64)``."""
        return self.to(dtype=torch.float64)

    def float(self) -> Module:
        """``to(torch.float32)``."""
        return self.to(dtype=torch.float32)

    def cpu(self) -> Module:
        """``to("cpu")``."""
        return self.to("cpu")

    def cuda(self, device=None) -> Module:
        """``to("cuda")``, or to the GPU `device` (an index or a device)."""
        if isinstance(device, int):
            device = torch.device("cuda", device)
        return self.to(device or "cuda")

    # --- state ----------------------------------------------------------------
    def state_dict(self, *, destination=None, prefix: str = "", keep_vars: bool = False):
        """{dotted name: tensor} for every parameter and persistent buffer (None ones left out).

        The tensors share storage with the module (like torch); with
        ``keep_vars=True`` they are the Parameters and buffers themselves.
        A module reachable under two names appears under both, as in torch.
        """
        if destination is None:
            destination = OrderedDict()
        for module_prefix, module in self.named_modules(remove_duplicate=False):
            start = f"{prefix}{module_prefix}." if module_prefix else prefix
            for name, value in _local_state(module):
                destination[start + name] = value if keep_vars else _data(value)
            if _overrides(module, "get_extra_state"):
                destination[start + _EXTRA_STATE] = module.get_extra_state()
        return destination

    def get_extra_state(self) -> Any:
        """Override it (with `set_extra_state`) to keep more than tensors in the state dict.

        What it returns is stored under ``<prefix>_extra_state`` by
        `state_dict` and handed to `set_extra_state` by `load_state_dict`,
        as in torch. Any object; `tapegrad.save` writes it (in a state dict or a
        checkpoint) if it is plain data: tensors, numbers, strings, None, and
        lists, tuples and dicts of them.
        """
        raise RuntimeError(
            f"{type(self).__name__}.get_extra_state() is Module's, which state_dict() never "
            "calls: override get_extra_state (and set_extra_state) in the module's class"
        )

    def set_extra_state(self, state: Any) -> None:
        """Override it (with `get_extra_state`) to take back what that one returned."""
        raise RuntimeError(
            f"{type(self).__name__}.set_extra_state() is Module's, which load_state_dict() never "
            "calls: override set_extra_state (and get_extra_state) in the module's class"
        )

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy values into the existing parameters and buffers, keeping their dtype and device.

        Everything is checked before anything is copied: a missing or
        unexpected key (with strict=True) or a wrong shape raises an error
        naming it and leaves the module unchanged. Returns torch's
        ``IncompatibleKeys(missing_keys, unexpected_keys)``. A module shared
        under two names is loaded from both keys (the later one wins, as in torch).
        A module whose class overrides `set_extra_state` is handed its
        ``_extra_state`` entry (without one, that key is missing) after its own
        tensors are loaded and before its children's, as in torch (it may change
        the model: convert it, fix up or replace tensors and children, which are
        then loaded as they are); if it raises, its own tensors get their old
        values back and the modules loaded before it stay loaded. The checks
        above run first, on the model as it is (unlike torch's, which run as it
        walks): a set_extra_state that would resize the model cannot make a
        checkpoint of another size fit.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"load_state_dict() takes a mapping of names to tensors (a state "
                f"dict), got {type(state_dict).__name__}"
            )
        for key in state_dict:
            if not isinstance(key, str):
                raise TypeError(
                    f"load_state_dict(): the keys of a state dict are dotted names, "
                    f"got {key!r} ({type(key).__name__})"
                )
        missing, problems, copies, extras = [], [], [], []
        walk: dict = {}  # module prefix ('' or 'body.0.') -> (position in the walk, own names)
        for module_prefix, module in self.named_modules(remove_duplicate=False):
            module_prefix = module_prefix + "." if module_prefix else ""
            local = dict(_local_state(module))
            own = set(local)
            if _overrides(module, "set_extra_state"):
                own.add(_EXTRA_STATE)
            walk.setdefault(module_prefix, (len(walk), own))
            for name, target in local.items():
                key = module_prefix + name
                if key not in state_dict:
                    missing.append(key)
                    continue
                target, value, problem = _loadable(key, target, state_dict[key])
                if problem:
                    problems.append(problem)
                else:
                    copies.append((target, value))
            if _EXTRA_STATE in own:
                if module_prefix + _EXTRA_STATE in state_dict:
                    extras.append(module)
                else:
                    missing.append(module_prefix + _EXTRA_STATE)
        unexpected = self._unexpected_keys(state_dict, walk)
        if strict:
            problems = (
                ([f"missing keys: {', '.join(missing)}"] if missing else [])
                + ([f"unexpected keys: {', '.join(unexpected)}"] if unexpected else [])
                + problems
            )
        if problems:
            hint = ""
            if extras:  # torch would call them as it walks, and they might resize the model
                hint = (
                    "\n  (set_extra_state runs only once these checks pass: a model that "
                    "set_extra_state would rebuild must be rebuilt before loading)"
                )
            raise RuntimeError(
                f"Error(s) in loading state_dict for {type(self).__name__} (the "
                "module is unchanged):\n  " + "\n  ".join(problems) + hint
            )
        with no_grad():
            if extras:
                _load_with_extra_state(self, "", state_dict)
            else:
                for target, value in copies:
                    target.copy_(value)
        return IncompatibleKeys(missing, unexpected)

    def _unexpected_keys(self, state_dict, walk: dict) -> list:
        """The keys that no parameter or persistent buffer answers, in torch's order.

        Each key is followed down the submodules its dotted name walks
        through; it is unexpected where that walk leaves the module tree.
        torch lists them module by module in walk order, each module's in
        the state dict's order.
        """
        found = []
        for position, key in enumerate(state_dict):
            module, module_prefix = self, ""
            while True:
                head, dot, _ = key[len(module_prefix) :].partition(".")
                order, own_names = walk[module_prefix]
                if not dot:  # a parameter or buffer of this module?
                    if head not in own_names:
                        found.append((order, position, key))
                    break
                if head not in module._modules:  # no such submodule
                    found.append((order, position, key))
                    break
                child = module._modules[head]
                if child is None:  # a None child: torch checks nothing below
                    break
                module = child
                module_prefix += head + "."
        return [key for *_, key in sorted(found)]

    # --- printing and copying ---------------------------------------------------
    def extra_repr(self) -> str:
        """The text between the parentheses of this module's repr (override it)."""
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self):
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [
            f"({name}): {_addindent(repr(module), 2)}" for name, module in self._modules.items()
        ]
        lines = extra_lines + child_lines
        body = ""
        if len(extra_lines) == 1 and not child_lines:
            body = extra_lines[0]
        elif lines:
            body = "\n  " + "\n  ".join(lines) + "\n"
        return f"{self._get_name()}({body})"

    def __dir__(self):
        keys = [*dir(type(self)), *self.__dict__, *self._parameters, *self._modules, *self._buffers]
        return sorted({key for key in keys if not key[0].isdigit()})

    def __getstate__(self):
        # Neither the weak reference (it must point at the copy) nor `_not_copied` (the
        # latest output: a whole tape) travel with copy.deepcopy or pickle.
        state = self.__dict__.copy()
        state.pop("_weakref", None)
        for name in self._not_copied:
            if name in state:
                state[name] = None
        return state

    def __reduce_ex__(self, protocol):
        """pickle and copy.deepcopy: object's own reduction (the class, then the state from
        __getstate__), with what `_not_copied` names left out also when a subclass's own
        __getstate__ keeps it (the idiom ``state = self.__dict__.copy()``)."""
        state = self.__getstate__()
        if isinstance(state, dict):
            gone = [name for name in self._not_copied if state.get(name) is not None]
            if gone:
                state = {**state, **dict.fromkeys(gone)}
        return copyreg.__newobj__, (type(self),), state

    def __copy__(self):
        """copy.copy, as torch's: a new module that shares this one's registries (parameters,
        buffers, submodules) and hook tables, so that registering, replacing or deleting one
        on either shows on both; its plain attributes (``training`` too) are its own, and one
        of them wins over a value of that name registered through another copy. (torch's
        Sequential and ModuleList take a registry of their own on ``del`` and ``pop``, so
        that later changes stop showing in the other; tapegrad's stay tied.)"""
        if _COPIES not in self.__dict__:
            self.__dict__[_COPIES] = _ShallowCopies(self)
        new = type(self).__new__(type(self))
        new.__setstate__(self.__getstate__())
        new._settle()  # (also after a subclass's own __setstate__)
        return new

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._settle()

    def _settle(self) -> None:
        """After a copy or an unpickling: this module's own weak reference and call flag, and
        its place among the shallow copies it shares registries with."""
        own = self.__dict__
        ref = own.get("_weakref")
        if ref is None or ref() is not self:
            own["_weakref"] = _ModuleRef(self)
        own["_plain_call"] = type(self).__call__ is Module.__call__
        if _SHADOWED in own:
            own[_SHADOWED] = set(own[_SHADOWED])  # (its own, not the original's)
        copies = own.get(_COPIES)
        if copies is not None:
            copies.join(self)


class _ModuleRef(weakref.ref):
    """A module's weak reference to itself (what its tape nodes hold), in its __dict__. A
    copy or an unpickled module gets one to itself, also through a subclass's own
    __getstate__ and __setstate__ (``self.__dict__.update(state)``)."""

    __slots__ = ()

    def __reduce__(self):
        return _ModuleRef, (self(),)

    def __deepcopy__(self, memo):
        return _ModuleRef(copy.deepcopy(self(), memo))


class _ShallowCopies:
    """The modules that share registries through copy.copy (weakly held): one object in
    each one's __dict__. Deep-copied or pickled with them, it starts empty and each copy
    joins it in __setstate__, so that copies of both stay tied to each other as torch's
    (copy.deepcopy([m, copy.copy(m)]) shares one registry between the two new modules)."""

    def __init__(self, *modules: Module):
        self._refs = [weakref.ref(m) for m in modules]
        self._lock = threading.Lock()  # (copies may be made in several threads at once)

    def join(self, module: Module) -> None:
        with self._lock:
            live = [ref for ref in self._refs if ref() is not None]
            if all(ref() is not module for ref in live):
                live.append(weakref.ref(module))
            self._refs = live

    def modules(self) -> list:
        with self._lock:
            refs = list(self._refs)
        return [m for m in (ref() for ref in refs) if m is not None]

    def __deepcopy__(self, memo):
        return _ShallowCopies()

    def __reduce__(self):
        return _ShallowCopies, ()


_EXTRA_STATE = "_extra_state"  # torch's key for what get_extra_state returns


def _overrides(module: Module, method: str) -> bool:
    """Does `module`'s class define its own `method` (torch's test for the extra-state hooks)?"""
    return getattr(type(module), method) is not getattr(Module, method)


def _loadable(key: str, target, value) -> tuple:
    """(target, value, None): the torch tensors to copy `value` of state dict entry `key`
    into `target` (a parameter or buffer); (target, None, the problem) if it can't be."""
    value, target = _data(value), _data(target)
    if not isinstance(value, torch.Tensor):
        return target, None, f"{key}: expected a tensor, got {type(value).__name__}"
    value = value.detach()  # e.g. torch's state_dict(keep_vars=True)
    if target.dim() == 0 and value.shape == (1,):
        value = value[0]  # torch's allowance for old checkpoints
    if value.shape != target.shape:
        shapes = f"shape {tuple(value.shape)} in the state dict, {tuple(target.shape)} in the model"
        return target, None, f"{key}: {shapes}"
    return target, value, None


def _load_with_extra_state(module: Module, prefix: str, state_dict) -> None:
    """Load `module` and its descendants in torch's order, once the checks have passed: its
    own tensors, then its set_extra_state (which may change the module: fix up its
    tensors, convert it, replace a child), then each child as it is at that moment. If a
    module's set_extra_state raises, that module's tensors get their old values back; the
    modules loaded before it stay loaded (each with its own tensors and extra state)."""
    saved = []
    try:
        for name, target in _local_state(module):
            key = prefix + name
            if key not in state_dict:
                continue
            target, value, problem = _loadable(key, target, state_dict[key])
            if problem:  # an earlier set_extra_state changed the model
                raise RuntimeError(
                    f"Error(s) in loading state_dict for {type(module).__name__}: {problem}, "
                    "after an earlier module's set_extra_state changed the model (the "
                    "modules before this one are loaded)"
                )
            saved.append((target, target.clone()))
            target.copy_(value)
        if _overrides(module, "set_extra_state") and prefix + _EXTRA_STATE in state_dict:
            module.set_extra_state(state_dict[prefix + _EXTRA_STATE])
    except BaseException:
        for target, old in saved:
            target.copy_(old)
        raise
    for name, child in list(module._modules.items()):
        if child is not None:
            _load_with_extra_state(child, f"{prefix}{name}.", state_dict)


def _local_state(module: Module):
    """(name, value) for a module's own parameters and persistent buffers that are not None."""
    for name, param in module._parameters.items():
        if param is not None:
            yield name, param
    for name, buffer in module._buffers.items():
        if buffer is not None and name not in module._non_persistent_buffers_set:
            yield name, buffer


def _check_hook(hook, method: str) -> None:
    if not callable(hook):
        raise TypeError(f"{method}() takes a callable, got {type(hook).__name__}")
