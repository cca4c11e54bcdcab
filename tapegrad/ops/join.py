"""Joining tensors (cat, stack) and cutting one into pieces (split, chunk, unbind).

A join is one op with many inputs: its derivative cuts dL/dy back into the
pieces that each input filled. A cut records one node per piece, each
an ordinary slice ``x[:, 2:5]`` (a `GetItem`), whose derivative places the
piece's gradient back into zeros shaped like x; the sweep adds the pieces'
contributions, so x's gradient is assembled from all of them.
"""

from __future__ import annotations

import operator

import torch

from ..errors import DtypeError, ShapeError
from ..function import Function
from ..tensor import Tensor, as_operand
from .shape import normalize_dim


def _along(dim: int, item) -> tuple:
    """The index that applies `item` (an int or a slice) to dimension `dim`: (:, :, item)."""
    return item if dim == 0 else (slice(None),) * dim + (item,)  # x[item] reads best


def _check_tensors(tensors, prefix: str = "") -> None:
    """A non-empty sequence of tensors whose floating dtypes agree (tapegrad doesn't promote)."""
    if not tensors:
        raise ValueError(f"{prefix}expected a non-empty list of tensors")
    for position, t in enumerate(tensors):
        if not hasattr(t, "dtype") or not hasattr(t, "shape"):
            raise TypeError(
                f"{prefix}element {position} is a {type(t).__name__}, not a tensor; "
                "build it with tapegrad.tensor(...)"
            )
    floating = [(p, t.dtype) for p, t in enumerate(tensors) if t.is_floating_point()]
    for position, dtype in floating[1:]:
        if dtype != floating[0][1]:
            raise DtypeError(
                f"{prefix}tensor {position} is {dtype} but tensor {floating[0][0]} is "
                f"{floating[0][1]}; convert them with .float() or .double() so all "
                "agree (tapegrad does not promote silently)"
            )


def _is_skipped_by_cat(t: torch.Tensor, ndim: int) -> bool:
    """torch.cat still skips 1-D empty tensors, shape (0,), among tensors of other ranks."""
    return ndim != 1 and t.dim() == 1 and t.shape[0] == 0


def cat_layout(tensors, dim, op: str = "") -> tuple:
    """(dim as an index, each tensor's size along it: None for one that cat skips); torch's
    errors."""
    prefix = f"{op}: " if op else ""
    _check_tensors(tensors, prefix)
    for position, t in enumerate(tensors):
        if t.dim() == 0:
            raise ShapeError(
                f"{prefix}tensor {position} is 0-d and cannot be concatenated; "
                "use stack, or .reshape(1) / .unsqueeze(0) it first"
            )
    first = next((t for t in tensors if t.dim() != 1 or t.shape[0] != 0), tensors[0])
    d = normalize_dim(dim, first.shape, op)
    sizes: list = []
    for t in tensors:
        if _is_skipped_by_cat(t, first.dim()):
            sizes.append(None)
        elif (
            t.dim() != first.dim()
            or t.shape[:d] + t.shape[d + 1 :] != first.shape[:d] + first.shape[d + 1 :]
        ):
            shapes = ", ".join(str(tuple(u.shape)) for u in tensors)
            raise ShapeError(
                f"{prefix}the tensors must have the same shape except in dim {d}, "
                f"got shapes {shapes}; reshape or slice them so they agree"
            )
        else:
            sizes.append(t.shape[d])
    return d, sizes


class Cat(Function):
    """y = cat([x_1, ..., x_k], dim)   (the x_i one after another along dim)

    dL/dx_i = the slice of dL/dy along dim that x_i filled

    The x_i agree in shape except along dim (1-D empty ones are skipped, as in torch); y's
    size along dim is the sum of theirs. Errors: ValueError for no tensors, ShapeError (a
    RuntimeError) for shapes that don't fit or a 0-d x_i, IndexError for a dim out of range,
    DtypeError for float32 with float64.
    """

    check_grad_shapes = False

    @staticmethod
    def forward(ctx, dim, *tensors):
        ctx.dim, ctx.sizes = cat_layout(tensors, dim)
        return torch.cat(tensors, ctx.dim)

    @staticmethod
    def backward(ctx, grad):
        grads, start = [None], 0
        for size, needed in zip(ctx.sizes, ctx.needs_input_grad[1:]):
            if size is None:  # a (0,) tensor that cat skipped: an empty gradient
                grads.append(grad.reshape(-1)[0:0] if needed else None)
                continue
            grads.append(grad[_along(ctx.dim, slice(start, start + size))] if needed else None)
            start += size
        return tuple(grads)


def stack_dim(tensors, dim, op: str = "") -> int:
    """The new dim as an index, once the tensors are checked to have one shape; torch's errors."""
    prefix = f"{op}: " if op else ""
    if not tensors:
        raise RuntimeError(f"{prefix}expected a non-empty list of tensors")
    _check_tensors(tensors, prefix)
    shape = tensors[0].shape
    for position, t in enumerate(tensors):
        if t.shape != shape:
            raise ShapeError(
                f"{prefix}every tensor must have the same shape, got "
                f"{tuple(shape)} at entry 0 and {tuple(t.shape)} at entry "
                f"{position}; reshape or pad them so they agree (or use cat)"
            )
    return normalize_dim(dim, shape, op, new=1)


