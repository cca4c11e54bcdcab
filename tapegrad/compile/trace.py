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

Version counters: torch bumps a tensor's version in every in-place kernel, and
the replay runs the same kernels. A bump made outside any kernel (tapegrad's fused
SGD step bumps the parameters' counters after the kernel) is noticed by reading
the versions around each kernel, and recorded as a `Bump` to repeat.
"""

from __future__ import annotations

import sys

import torch
from torch.overrides import TorchFunctionMode

from .. import hooks, sweep
from ..function import Function
from ..nn.module import Module
from ..optim.optimizer import Optimizer
from ..tape import Node, _state
from . import state as st


class CompileError(RuntimeError):
    """tapegrad.compile cannot compile this step; the message says what, where, and the fix."""


class ValueRead(CompileError):
    """The step read a tensor's values into Python (control flow the trace cannot see)."""


# --- what the trace holds --------------------------------------------------------------

class Kernel:
    """One torch call: ``out = func(*args, **kwargs)``, and where it came from."""

    __slots__ = ("func", "args", "kwargs", "out", "where", "region")

    def __init__(self, func, args, kwargs, out, where, region):
        self.func, self.args, self.kwargs, self.out = func, args, kwargs, out
        self.where, self.region = where, region


class Opaque:
    """A Python call the generated code makes as it is: ``out = call(*args)``.

    kind: 'forward' / 'backward' (a user op's own methods; ctx is args[0]) or
    'method' (an optimizer method, bound to its optimizer).
    """

    __slots__ = ("kind", "call", "label", "args", "out", "where", "op", "ctx")

    def __init__(self, kind, call, label, args, out, where, op=None, ctx=None):
        self.kind, self.call, self.label, self.args, self.out = kind, call, label, args, out
        self.where, self.op, self.ctx = where, op, ctx


class Bump:
    """Version counters bumped outside any kernel: ``bump_versions(tensors)``, `times` times."""

    __slots__ = ("tensors", "times", "where")

    def __init__(self, tensors, times, where):
        self.tensors, self.times, self.where = tensors, times, where


class Effects:
    """A point where the Python state fn wrote so far must be written (see codegen)."""

    __slots__ = ("before", "after")

    def __init__(self, before, after):
        self.before, self.after = before, after


class Where:
    """Where a kernel came from: a phase, the tape node, its module, and your line."""

    __slots__ = ("phase", "node", "module", "label", "user", "grad")

    def __init__(self, phase, node=None, module=None, label=None, user=None, grad=None):
        self.phase = phase      # 'forward', 'backward', 'seed', 'commit', 'update', 'user'
        self.node = node        # the tape Node (forward/backward)
        self.module = module    # the Module whose forward ran it
        self.label = label      # e.g. 'SGD.step'
        self.user = user        # (filename, line, function) of the innermost frame of yours
        self.grad = grad        # backward: the gradient the node's derivative received


# --- which torch calls are kernels --------------------------------------------------------

# Calls that only read a tensor's layout or bookkeeping: no kernel runs, nothing to replay.
# (Their answers are fixed by the shapes, dtypes and devices the guards check.)
METADATA = frozenset({
    "shape", "dtype", "device", "ndim", "_version", "_base", "is_leaf", "requires_grad", "grad",
    "grad_fn", "layout", "is_cuda", "is_cpu", "is_sparse", "is_quantized", "is_meta", "is_mps",
    "is_xpu", "is_mkldnn", "is_nested", "names", "output_nr", "itemsize", "nbytes", "_cdata",
    "dim", "ndimension", "size", "stride", "numel", "nelement", "element_size", "is_contiguous",
    "is_floating_point", "is_complex", "is_signed", "storage_offset", "data_ptr",
    "untyped_storage", "get_device", "is_shared", "is_pinned", "__len__", "__hash__",
    "_is_view", "is_set_to", "type", "has_names", "is_inference", "is_neg", "is_conj",
    "__sizeof__", "dim_order", "__torch_function__",
})

# Kernels whose output shape depends on the input's values: a shape read from one of their
# results (or from a tensor computed from one) is a value read.
VALUE_SHAPED = frozenset({"nonzero", "masked_select", "unique", "unique_consecutive",
                          "argwhere", "nonzero_static", "_unique", "_unique2", "repeat_interleave"})


def func_name(func) -> str:
    """The name of a torch callable: 'linear', 'mm', 'shape' (for a property)."""
    name = getattr(func, "__name__", "")
    if name in ("__get__", "__set__", "__delete__"):
        owner = getattr(func, "__self__", None)
        return getattr(owner, "__name__", name)
    packet = getattr(func, "overloadpacket", None)      # torch.ops.aten.X.default
    if packet is not None:
        return getattr(packet, "__name__", str(func)).split("::")[-1]
    return name


def contains_tensor(value) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (tuple, list)):
        return any(contains_tensor(v) for v in value)
    return False


