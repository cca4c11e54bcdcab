"""Ops that move values around without changing them: view, reshape, squeeze, permute, expand, ...

They are linear, and each derivative is the transposed move: reshape back,
permute back, sum over what expand repeated; a copy (clone, contiguous)
passes the gradient through. Joins and splits are in `join.py`, indexing
in `indexing.py`.

Dims follow torch: negative dims count from the end, and a dim out of
range is an IndexError; a 0-d tensor takes dim 0 and -1 where torch lets it.
"""

from __future__ import annotations

import operator

import torch

from ..errors import ShapeError
from ..function import Function
from .broadcast import unbroadcast

# --- dims, as torch reads them -----------------------------------------------------


def normalize_dim(dim, shape, op: str = "", new: int = 0) -> int:
    """`dim` as an index in [0, n), n = len(shape) + new; IndexError (as in torch) if out of range.

    new=1 for ops that insert a dimension (unsqueeze, stack): their dim may
    also name the position after the last one. A 0-d tensor takes dim 0 and -1.
    `op` names the function in the message (an op's forward leaves it out:
    its errors are already prefixed with the op's name).
    """
    prefix = f"{op}: " if op else ""
    try:
        dim = operator.index(dim)
    except TypeError:
        raise TypeError(f"{prefix}dim must be an int, got {type(dim).__name__} {dim!r}") from None
    n = max(len(shape) + new, 1)
    if not -n <= dim < n:
        raise IndexError(
            f"{prefix}dim {dim} is out of range for a tensor of shape "
            f"{tuple(shape)}; use a dim in [{-n}, {n - 1}] (negative dims count "
            "from the end)"
        )
    return dim % n


def normalize_dims(dims, shape, op: str = "") -> tuple:
    """A tuple of distinct dims, each normalized; RuntimeError for a repeated one (as torch)."""
    normalized = tuple(normalize_dim(d, shape, op) for d in dims)
    if len(set(normalized)) != len(normalized):
        raise RuntimeError(
            f"{op + ': ' if op else ''}dims {tuple(dims)} name a dimension more "
            "than once; name each once"
        )
    return normalized


def sizes_argument(sizes, op: str) -> tuple:
    """Sizes given as varargs ``f(2, 3)`` or as one sequence ``f((2, 3))``, as a tuple of ints."""
    if not sizes:
        raise TypeError(
            f"{op} needs its sizes (as torch): {op.split('(')[0]}(2, 3), or "
            f"{op.split('(')[0]}(()) for none"
        )
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list, torch.Size)):
        sizes = sizes[0]
    try:
        return tuple(operator.index(s) for s in sizes)
    except TypeError:
        raise TypeError(
            f"{op}: sizes must be ints, got {tuple(sizes)!r}; pass them as "
            f"{op.split('(')[0]}(2, 3) or {op.split('(')[0]}((2, 3))"
        ) from None


def _invalid_shape(error, x) -> ShapeError:
    return ShapeError(
        f"{error}; the new shape must hold the {x.numel()} elements of shape "
        f"{tuple(x.shape)} (one size may be -1, to be computed)"
    )


# --- reshape and view ----------------------------------------------------------------


class Reshape(Function):
    """y = x.reshape(shape)   (the same values in another shape; a view when it can be)

    dL/dx = dL/dy.reshape(x.shape)

    shape: a tuple of ints, one of them may be -1 (computed from the others); y has it, and
    x's dtype. Errors: ShapeError (a RuntimeError) for a shape that does not hold x's number
    of elements or has two -1s, TypeError for sizes that are not ints.
    """

    check_grad_shapes = False

    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        try:
            return x.reshape(shape)
        except RuntimeError as error:
            raise _invalid_shape(error, x) from error

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.in_shape), None


class View(Function):
    """y = x.view(shape)   (x's memory read in another shape: never a copy)

    dL/dx = dL/dy.reshape(x.shape)

    Only a shape that x's strides allow can be a view: a transposed or
    sliced tensor usually can't be flattened without a copy, and view then
    refuses (ShapeError, a RuntimeError as torch's); reshape copies instead.
    shape as `Reshape` (one size may be -1), with its errors: ShapeError for a
    shape that does not hold x's number of elements, TypeError for sizes that
    are not ints.
    """

    check_grad_shapes = False

    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        try:
            return x.view(shape)
        except RuntimeError as error:
            if "stride" not in str(error):
                raise _invalid_shape(error, x) from error
            raise ShapeError(
                f"view size is not compatible with input tensor's size and stride: the tensor of "
                f"shape {tuple(x.shape)} has strides {x.stride()} (a transpose or a slice), so its "
                f"elements can't be read as shape {tuple(shape)} without a copy. Use "
                ".reshape(...) instead (it copies when it must), or .contiguous().view(...)"
            ) from error

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.in_shape), None


