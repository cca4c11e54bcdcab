"""Tracing: run the step once, eagerly, and write down every kernel it calls.

    snapshot the state fn can reach                          (state.py)
    with a TorchFunctionMode and a profile function on:
        out = fn(*args)
            every torch call  -> a Kernel(func, args, kwargs, out, where)
                                 (shape and dtype queries are only noted; a call
                                 that reads tensor *values* into Python, like
                                 .item(), is control flow the trace can't see)
            a user op's forward/backward, an optimizer step that keeps Python
            numbers (Adam's step count) -> one Opaque call, made as is at replay
            hooks, create_graph -> refused, by name
    snapshot again: what changed is what fn wrote (the effects)

Two streams are watched. The torch function mode (`torch.overrides`: not torch
autograd) sees each call into torch with its arguments and results, in order.
The profile function (`sys.setprofile`) sees Python calls, so it knows where an
op's own `forward` begins and ends, and when an optimizer method runs. Where a
kernel came from (which tape node, the sweep, the optimizer, your code) is read
off the Python stack, for the comments of the generated code.

The trace holds no tensor the step made: each is a `Val` (a variable of the
Wengert list: a number, a shape, a dtype) and the trace keeps only a weak
reference to it, so tracing needs no more memory than the eager step. Tensors
of the arguments and of the state stay alive anyway; they are held.

Version counters: torch bumps a tensor's version in every in-place kernel, and
the replay runs the same kernels. A bump made outside any kernel (tapegrad's fused
SGD step bumps the parameters' counters after the kernel) is noticed by reading
the versions around each kernel, and recorded as a `Bump` to repeat.
"""

from __future__ import annotations

import dis
import sys
import weakref

import torch
from torch.overrides import TorchFunctionMode

from .. import hooks, sweep
from ..function import Function
from ..nn.container import Sequential
from ..nn.module import Module
from ..optim.lr_scheduler import LRScheduler
from ..optim.optimizer import Optimizer
from ..tape import Node
from ..tensor import Tensor
from . import state as st
from .ir import (
    METADATA,
    VALUE_SHAPED,
    Bump,
    CompileError,
    Effects,
    Kernel,
    NodeInfo,
    Opaque,
    Val,
    ValueRead,
    Where,
    Wrapped,
    _vals_in,
    contains_tensor,
    func_name,
    tensors_in,
)

# Code objects the tracer recognises on the stack.
APPLY_CODE = Function.__dict__["apply"].__func__.__code__
SWEEP_CODE = sweep._sweep.__code__
SWEEP_GRAPH_CODES = {sweep._sweep_graph.__code__, sweep._traced_backward.__code__}
SEED_CODE = sweep._seed.__code__
COMMIT_CODES = {sweep._commit.__code__, sweep._own_leaf_grads.__code__}
HOOK_CODE = hooks.run.__code__
MODULE_CALL_CODE = Module.__call__.__code__
SEQUENTIAL_CODE = Sequential.forward.__code__  # runs layers without hooks without their call
BACKWARD_CODES = {sweep.backward.__code__, sweep.backward_root.__code__}
RETAIN_CODE = Tensor.retain_grad.__code__


def _first_argument(frame):
    """The first argument of the function running in `frame` (None if it takes none)."""
    code = frame.f_code
    local = frame.f_locals
    if code.co_argcount:
        return local.get(code.co_varnames[0])
    if code.co_flags & 0x04:  # CO_VARARGS: f(*args)
        extra = local.get(code.co_varnames[code.co_argcount + code.co_kwonlyargcount])
        return extra[0] if extra else None
    return None


def _call_arguments(frame) -> tuple:
    """The positional arguments the function running in `frame` was called with."""
    code = frame.f_code
    local = frame.f_locals
    args = [local.get(n) for n in code.co_varnames[: code.co_argcount]]
    if code.co_flags & 0x04:
        args.extend(local.get(code.co_varnames[code.co_argcount + code.co_kwonlyargcount], ()))
    return tuple(args)


