"""Code generation: the trace as one straight-line Python function, one line per kernel.

    def train_step(x, t):
        x = x._data                                        # the arguments' torch tensors
        y0 = F.linear(x, model_0_weight, model_0_bias)     # [0] LinearFunction  model.0
        ...                                                # forward: the tape, in order
        S['model.0.weight']._grad = None                   # what zero_grad() writes, here
        dy8 = torch.ones_like(y8)                          # the sweep's seed, dL/dL = 1
        dy7 = aten.mse_loss_backward(dy8, y7, t, 1)        # [8] MSEFunction backward
        del dy8                                            # (a value's last use: it goes)
        ...                                                # backward: the tape in reverse
        S['model.0.weight']._grad = grad_model_0_weight    # the sweep's end: each .grad
        torch._fused_sgd_([...], [...], [...], lr=0.05, ...)   # update: SGD.step
        return out

Names say what a value is: ``yI`` is the output of tape node I, ``dyI`` the gradient
that node I's derivative receives (dL/dyI), ``grad_P`` what ends in parameter P's
``.grad``; other temporaries are ``gI_k`` (inside node I's derivative) and the like.
Tensors of the model and the optimizer are constants named after where they live
(``model_0_weight`` is ``model[0].weight.data``); ``S[name]`` holds the Python objects
whose state the step writes. Each value is deleted after its last use, so memory is
freed where eager frees it (or earlier).
"""

from __future__ import annotations

import os
import types

import torch
from torch.nn import functional as F

from .. import _kernels
from ..tape import Node
from ..tensor import Tensor
from . import state as st
from .ir import Bump, CompileError, Effects, Kernel, Opaque, Val, Wrapped, _vals_in, func_name
from .names import callable_names, identifier, literal, tensor_method
from .plan import diff


class Stmt:
    __slots__ = ("code", "comment", "defs", "uses", "section")

    def __init__(self, code, comment, defs, uses, section):
        self.code, self.comment, self.defs, self.uses = code, comment, defs, uses
        self.section = section


SECTIONS = {
    "inputs": "# the arguments' torch tensors",
    "forward": "# forward: the tape, one line per kernel of each op",
    "backward": "# backward: the sweep, the tape in reverse",
    "update": "# update: {label}",
    "user": "# your code",
    "effects": "# the Python state the step leaves, as eager leaves it",
    "state": "# the Python state written so far, as eager writes it",
    "wrote": "# {label}: the Python state it writes",
    "versions": "# version counters, bumped as eager bumps them (outside any kernel)",
}


def _new_ctx(op, needs, index, shape, dtype):
    """A fresh ctx (a Node) for one call of a user op's own forward and backward."""
    ctx = Node(op)
    ctx.needs_input_grad = needs
    ctx.index, ctx.shape, ctx.dtype = index, shape, dtype
    return ctx


def _leaf(cls, data, requires_grad):
    """A new leaf tapegrad tensor of class `cls` (a Parameter made inside the step)."""
    t = object.__new__(cls)
    t._data, t._requires_grad, t._grad, t._node, t._tape, t._gathered = (
        data,
        requires_grad,
        None,
        None,
        None,
        None,
    )
    return t