# --- dimensions of size 1 ------------------------------------------------------------


class Unsqueeze(Function):
    """y = x.unsqueeze(dim)   (a new dimension of size 1 at `dim`)

    dL/dx = dL/dy.reshape(x.shape)

    y: x's shape with a 1 inserted at position dim, in [-ndim - 1, ndim] (a view). Errors:
    IndexError for a dim out of range, TypeError for a dim that is not an int.
    """

    check_grad_shapes = False

    @staticmethod
    def forward(ctx, x, dim):
        ctx.in_shape = x.shape
        return x.unsqueeze(normalize_dim(dim, x.shape, new=1))

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.in_shape), None


class Squeeze(Function):
    """y = x.squeeze(dim)
       (the dimensions `dim` removed where their size is 1; dim=None: all size-1 dims)

    dL/dx = dL/dy.reshape(x.shape)

    A named dimension whose size is not 1 is kept, as in torch. y is a view.
    dim: None, an int or a tuple of ints. Errors: IndexError for a dim out of
    range, RuntimeError for a dim named twice, TypeError for a dim that is not
    an int.
    """

    check_grad_shapes = False

    @staticmethod
    def forward(ctx, x, dim=None):
        ctx.in_shape = x.shape
        if dim is None:
            return x.squeeze()
        dims = (dim,) if not isinstance(dim, (tuple, list)) else dim
        return x.squeeze(normalize_dims(dims, x.shape))

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.in_shape), None


# --- reordering dimensions -------------------------------------------------------------


class Transpose(Function):
    """y = x.transpose(d0, d1)   (swap two dimensions)

    dL/dx = dL/dy.transpose(d0, d1)

    y: x's shape with sizes d0 and d1 swapped (a view). Errors: IndexError for a dim out of
    range, TypeError for a dim that is not an int.
    """

    check_grad_shapes = False

    @staticmethod
    def forward(ctx, x, dim0, dim1):
        ctx.dims = (normalize_dim(dim0, x.shape), normalize_dim(dim1, x.shape))
        return x.transpose(*ctx.dims)

    @staticmethod
    def backward(ctx, grad):
        return grad.transpose(*ctx.dims), None, None


class Permute(Function):
    """y = x.permute(dims)   (dimension i of y is dimension dims[i] of x; a view)

    dL/dx = dL/dy.permute(inverse of dims)   (dimension dims[i] of dL/dx is dimension i of dL/dy)

    y: (x.shape[dims[0]], x.shape[dims[1]], ...). Errors: ShapeError (a RuntimeError) when
    dims does not name as many dims as x has, RuntimeError for a dim named twice, IndexError
    for a dim out of range.
    """

    check_grad_shapes = False

    @staticmethod
    def forward(ctx, x, dims):
        if len(dims) != x.dim():
            raise ShapeError(
                f"dims {tuple(dims)} name {len(dims)} dimension(s), but the tensor "
                f"of shape {tuple(x.shape)} has {x.dim()}; name each dimension "
                "exactly once"
            )
        dims = normalize_dims(dims, x.shape)
        inverse = [0] * len(dims)
        for position, d in enumerate(dims):
            inverse[d] = position
        ctx.inverse = tuple(inverse)
        return x.permute(dims)

    @staticmethod
    def backward(ctx, grad):
        return grad.permute(ctx.inverse), None


def movedim_order(source, destination, shape) -> tuple:
    """The permutation that moves dims `source` to positions `destination` (torch.movedim's
    rule)."""
    single = isinstance(source, int), isinstance(destination, int)
    if single[0] != single[1]:
        raise TypeError(
            f"movedim: source and destination must both be ints or both sequences, "
            f"got {source!r} and {destination!r}"
        )
    source = normalize_dims((source,) if single[0] else source, shape, "movedim(source)")
    destination = normalize_dims(
        (destination,) if single[1] else destination, shape, "movedim(destination)"
    )
    if len(source) != len(destination):
        raise RuntimeError(
            f"movedim: source {source} and destination {destination} must name "
            "the same number of dims"
        )
    order = [None] * len(shape)
    for s, d in zip(source, destination):
        order[d] = s
    rest = iter(d for d in range(len(shape)) if d not in source)
    return tuple(next(rest) if o is None else o for o in order)


