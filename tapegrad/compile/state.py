"""The Python state a step can read and write, found by walking from `fn`, and snapshots of it.

    roots  = fn's arguments, its closure cells, the globals its code names (and those of
             the functions it names, recursively), the modules and optimizers whose
             methods ran while tracing
    walk   = dicts, lists, tuples, closure cells, tapegrad Tensors (their slots: data,
             grad, requires_grad, node) and the attributes (``__dict__``) of modules,
             optimizers and objects of your own classes
    leaves = everything else: numbers, strings, None, dtypes... (compared by value);
             torch tensors, functions, library objects (compared by identity)

A `Snapshot` is one walk: for every container, its keys and the objects it held.
Two snapshots of the same roots, before and after `fn` ran, differ exactly where
`fn` wrote Python state (``p.grad = ...``, ``optimizer.state[...] = {...}``): the
*effects* the compiled code must repeat. The first snapshot is also what the guards
check before each compiled call.

The compiler knows only these kinds, never what a module, layer or optimizer keeps in
them: a new optimizer feature, a new layer attribute, is just one more item to compare.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import sysconfig
import types
import weakref
from collections import OrderedDict, defaultdict

import torch

from ..tape import Node, Tape
from ..tensor import Tensor

# Leaves compared by value (==); everything not walked and not plain is compared by identity.
PLAIN_TYPES = frozenset(
    [
        type(None),
        bool,
        int,
        float,
        complex,
        str,
        bytes,
        torch.dtype,
        torch.device,
        torch.Size,
        torch.layout,
        torch.memory_format,
        type(Ellipsis),
        slice,
        range,
    ]
)

# The slots of a tapegrad Tensor that hold Python-visible state, read through the base
# class's own descriptors (a subclass cannot redirect them). `_tape` follows `_node`, and
# `_gathered` is only set during a sweep.
TENSOR_SLOTS = ("_data", "_grad", "_requires_grad", "_node")
SLOT_GET = {name: Tensor.__dict__[name].__get__ for name in TENSOR_SLOTS}
SLOT_NAMES = {"_data": "data", "_grad": "grad", "_requires_grad": "requires_grad", "_node": "node"}

MAX_ITEMS = 20_000  # a walk stops descending after this many items (and says so)
MAX_DEPTH = 24

# Container kinds
DICT, LIST, TUPLE, SLOTS, OBJECT, CELL, GLOBALS = (
    "dict",
    "list",
    "tuple",
    "slots",
    "object",
    "cell",
    "globals",
)


def is_plain(value) -> bool:
    return type(value) in PLAIN_TYPES


# --- which objects are walked ------------------------------------------------------------


def _library_dirs() -> tuple:
    paths = sysconfig.get_paths()
    dirs = {paths.get(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    dirs.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tapegrad/
    dirs.add(os.path.dirname(os.path.abspath(torch.__file__)))
    return tuple(os.path.abspath(d) + os.sep for d in dirs if d)


_LIBRARY_DIRS = _library_dirs()


@functools.lru_cache(maxsize=4096)
def is_library_file(filename: str) -> bool:
    """Code of Python, torch, tapegrad or an installed package (not walked): not yours."""
    if filename.startswith("<"):
        return filename.startswith("<frozen")
    return os.path.abspath(filename).startswith(_LIBRARY_DIRS)


def _is_user_function(f) -> bool:
    code = getattr(f, "__code__", None)
    return code is not None and not is_library_file(code.co_filename)


_WALKED_CLASSES: dict = {}


def _walks_attributes(cls) -> bool:
    """Modules, optimizers, config namespaces, and objects of classes defined outside libraries."""
    found = _WALKED_CLASSES.get(cls)
    if found is None:
        from ..nn.module import Module
        from ..optim.optimizer import Optimizer

        if issubclass(cls, (Module, Optimizer, types.SimpleNamespace, argparse.Namespace)):
            found = True
        elif issubclass(cls, (type, types.ModuleType, Node, Tape, weakref.ref, BaseException)):
            found = False
        else:
            module = sys.modules.get(cls.__module__)
            filename = getattr(module, "__file__", None)
            found = cls.__module__ == "__main__" or (
                filename is not None and not is_library_file(filename)
            )
        _WALKED_CLASSES[cls] = found
    return found


class TRef:
    """A torch tensor met in a walk, held weakly (the walk must not keep alive what the step
    frees, like an old .grad): its identity, class and, for the first snapshot, its layout."""

    __slots__ = ("ref", "id", "cls", "dtype", "device", "shape", "stride", "contiguous")

    def __init__(self, t, layout=False):
        self.ref = weakref.ref(t)
        self.id = id(t)
        self.cls = type(t)
        if layout:
            self.dtype, self.device, self.shape = t.dtype, t.device, tuple(t.shape)
            self.stride, self.contiguous = tuple(t.stride()), t.is_contiguous()

    def get(self):
        """The tensor, or None if it is gone."""
        return self.ref()

    def __repr__(self):
        return f"<tensor {self.id:#x}>"


def unwrap(value):
    """The object behind a TRef (None if it is gone); anything else as it is."""
    return value.get() if type(value) is TRef else value


class Entry:
    """One walked container: its kind, and the keys and objects it held when walked."""

    __slots__ = ("obj", "kind", "keys", "values", "owner")

    def __init__(self, obj, kind, keys, values, owner=None):
        self.obj = obj  # the container (for OBJECT: the instance; its __dict__ is read)
        self.kind = kind
        self.keys = keys
        self.values = values
        self.owner = owner  # for GLOBALS: the function whose globals they are

    def items(self):
        return zip(self.keys, self.values)

    def get(self, key, default=None):
        for k, v in zip(self.keys, self.values):
            if k is key or (type(k) is type(key) and is_plain(k) and k == key):
                return v
        return default


def read_items(obj, kind, names=None, layout=False, trefs=None):
    """(keys, values) of container `obj` of `kind` as they are now; tensors as `TRef`s.

    trefs: {id: TRef} shared by the snapshots of one trace, so that a tensor met in two
    of them is the same TRef (`is`), even once it is gone.
    """
    keys, values = _read_items(obj, kind, names)
    if trefs is None:
        return keys, [TRef(v, layout) if isinstance(v, torch.Tensor) else v for v in values]
    out = []
    for v in values:
        if isinstance(v, torch.Tensor):
            ref = trefs.get(id(v))
            if ref is None or ref.get() is not v:
                ref = trefs[id(v)] = TRef(v, layout)
            v = ref
        out.append(v)
    return keys, out


def _read_items(obj, kind, names=None):
    if kind == DICT:
        return list(obj.keys()), list(obj.values())
    if kind in (LIST, TUPLE):
        return list(range(len(obj))), list(obj)
    if kind == SLOTS:
        keys = list(TENSOR_SLOTS)
        values = [SLOT_GET[name](obj) for name in keys]
        extra = getattr(obj, "__dict__", None)
        if extra:
            keys += list(extra.keys())
            values += list(extra.values())
        return keys, values
    if kind == OBJECT:
        d = obj.__dict__
        return list(d.keys()), list(d.values())
    if kind == CELL:
        try:
            return ["cell_contents"], [obj.cell_contents]
        except ValueError:  # an empty cell (a variable not yet assigned)
            return [], []
    if kind == GLOBALS:
        keys = [n for n in names if n in obj]
        return keys, [obj[n] for n in keys]
    raise AssertionError(kind)


def container_kind(obj):
    """The kind of container `obj` is walked as, or None for a leaf."""
    cls = type(obj)
    if cls in PLAIN_TYPES or cls is TRef or isinstance(obj, torch.Tensor):
        return None
    if isinstance(obj, Tensor):
        return SLOTS
    if cls is dict or cls is OrderedDict or cls is defaultdict:  # optimizer.state
        return DICT
    if cls is list:
        return LIST
    if cls is tuple:
        return TUPLE
    if isinstance(obj, types.CellType):
        return CELL
    if isinstance(obj, (types.FunctionType, types.MethodType, functools.partial)):
        return None  # functions are followed (see Walker.follow), not compared item by item
    if hasattr(obj, "__dict__") and not isinstance(obj, type) and _walks_attributes(cls):
        return OBJECT
    return None


class Snapshot:
    """One walk of the state reachable from the roots: {id(container): Entry}, and names."""

    def __init__(self):
        self.entries: dict = {}
        self.names: dict = {}  # id(object) -> readable path, e.g. 'model.0.weight'
        self.parents: dict = {}  # id(object) -> (id(container), key) where first found
        self.objects: dict = {}  # id(object) -> object, for every object met
        self.truncated = False

    def __contains__(self, obj) -> bool:
        return id(obj) in self.entries


class Walker:
    """Finds the roots of `fn` once, then takes snapshots of everything reachable from them.

    roots: [(name, object)]. The arguments come first; they are walked like the rest,
    but the guards read them from each call, not from these objects.
    """

    def __init__(self, fn, args, kwarg_names=()):
        self.roots = []  # [(name, obj)]
        self.arg_count = 0
        self._trefs = {}  # id -> TRef, shared by this walker's snapshots
        self._functions = set()
        self._globals = {}  # id(globals dict) -> (dict, set of names, module name)
        names = _parameter_names(fn, len(args))
        for name, value in zip(names, args):
            self.roots.append((name, value))
        self.arg_count = len(self.roots)
        self._follow_callable(fn, "fn")
        # Modules before the rest (names: see Walker.snapshot); arguments stay first.
        rest = self.roots[self.arg_count :]
        rest.sort(key=lambda root: not (root[0] is not None and _is_module(root[1])))
        self.roots[self.arg_count :] = rest

    # --- roots: what fn can reach without being given it ------------------------------
    def _follow_callable(self, f, name, depth=0):
        if depth > 8:
            return
        if isinstance(f, types.MethodType):
            self.roots.append(("self" if depth == 0 else f"{name}.__self__", f.__self__))
            self._follow_callable(f.__func__, name, depth + 1)
        elif isinstance(f, functools.partial):
            self.roots.append((f"{name}.args", f.args))
            self.roots.append((f"{name}.keywords", f.keywords))
            self._follow_callable(f.func, name, depth + 1)
        elif isinstance(f, types.FunctionType):
            wrapped = getattr(f, "__wrapped__", None)  # a decorator's wrapper (functools.wraps)
            if wrapped is not None and wrapped is not f:
                self._follow_callable(wrapped, name, depth + 1)
            if id(f) in self._functions or not _is_user_function(f):
                return
            self._functions.add(id(f))
            code = f.__code__
            for var, cell in zip(code.co_freevars, f.__closure__ or ()):
                self.roots.append((var, cell))
            if f.__defaults__:
                self.roots.append((f"{f.__name__}.__defaults__", f.__defaults__))
            if f.__kwdefaults__:
                self.roots.append((f"{f.__name__}.__kwdefaults__", f.__kwdefaults__))
            names = _global_names(code)
            g = f.__globals__
            entry = self._globals.get(id(g))
            if entry is None:
                entry = self._globals[id(g)] = (g, set(), g.get("__name__", "?"))
                self.roots.append((None, entry))  # placeholder: the globals container
            fresh = names - entry[1]
            entry[1].update(fresh)
            for n in sorted(fresh):
                value = g.get(n)
                if isinstance(value, (types.FunctionType, types.MethodType, functools.partial)):
                    self._follow_callable(value, n, depth + 1)
            # functions held in closure cells (helpers defined in an enclosing function)
            for cell in f.__closure__ or ():
                try:
                    value = cell.cell_contents
                except ValueError:
                    continue
                if isinstance(value, (types.FunctionType, types.MethodType, functools.partial)):
                    self._follow_callable(value, "closure", depth + 1)
        elif callable(f) and not isinstance(f, type) and _walks_attributes(type(f)):
            self.roots.append((name, f))
            self._follow_callable(type(f).__call__, name, depth + 1)

    def without_arguments(self) -> Walker:
        """A walker of the same state, without the arguments of the traced call."""
        other = Walker.__new__(Walker)
        other.roots = list(self.roots[self.arg_count :])
        other.arg_count = 0
        other._functions = set(self._functions)
        other._globals = self._globals
        other._trefs = {}
        return other

    # --- one walk -------------------------------------------------------------------
    def snapshot(self, named: bool = True) -> Snapshot:
        """Walk everything reachable now. `named`: also give each object a readable path.

        The first (named) snapshot also follows functions it finds in the state (a model
        holding a function of yours): their closures and globals become roots, and the walk
        starts again until the roots are complete. Later snapshots walk the same roots.
        """
        while True:
            size = self._root_size()
            snap = self._walk(named)
            if not named or self._root_size() == size:
                return snap

    def _root_size(self):
        return len(self.roots), sum(len(entry[1]) for entry in self._globals.values())

    def _walk(self, named: bool) -> Snapshot:
        snap = Snapshot()
        stack: list[tuple] = []
        for name, obj in reversed(self.roots):
            if name is None:  # a globals container
                g, names, module = obj
                stack.append((g, GLOBALS, sorted(names), None, None, 0))
            else:
                stack.append((obj, None, None, None, name, 0))
        count = 0
        while stack:
            obj, kind, names, parent, key, depth = stack.pop()
            oid = obj.id if type(obj) is TRef else id(obj)
            if oid not in snap.objects:
                snap.objects[oid] = obj
                if parent is None:
                    snap.names[oid] = key if isinstance(key, str) else "?"
                else:
                    snap.parents[oid] = (parent, key)
            if kind is None:
                kind = container_kind(obj)
                if kind is None:
                    if (
                        named
                        and parent is not None
                        and isinstance(
                            obj, (types.FunctionType, types.MethodType, functools.partial)
                        )
                    ):
                        self._follow_callable(obj, "fn", 1)  # a callable stored in state
                    continue
            if oid in snap.entries:
                continue
            keys, values = read_items(obj, kind, names, layout=named, trefs=self._trefs)
            snap.entries[oid] = Entry(
                obj, kind, keys, values, owner=names if kind == GLOBALS else None
            )
            count += len(keys)
            if count > MAX_ITEMS or depth >= MAX_DEPTH:
                snap.truncated = True
                continue
            children = [
                (k, v)
                for k, v in zip(keys, values)
                if type(v) not in PLAIN_TYPES and not (kind == SLOTS and k == "_node")
            ]
            # Modules first, so that a parameter is named after its module ('model.0.weight')
            # rather than after an optimizer's list that holds it too.
            if named:
                children.sort(key=lambda item: not _is_module(item[1]))
            for k, v in reversed(children):
                stack.append((v, None, None, oid, k, depth + 1))
        if named:
            for oid in list(snap.objects):
                if oid not in snap.names:
                    snap.names[oid] = None
            _name_everything(snap)
        return snap


def _is_module(obj) -> bool:
    from ..nn.module import Module

    if isinstance(obj, types.CellType):
        try:
            obj = obj.cell_contents
        except ValueError:
            return False
    return isinstance(obj, Module)


def _parameter_names(fn, count) -> list:
    import inspect

    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = []
    for i in range(count):
        if i < len(params) and params[i].kind in (
            params[i].POSITIONAL_ONLY,
            params[i].POSITIONAL_OR_KEYWORD,
        ):
            names.append(params[i].name)
        elif params and params[-1].kind == params[-1].VAR_POSITIONAL:
            names.append(f"{params[-1].name}_{i}")
        else:
            names.append(f"arg{i}")
    return names


def _global_names(code) -> set:
    """Every name the code (and code nested in it: lambdas, comprehensions) may read as a global."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


