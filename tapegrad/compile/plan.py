"""What a trace means for the generated code: where each tensor comes from, which state is fixed.

places written   = what changed between the snapshots around each stretch of compiled
                   code (p.grad, model._last_output, optimizer.state[...] on a first step)
places owned     = what changed inside an opaque call (Adam's step counts): that call
                   writes them itself at replay, and reads them itself
stable objects   = everything reachable from fn's closure, globals and object arguments
                   through places that are neither: the guards check them as they were,
                   so the generated code may use them as constants
tensor sources   = input      (from an argument, read at each call)
                   state      (held by a stable place: a constant, checked by identity)
                   read       (held by a written place: read from it when the call starts)
                   temporary  (made by a kernel or an opaque call of this trace)
                   constant   (none of these: kept as it was, and listed in the code)
"""

from __future__ import annotations

import torch

from ..tensor import Tensor
from . import state as st
from .ir import Effects


def key_of(key):
    """Dict keys compared by type and value (1 and True are different keys here); a key that
    is an object (an optimizer's state is keyed by parameter) by identity, as dicts hash it."""
    if st.is_plain(key):
        return (type(key), key)
    return (object, id(key))


def same_value(a, b) -> bool:
    """Has a place kept its value? Plain values by type and ==, everything else by identity."""
    if a is b:
        return True
    if type(a) is st.TRef or type(b) is st.TRef:
        return False  # TRefs of one tensor are one object (see state.read_items)
    if type(a) is not type(b) or not st.is_plain(a):
        return False
    try:
        return bool(a == b)
    except Exception:
        return False


class Change:
    """One place whose value differs between two snapshots (``action``: 'set', 'del' or 'list')."""

    __slots__ = ("entry", "key", "action", "old", "new")

    def __init__(self, entry, key, action, old, new):
        self.entry, self.key, self.action, self.old, self.new = entry, key, action, old, new


def diff(before: st.Snapshot, after: st.Snapshot) -> list:
    """The places of containers present in both snapshots whose value changed."""
    changes = []
    for oid, old in before.entries.items():
        new = after.entries.get(oid)
        if new is None or old.kind == st.TUPLE:
            continue
        if old.kind == st.LIST:
            if len(old.values) != len(new.values) or not all(
                same_value(a, b) for a, b in zip(old.values, new.values)
            ):
                changes.append(Change(new, None, "list", list(old.values), list(new.values)))
            continue
        previous = {key_of(k): v for k, v in old.items()}
        current = {key_of(k): v for k, v in new.items()}
        for k, v in new.items():
            was = previous.get(key_of(k), _MISSING)
            if was is _MISSING or not same_value(was, v):
                changes.append(Change(new, k, "set", was, v))
        for k, v in old.items():
            if key_of(k) not in current:
                changes.append(Change(new, k, "del", v, _MISSING))
    return changes


class _Missing:
    def __repr__(self):
        return "<missing>"


_MISSING = _Missing()