def tensors_in(value, found=None) -> list:
    found = [] if found is None else found
    if isinstance(value, torch.Tensor):
        found.append(value)
    elif isinstance(value, (tuple, list)):
        for v in value:
            tensors_in(v, found)
    elif isinstance(value, dict):
        for v in value.values():
            tensors_in(v, found)
    return found


# Code objects the tracer recognises on the stack.
APPLY_CODE = Function.apply.__func__.__code__
SWEEP_CODE = sweep._sweep.__code__
SWEEP_GRAPH_CODES = {sweep._sweep_graph.__code__, sweep._traced_backward.__code__}
SEED_CODE = sweep._seed.__code__
COMMIT_CODES = {sweep._commit.__code__, sweep._own_leaf_grads.__code__}
HOOK_CODE = hooks.run.__code__
MODULE_CALL_CODE = Module.__call__.__code__


def _first_argument(frame):
    """The first argument of the function running in `frame` (None if it takes none)."""
    code = frame.f_code
    local = frame.f_locals
    if code.co_argcount:
        return local.get(code.co_varnames[0])
    if code.co_flags & 0x04:            # CO_VARARGS: f(*args)
        extra = local.get(code.co_varnames[code.co_argcount + code.co_kwonlyargcount])
        return extra[0] if extra else None
    return None


def _call_arguments(frame) -> tuple:
    """The positional arguments the function running in `frame` was called with."""
    code = frame.f_code
    local = frame.f_locals
    args = [local.get(n) for n in code.co_varnames[:code.co_argcount]]
    if code.co_flags & 0x04:
        args.extend(local.get(code.co_varnames[code.co_argcount + code.co_kwonlyargcount], ()))
    return tuple(args)


def _builtin_op(op) -> bool:
    return getattr(op, "__module__", "").startswith("tapegrad.")