def _builtin_op(op) -> bool:
    return getattr(op, "__module__", "").startswith("tapegrad.")


class _Region:
    """An open Python call that may become (or is) an Opaque call."""

    __slots__ = (
        "kind",
        "frame",
        "call",
        "label",
        "args",
        "op",
        "ctx",
        "start",
        "before",
        "opaque",
        "value_read",
        "where",
        "owner",
        "first_val",
    )

    def __init__(
        self,
        kind,
        frame,
        call,
        label,
        args,
        start,
        before,
        opaque,
        where,
        op=None,
        ctx=None,
        owner=None,
    ):
        self.kind, self.frame, self.call, self.label, self.args = kind, frame, call, label, args
        self.start, self.before, self.opaque, self.where = start, before, opaque, where
        self.op, self.ctx, self.owner = op, ctx, owner
        self.value_read = None


class Tracer(TorchFunctionMode):
    """Runs `fn` once and records it (see the module docstring). Use `run()`."""

    def __init__(self, fn, args, walker, on_value_read: str = "error", name: str = "fn"):
        super().__init__()
        self.fn, self.call_args, self.walker = fn, args, walker
        self.on_value_read = on_value_read
        self.name = name
        self.events: list = []
        self.active = False
        self.opaque_depth = 0  # > 0 while a call we replay as is runs
        self.regions: list = []  # open _Region stack
        self.table: dict = {}  # id(tensor) -> (weak reference or None, Val)
        self.count = 0
        self.value_shaped: set = set()  # Val numbers whose shape depends on tensor values
        self.nodes: dict = {}  # id(node) -> NodeInfo (while the id is the node's)
        self.node_infos: list = []  # every NodeInfo made
        self.open_nodes: dict = {}  # id(ctx) -> ctx whose forward may still run
        self.watch: list = []  # [weak ref or None, tensor or None, version seen]
        self.value_read = None  # (description, where) of the first value read
        self.root_frame = None
        self.profile_fn = None
        # code -> what a call of it means: True (an optimizer method), False (nothing),
        # 'hook' / 'graph' (refused); absent: not yet looked at
        self.code_kinds = {
            HOOK_CODE: "hook",
            RETAIN_CODE: "retain",
            **{c: "backward" for c in BACKWARD_CODES},
            **{c: "graph" for c in SWEEP_GRAPH_CODES},
        }
        self.regions_done: list = []  # [(snapshot before, after, region)] of each opaque call
        self.seen_owners: dict = {}  # id -> module or optimizer whose code ran

    # --- values ------------------------------------------------------------------------
    def val(self, t, kind="const", keep=True, label=None) -> Val:
        """The Val of tensor `t`: the one it already has, or a new one of `kind`."""
        entry = self.table.get(id(t))
        if entry is not None:
            ref, v = entry
            if (v.obj if ref is None else ref()) is t:
                return v
        self.count += 1
        v = Val(self.count, t, kind, keep, label)
        self.table[id(t)] = (None if keep else weakref.ref(t), v)
        self._watch(t, keep)
        return v

    def held_tensors(self) -> list:
        """The tensors the trace holds: the arguments', the state's, and constants."""
        return [v.obj for _, v in self.table.values() if v.obj is not None]

    def known(self, t):
        """The Val of `t` if the trace has one, else None."""
        entry = self.table.get(id(t))
        if entry is not None:
            ref, v = entry
            if (v.obj if ref is None else ref()) is t:
                return v
        return None

    def encode(self, value, new=None):
        """`value` with every tensor replaced by its Val (new ones of kind `new`, if given)."""
        if isinstance(value, torch.Tensor):
            if new is not None:
                v = self.known(value)
                return v if v is not None else self.val(value, new, keep=False, label=self._label())
            return self.val(value)
        cls = type(value)
        if cls is list or cls is tuple:
            return cls(self.encode(v, new) for v in value)
        if isinstance(value, tuple):  # a named tuple, torch.return_types.max(...)
            return tuple(self.encode(v, new) for v in value)
        if cls is dict:
            return {k: self.encode(v, new) for k, v in value.items()}
        if isinstance(value, Tensor):  # a tapegrad tensor (a user backward's result)
            return Wrapped(self.encode(value._data, new))
        return value

    def _label(self):
        return self.regions[-1].label if self.regions and self.opaque_depth else None

    # --- running ------------------------------------------------------------------
    def run(self):
        """Run fn eagerly under the recorders; return its result (the trace is in self)."""
        self.s0 = self.walker.snapshot()
        for _name, value in self.walker.roots[: self.walker.arg_count]:
            for t in _tensors_of_argument(value):
                self.val(t, "input")
        for t in self.s0.objects.values():
            t = st.unwrap(t)
            if isinstance(t, torch.Tensor):
                self.val(t, "state", keep=False)  # weakly: the step may free it (an old .grad)
        self.segment_start = self.s0
        previous = sys.getprofile()
        self.active = True
        try:
            with self:
                self.profile_fn = self._make_profile()
                sys.setprofile(self.profile_fn)
                try:
                    out = self._call_fn()
                finally:
                    self.profile_fn = None
                    _restore_profile(previous)
        finally:
            self.active = False
        self._finish_nodes(all_of_them=True)
        self._note_bumps(Where("user", label="after the step"))
        self.s_end = self.walker.snapshot(named=False)
        self.events.append(Effects(self.segment_start, self.s_end, "end"))
        self.out = out
        return out

    def _call_fn(self):
        self.root_frame = sys._getframe()
        return self.fn(*self.call_args)

    # --- the torch stream -------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        # The profile function is off while this runs: our own Python calls (and those of
        # torch functions written in Python) are not the step's.
        profile = self.profile_fn
        if profile is None:
            return self._torch_call(func, args, kwargs or {})
        sys.setprofile(None)
        try:
            return self._torch_call(func, args, kwargs or {})
        finally:
            if self.profile_fn is profile:
                sys.setprofile(profile)

    def _torch_call(self, func, args, kwargs):
        if not self.active:
            return func(*args, **kwargs)
        name = func_name(func)
        if name in METADATA:
            out = func(*args, **kwargs)
            if not contains_tensor(out):
                if self.value_shaped and any(
                    getattr(self.known(t), "n", None) in self.value_shaped for t in tensors_in(args)
                ):
                    self._value_read(
                        f"{name} of a tensor whose shape depends on tensor values", func
                    )
                return out
        if self.opaque_depth:
            out = func(*args, **kwargs)
            for t in tensors_in(out):
                if self.known(t) is None:
                    self.val(t, "shadow", keep=False, label=self.regions[-1].label)
            return out
        self._note_bumps(None)
        out = func(*args, **kwargs)
        if out is not None and not contains_tensor(out):
            self._value_read(f"{_describe_call(func)} returned a {type(out).__name__}", func)
            return out
        where = self._where()
        encoded_args, encoded_kwargs = self.encode(args), self.encode(kwargs)
        encoded_out = self.encode(out, new="temp")
        self.events.append(Kernel(func, encoded_args, encoded_kwargs, encoded_out, where))
        if (
            name in VALUE_SHAPED
            or (name == "__getitem__" and _has_tensor_index(args))
            or (
                self.value_shaped
                and any(v.n in self.value_shaped for v in _vals_in((encoded_args, encoded_kwargs)))
            )
        ):
            for v in _vals_in(encoded_out):
                self.value_shaped.add(v.n)
        self._refresh_versions()
        return out

    def _value_read(self, what, func):
        where = self._where()
        for region in self.regions:
            if region.kind == "method":
                region.value_read = region.value_read or what
                return
        if self.value_read is None:
            self.value_read = (what, where)
        if self.on_value_read == "error":
            raise ValueRead(_value_read_message(self.name, what, where))
        # 'retrace': this trace is discarded; let fn finish eagerly, recording nothing more.
        self.active = False
        self.profile_fn = None
        sys.setprofile(None)

    # --- version counters -------------------------------------------------------------
    def _watch(self, t, keep):
        self.watch.append([None if keep else weakref.ref(t), t if keep else None, t._version])

    def _refresh_versions(self):
        alive = []
        for entry in self.watch:
            t = entry[1] if entry[0] is None else entry[0]()
            if t is not None:
                entry[2] = t._version
                alive.append(entry)
        self.watch = alive

    def _note_bumps(self, where):
        """Record version bumps that happened since the last kernel (outside any kernel)."""
        changed = []
        for entry in self.watch:
            t = entry[1] if entry[0] is None else entry[0]()
            if t is None:
                continue
            now = t._version
            if now != entry[2]:
                changed.append((t, now - entry[2]))
                entry[2] = now
        if not changed:
            return
        # Views share their base's counter: bump each counter once.
        roots = {}
        for t, delta in changed:
            root = t._base if t._base is not None else t
            roots.setdefault(id(root), (t, delta))
        by_times = {}
        for t, delta in roots.values():
            if delta > 0:
                by_times.setdefault(delta, []).append(self.val(t))
        where = where or self._where()
        for times, vals in by_times.items():
            self.events.append(Bump(vals, times, where))

    # --- the Python stream --------------------------------------------------------------
    def _make_profile(self):
        """The profile function: a fast path for the (many) calls that need nothing."""
        regions = self.regions
        kinds = self.code_kinds
        apply_code, sweep_code = APPLY_CODE, SWEEP_CODE

        def profile(frame, event, arg):
            if event == "call":
                kind = kinds.get(frame.f_code)
                if kind is False:
                    caller = frame.f_back
                    if caller is None or (
                        caller.f_code is not apply_code and caller.f_code is not sweep_code
                    ):
                        return
                if self.active:
                    self.active = False  # torch calls made here (versions, snapshots) are ours
                    try:
                        self._on_call(frame, kind)
                    finally:
                        self.active = True
            elif event == "return":
                if regions and regions[-1].frame is frame and self.active:
                    self.active = False
                    try:
                        self._close(regions.pop(), arg)
                    finally:
                        self.active = True

        return profile

    def _on_call(self, frame, kind):
        code = frame.f_code
        if kind is None:  # first sight of this code: every code that ran is remembered
            owner = (
                frame.f_locals.get("self")
                if code.co_argcount > 0 and code.co_varnames[0] == "self"
                else None
            )
            kind = isinstance(owner, Optimizer)
            if isinstance(owner, LRScheduler) and code.co_name in ("step", "load_state_dict"):
                kind = "scheduler"
            self.code_kinds[code] = kind
        caller = frame.f_back
        if caller is not None and (caller.f_code is APPLY_CODE or caller.f_code is SWEEP_CODE):
            ctx = _first_argument(frame)
            if isinstance(ctx, Node):
                self._op_call(frame, code, ctx, caller.f_code is SWEEP_CODE)
                return
        if kind == "hook":
            self._refuse_hook(frame)
        elif kind == "scheduler":
            owner = type(frame.f_locals.get("self")).__name__
            self._refuse(
                f"{owner}.{code.co_name}()",
                "a learning-rate scheduler counts its steps in Python state that the "
                "compiled code would not advance (the learning rate would stay as traced); "
                "call scheduler.step() after the compiled step, outside it: a changed "
                "learning rate then traces the step again",
            )
        elif kind == "retain" and getattr(frame.f_locals.get("self"), "_node", None) is not None:
            self._refuse(
                "retain_grad()",
                "gradients of op outputs live on tape nodes, which a "
                "compiled step does not make; keep them in an eager step",
            )
        elif kind == "backward":
            if frame.f_locals.get("keep_grads"):
                self._refuse(
                    "backward(keep_grads=True)",
                    "it keeps every node's gradient on "
                    "the tape, which a compiled step does not make",
                )
        elif kind == "graph":
            self._refuse(
                "backward(create_graph=True)",
                "a create_graph sweep records the "
                "derivative as new tape nodes, which a compiled step does not make; "
                "compute higher derivatives outside the compiled step",
            )
        elif (
            kind is True
            and not self.opaque_depth
            and (not self.regions or self.regions[-1].kind != "method")
        ):
            self._open_method(frame, code)

    def _op_call(self, frame, code, ctx, backward):
        op = getattr(ctx, "op", None)  # (Node.__init__ runs with a ctx not yet set up)
        if op is None:
            return
        method = op.backward if backward else op.forward
        if getattr(method, "__code__", None) is not code or _builtin_op(op) or self.opaque_depth:
            return
        kind = "backward" if backward else "forward"
        where = self._where(frame)
        region = _Region(
            kind,
            frame,
            method,
            f"{op.__name__}.{kind}",
            self.encode(_call_arguments(frame)),
            len(self.events),
            None,
            True,
            where,
            op=op,
            ctx=ctx,
        )
        self._open(region)

    def _open_method(self, frame, code):
        owner = frame.f_locals["self"]
        call = getattr(owner, code.co_name, None)
        if call is None or getattr(call, "__func__", None) is None:
            return
        self.seen_owners[id(owner)] = owner
        where = self._where(frame)
        args = self.encode(_call_arguments(frame)[1:])
        region = _Region(
            "method",
            frame,
            call,
            f"{type(owner).__name__}.{code.co_name}",
            args,
            len(self.events),
            None,
            False,
            where,
            owner=owner,
        )
        self._open(region)

    def _open(self, region):
        self._note_bumps(region.where)
        region.first_val = self.count
        region.before = self.walker.snapshot(named=False)
        if region.opaque:
            self.opaque_depth += 1
        self.regions.append(region)

    def _close(self, region, result):
        region.frame = None  # a finished frame still holds its locals (tensors)
        after = self.walker.snapshot(named=False)
        if not region.opaque:
            if not _plain_changes(region.before, after) and region.value_read is None:
                # Inlined: its kernels stay. What it wrote is written where it wrote it (a
                # zero_grad() frees the old gradients before the sweep makes new ones, as eager).
                self._note_bumps(region.where)  # bumps by its Python, after its kernels
                self.events.insert(region.start, Effects(self.segment_start, region.before))
                self.events.append(Effects(region.before, after, region.label))
                self.segment_start = after
                return
            # It keeps Python numbers (Adam's step count) or reads values: the generated
            # code calls it, as it is. Everything recorded inside it goes.
            for event in self.events[region.start :]:
                for v in _vals_in(getattr(event, "out", None)):
                    if v.n > region.first_val:  # made inside it (not state it updated)
                        v.kind, v.label = "shadow", region.label
            del self.events[region.start :]
        else:
            self.opaque_depth -= 1
        # The state written before this call is written before it at replay too.
        self.events.append(Effects(self.segment_start, region.before))
        out = self.encode(result, new="temp")
        for v in _vals_in(out):
            if v.kind == "shadow":
                v.kind, v.label = "temp", None  # made inside, and returned: a result
        self.events.append(
            Opaque(
                region.kind,
                region.call,
                region.label,
                region.args,
                out,
                region.where,
                op=region.op,
                ctx=region.ctx,
            )
        )
        self.regions_done.append((region.before, after, region))
        self.segment_start = after
        self._refresh_versions()  # what the call bumped, it bumps again itself

    def names_read(self) -> set:
        """Every attribute name or string the Python code that ran could have read state by.

        From the bytecode of every function that ran: names it loads (``obj.name``,
        ``getattr(obj, "name")``, ``d["name"]``), not those it only stores
        (``self.__dict__["_last_output"] = out`` writes a place; a guard need not read it).
        """
        names: set = set()
        for code in self.code_kinds:
            names.update(_names_loaded(code))
        return names

    # --- refusals -------------------------------------------------------------------
    def _refuse(self, what, why):
        raise CompileError(
            f"tapegrad.compile({self.name}): the step uses {what}: {why}. "
            f"Run it without tapegrad.compile, or move that part out of the "
            f"compiled function"
        )

    def _refuse_hook(self, frame):
        where = frame.f_locals.get("where", "a tensor")
        self._refuse(
            f"a hook (on {where})",
            "hooks run your Python during the sweep, which "
            "compiled code would skip; remove the hook (handle.remove()) while training "
            "with the compiled step",
        )

    # --- where a kernel came from -------------------------------------------------------
    def _where(self, frame=None) -> Where:
        f = frame if frame is not None else sys._getframe(2)
        phase, node, module, label, user, grad = "user", None, None, None, None, None
        root = self.root_frame
        running = set()  # ctx of every forward running now
        while f is not None and f is not root:
            code = f.f_code
            if code is APPLY_CODE:
                ctx = f.f_locals.get("ctx")
                if ctx is not None:
                    running.add(id(ctx))
                if phase in ("user", "forward"):
                    phase, node = "forward", ctx
            elif code is SWEEP_CODE:
                phase, node, grad = "backward", f.f_locals.get("node"), f.f_locals.get("grad")
            elif code is SEED_CODE:
                phase = "seed"
            elif code in COMMIT_CODES:
                phase = "commit"
            elif code is MODULE_CALL_CODE or code is SEQUENTIAL_CODE:
                if module is None:  # the innermost module running: a call's self, or the
                    # layer a Sequential runs (its local `module`)
                    module = f.f_locals.get("self" if code is MODULE_CALL_CODE else "module")
                    if module is not None:
                        self.seen_owners[id(module)] = module
            elif self.code_kinds.get(code) is True:
                phase, label = "update", f"{type(f.f_locals['self']).__name__}.{code.co_name}"
            if user is None and not st.is_library_file(code.co_filename):
                user = (code.co_filename, f.f_lineno, code.co_name)
            f = f.f_back
        self._finish_nodes(running)
        info = None
        if node is not None:
            info = self._info(node, phase == "forward")
            if module is None:
                module = info.module
        if isinstance(grad, torch.Tensor):
            grad = self.known(grad)
        return Where(phase, info, module, label, user, grad)

    def _info(self, node, forward) -> NodeInfo:
        """The NodeInfo of `node` (nodes are not kept: an id is trusted only while valid)."""
        key = id(node)
        info = self.nodes.get(key)
        index = getattr(node, "index", None)
        if (
            info is not None
            and info.op is node.op
            and (
                self.open_nodes.get(key) is node
                if forward and index is None
                else info.index == index
            )
        ):
            return info
        ref = getattr(node, "_module", None)  # (set only after the op's forward)
        info = self.nodes[key] = NodeInfo(node.op, index, None if ref is None else ref())
        self.node_infos.append(info)
        if index is None:
            self.open_nodes[key] = node  # its index comes after its forward
        if getattr(node, "retains_grad", False):
            self._refuse(
                "retain_grad()",
                "gradients of op outputs live on tape nodes, which a "
                "compiled step does not make; keep them in an eager step",
            )
        return info

    def _finish_nodes(self, running=(), all_of_them=False):
        """Read the index and output of each node whose forward has finished; let it go."""
        for key in list(self.open_nodes):
            if key in running and not all_of_them:
                continue
            node = self.open_nodes.pop(key)
            info = self.nodes[key]
            info.index = getattr(node, "index", None)
            if getattr(node, "retains_grad", False):
                self._refuse(
                    "retain_grad()",
                    "gradients of op outputs live on tape nodes, which "
                    "a compiled step does not make; keep them in an eager step",
                )
            out = getattr(node, "_out_id", None)
            if out is not None:
                entry = self.table.get(out)
                if entry is not None:
                    ref, v = entry
                    t = v.obj if ref is None else ref()
                    info.out = v if t is not None and id(t) == out else None