# --- repeating --------------------------------------------------------------------------


class Expand(Function):
    """y = x.expand(sizes)   (size-1 dimensions repeated, new leading dimensions added; a view)

    dL/dx = dL/dy summed over the repeated and added dimensions

    A size of -1 keeps that dimension as it is. y has shape `sizes`, x's
    dtype; it copies nothing (a view). Errors: ShapeError (a RuntimeError) for
    sizes x can't expand to (a size other than 1 changed, fewer sizes than x
    has dimensions, -1 for a new one), TypeError for sizes that are not ints.
    """

    check_grad_shapes = False

    @staticmethod
    def forward(ctx, x, sizes):
        ctx.in_shape = x.shape
        try:
            return x.expand(sizes)
        except RuntimeError as error:
            raise ShapeError(
                f"can't expand shape {tuple(x.shape)} to {tuple(sizes)} "
                f"({error}). Expand only repeats dimensions of size 1 and adds new "
                "leading ones (-1 keeps a size); use .repeat or an explicit copy "
                "otherwise"
            ) from error

    @staticmethod
    def backward(ctx, grad):
        return unbroadcast(grad, ctx.in_shape), None


# --- copies -------------------------------------------------------------------------------


class Clone(Function):
    """y = a copy of x, in memory of its own

    dL/dx = dL/dy

    y: x's shape, dtype and device; memory_format as torch's clone (preserved by default).
    Errors: RuntimeError (torch's) for a memory_format x can't take (channels_last needs 4-D).
    """

    check_grad_shapes = False

    @staticmethod
    def forward(ctx, x, memory_format=torch.preserve_format):
        return x.clone(memory_format=memory_format)

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class Contiguous(Function):
    """y = x copied into contiguous memory   (x.contiguous() records it only when x is not already)

    dL/dx = dL/dy

    y: x's shape, dtype and device, always a copy (row-major, or the memory_format given).
    Errors: RuntimeError (torch's) for a memory_format x can't take (channels_last needs 4-D).
    """

    check_grad_shapes = False

    @staticmethod
    def forward(ctx, x, memory_format=torch.contiguous_format):
        y = x.contiguous(memory_format=memory_format)
        return y if y is not x else x.clone(memory_format=memory_format)  # always a copy

    @staticmethod
    def backward(ctx, grad):
        return grad, None


# --- dtype and device ----------------------------------------------------------------------


class To(Function):
    """y = x.to(dtype / device)

    dL/dx = dL/dy.to(x's dtype and device)

    y: x's shape, in the dtype and on the device given (each None: x's). Errors: torch's,
    for a device that can't be used; `Tensor.to` checks its arguments first (TypeError).
    """

    check_grad_shapes = False

    @staticmethod
    def forward(
        ctx,
        x,
        dtype=None,
        device=None,
        copy=False,
        non_blocking=False,
        memory_format=torch.preserve_format,
    ):
        ctx.source = (x.dtype, x.device)
        return x.to(
            device=device,
            dtype=dtype,
            copy=copy,
            non_blocking=non_blocking,
            memory_format=memory_format,
        )

    @staticmethod
    def backward(ctx, grad):
        dtype, device = ctx.source
        return grad.to(device=device, dtype=dtype), None, None, None, None, None


_TO_OPTIONS = ("non_blocking", "copy", "memory_format")