class _Region:
    """An open Python call that may become (or is) an Opaque call."""

    __slots__ = ("kind", "frame", "call", "label", "args", "op", "ctx", "start", "before",
                 "opaque", "value_read", "where", "owner")

    def __init__(self, kind, frame, call, label, args, start, before, opaque, where,
                 op=None, ctx=None, owner=None):
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
        self.events = []
        self.active = False
        self.opaque_depth = 0           # > 0 while a call we replay as is runs
        self.regions = []               # open _Region stack
        self.produced = set()           # ids of tensors made by recorded kernels/opaque calls
        self.shadow = {}                # id -> label of the call that made it inside
        self.value_shaped = set()       # ids of tensors whose shape depends on values
        self.keep = []                  # every object whose id we rely on stays alive
        self.nodes = {}                 # id(node) -> node met on the stack
        self.watch = {}                 # id(tensor) -> [tensor, version last seen]
        self.value_read = None          # (description, where) of the first value read
        self.root_frame = None
        self.profile_fn = None
        # code -> what a call of it means: True (an optimizer method), False (nothing),
        # 'hook' / 'graph' (refused); absent: not yet looked at
        self.code_kinds = {HOOK_CODE: "hook", **{c: "graph" for c in SWEEP_GRAPH_CODES}}
        self.regions_done = []          # [(snapshot before, snapshot after, region)] of opaque calls
        self.seen_owners = {}           # id -> module or optimizer whose code ran

    # --- running ------------------------------------------------------------------
    def run(self):
        """Run fn eagerly under the recorders; return its result (the trace is in self)."""
        self.s0 = self.walker.snapshot()
        for t in self.s0.objects.values():
            if isinstance(t, torch.Tensor):
                self._watch(t)
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
        self._note_bumps(Where("user", label="after the step"))
        self.s_end = self.walker.snapshot(named=False)
        self.events.append(Effects(self.segment_start, self.s_end))
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
                if self.value_shaped and any(id(t) in self.value_shaped for t in tensors_in(args)):
                    self._value_read(f"{name} of a tensor whose shape depends on tensor values",
                                     func)
                return out
        if self.opaque_depth:
            out = func(*args, **kwargs)
            label = self.regions[-1].label if self.regions else "?"
            for t in tensors_in(out):
                self.shadow[id(t)] = label
                self.keep.append(t)
            return out
        self._note_bumps(None, args)
        out = func(*args, **kwargs)
        if out is not None and not contains_tensor(out):
            self._value_read(f"{_describe_call(func)} returned a {type(out).__name__}", func)
            return out
        where = self._where()
        region = self.regions[-1] if self.regions else None
        self.events.append(Kernel(func, args, kwargs, out, where, region))
        self.keep.append((args, kwargs, out))
        outs = tensors_in(out)
        for t in outs:
            self.produced.add(id(t))
            self._watch(t)
        for t in tensors_in((args, kwargs)):
            self._watch(t)
        if name in VALUE_SHAPED or (self.value_shaped and any(
                id(t) in self.value_shaped for t in tensors_in((args, kwargs)))) or (
                name == "__getitem__" and _has_tensor_index(args)):
            for t in outs:
                self.value_shaped.add(id(t))
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
    def _watch(self, t):
        if id(t) not in self.watch:
            self.watch[id(t)] = [t, t._version]

    def _refresh_versions(self):
        for entry in self.watch.values():
            entry[1] = entry[0]._version

    def _note_bumps(self, where, args=None):
        """Record version bumps that happened since the last kernel (outside any kernel)."""
        changed = []
        for entry in self.watch.values():
            t, seen = entry
            now = t._version
            if now != seen:
                changed.append((t, now - seen))
                entry[1] = now
        if not changed:
            return
        # Views share their base's counter: bump each counter once.
        roots = {}
        for t, delta in changed:
            root = t._base if t._base is not None else t
            if id(root) not in roots or roots[id(root)][0] is not root:
                roots.setdefault(id(root), (t, delta))
        by_times = {}
        for t, delta in roots.values():
            if delta > 0:
                by_times.setdefault(delta, []).append(t)
        where = where or self._where()
        for times, tensors in by_times.items():
            self.events.append(Bump(tensors, times, where))

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
                    if caller is None or (caller.f_code is not apply_code
                                          and caller.f_code is not sweep_code):
                        return
                if self.active:
                    self.active = False     # torch calls made here (versions, snapshots) are ours
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
        caller = frame.f_back
        if caller is not None and (caller.f_code is APPLY_CODE or caller.f_code is SWEEP_CODE):
            ctx = _first_argument(frame)
            if isinstance(ctx, Node):
                self._op_call(frame, code, ctx, caller.f_code is SWEEP_CODE)
                return
        if kind is None:
            kind = code.co_argcount > 0 and code.co_varnames[0] == "self" and \
                isinstance(frame.f_locals.get("self"), Optimizer)
            self.code_kinds[code] = kind
        if kind == "hook":
            self._refuse_hook(frame)
        elif kind == "graph":
            self._refuse("backward(create_graph=True)", "a create_graph sweep records the "
                         "derivative as new tape nodes, which a compiled step does not make; "
                         "compute higher derivatives outside the compiled step")
        elif kind is True and not self.opaque_depth and (
                not self.regions or self.regions[-1].kind != "method"):
            self._open_method(frame, code)

    def _op_call(self, frame, code, ctx, backward):
        op = getattr(ctx, "op", None)       # (Node.__init__ runs with a ctx not yet set up)
        if op is None:
            return
        method = op.backward if backward else op.forward
        if getattr(method, "__code__", None) is not code or _builtin_op(op) or self.opaque_depth:
            return
        kind = "backward" if backward else "forward"
        where = self._where(frame)
        self.nodes[id(ctx)] = ctx
        region = _Region(kind, frame, method, f"{op.__name__}.{kind}", _call_arguments(frame),
                         len(self.events), None, True, where, op=op, ctx=ctx)
        self._open(region)

    def _open_method(self, frame, code):
        owner = frame.f_locals["self"]
        call = getattr(owner, code.co_name, None)
        if call is None or getattr(call, "__func__", None) is None:
            return
        self.seen_owners[id(owner)] = owner
        where = self._where(frame)
        args = _call_arguments(frame)[1:]
        region = _Region("method", frame, call, f"{type(owner).__name__}.{code.co_name}", args,
                         len(self.events), None, False, where, owner=owner)
        self._open(region)

    def _open(self, region):
        self._note_bumps(region.where)
        region.before = self.walker.snapshot(named=False)
        if region.opaque:
            self.opaque_depth += 1
        self.regions.append(region)
        self.keep.append(region.args)

    def _close(self, region, result):
        after = self.walker.snapshot(named=False)
        if not region.opaque:
            if not _plain_changes(region.before, after) and region.value_read is None:
                self._note_bumps(region.where)  # bumps made by its Python, after its kernels
                return                      # its kernels stay in the trace, inlined
            # It keeps Python numbers (Adam's step count) or reads values: the generated
            # code calls it, as it is. Everything recorded inside it goes.
            for event in self.events[region.start:]:
                for t in tensors_in(getattr(event, "out", None)):
                    self.produced.discard(id(t))
                    self.shadow[id(t)] = region.label
            del self.events[region.start:]
        else:
            self.opaque_depth -= 1
        # The state written before this call is written before it at replay too.
        self.events.append(Effects(self.segment_start, region.before))
        for t in tensors_in(result):
            self.shadow.pop(id(t), None)
        self.events.append(Opaque(region.kind, region.call, region.label, region.args, result,
                                  region.where, op=region.op, ctx=region.ctx))
        self.regions_done.append((region.before, after, region))
        self.keep.append(result)
        for t in tensors_in(result):
            self.produced.add(id(t))
            self._watch(t)
        self.segment_start = after
        self._refresh_versions()            # what the call bumped, it bumps again itself

    def names_read(self) -> set:
        """Every attribute name or string the Python code that ran could have read state by."""
        names = set()
        for code in self.code_kinds:
            names.update(code.co_names)
            names.update(c for c in code.co_consts if type(c) is str and len(c) < 80)
        return names

    # --- refusals -------------------------------------------------------------------
    def _refuse(self, what, why):
        raise CompileError(f"tapegrad.compile({self.name}): the step uses {what}: {why}. "
                           f"Run it without tapegrad.compile, or move that part out of the "
                           f"compiled function")

    def _refuse_hook(self, frame):
        where = frame.f_locals.get("where", "a tensor")
        self._refuse(f"a hook (on {where})", "hooks run your Python during the sweep, which "
                     "compiled code would skip; remove the hook (handle.remove()) while training "
                     "with the compiled step")

    # --- where a kernel came from -------------------------------------------------------
    def _where(self, frame=None) -> Where:
        f = frame if frame is not None else sys._getframe(2)
        phase, node, module, label, user, grad = "user", None, None, None, None, None
        root = self.root_frame
        while f is not None and f is not root:
            code = f.f_code
            if code is APPLY_CODE:
                if phase in ("user", "forward"):
                    phase, node = "forward", f.f_locals.get("ctx")
            elif code is SWEEP_CODE:
                phase, node, grad = "backward", f.f_locals.get("node"), f.f_locals.get("grad")
            elif code is SEED_CODE:
                phase = "seed"
            elif code in COMMIT_CODES:
                phase = "commit"
            elif code is MODULE_CALL_CODE:
                if module is None:
                    module = f.f_locals.get("self")
                    self.seen_owners[id(module)] = module
            elif self.code_kinds.get(code) is True:
                phase, label = "update", f"{type(f.f_locals['self']).__name__}.{code.co_name}"
            if user is None and not st.is_library_file(code.co_filename):
                user = (code.co_filename, f.f_lineno, code.co_name)
            f = f.f_back
        if node is not None:
            self.nodes[id(node)] = node
            if module is None:
                ref = getattr(node, "_module", None)     # (set only after the op's forward)
                module = None if ref is None else ref()
        return Where(phase, node, module, label, user, grad)


def _restore_profile(previous) -> None:
    """Give the profile hook back to whoever had it (cProfile keeps a non-callable object)."""
    if previous is None or callable(previous):
        sys.setprofile(previous)
    elif hasattr(previous, "enable"):
        sys.setprofile(None)
        previous.enable()


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
    return (f"tapegrad.compile({name}): {what}{line}: the step reads a tensor's values into "
            "Python. Python that depends on tensor values (an `if`, a print, a list) is not in "
            "the compiled code, which would take the traced branch every time. Return the "
            "tensor and read it outside the step (e.g. return loss; loss.item() after the "
            "call), or compile with on_value_read='retrace' to trace such calls again each "
            "time (at eager speed, with a warning)")