class Codegen:
    """Turns a `Plan` into source text and a function. See the module docstring."""

    def __init__(self, plan, name, params, fn_label):
        self.plan = plan
        self.tracer = plan.tracer
        self.name = name
        self.params = list(params)
        self.fn_label = fn_label
        self.taken = set(self.params) | {
            "S",
            "torch",
            "F",
            "aten",
            "_wrap",
            "_leaf",
            "_new_ctx",
            "bump_versions",
        }
        self.S = {}
        self.aten = types.SimpleNamespace()
        self.aten_names = {}
        self.ns = {
            "torch": torch,
            "F": F,
            "aten": self.aten,
            "S": self.S,
            "_wrap": Tensor._wrap,
            "_leaf": _leaf,
            "_new_ctx": _new_ctx,
            "bump_versions": _kernels.bump_versions,
        }
        self.ref = {}  # id(object) -> the name or expression that holds it
        self.temps = set()  # names the code defines
        self.stmts = []
        self.used_reads = set()  # ids of tensors read from written places (guards check them)
        self.used_objects = set()  # ids of state objects the code uses (guards check their paths)
        self.kernels = 0
        self.counter = {}
        self._prefer()

    # --- names ---------------------------------------------------------------------
    def _prefer(self):
        """Names by role: grad_P for a parameter's new .grad, dyI, yI (see the module docstring)."""
        plan, tracer = self.plan, self.tracer
        prefer = {}
        for event in tracer.events:
            if isinstance(event, Effects):
                for change in diff(event.before, event.after):
                    entry = change.entry
                    if (
                        entry.kind == st.SLOTS
                        and change.key == "_grad"
                        and type(change.new) is st.TRef
                    ):
                        v = tracer.known(change.new.get())
                        if v is not None:
                            prefer.setdefault(v, "grad_" + _bare(plan.name(entry.obj)))
        for event in tracer.events:
            where = getattr(event, "where", None)
            if where is None:
                continue
            if (
                where.phase == "backward"
                and _index(where.node) is not None
                and isinstance(where.grad, Val)
            ):
                prefer.setdefault(where.grad, f"dy{where.node.index}")
            if (
                isinstance(event, Opaque)
                and event.kind == "backward"
                and len(event.args) > 1
                and isinstance(event.args[1], Val)
            ):
                prefer.setdefault(event.args[1], f"dy{event.ctx.index}")
        for info in tracer.node_infos:
            if info.index is not None and info.out is not None:
                prefer.setdefault(info.out, f"y{info.index}")
        self.prefer = prefer

    def fresh(self, hint) -> str:
        return identifier(hint, self.taken)

    def name_for(self, val, where) -> str:
        preferred = self.prefer.get(val)
        if preferred is not None and preferred not in self.taken:
            self.taken.add(preferred)
            return preferred
        if where is None:
            hint = "v"
        elif where.phase == "forward" and _index(where.node) is not None:
            hint = f"y{where.node.index}_"
        elif where.phase == "backward" and _index(where.node) is not None:
            hint = f"g{where.node.index}_"
        else:
            hint = {"seed": "seed", "commit": "grad", "update": "u", "user": "v"}.get(
                where.phase, "v"
            )
        n = self.counter.get(hint, 0) + 1
        while True:
            name = (
                f"{hint}{n}"
                if hint.endswith("_") or hint in ("u", "v")
                else (hint if n == 1 else f"{hint}_{n}")
            )
            if name not in self.taken:
                break
            n += 1
        self.counter[hint] = n
        self.taken.add(name)
        return name

    def state_name(self, obj) -> str:
        """'S[...]' for a stable Python object the effects write into."""
        self.used_objects.add(id(obj))
        key = self.plan.name(obj)
        while key in self.S and self.S[key] is not obj:
            key += "'"
        self.S[key] = obj
        return f"S[{key!r}]"

    # --- expressions ---------------------------------------------------------------
    def expr(self, value, uses) -> str:
        """Source for an argument of a call (a tensor, a number, a list of tensors...)."""
        if isinstance(value, Val):
            return self.tensor(value, uses)
        text = literal(value)
        if text is not None:
            return text
        if type(value) in (list, tuple):
            items = [self.expr(v, uses) for v in value]
            if type(value) is list:
                return "[" + ", ".join(items) + "]"
            return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
        known = self.ref.get(id(value))
        if known is not None:
            if known in self.temps:
                uses.add(known)
            return known
        if isinstance(value, Tensor) and id(value) in self.plan.runtime:
            return self.plan.runtime[id(value)]
        if id(value) in self.plan.stable:
            return self.state_name(value)
        if (
            isinstance(value, (torch.device, torch.Size, torch.Generator))
            or type(value).__module__.split(".")[0] == "torch"
        ):
            name = self.fresh(type(value).__name__.lower())
            self.ns[name] = value
            self.ref[id(value)] = name
            return name
        raise CompileError(
            f"tapegrad.compile({self.fn_label}): a torch call in the step takes a "
            f"{type(value).__name__} that Python code made while the step ran (not a tensor, "
            "a number, or state the compiler can guard); the compiled code could not make it "
            "again. Pass it to the step as an argument, or make it with torch inside the step"
        )

    def tensor(self, v: Val, uses) -> str:
        """The name of a value: defined by an earlier line, a constant, or an error."""
        known = self.ref.get(v)
        if known is not None:
            if known in self.temps:
                uses.add(known)
            return known
        plan = self.plan
        if v.kind == "state" and v.id in plan.state_tensors:
            self.used_objects.add(v.id)
            t, path = plan.state_tensors[v.id]
            name = self.fresh(path or "state")
            self.ns[name] = t
            self.ref[v] = name
            return name
        if v.kind == "shadow":
            raise CompileError(
                f"tapegrad.compile({self.fn_label}): a tensor made inside {v.label} (which the "
                "compiled code calls as it is) is used outside it without being returned by it; "
                "the compiled code has no way to get it. Return it from that call, or keep the "
                "step uncompiled"
            )
        if v.kind == "state":  # in the state at the start, but not held by a stable place
            raise CompileError(
                f"tapegrad.compile({self.fn_label}): the step reads a tensor ({_layout(v)}, "
                f"{plan.s0.names.get(v.id) or 'in the state'}) that it also replaces; the "
                "compiled code cannot tell where to read it next time. Keep the step eager"
            )
        if v.obj is None:
            raise AssertionError(f"{v} used before the line that makes it")
        # Made before the step, and not reachable from it: from an iterator, a closure of a
        # library function, an object of a library class. Kept as a constant, it could be
        # the wrong tensor next time (the next batch of an iterator): refused.
        raise CompileError(
            f"tapegrad.compile({self.fn_label}): the step reads a tensor ({_layout(v)}) that is "
            "neither an argument nor state the compiler can reach from the step (its closure, "
            "globals, modules, optimizers and your own objects): one from an iterator, or held "
            "by an object of a library class. The compiled code could not tell if it is the "
            "same next time: pass it to the step as an argument"
        )

    # --- statements ------------------------------------------------------------------
    def emit(self, code, comment, defs=(), uses=(), section="user"):
        self.stmts.append(Stmt(code, comment, set(defs), set(uses), section))
        self.temps.update(defs)

    def define(self, val, where) -> str:
        name = self.name_for(val, where)
        self.ref[val] = name
        return name

    def generate(self):
        self._inputs()
        for event in self.tracer.events:
            if isinstance(event, Kernel):
                self._kernel(event)
            elif isinstance(event, Opaque):
                self._opaque(event)
            elif isinstance(event, Bump):
                self._bump(event)
            elif isinstance(event, Effects):
                self._effects(event)
        uses = set()
        out = self.template(self.tracer.out, uses, section="effects")
        return self._source(out, uses)

    def _inputs(self):
        used = set()
        for event in self.tracer.events:
            if isinstance(event, (Kernel, Opaque, Bump)):
                used.update(
                    _vals_in(
                        (
                            getattr(event, "args", None),
                            getattr(event, "kwargs", None),
                            getattr(event, "tensors", None),
                        )
                    )
                )
        needs_object = self._arguments_written()
        plan = self.plan
        for v in sorted(used, key=lambda v: v.n):
            if v.kind == "input":
                expr = plan.inputs.get(v.id)
                if expr is None:
                    continue
                root = expr.split(".")[0].split("[")[0]
                if expr == f"{root}._data" and root not in needs_object:
                    name = root  # x = x._data: the wrapper is not needed again
                else:
                    name = self.fresh(expr.replace("._", "_"))  # t_data = t._data
                self.emit(f"{name} = {expr}", "", defs=[name], section="inputs")
                self.ref[v] = name
            elif v.kind == "state" and v.id in plan.read_tensors:
                _, entry, key, path = plan.read_tensors[v.id]
                name = self.fresh(path or "read")
                self.emit(
                    f"{name} = {self.place(entry, key, set())}",
                    "written by the step, so read afresh",
                    defs=[name],
                    section="inputs",
                )
                self.ref[v] = name
                self.used_reads.add(v.id)
                self.used_objects.add(id(entry.obj))

    def _arguments_written(self) -> set:
        """Arguments whose own object (not only their tensor) the code needs later."""
        roots = set()
        runtime = self.plan.runtime
        for event in self.tracer.events:
            if isinstance(event, Effects):
                for change in diff(event.before, event.after):
                    for obj in [change.entry.obj] + _objects_in(change.new):
                        expr = runtime.get(id(obj))
                        if expr is not None:
                            roots.add(expr.split(".")[0].split("[")[0])
        for obj in _objects_in(self.tracer.out):
            expr = runtime.get(id(obj))
            if expr is not None:
                roots.add(expr.split(".")[0].split("[")[0])
        return roots

    def _kernel(self, event):
        uses = set()
        func, args, kwargs, out = event.func, event.args, event.kwargs, event.out
        where = event.where
        self.kernels += 1
        name = func_name(func)
        method = tensor_method(func)
        fname = getattr(func, "__name__", "")
        if fname in ("__get__", "__set__"):
            target = self.expr(args[0], uses)
            if fname == "__get__":
                call = f"{target}.{name}"
            else:
                self.emit(
                    f"{target}.{name} = {self.expr(args[1], uses)}",
                    self.comment(where),
                    uses=uses,
                    section=_section(where),
                )
                return
        elif method == "__setitem__":
            self.emit(
                f"{self.expr(args[0], uses)}[{self._index(args[1], uses)}] = "
                f"{self.expr(args[2], uses)}",
                self.comment(where),
                uses=uses,
                section=_section(where),
            )
            return
        elif method == "__getitem__":
            call = f"{self.expr(args[0], uses)}[{self._index(args[1], uses)}]"
        else:
            parts = []
            if method is not None and args and isinstance(args[0], Val):
                head = f"{self.expr(args[0], uses)}.{method}"
                rest = args[1:]
            else:
                head = self._function(func)
                rest = args
            parts = [self.expr(a, uses) for a in rest]
            parts += [f"{k}={self.expr(v, uses)}" for k, v in kwargs.items()]
            call = f"{head}({', '.join(parts)})"
        self._assign(call, out, where, uses)

    def _index(self, index, uses) -> str:
        if type(index) is tuple and index:
            return ", ".join(self._index_item(i, uses) for i in index)
        return self._index_item(index, uses)

    def _index_item(self, item, uses) -> str:
        if type(item) is slice:
            parts = ["" if v is None else self.expr(v, uses) for v in (item.start, item.stop)]
            text = f"{parts[0]}:{parts[1]}"
            return text + (f":{self.expr(item.step, uses)}" if item.step is not None else "")
        return self.expr(item, uses)

    def _function(self, func) -> str:
        packet = getattr(func, "overloadpacket", None)
        if packet is not None and hasattr(func, "_overloadname"):
            # torch.ops.<namespace>.<op>.<overload>, bound once: `aten.mse_loss` is the
            # overload's own entry (OpOverload.__call__ only forwards to it), so a call costs
            # no attribute chain and no Python frame.
            namespace = getattr(func, "namespace", "aten")
            name = packet.__name__.split("::")[-1]
            if func._overloadname != "default":
                name += "_" + func._overloadname
            if namespace != "aten":
                name = f"{namespace}_{name}"
            setattr(self.aten, name, getattr(func, "_op", func))
            self.aten_names[name] = (
                f"torch.ops.{namespace}.{packet.__name__.split('::')[-1]}.{func._overloadname}"
            )
            return f"aten.{name}"
        known = callable_names().get(id(func))
        if known is not None:
            return known
        name = self.fresh(f"fn_{getattr(func, '__name__', 'call')}")
        self.ns[name] = func
        return name

    def _assign(self, call, out, where, uses, comment=None):
        section = _section(where)
        comment = self.comment(where) if comment is None else comment
        if out is None or (isinstance(out, Val) and out in self.ref):
            self.emit(call, comment, uses=uses, section=section)
            return
        if isinstance(out, Val):
            name = self.define(out, where)
            self.emit(f"{name} = {call}", comment, defs=[name], uses=uses, section=section)
            return
        flat = list(out) if isinstance(out, (tuple, list)) else None
        if flat and all(isinstance(v, Val) for v in flat):
            names = ["_" if v in self.ref else self.define(v, where) for v in flat]
            defs = [n for n in names if n != "_"]
            target = ", ".join(names) + ("," if len(names) == 1 else "")
            self.emit(f"{target} = {call}", comment, defs=defs, uses=uses, section=section)
            return
        holder = self.fresh("result")
        self.emit(f"{holder} = {call}", comment, defs=[holder], uses=uses, section=section)
        self._unpack(holder, out, where, section)

    def _unpack(self, holder, out, where, section, path=""):
        """Bind every tensor inside a call's result (tuples, lists, tapegrad Tensors) to a name."""
        if isinstance(out, Val):
            if out not in self.ref:
                name = self.define(out, where)
                self.emit(
                    f"{name} = {holder}{path}", "", defs=[name], uses=[holder], section=section
                )
        elif isinstance(out, Wrapped):
            self._unpack(holder, out.val, where, section, path + "._data")
        elif isinstance(out, (tuple, list)):
            for i, item in enumerate(out):
                self._unpack(holder, item, where, section, f"{path}[{i}]")

    def _opaque(self, event):
        uses = set()
        where = event.where
        section = _section(where)
        if event.kind in ("forward", "backward"):
            op = event.op
            op_name = self.ref.get(id(op))
            if op_name is None:
                op_name = self.ref[id(op)] = self.fresh(op.__name__)
                self.ns[op_name] = op
            ctx = event.ctx
            index = getattr(ctx, "index", None)
            if event.kind == "forward":
                ctx_name = self.fresh(f"ctx{index}")
                self.ref[id(ctx)] = ctx_name
                needs = tuple(ctx.needs_input_grad)
                self.emit(
                    f"{ctx_name} = _new_ctx({op_name}, {needs!r}, {index!r}, "
                    f"{self.expr(getattr(ctx, 'shape', None), uses)}, "
                    f"{self.expr(getattr(ctx, 'dtype', None), uses)})",
                    f"[{index}] {op.__name__}: a fresh ctx for its own forward and backward",
                    defs=[ctx_name],
                    uses=uses,
                    section=section,
                )
                uses = set()
            ctx_expr = self.expr(ctx, uses)
            parts = [ctx_expr] + [self.expr(a, uses) for a in event.args[1:]]
            call = f"{op_name}.{event.kind}({', '.join(parts)})"
            comment = f"[{index}] {op.__name__}.{event.kind}: your op's own code, called as is"
        else:
            owner = event.call.__self__
            target = (
                self.state_name(owner) if id(owner) in self.plan.stable else self.expr(owner, uses)
            )
            parts = [self.expr(a, uses) for a in event.args]
            call = f"{target}.{event.call.__func__.__name__}({', '.join(parts)})"
            comment = f"{event.label}: called as is (it keeps Python numbers of its own)"
        out = event.out
        if not _vals_in(out):
            self.emit(call, comment, uses=uses, section=section)
            return
        if isinstance(out, Val):
            self._assign(call, out, where, uses, comment)
            return
        holder = self.fresh(f"r{getattr(event.ctx, 'index', '')}")
        self.emit(f"{holder} = {call}", comment, defs=[holder], uses=uses, section=section)
        self._unpack(holder, out, where, section)

    def _bump(self, event):
        uses = set()
        tensors = "[" + ", ".join(self.tensor(t, uses) for t in event.tensors) + "]"
        for _ in range(event.times):
            self.emit(
                f"bump_versions({tensors})",
                f"as {event.where.label or 'eager'} does: counters bumped outside a kernel",
                uses=uses,
                section=_section(event.where),
            )

    # --- Python state ---------------------------------------------------------------
    def place(self, entry, key, uses) -> str:
        """Source for the place `key` of container `entry` (for reading or assigning)."""
        obj = entry.obj
        runtime = self.plan.runtime.get(id(obj))
        base = runtime if runtime is not None else self.state_name(obj)
        kind = entry.kind
        if kind == st.SLOTS:
            return f"{base}.{key}"
        if kind == st.OBJECT:
            return f"{base}.__dict__[{self.key(key)}]"
        if kind == st.CELL:
            return f"{base}.cell_contents"
        return f"{base}[{self.key(key)}]"

    def key(self, key) -> str:
        objects = self.plan.s0.objects
        if (
            type(key) is int
            and key in objects
            and type(objects[key]) is not st.TRef
            and id(objects[key]) == key
            and key in self.plan.stable
        ):
            return f"id({self.state_name(objects[key])})"
        if id(key) in self.plan.stable and self.plan.stable[id(key)] is key:
            return self.state_name(key)  # an object as a key (optimizer.state[param])
        text = literal(key)
        if text is None:
            raise CompileError(
                f"tapegrad.compile({self.fn_label}): the step writes a dict entry "
                f"with a {type(key).__name__} key, which compiled code can't name"
            )
        return text

    def _effects(self, event):
        changes = diff(event.before, event.after)
        section = (
            "effects"
            if event.label == "end"
            else "state"
            if event.label is None
            else f"wrote:{event.label}"
        )
        for change in changes:
            entry = change.entry
            obj = entry.obj
            if id(obj) not in self.plan.stable and id(obj) not in self.plan.runtime:
                continue  # a container no longer reachable from the state at the start
            if entry.kind == st.SLOTS and change.key == "_node":
                raise CompileError(
                    f"tapegrad.compile({self.fn_label}): the step recorded an in-place op on "
                    f"{self.plan.name(obj)}, a tensor from outside the step, which makes it the "
                    "output of a tape node; a compiled step keeps no tape. Apply in-place "
                    "changes to state under tapegrad.no_grad(), or to .data"
                )
            uses = set()
            if change.action == "list":
                items = [self.template(v, uses, section) for v in change.new]
                target = self.place(entry, 0, uses).rsplit("[", 1)[0]
                self.emit(f"{target}[:] = [{', '.join(items)}]", "", uses=uses, section=section)
            elif change.action == "del":
                self.emit(
                    f"del {self.place(entry, change.key, uses)}", "", uses=uses, section=section
                )
            else:
                value = self.template(change.new, uses, section)
                self.emit(
                    f"{self.place(entry, change.key, uses)} = {value}",
                    "",
                    uses=uses,
                    section=section,
                )

    def template(self, value, uses, section) -> str:
        """Source that gives `value` (a result, or what the step stored) at replay."""
        if type(value) is st.TRef:
            value = value.get()  # (what the step stored is alive: it is stored)
        if isinstance(value, torch.Tensor):
            v = self.tracer.known(value)
            if v is None:
                raise CompileError(
                    f"tapegrad.compile({self.fn_label}): the step leaves a tensor "
                    f"({_layout(value)}) in its state or result that no torch call it made "
                    "returned (made inside a call the compiled code makes as is?); the compiled "
                    "code has no way to get it"
                )
            return self.tensor(v, uses)
        text = literal(value)
        if text is not None:
            return text
        known = self.ref.get(id(value))
        if known is not None:
            if known in self.temps:
                uses.add(known)
            return known
        if id(value) in self.plan.runtime and isinstance(value, Tensor):
            return self.plan.runtime[id(value)]
        if id(value) in self.plan.stable:
            return self.state_name(value)
        if isinstance(value, Tensor):
            inner: set = set()
            data = self.template(value._data, inner, section)
            name = self.fresh("out")
            if value._node is None and value._requires_grad:
                cls = self.fresh(type(value).__name__)
                self.ns[cls] = type(value)
                code = f"{name} = _leaf({cls}, {data}, True)"
            else:
                code = f"{name} = _wrap({data})"
            self.emit(code, "", defs=[name], uses=inner, section=section)
            if value._grad is not None and value._node is None:
                g = self.template(value._grad, inner2 := set[str](), section)
                self.emit(f"{name}._grad = {g}", "", uses=inner2 | {name}, section=section)
            self.ref[id(value)] = name
            uses.add(name)
            return name
        if type(value) in (list, tuple, dict):
            inner = set()
            if type(value) is dict:
                body = (
                    "{"
                    + ", ".join(
                        f"{self.key(k)}: {self.template(v, inner, section)}"
                        for k, v in value.items()
                    )
                    + "}"
                )
            else:
                items = [self.template(v, inner, section) for v in value]
                body = (
                    "[" + ", ".join(items) + "]"
                    if type(value) is list
                    else "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
                )
            if type(value) is tuple:
                uses.update(inner)
                return body
            name = self.fresh(f"new_{type(value).__name__}")
            self.emit(f"{name} = {body}", "", defs=[name], uses=inner, section=section)
            self.ref[id(value)] = name
            uses.add(name)
            return name
        if isinstance(value, Node):
            raise CompileError(
                f"tapegrad.compile({self.fn_label}): the step keeps a tape node "
                f"({value.describe()}) in its state or result; a compiled step "
                "makes no tape"
            )
        if value is self.tracer.out or id(value) in self.plan.s0.objects:
            name = self.fresh(type(value).__name__.lower())
            self.ns[name] = value
            return name
        raise CompileError(
            f"tapegrad.compile({self.fn_label}): the step leaves a new "
            f"{type(value).__name__} (made by its Python code) in its state or result; "
            "compiled code repeats only torch kernels and stores of tensors, numbers, "
            "tapegrad tensors, dicts, lists and tuples"
        )

    # --- source --------------------------------------------------------------------
    def comment(self, where) -> str:
        if where is None:
            return ""
        node = where.node
        if where.phase == "forward" and node is not None:
            module = self.plan.s0.names.get(id(where.module)) if where.module is not None else None
            if _index(node) is None:
                return f"{node.op.__name__} (not recorded)" + (f"  {module}" if module else "")
            return f"[{node.index}] {node.op.__name__}" + (f"  {module}" if module else "")
        if where.phase == "backward" and node is not None:
            return f"[{node.index}] {node.op.__name__} backward"
        if where.phase == "seed":
            return "the sweep's seed: dL/dL = 1"
        if where.phase == "commit":
            return "the sweep's end: each leaf's .grad"
        if where.phase == "update":
            return where.label or "update"
        if where.user is not None:
            filename, line, function = where.user
            return f"{os.path.basename(filename)}:{line}"
        return ""

    def _source(self, out, out_uses) -> str:
        stmts = self.stmts
        last: dict = {}
        for i, s in enumerate(stmts):
            for n in s.defs:
                last.setdefault(n, i)
            for n in s.uses:
                last[n] = i
        keep = set(out_uses) | {n for n in out_uses}
        frees: dict = {}
        for n, i in last.items():
            if n in keep or n in self.params and n not in self.temps:
                continue
            frees.setdefault(i, []).append(n)
        lines = []
        section = None
        width = 56
        for i, s in enumerate(stmts):
            key = s.section
            if key != section and s.section != "inputs-cont":
                header = SECTIONS.get(key.split(":")[0])
                if header:
                    label = key.split(":", 1)[1] if ":" in key else ""
                    lines.append("    " + header.format(label=label))
                section = key
            code = "    " + s.code
            if s.comment:
                code = (
                    code.ljust(width) + "  # " + s.comment
                    if len(code) < width
                    else code + "  # " + s.comment
                )
            lines.append(code)
            gone = sorted(frees.get(i, ()), key=lambda n: stmts[last[n]].code)
            if gone:
                lines.append("    del " + ", ".join(gone))
        doc = self._docstring()
        body = "\n".join(lines)
        return f"def {self.name}({', '.join(self.params)}):\n{doc}\n{body}\n    return {out}\n"

    def _docstring(self) -> str:
        lines = [f'    """{self.fn_label}, compiled by tapegrad.compile: {self.kernels} kernels.']
        if self.aten_names:
            lines.append("")
            lines.append(
                "    aten.X is torch.ops.aten.X.default; S[name] the objects whose state it writes."
            )
        lines.append('    """')
        return "\n".join(lines)


def _index(node):
    """A node's tape index; None for an op that ran without recording (under no_grad)."""
    return getattr(node, "index", None)


def _section(where) -> str:
    if where is None:
        return "user"
    phase = where.phase
    if phase in ("seed", "commit", "backward"):
        return "backward"
    if phase == "update":
        return f"update:{where.label}"
    return phase


def _bare(path: str) -> str:
    return identifier(path, set())


def _layout(t) -> str:
    return f"{str(t.dtype).replace('torch.', '')} {tuple(t.shape)}"  # a tensor or a Val


def _objects_in(value, found=None):
    found = [] if found is None else found
    found.append(value)
    if type(value) in (tuple, list):
        for v in value:
            _objects_in(v, found)
    elif type(value) is dict:
        for v in value.values():
            _objects_in(v, found)
    return found


def build(plan, name, params, fn_label):
    """(source, function, codegen) for a finished plan."""
    gen = Codegen(plan, name, params, fn_label)
    source = gen.generate()
    code = compile(source, f"<tapegrad.compile {fn_label}>", "exec")
    exec(code, gen.ns)
    return source, gen.ns[name], gen