def to_arguments(args, kwargs) -> dict:
    """torch's three ``.to`` signatures read into {dtype, device, copy, non_blocking,
    memory_format}.

        to(dtype, non_blocking=False, copy=False, memory_format=...)
        to(device=None, dtype=None, non_blocking=False, copy=False, memory_format=...)
        to(other, non_blocking=False, copy=False)          (other's dtype and device)
    """
    args, found = list(args), {}
    if (
        args
        and hasattr(args[0], "dtype")
        and hasattr(args[0], "device")
        and not isinstance(args[0], torch.dtype)
    ):
        other = args.pop(0)
        found["dtype"], found["device"] = other.dtype, other.device
    elif args and isinstance(args[0], torch.dtype):
        found["dtype"] = args.pop(0)
    elif (
        args
        and (args[0] is None or isinstance(args[0], (str, int, torch.device)))
        and not isinstance(args[0], bool)
    ):
        found["device"] = args.pop(0)
        if args and (args[0] is None or isinstance(args[0], torch.dtype)):
            found["dtype"] = args.pop(0)
    if len(args) > 2:
        raise TypeError(
            f"to(): too many positional arguments {tuple(args)!r}; use to(dtype), "
            "to(device, dtype) or to(other_tensor)"
        )
    for name, value in zip(_TO_OPTIONS, args):
        found[name] = value
    for name, value in kwargs.items():
        if name not in ("dtype", "device") + _TO_OPTIONS:
            raise TypeError(f"to() got an unexpected keyword argument {name!r}")
        if name in found:
            raise TypeError(f"to() got multiple values for argument {name!r}")
        found[name] = value
    for name in ("non_blocking", "copy"):
        if not isinstance(found.get(name, False), bool):
            raise TypeError(
                f"to(): {name} must be True or False, got {found[name]!r}; use "
                "to(dtype), to(device, dtype) or to(other_tensor)"
            )
    dtype = found.get("dtype")
    if dtype is not None and not isinstance(dtype, torch.dtype):
        raise TypeError(f"to(): dtype must be a torch.dtype, got {dtype!r}")
    device = found.get("device")
    if device is not None:
        if isinstance(device, int):
            device = f"cuda:{device}"
        try:
            device = torch.device(device)
        except (RuntimeError, TypeError) as error:
            raise type(error)(
                f"to(): {device!r} is not a device ({error}); use 'cpu', 'cuda' or 'cuda:1'"
            ) from error
    return {
        "dtype": dtype,
        "device": device,
        "copy": found.get("copy", False),
        "non_blocking": found.get("non_blocking", False),
        "memory_format": found.get("memory_format", torch.preserve_format),
    }


def same_device(device: torch.device | None, current: torch.device) -> bool:
    """Is `device` where `current` already is? ('cuda' without an index means the current one.)"""
    return device is None or (
        device.type == current.type and (device.index is None or device.index == current.index)
    )


def check_device_available(device: torch.device | None, call: str = "", probe=None) -> None:
    """Raise torch's own error (its type) with a fix, when `device` can't be used here.

    probe: what torch would run (its error type differs between .to('cuda') and .cuda(0)).
    """
    if (
        device is None
        or device.type == "cpu"
        or (device.type == "cuda" and torch.cuda.is_available())
    ):
        return
    try:
        probe() if probe is not None else torch.empty(0, device=device)
    except Exception as error:  # AssertionError on a CPU-only build, RuntimeError otherwise
        message = (
            f"{call or f'to({str(device)!r})'}: this machine can't use device {str(device)!r} "
            f"({error}). Keep the tensor on the CPU, or choose the device with "
            "device = 'cuda' if torch.cuda.is_available() else 'cpu'"
        )
        try:
            raise type(error)(message) from error
        except TypeError:
            raise RuntimeError(message) from error


# --- functions, as torch has them (torch.flatten(x, 1), ...) ---------------------------------


def reshape(input, shape):
    """torch.reshape: ``input.reshape(shape)``, shape a tuple; see `Reshape` for the shapes and
    errors."""
    return input.reshape(shape)


def flatten(input, start_dim: int = 0, end_dim: int = -1):
    """torch.flatten: ``input.flatten(start_dim, end_dim)``, dims start_dim..end_dim merged into
    one. Errors: IndexError for a dim out of range, RuntimeError if start_dim comes after
    end_dim."""
    return input.flatten(start_dim, end_dim)


def squeeze(input, dim=None):
    """torch.squeeze: ``input.squeeze(dim)``, the size-1 dims (all, or those in dim) removed;
    see `Squeeze` for the errors."""
    return input.squeeze(dim)


def unsqueeze(input, dim: int):
    """torch.unsqueeze: ``input.unsqueeze(dim)``, a size-1 dim inserted at dim; see
    `Unsqueeze` for the errors."""
    return input.unsqueeze(dim)


def permute(input, dims):
    """torch.permute: ``input.permute(dims)``, dim i of the result is dim dims[i] of input;
    see `Permute` for the errors."""
    return input.permute(dims)


def transpose(input, dim0: int, dim1: int):
    """torch.transpose: ``input.transpose(dim0, dim1)``, two dims swapped; see `Transpose` for
    the errors."""
    return input.transpose(dim0, dim1)


def movedim(input, source, destination):
    """torch.movedim: ``input.movedim(source, destination)``, dims source moved to positions
    destination (a permute). Errors: IndexError for a dim out of range, RuntimeError for a
    dim named twice or sequences of different lengths, TypeError for an int with a
    sequence."""
    return input.movedim(source, destination)


def clone(input, *, memory_format=torch.preserve_format):
    """torch.clone: ``input.clone()``, a recorded copy (`Clone`) with input's shape and
    dtype."""
    return input.clone(memory_format=memory_format)