class Stack(Function):
    """y = stack([x_1, ..., x_k], dim)   (a new dimension at dim, y[.., i, ..] = x_i)

    dL/dx_i = dL/dy[.., i, ..]   (index i of the new dimension)

    The x_i have one shape; y has it with a new dimension of size k at dim, in [-ndim - 1,
    ndim]. Errors: RuntimeError for no tensors, ShapeError (a RuntimeError) for shapes that
    differ, IndexError for a dim out of range, DtypeError for float32 with float64.
    """

    check_grad_shapes = False

    @staticmethod
    def forward(ctx, dim, *tensors):
        ctx.dim = stack_dim(tensors, dim)
        return torch.stack(tensors, ctx.dim)

    @staticmethod
    def backward(ctx, grad):
        return (None,) + tuple(
            grad[_along(ctx.dim, i)] if needed else None
            for i, needed in enumerate(ctx.needs_input_grad[1:])
        )


# --- the functions ---------------------------------------------------------------------


def _tensors(tensors, op: str) -> list:
    if isinstance(tensors, (Tensor, torch.Tensor)) or not hasattr(tensors, "__iter__"):
        raise TypeError(
            f"{op}: takes a list or tuple of tensors, got a "
            f"{type(tensors).__name__}; write {op.split('(')[0]}([a, b])"
        )
    return [as_operand(t) for t in tensors]


def cat(tensors, dim: int = 0) -> Tensor:
    """torch.cat: join tensors along an existing dimension `dim`.

    Shapes must agree except along `dim` (as in torch, 1-D empty tensors
    are skipped). Errors: ValueError for an empty list, RuntimeError
    (ShapeError) for shapes that don't fit or 0-d tensors, IndexError for a
    dim out of range, DtypeError for float32 with float64.
    """
    tensors = _tensors(tensors, "cat()")
    cat_layout(tensors, dim, "cat()")  # errors with cat's name and the shapes, before recording
    return Cat.apply(dim, *tensors)


concat = concatenate = cat


def stack(tensors, dim: int = 0) -> Tensor:
    """torch.stack: join tensors of one shape along a new dimension `dim`.

    Errors: RuntimeError (ShapeError) for shapes that differ or an empty
    list, IndexError for a dim out of range, DtypeError for float32 with float64.
    """
    tensors = _tensors(tensors, "stack()")
    stack_dim(tensors, dim, "stack()")
    return Stack.apply(dim, *tensors)


def _dim_to_cut(tensor, dim, op: str) -> int:
    if tensor.dim() == 0:
        raise RuntimeError(
            f"{op}: expects at least a 1-dimensional tensor, got a 0-d one; "
            "reshape it first (x.reshape(1))"
        )
    return normalize_dim(dim, tensor.shape, op)


def _pieces(tensor, dim: int, sizes) -> tuple:
    """Consecutive slices of `tensor` along `dim`, of the given sizes: one GetItem each."""
    pieces, start = [], 0
    for size in sizes:
        pieces.append(tensor[_along(dim, slice(start, start + size))])
        start += size
    return tuple(pieces)


def split(tensor, split_size_or_sections, dim: int = 0) -> tuple:
    """torch.split: cut `tensor` along `dim` into pieces of one size, or of the listed sizes.

    An int size gives pieces of that size, the last one smaller if the
    dim's size is not a multiple of it; a list gives one piece per size.

    Each piece is a view (a recorded slice). Errors, as torch: RuntimeError
    for a negative size, a size 0 of a non-empty dim, or sizes that don't
    add up to the dim's size; IndexError for a dim out of range.
    """
    d = _dim_to_cut(tensor, dim, "split()")
    length = tensor.shape[d]
    if isinstance(split_size_or_sections, (list, tuple, torch.Size)):
        sizes = [_size(s) for s in split_size_or_sections]
        if any(s < 0 for s in sizes) or sum(sizes) != length:
            raise ShapeError(
                f"split(): sizes {sizes} must be non-negative and add up to {length}, "
                f"the size of dim {d} of the tensor of shape {tuple(tensor.shape)}"
            )
    else:
        size = _size(split_size_or_sections)
        if size < 0 or (size == 0 and length != 0):
            raise ShapeError(
                f"split(): split_size must be positive (0 only for an empty dim), got "
                f"{size} for dim {d} of size {length}"
            )
        sizes = [p.shape[0] for p in torch.split(torch.empty(length, 0), size)] if size else [0]
    return _pieces(tensor, d, sizes)


def _size(value) -> int:
    """A piece's size for split(): an int (or a 0-d integer tensor), else TypeError, as torch."""
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(
            f"split(): sizes must be ints, got {type(value).__name__} ({value!r})"
        ) from None


def chunk(tensor, chunks: int, dim: int = 0) -> tuple:
    """torch.chunk: cut `tensor` along `dim` into `chunks` pieces of one size.

    Each piece has ceil(n / chunks) elements along `dim` (the last fewer),
    so there may be fewer than `chunks` pieces, as in torch.

    Errors, as torch: RuntimeError for chunks < 1 or a 0-d tensor; IndexError for a dim out of
    range.
    """
    d = _dim_to_cut(tensor, dim, "chunk()")
    if int(chunks) < 1:
        raise RuntimeError(f"chunk(): chunks must be at least 1, got {chunks}")
    sizes = [p.shape[0] for p in torch.chunk(torch.empty(tensor.shape[d], 0), int(chunks))]
    return _pieces(tensor, d, sizes)


def unbind(tensor, dim: int = 0) -> tuple:
    """torch.unbind: the slices ``tensor[.., i, ..]`` along `dim`, each without that dimension.

    Errors: IndexError for a 0-d tensor or a dim out of range.
    """
    if tensor.dim() == 0:
        raise IndexError(
            "unbind(): a 0-d tensor has no dimension to unbind; use .item() or reshape it first"
        )
    d = normalize_dim(dim, tensor.shape, "unbind()")
    return tuple(tensor[_along(d, i)] for i in range(tensor.shape[d]))
