"""Guards: may the compiled code run for these arguments, in this state? Generated as code.

    def guard(x, t):
        if <recording mode, Tape blocks, anomaly mode, hooks> differ from the trace: return 0
        if <each argument: type, dtype, device, shape, strides, requires_grad> differ: return 1..
        if <each stable container: its length and every item, as in the first snapshot>: return k
        return None                                   # all hold: run the compiled code

Items are compared by identity (a parameter, a momentum buffer, a submodule must be the
same object), except plain values (numbers, strings, flags), compared by value, and
places the step itself writes (``p.grad``), which only need to hold the same kind of
thing (None, or a tensor, laid out as traced if the step reads it). A failed guard
returns the index of the failed check; `explain` turns it into a sentence.

A tensor held by a stable place (a parameter's data, a momentum buffer) is checked by
identity only: replacing its values with another layout (``p.data = ...``,
``model.to(...)``, ``model.double()``) makes a new tensor, which that check catches. An
in-place change of a state tensor's metadata between calls (``resize_``, ``set_``,
``t_`` on ``p.data``) is not checked: each attribute read of a torch tensor costs a
call into torch, and 16 shape checks were a third of the guard's time on the disk
network. The arguments' tensors, new at every call, are checked in full.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict

import torch

from .. import hooks
from ..tape import _state
from ..tensor import Tensor
from . import state as st
from .plan import key_of


class Guard:
    """The generated guard function, its source, and what each check means."""

    def __init__(self, source, function, checks, params):
        self.source = source
        self.function = function
        self.checks = checks  # index -> (description, explain function)
        self.params = params

    def explain(self, index, args) -> str:
        if index is None:
            return "all guards hold"
        if index == -1:  # a place could not be read: find the container that changed
            for description, detail in self.checks[2:]:
                try:
                    found = detail(dict(zip(self.params, args)))
                except Exception as error:
                    found = f"({type(error).__name__}: {error})"
                if found and description.startswith(("argument", "a tensor")) is False:
                    return f"{description}: {found}"
            return "a place the trace read cannot be read now"
        description, detail = self.checks[index]
        try:
            found = detail(dict(zip(self.params, args)))
        except Exception as error:  # the guard itself failed on this state
            found = f"({type(error).__name__}: {error})"
        return f"{description}: {found}" if found else description


class _Builder:
    def __init__(self, plan, used_reads, used_objects, name):
        self.plan = plan
        self.used_objects = used_objects
        self.used_reads = used_reads
        self.guarded = plan.guarded_items(used_objects)
        self.shaped = set()
        self.name = name
        self.ns = {
            "_state": _state,
            "_leaf_hooks": hooks.leaf_hooks,
            "_TorchTensor": torch.Tensor,
            "_Tensor": Tensor,
        }
        self.lines = []
        self.checks = []
        self.counter = 0

    def const(self, value, hint="c") -> str:
        name = f"_{hint}{self.counter}"
        self.counter += 1
        self.ns[name] = value
        return name

    def check(self, conditions, description, detail):
        if not conditions:
            return
        index = len(self.checks)
        self.checks.append((description, detail))
        joined = " or\n            ".join(conditions)
        self.lines.append(f"    if ({joined}):\n        return {index}")

    # --- the value in a place, as traced --------------------------------------------
    def value_conditions(self, expr, value) -> list:
        value = st.unwrap(value)
        if value is None or value is True or value is False:
            return [f"{expr} is not {value!r}"]
        if st.is_plain(value):
            if type(value) in (int, str) or (
                type(value) is float
                and value == value
                and value not in (float("inf"), float("-inf"))
            ):
                return [f"{expr} != {value!r}"]
            c = self.const(value)
            return [
                f"{expr}.__class__ is not {self.const(type(value), 'type')}",
                f"({expr} is not {c} and {expr} != {c})",
            ]
        return [f"{expr} is not {self.const(value, 'o')}"]

    def key(self, key) -> str:
        """A dict key in the guard's source: a literal, or a constant holding the key."""
        if type(key) in (str, int, bool) or key is None:
            return repr(key)
        return self.const(key, "k")

    def access(self, kind, base: str, key) -> str:
        """The guard's expression for `key` in the container of this kind that `base` names."""
        if kind == st.LIST:
            return f"{base}[{key}]"
        if kind == st.SLOTS:
            return f"{base}.{key}"
        if kind == st.CELL:
            return f"{base}.cell_contents"
        return f"{base}[{self.key(key)}]"  # a dict: an object's __dict__, a dict, globals

    def equal_is_safe(self, value) -> bool:
        """May this stable value be compared with == (in one tuple with others)?

        Yes for plain values (compared by value, as wanted), objects whose == is identity
        (modules, optimizers), and dicts, lists, tuples and weak references the generated
        code does not use (an equal one is as good). No for tensors: == compares elements,
        and a one-element tensor would pass for another with the same value.
        """
        cls = type(value)
        if cls in st.PLAIN_TYPES:
            return True
        if cls is st.TRef or isinstance(value, (torch.Tensor, Tensor)):
            return False
        if cls in (dict, OrderedDict, list, tuple, weakref.ref):
            return id(value) not in self.used_objects
        return getattr(cls, "__eq__", None) is object.__eq__

    def kind_conditions(self, expr, value) -> list:
        if value is None:
            return [f"{expr} is not None"]
        cls = value.cls if type(value) is st.TRef else type(value)
        return [f"{expr}.__class__ is not {self.const(cls, 'type')}"]

    def layout_conditions(self, expr, t) -> list:
        """The class, dtype, device, shape and strides of a tensor, each read as cheaply as torch
        allows (every attribute of a torch tensor costs a call into torch: ~0.1-0.3 us)."""
        device = t.device  # (t: a tensor, or the TRef of one, which noted its layout)
        if device.type == "cpu":
            on_device = f"{expr}.is_cpu is not True"
        elif device.type == "cuda" and device.index is not None:
            on_device = f"{expr}.get_device() != {device.index}"
        else:
            on_device = f"{expr}.device != {self.const(device, 'device')}"
        conditions = [
            f"{expr}.__class__ is not _TorchTensor",
            f"{expr}.dtype is not {self.const(t.dtype, 'dtype')}",
            on_device,
            f"{expr}.shape != {tuple(t.shape)!r}",
        ]
        contiguous = t.contiguous if type(t) is st.TRef else t.is_contiguous()
        if contiguous:  # with the shape, contiguity fixes what the step can see
            conditions.append(f"{expr}.is_contiguous() is not True")
        else:
            stride = t.stride if type(t) is st.TRef else tuple(t.stride())
            conditions.append(f"{expr}.stride() != {stride!r}")
        return conditions

    # --- the parts ----------------------------------------------------------------
    def modes(self):
        recording = _state.recording
        # one read of this thread's recording state, compared as a tuple
        self.lines.append("    _s = _state.__dict__")
        conditions = [
            f"(_s['recording'], _s['blocks'], _s['anomaly'], _s['module'], "
            f"_s['sweeping']) != ({recording!r}, (), False, None, False)"
        ]
        self.check(
            conditions,
            "recording mode (tapegrad.no_grad), an open Tape block, anomaly "
            "mode, or a call from inside a module or a sweep differs from the trace",
            lambda args: _modes_now(recording),
        )
        keys = set(hooks.leaf_hooks.keys())
        if keys:
            k = self.const(keys, "keys")
            self.check(
                [f"_leaf_hooks.keys() != {k}"],
                "a tensor hook was registered or removed",
                lambda args: "",
            )
        else:
            self.check(
                ["_leaf_hooks"],
                "a tensor hook was registered (the trace had none)",
                lambda args: "",
            )

    def arguments(self):
        for expr, value in self.plan.arg_specs:
            path = expr
            if isinstance(value, torch.Tensor):
                if expr.endswith("._data"):  # read the slot once
                    local = "_" + expr[: -len("._data")].replace("[", "_").replace("]", "")
                    self.lines.append(f"    {local} = {expr}")
                    self.check(
                        self.layout_conditions(local, value),
                        f"argument {path}",
                        _explain_tensor(expr, value),
                    )
                    continue
                self.check(
                    self.layout_conditions(expr, value),
                    f"argument {path}",
                    _explain_tensor(expr, value),
                )
            elif isinstance(value, Tensor):
                conditions = [
                    f"{expr}.__class__ is not {self.const(type(value), 'type')}",
                    f"{expr}._node is not None",
                    f"{expr}._requires_grad is not {value._requires_grad!r}",
                ]
                grad = value._grad
                conditions += (
                    self.layout_conditions(f"{expr}._grad", grad)
                    if isinstance(grad, torch.Tensor)
                    else [f"{expr}._grad is not None"]
                )
                self.check(
                    conditions,
                    f"argument {path} (a tapegrad Tensor)",
                    _explain_wrapper(expr, value),
                )
            elif type(value) in (tuple, list):
                self.check(
                    [
                        f"{expr}.__class__ is not {type(value).__name__}",
                        f"len({expr}) != {len(value)}",
                    ],
                    f"argument {path}",
                    _explain_simple(expr, value, "length"),
                )
            else:
                self.check(
                    self.value_conditions(expr, value),
                    f"argument {path}",
                    _explain_simple(expr, value, "value"),
                )

    def state(self):
        plan = self.plan
        s0 = plan.s0
        for oid, entry in s0.entries.items():
            if oid not in plan.stable or entry.kind == st.TUPLE or oid not in self.guarded:
                continue
            chosen = self.guarded[oid]
            obj = entry.obj
            name = s0.names.get(oid) or "?"
            kind = entry.kind
            if kind == st.OBJECT:
                base = self.const(obj.__dict__, "d")
                conditions = [f"len({base}) != {len(entry.keys)}"]
            elif kind == st.DICT:
                base = self.const(obj, "d")
                conditions = [f"len({base}) != {len(entry.keys)}"]
            elif kind == st.LIST:
                base = self.const(obj, "l")
                conditions = [f"len({base}) != {len(entry.keys)}"]
            elif kind == st.SLOTS:
                base = self.const(obj, "t")
                conditions = []
            elif kind == st.CELL:
                base = self.const(obj, "cell")
                conditions = []
            elif kind == st.GLOBALS:
                base = self.const(obj, "g")
                conditions = []
            else:
                continue
            same = []  # (expression, value): compared all at once, as a tuple
            for k, v in entry.items():
                if chosen is not None and key_of(k) not in chosen:
                    continue
                expr = self.access(kind, base, k)
                if plan.is_unstable(entry, k):
                    place = (oid, key_of(k))
                    if place in plan.owned and place not in plan.written:
                        continue  # an opaque call writes (and reads) it itself
                    if st.is_plain(v):
                        conditions += self.value_conditions(expr, v)
                    else:
                        conditions += self.kind_conditions(expr, v)
                        if type(v) is st.TRef and v.id in self.used_reads:
                            conditions += self.layout_conditions(expr, v)[1:]
                elif self.equal_is_safe(v):
                    same.append((expr, v))
                else:
                    conditions += self.value_conditions(expr, v)
            if len(same) > 1:
                values = self.const(tuple(v for _, v in same), "v")
                conditions.append(f"({', '.join(e for e, _ in same)}) != {values}")
            elif same:
                conditions += self.value_conditions(*same[0])
            self.check(conditions, f"{name} ({_kind_words(kind)})", _explain_entry(entry, s0, plan))

    def build(self, params) -> Guard:
        self.modes()
        self.arguments()
        self.state()
        header = (
            f"def guard_{self.name}({', '.join(params)}):\n"
            f'    """None when the compiled {self.name} may run; else the failed check."""\n'
            "    try:"
        )
        body = ["    " + line.replace("\n", "\n    ") for line in self.lines]
        # A place the trace read may be gone (an attribute deleted, a key removed): no match.
        tail = ["    except Exception:", "        return -1", "    return None", ""]
        source = "\n".join([header] + body + tail)
        code = compile(source, f"<tapegrad.compile guard of {self.name}>", "exec")
        exec(code, self.ns)
        return Guard(source, self.ns[f"guard_{self.name}"], self.checks, list(params))