_STORES = frozenset({"STORE_ATTR", "DELETE_ATTR", "STORE_SUBSCR", "DELETE_SUBSCR"})
_NAMES_CACHE: dict = {}


def _names_loaded(code) -> frozenset:
    """Names and string constants `code` may read state by (stores excluded); cached."""
    found = _NAMES_CACHE.get(code)
    if found is None:
        names = set()
        instructions = list(dis.get_instructions(code))
        stored = set()
        for i, ins in enumerate(instructions):
            if ins.opname in ("STORE_ATTR", "DELETE_ATTR"):
                stored.add(ins.argval)
            elif ins.opname == "LOAD_CONST" and type(ins.argval) is str and len(ins.argval) < 80:
                after = instructions[i + 1].opname if i + 1 < len(instructions) else ""
                if after not in _STORES:
                    names.add(ins.argval)
            elif isinstance(ins.argval, str) and ins.opname.startswith(("LOAD_", "IMPORT_")):
                names.add(ins.argval)
        found = _NAMES_CACHE[code] = frozenset(names)
    return found


def _restore_profile(previous) -> None:
    """Give the profile hook back to whoever had it (cProfile keeps a non-callable object)."""
    if previous is None or callable(previous):
        sys.setprofile(previous)
    elif hasattr(previous, "enable"):
        sys.setprofile(None)
        previous.enable()