# --- readable names ----------------------------------------------------------------------


def _name_everything(snap: Snapshot) -> None:
    """Give every object met a readable path: 'model.0.weight', 'optimizer.state[id(0.weight)]'."""
    entries = snap.entries
    names = snap.names

    def name_of(oid, seen=()):
        name = names.get(oid)
        if name is not None:
            return name
        parent, key = snap.parents[oid]
        if parent in seen:
            return "?"
        base = name_of(parent, seen + (oid,))
        entry = entries[parent]
        name = _step(base, entry, key, snap)
        names[oid] = name
        return name

    for oid in list(names):
        if names[oid] is None:
            name_of(oid)


def _step(base: str, entry: Entry, key, snap: Snapshot) -> str:
    kind = entry.kind
    if kind == SLOTS:
        return f"{base}.{SLOT_NAMES.get(key, key)}"
    if kind in (OBJECT, CELL):
        return base if kind == CELL else f"{base}.{key}"
    if kind == GLOBALS:
        return str(key)
    if kind == DICT:
        # a module's registries read as torch names them: model._modules['0'] -> model.0
        if base.endswith(("._modules", "._parameters", "._buffers")) and isinstance(key, str):
            return f"{base.rsplit('.', 1)[0]}.{key}"
        return f"{base}[{render_key(key, snap)}]"
    return f"{base}[{key}]"


def render_key(key, snap: Snapshot | None = None) -> str:
    """A dict key as code would write it; an int that is some object's id() as id(name)."""
    if type(key) is int and snap is not None and key in snap.objects and snap.names.get(key):
        return f"id({snap.names[key]})"
    if not is_plain(key) and snap is not None and snap.names.get(id(key)):
        return snap.names[id(key)]  # a parameter as a key: optimizer.state[model.0.weight]
    return repr(key)


def name_of(snap: Snapshot, obj) -> str | None:
    return snap.names.get(id(obj))