class Plan:
    """Reads a finished `Tracer`; see the module docstring."""

    def __init__(self, tracer):
        self.tracer = tracer
        self.s0 = tracer.s0
        self.arg_count = tracer.walker.arg_count
        self.roots = tracer.walker.roots
        # places: (id(container), key_of(key)); a list's place has key None
        self.written = set()
        self.owned = set()
        for event in tracer.events:
            if isinstance(event, Effects):
                for change in diff(event.before, event.after):
                    self.written.add(_place(change))
        for before, after, _ in tracer.regions_done:
            for change in diff(before, after):
                self.owned.add(_place(change))
        self._find_stable()
        self._find_inputs()
        self._find_tensors()

    # --- arguments ------------------------------------------------------------------
    def _find_inputs(self):
        """Every tensor in the arguments, with the expression that reads it from them."""
        self.inputs = {}  # id(torch tensor) -> expression, e.g. 'x._data'
        self.arg_specs = []  # [(expression, object)] for the guards, in order
        self.runtime = {}  # id(container in the arguments) -> expression
        for name, value in self.roots[: self.arg_count]:
            self._input(name, value)

    def _input(self, expr, value):
        self.arg_specs.append((expr, value))
        if isinstance(value, torch.Tensor):
            self.inputs.setdefault(id(value), expr)
        elif isinstance(value, Tensor):
            self.runtime[id(value)] = expr
            self.inputs.setdefault(id(value._data), f"{expr}._data")
            self.arg_specs.append((f"{expr}._data", value._data))
            if isinstance(value._grad, torch.Tensor):
                self.inputs.setdefault(id(value._grad), f"{expr}._grad")
        elif type(value) in (tuple, list):
            self.runtime[id(value)] = expr
            for i, item in enumerate(value):
                self._input(f"{expr}[{i}]", item)

    # --- stable state -------------------------------------------------------------------
    def _find_stable(self):
        s0 = self.s0
        unstable = self.written | self.owned
        self.stable = {}  # id -> object reachable through stable places
        queue = []
        for name, value in self.roots[self.arg_count :]:
            obj = value[0] if name is None else value  # a globals root: (dict, names, module)
            queue.append(obj)
        for _name, value in self.roots[: self.arg_count]:
            if not (
                st.is_plain(value)
                or isinstance(value, (torch.Tensor, Tensor))
                or type(value) in (tuple, list)
            ):
                queue.append(value)  # an object argument: by identity
        while queue:
            obj = queue.pop()
            if id(obj) in self.stable:
                continue
            self.stable[id(obj)] = obj
            entry = s0.entries.get(id(obj))
            if entry is None:
                continue
            for k, v in entry.items():
                if st.is_plain(v) or type(v) is st.TRef:
                    continue
                if (id(obj), key_of(k)) in unstable or (id(obj), None) in unstable:
                    continue
                if entry.kind == st.SLOTS and k == "_node":
                    continue
                queue.append(v)

    # --- what the guards check ---------------------------------------------------------
    def guarded_items(self, used) -> dict:
        """{id(container): None (every item) or a set of keys}: the places the guards check.

        An object's attributes are checked when code that ran names them (``self.lr``,
        ``getattr(self, "lr")``: the names and strings of every function the trace saw run),
        so an attribute nothing reads (``in_features``, ``_parameters`` of a layer, ``training``
        of a model without Dropout) can change without a retrace. Dicts, lists, cells and a
        tensor's slots are checked whole. The path to every object the generated code uses
        (`used`: ids of tensors and objects) is checked too, whatever the names.
        """
        names = self.tracer.names_read()
        s0 = self.s0
        chosen: dict = {}
        reached = set()

        def walk(objects):
            queue = list(objects)
            while queue:
                obj = queue.pop()
                if id(obj) in reached:
                    continue
                reached.add(id(obj))
                entry = s0.entries.get(id(obj))
                if entry is None:
                    continue
                if entry.kind == st.OBJECT:
                    keys = chosen.setdefault(id(obj), set())
                    if keys is not None:
                        keys.update(key_of(k) for k in entry.keys if k in names)
                else:
                    chosen[id(obj)] = None
                keys = chosen[id(obj)]
                for k, v in entry.items():
                    if (
                        st.is_plain(v)
                        or type(v) is st.TRef
                        or (keys is not None and key_of(k) not in keys)
                    ):
                        continue
                    if self.is_unstable(entry, k) or (entry.kind == st.SLOTS and k == "_node"):
                        continue
                    queue.append(v)

        walk(self._root_objects())
        # An object the code uses that the names did not reach: check the chain of places
        # from a root down to it (and what hangs below it).
        for oid in used:
            if oid in reached:
                continue
            chain = []
            node = oid
            while node in s0.parents and node not in reached:
                parent, key = s0.parents[node]
                chain.append((parent, key))
                node = parent
            for parent, key in chain:
                keys = chosen.setdefault(parent, set())
                if keys is not None:
                    keys.add(key_of(key))
            obj = s0.objects[oid]
            if type(obj) is not st.TRef:
                walk([obj])
        return {oid: keys for oid, keys in chosen.items() if oid in self.stable}

    def _root_objects(self) -> list:
        found = []
        for name, value in self.roots[self.arg_count :]:
            found.append(value[0] if name is None else value)
        for _name, value in self.roots[: self.arg_count]:
            if not (
                st.is_plain(value)
                or isinstance(value, (torch.Tensor, Tensor))
                or type(value) in (tuple, list)
            ):
                found.append(value)
        return found

    def is_unstable(self, entry, key) -> bool:
        place = (id(entry.obj), key_of(key))
        return place in self.written or place in self.owned or (id(entry.obj), None) in self.written

    # --- tensors --------------------------------------------------------------------
    def _find_tensors(self):
        """Tensors of the first snapshot: constants (stable places) or read at the start."""
        self.state_tensors = {}  # id -> (tensor, readable name)
        self.read_tensors = {}  # id -> (tensor, entry, key, readable name)
        s0 = self.s0
        for oid, entry in s0.entries.items():
            if oid not in self.stable:
                continue
            for k, v in entry.items():
                if type(v) is not st.TRef:
                    continue
                if self.is_unstable(entry, k):
                    self.read_tensors.setdefault(v.id, (v, entry, k, s0.names.get(v.id)))
                else:
                    t = v.get()  # in its place since the start: alive
                    if t is not None:
                        self.state_tensors.setdefault(v.id, (t, s0.names.get(v.id)))
        for tid in self.state_tensors:
            self.read_tensors.pop(tid, None)

    def name(self, obj) -> str:
        return self.s0.names.get(id(obj)) or "?"


def _place(change):
    return (id(change.entry.obj), None if change.action == "list" else key_of(change.key))