def _tensors_of_argument(value) -> list:
    """The torch tensors an argument carries (itself, a tapegrad tensor's data and grad...)."""
    from ..tensor import Tensor

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, Tensor):
        return [t for t in (value._data, value._grad) if isinstance(t, torch.Tensor)]
    if type(value) in (tuple, list):
        return [t for item in value for t in _tensors_of_argument(item)]
    return []


def _has_tensor_index(args) -> bool:
    return len(args) > 1 and bool(tensors_in(args[1]))


def _plain_changes(before, after) -> list:
    """Places holding numbers (or strings...) whose value differs between two snapshots."""
    changed = []
    for oid, entry in before.entries.items():
        other = after.entries.get(oid)
        if other is None:
            continue
        new = dict(zip(map(_key, other.keys), other.values))
        for key, value in entry.items():
            if st.is_plain(value):
                now = new.get(_key(key), _MISSING)
                if now is _MISSING or type(now) is not type(value) or now != value:
                    changed.append((entry, key))
    return changed


_MISSING = object()


def _key(key):
    return (type(key), key)


def _describe_call(func) -> str:
    name = func_name(func)
    owner = getattr(func, "__objclass__", None) or getattr(func, "__self__", None)
    if isinstance(owner, type) and issubclass(owner, torch._C.TensorBase):
        return f"Tensor.{name}()"
    if name.startswith("__") and name.endswith("__"):
        return f"Tensor.{name}"
    return f"torch.{name}()"


def _value_read_message(name, what, where) -> str:
    line = ""
    if where.user is not None:
        filename, lineno, function = where.user
        line = f" at {filename}:{lineno} (in {function})"
    return (
        f"tapegrad.compile({name}): {what}{line}: the step reads a tensor's values into "
        "Python. Python that depends on tensor values (an `if`, a print, a list) is not in "
        "the compiled code, which would take the traced branch every time. Return the "
        "tensor and read it outside the step (e.g. return loss; loss.item() after the "
        "call), or compile with on_value_read='retrace' to trace such calls again each "
        "time (at eager speed, with a warning)"
    )
