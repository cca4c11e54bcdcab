"""The vocabulary of a trace: the values, calls and points where Python state is written.

    Val      one tensor of the traced program (a variable of the Wengert list)
    Kernel   y = torch_function(args)             a call into torch, in eager's order
    Opaque   y = op.forward(ctx, x) / opt.step()  a Python call the generated code makes as is
    Bump     bump_versions(tensors)               version counters bumped outside a kernel
    Effects  place = value, ...                   Python state written between two snapshots
    Where    the tape node, sweep step, optimizer or line of yours a call came from

`Tracer` (trace.py) writes them, `Codegen` (codegen.py) reads them. Which torch calls
are kernels, and which only read metadata, is decided here too.
"""

from __future__ import annotations

import torch


class CompileError(RuntimeError):
    """tapegrad.compile cannot compile this step; the message says what, where, and the fix."""


class ValueRead(CompileError):
    """The step read a tensor's values into Python (control flow the trace cannot see)."""


# --- what the trace holds --------------------------------------------------------------


class Val:
    """One tensor of the traced program (a variable of the Wengert list).

    kind: 'input' (an argument's), 'state' (held by state found before the step),
    'temp' (made by a kernel or an opaque call of the step), 'const' (none of these),
    'shadow' (made inside a call replayed as is, and not returned by it).
    """

    __slots__ = ("n", "id", "kind", "obj", "shape", "dtype", "label")

    def __init__(self, n, t, kind, keep, label=None):
        self.n, self.id, self.kind, self.label = n, id(t), kind, label
        self.obj = t if keep else None  # held for inputs, state and constants only
        self.shape, self.dtype = tuple(t.shape), t.dtype

    def __repr__(self):
        return f"<Val {self.n} {self.kind} {self.shape}>"


class Wrapped:
    """A tapegrad tensor in a call's result: the code reads its ``._data``."""

    __slots__ = ("val",)

    def __init__(self, val):
        self.val = val


class NodeInfo:
    """What the comments need of a tape node: its op, index and module (no saved tensors)."""

    __slots__ = ("op", "index", "module", "out")

    def __init__(self, op, index, module, out=None):
        self.op, self.index, self.module, self.out = op, index, module, out


class Kernel:
    """One torch call: ``out = func(*args, **kwargs)`` (tensors as Vals), and where it came from."""

    __slots__ = ("func", "args", "kwargs", "out", "where")

    def __init__(self, func, args, kwargs, out, where):
        self.func, self.args, self.kwargs, self.out, self.where = func, args, kwargs, out, where


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
    """A point where the Python state fn wrote (between two snapshots) is written (see codegen).

    label: the optimizer method that wrote it ('SGD.zero_grad'), 'end' for the last, or None.
    """

    __slots__ = ("before", "after", "label")

    def __init__(self, before, after, label=None):
        self.before, self.after, self.label = before, after, label


class Where:
    """Where a kernel came from: a phase, the tape node, its module, and your line."""

    __slots__ = ("phase", "node", "module", "label", "user", "grad")

    def __init__(self, phase, node=None, module=None, label=None, user=None, grad=None):
        self.phase = phase  # 'forward', 'backward', 'seed', 'commit', 'update', 'user'
        self.node = node  # the tape Node (forward/backward)
        self.module = module  # the Module whose forward ran it
        self.label = label  # e.g. 'SGD.step'
        self.user = user  # (filename, line, function) of the innermost frame of yours
        self.grad = grad  # backward: the gradient the node's derivative received


# --- which torch calls are kernels --------------------------------------------------------

# Calls that only read a tensor's layout or bookkeeping: no kernel runs, nothing to replay.
# (Their answers are fixed by the shapes, dtypes and devices the guards check.)
METADATA = frozenset(
    {
        "shape",
        "dtype",
        "device",
        "ndim",
        "_version",
        "_base",
        "is_leaf",
        "requires_grad",
        "grad",
        "grad_fn",
        "layout",
        "is_cuda",
        "is_cpu",
        "is_sparse",
        "is_quantized",
        "is_meta",
        "is_mps",
        "is_xpu",
        "is_mkldnn",
        "is_nested",
        "names",
        "output_nr",
        "itemsize",
        "nbytes",
        "_cdata",
        "dim",
        "ndimension",
        "size",
        "stride",
        "numel",
        "nelement",
        "element_size",
        "is_contiguous",
        "is_floating_point",
        "is_complex",
        "is_signed",
        "storage_offset",
        "data_ptr",
        "untyped_storage",
        "get_device",
        "is_shared",
        "is_pinned",
        "__len__",
        "__hash__",
        "_is_view",
        "is_set_to",
        "type",
        "has_names",
        "is_inference",
        "is_neg",
        "is_conj",
        "__sizeof__",
        "dim_order",
        "__torch_function__",
    }
)

# Kernels whose output shape depends on the input's values: a shape read from one of their
# results (or from a tensor computed from one) is a value read.
VALUE_SHAPED = frozenset(
    {
        "nonzero",
        "masked_select",
        "unique",
        "unique_consecutive",
        "argwhere",
        "nonzero_static",
        "_unique",
        "_unique2",
        "repeat_interleave",
    }
)


def func_name(func) -> str:
    """The name of a torch callable: 'linear', 'mm', 'shape' (for a property)."""
    name = getattr(func, "__name__", "")
    if name in ("__get__", "__set__", "__delete__"):
        owner = getattr(func, "__self__", None)
        return getattr(owner, "__name__", name)
    packet = getattr(func, "overloadpacket", None)  # torch.ops.aten.X.default
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


def _vals_in(value, found=None) -> list:
    found = [] if found is None else found
    if isinstance(value, Val):
        found.append(value)
    elif isinstance(value, Wrapped):
        _vals_in(value.val, found)
    elif isinstance(value, (tuple, list)):
        for v in value:
            _vals_in(v, found)
    elif isinstance(value, dict):
        for v in value.values():
            _vals_in(v, found)
    return found