def build_guard(plan, used_reads, used_objects, name, params) -> Guard:
    return _Builder(plan, used_reads, used_objects, name).build(params)


def _kind_words(kind) -> str:
    return {
        st.OBJECT: "its attributes",
        st.DICT: "a dict",
        st.LIST: "a list",
        st.SLOTS: "a tensor's data, grad and requires_grad",
        st.CELL: "a closure variable",
        st.GLOBALS: "globals",
    }.get(kind, kind)


# --- explaining a failed check (slow path: only after a miss) ------------------------------


def _modes_now(recording) -> str:
    now = []
    if _state.recording is not recording:
        now.append(f"recording is {_state.recording} (traced with {recording})")
    if _state.blocks:
        now.append("inside a `with tapegrad.Tape()` block")
    if _state.anomaly:
        now.append("anomaly mode is on")
    if _state.module is not None:
        now.append("called from inside a module's forward")
    if _state.sweeping:
        now.append("called from inside a sweep")
    return "; ".join(now)


def _evaluate(expr, args):
    names = args
    return eval(expr, {}, names)


def _layout(t) -> str:
    if not isinstance(t, torch.Tensor):
        return f"a {type(t).__name__}"
    return (
        f"{str(t.dtype).replace('torch.', '')} {tuple(t.shape)} on {t.device}, "
        f"strides {tuple(t.stride())}"
    )


def _explain_tensor(expr, traced):
    was = _layout(traced)

    def explain(args):
        return f"traced with {was}, now {_layout(_evaluate(expr, args))}"

    return explain


def _explain_wrapper(expr, traced):
    was = (
        f"requires_grad={traced._requires_grad}, "
        f"{'a leaf' if traced._node is None else 'an op output'}, grad "
        f"{'None' if traced._grad is None else _layout(traced._grad)}"
    )

    def explain(args):
        now = _evaluate(expr, args)
        if not isinstance(now, Tensor):
            return f"traced with a tapegrad Tensor, now a {type(now).__name__}"
        return (
            f"traced with {was}; now requires_grad={now._requires_grad}, "
            f"{'a leaf' if now._node is None else 'the output of ' + now._node.describe()}, "
            f"grad {'None' if now._grad is None else _layout(now._grad)}"
        )

    return explain


def _explain_simple(expr, traced, what):
    def explain(args):
        return f"traced with {_short(traced)}, now {_short(_evaluate(expr, args))}"

    return explain


def _short(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor {_layout(value)}"
    text = repr(value)
    return text if len(text) < 60 else f"a {type(value).__name__}"


def _explain_entry(entry, s0, plan):
    """What changed in a container, for a failed check. Keeps no value the step replaces
    (an old .grad, an old output): only the container, the stable values, and descriptions."""
    obj, kind, owner = entry.obj, entry.kind, entry.owner
    keys = list(entry.keys)
    expected = []
    for k, v in entry.items():
        path = _item(entry, k, s0)
        if plan.is_unstable(entry, k):
            expected.append((k, path, False, v.cls if type(v) is st.TRef else type(v), None))
        else:
            v = st.unwrap(v)  # stable: alive in its place anyway
            expected.append((k, path, True, type(v), v))

    def explain(args):
        now_keys, now_values = st.read_items(obj, kind, owner)
        now = {key_of(k): st.unwrap(v) for k, v in zip(now_keys, now_values)}
        found = []
        if kind in (st.DICT, st.OBJECT, st.LIST) and len(now_keys) != len(keys):
            known = {key_of(j) for j in keys}
            added = [k for k in now_keys if key_of(k) not in known]
            removed = [k for k in keys if key_of(k) not in now]
            if added:
                found.append(f"new entries {', '.join(map(repr, added[:3]))}")
            if removed:
                found.append(f"entries gone: {', '.join(map(repr, removed[:3]))}")
        for k, path, stable, cls, value in expected:
            current = now.get(key_of(k))
            if not stable:
                if (cls is type(None)) != (current is None) or (
                    cls is not type(None) and type(current) is not cls
                ):
                    found.append(f"{path} was a {cls.__name__} when traced, now {_short(current)}")
            elif not (
                value is current
                or (st.is_plain(value) and type(value) is type(current) and value == current)
            ):
                found.append(
                    f"{path} was {_short(value)} when traced, now {_short(current)}"
                    + (" (another object)" if not st.is_plain(value) else "")
                )
        return "; ".join(found[:4])

    return explain


def _item(entry, key, s0) -> str:
    base = s0.names.get(id(entry.obj)) or "?"
    return st._step(base, entry, key, s0) if entry.kind != st.GLOBALS else str(key)
