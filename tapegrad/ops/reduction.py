"""Reductions: sum, mean, max, min, amax, amin, var, std and prod; argmax and argmin (no gradient).

`dim` follows torch: an int or a tuple of ints, negative counting from the
end (dim=-1 is the last); None, and for sum/mean/amax/amin/var/std also
(), means every dimension. ``keepdim=True`` keeps each reduced dimension
with size 1. A 0-d tensor reduces over dim 0 or -1 to itself.

The derivative of a reduction first gives dL/dy back the reduced
dimensions (size 1, `_kept`), then spreads it over them:

    sum, mean     every element gets dL/dy (/ n for the mean)
    max, min      over all elements, or amax/amin: the elements equal to the
                  extreme share dL/dy evenly (two tied maxima get half each)
    max(dim)      only the element at the index that max returned gets it
    var, std      each element in proportion to its distance from the mean

Errors, of the type torch raises: a dim out of range is an IndexError, a
dim given twice a RuntimeError, a max/min/amax/amin/argmax of an empty
tensor without dim a RuntimeError (there is no element to pick), and along
an empty dim an IndexError.

At the end, the functions torch has under ``torch.``: ``tapegrad.max``,
``tapegrad.sum``, ... (this module's max, min and sum hide Python's
builtins, which it reaches as ``builtins.max``).
"""

import builtins
import math
import operator
from collections import namedtuple

import torch

from ..errors import DtypeError
from ..function import Function
from ..tensor import Tensor
from .dual import dual
from .select import where

# --- dims -----------------------------------------------------------------------------------


def _reduced_dims(dim, ndim):
    """`dim` as a sorted tuple of non-negative ints (None or (): every dimension), checked as
    torch."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else dim
    try:
        dims = tuple(operator.index(d) for d in dims)
    except TypeError:
        raise TypeError(f"dim must be None, an int or a tuple of ints, got {dim!r}") from None
    if not dims:
        return tuple(range(ndim))  # torch reads dim=() as every dimension, too
    positive = tuple(_dim(d, ndim) for d in dims)
    if len(set(positive)) != len(positive):
        raise RuntimeError(f"dim {dim!r} names one dimension twice; name each at most once")
    return tuple(sorted(positive))


def _dim(dim, ndim) -> int:
    """One dim as a non-negative int; IndexError (as torch) when out of range."""
    rank = builtins.max(ndim, 1)  # a 0-d tensor takes dim 0 and -1
    if not -rank <= dim < rank:
        raise IndexError(
            f"dim {dim} is out of range for a tensor of {ndim} dimension(s): use a "
            f"dim in [{-rank}, {rank - 1}]"
        )
    return dim % rank


def _one_dim(name, dim, shape) -> int:
    """The single int dim of max(dim), argmax(dim), prod(dim): checked, non-negative."""
    try:
        dim = operator.index(dim)
    except TypeError:
        several = "; to reduce over several, use amax/amin" if name in ("max", "min") else ""
        raise TypeError(f"{name}(dim=...) takes one int dim, got {dim!r}{several}") from None
    return _dim(dim, len(shape))


def _kept_shape(ctx) -> tuple:
    """The output's shape with the reduced dimensions kept, as keepdim=True gives it."""
    shape = list(ctx.in_shape)
    for d in ctx.dims:
        shape[d] = 1
    return tuple(shape)


def _kept(t, ctx):
    """`t` (shaped like the output) with the reduced dimensions back, as size 1."""
    if ctx.keepdim or not ctx.dims or len(ctx.in_shape) == 0:
        return t
    return t.reshape(_kept_shape(ctx))


def _spread(grad, ctx):
    """dL/dy spread back over the reduced dimensions, to the input's shape."""
    return _kept(grad, ctx).expand(ctx.in_shape)


def _note_dims(ctx, x, dim, keepdim) -> None:
    ctx.in_shape = x.shape
    ctx.dims = _reduced_dims(dim, x.dim())
    ctx.keepdim = bool(keepdim)


def _every_dim(dim) -> bool:
    """Does `dim` (None, an int, a tuple or list) mean every dimension?"""
    return dim is None or (not isinstance(dim, int) and len(dim) == 0)


def _refuse_empty(name, x) -> None:
    """A reduction over every element of an empty tensor has none to pick (torch: RuntimeError)."""
    if x.numel() == 0:
        raise RuntimeError(
            f"{name}() of an empty tensor (shape {tuple(x.shape)}) has no element "
            "to pick; give dim= to reduce along a dimension that is not empty"
        )


def _refuse_empty_dims(name, x, dims) -> None:
    """Nor has a reduction along an empty dim (torch: IndexError)."""
    for d in dims:
        if x.dim() > 0 and x.shape[d] == 0:
            raise IndexError(
                f"{name}(dim={d}) of a tensor of shape {tuple(x.shape)}: dim {d} is "
                "empty, so there is no element to pick"
            )


# --- sum and mean ---------------------------------------------------------------------------


class Sum(Function):
    """y = sum of x over `dim` (all of x when dim is None)

    dL/dx[i] = dL/dy[the output element that x[i] was summed into]

    dim: None or () for all dims, an int or a tuple of ints. y: x's shape without the reduced dims
    (each kept as size 1 with keepdim), 0-d over all; x's dtype (int64 for an integer or bool x, as
    torch). Errors: IndexError for a dim out of range, RuntimeError for a dim named twice, TypeError
    for a dim that is not an int.
    """

    check_grad_shapes = False

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        _note_dims(ctx, x, dim, keepdim)
        return torch.sum(x, dim=dim, keepdim=keepdim)

    @staticmethod
    def backward(ctx, grad):
        return _spread(grad, ctx), None, None


class Mean(Function):
    """y = mean of x over `dim` (all of x when dim is None), n = number of elements averaged

    dL/dx[i] = dL/dy[the output element x[i] was averaged into] / n

    dim and shapes as `Sum`; x floating-point (RuntimeError, torch's, for an integer x); NaN over no
    elements. Errors: IndexError for a dim out of range, RuntimeError for a dim named twice,
    TypeError for a dim that is not an int.
    """

    check_grad_shapes = False

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        _note_dims(ctx, x, dim, keepdim)
        ctx.count = math.prod(x.shape[d] for d in ctx.dims) if x.dim() > 0 else 1
        return torch.mean(x, dim=dim, keepdim=keepdim)

    @staticmethod
    def backward(ctx, grad):
        return _spread(grad / ctx.count, ctx), None, None


# --- max and min over every element -----------------------------------------------------------


class Max(Function):
    """y = the largest element of x   (a 0-d tensor; NaN if x holds a NaN)

    dL/dx = dL/dy / k at each of the k elements equal to y, else 0
    (tied maxima share dL/dy evenly, as in torch; if y is NaN, the NaNs share it)

    x: any shape; y: 0-d, x's dtype. Errors: RuntimeError for an empty x (no element to pick).
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x):
        _refuse_empty("max", x)
        y = torch.max(x)
        _note_winners(ctx, x, y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (winners,) = ctx.saved_tensors
        return where(winners, grad / ctx.count, 0.0)


class Min(Function):
    """y = the smallest element of x   (a 0-d tensor; NaN if x holds a NaN)

    dL/dx = dL/dy / k at each of the k elements equal to y, else 0
    (tied minima share dL/dy evenly, as in torch; if y is NaN, the NaNs share it)

    x: any shape; y: 0-d, x's dtype. Errors: RuntimeError for an empty x (no element to pick).
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x):
        _refuse_empty("min", x)
        y = torch.min(x)
        _note_winners(ctx, x, y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (winners,) = ctx.saved_tensors
        return where(winners, grad / ctx.count, 0.0)


def _note_winners(ctx, x, y) -> None:
    """Save which elements equal the extreme y (NaN counts as equal to NaN), and how many."""
    winners = (x == y) | (x.isnan() & y.isnan())
    ctx.count = int(winners.sum())
    ctx.save_for_backward(winners)


# --- max and min along one dim: (values, indices) ----------------------------------------------


class TakeAlongDim(Function):
    """y = x at `indices` along `dim`: one element of each slice   (indices: y's shape, dim kept)

    dL/dx = dL/dy put back at the picked positions, 0 elsewhere

    indices: int64, x's shape with size 1 along dim (as max(dim, keepdim=True) gives them).
    y: indices' shape, dim removed unless keepdim; x's dtype. Errors, torch's: RuntimeError
    for indices of another rank or dtype, or out of range.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x, indices, dim, keepdim):
        ctx.in_shape = x.shape
        ctx.dim = dim
        ctx.keepdim = keepdim
        ctx.save_for_backward(indices)
        return _take_along(x, indices, dim, keepdim)

    @staticmethod
    def backward(ctx, grad):
        (indices,) = ctx.saved_tensors
        return put_along(grad, indices, ctx.dim, ctx.keepdim, tuple(ctx.in_shape)), None, None, None


class MaxDim(TakeAlongDim):
    """y = the largest element of each slice of x along `dim`   (the values of x.max(dim))

    dL/dx = dL/dy at the index max returned in each slice (the first of tied maxima), 0 elsewhere

    (`TakeAlongDim` at the indices torch.max found, named so that the tape reads max.)
    y: x's shape without dim (size 1 with keepdim), x's dtype. Errors: see `max`.
    """


class MinDim(TakeAlongDim):
    """y = the smallest element of each slice of x along `dim`   (the values of x.min(dim))

    dL/dx = dL/dy at the index min returned in each slice (the first of tied minima), 0 elsewhere

    (`TakeAlongDim` at the indices torch.min found, named so that the tape reads min.)
    y: x's shape without dim (size 1 with keepdim), x's dtype. Errors: see `min`.
    """


class PutAlongDim(Function):
    """z = zeros of `shape`, with g put at `indices` along `dim`   (TakeAlongDim's derivative)

    dL/dg = dL/dz at indices along dim

    g: indices' shape, dim removed unless keepdim; z: `shape`, g's dtype. Errors, torch's:
    RuntimeError for indices out of range or of another rank.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, g, indices, dim, keepdim, shape):
        ctx.dim = dim
        ctx.keepdim = keepdim
        ctx.save_for_backward(indices)
        return _put_along(g, indices, dim, keepdim, shape)

    @staticmethod
    def backward(ctx, grad):
        (indices,) = ctx.saved_tensors
        return take_along(grad, indices, ctx.dim, ctx.keepdim), None, None, None, None


def _take_along(x, indices, dim, keepdim):
    y = torch.gather(x, dim, indices)
    return y if keepdim or x.dim() == 0 else y.squeeze(dim)


def _put_along(g, indices, dim, keepdim, shape):
    if not keepdim and len(shape) > 0:
        g = g.unsqueeze(dim)
    return g.new_zeros(shape).scatter(dim, indices, g)


take_along = dual(_take_along, TakeAlongDim)
put_along = dual(_put_along, PutAlongDim)


class return_types:
    """The named tuples max(dim) and min(dim) return: (values, indices), as torch.return_types."""

    max = namedtuple("max", ["values", "indices"])
    min = namedtuple("min", ["values", "indices"])


def _extreme_along(name, op, input, dim, keepdim):
    """max(dim) / min(dim): the values (recorded by `op`) and the indices (plain int64)."""
    data = input.data if isinstance(input, Tensor) else input
    dim = _one_dim(name, dim, data.shape)
    _refuse_empty_dims(name, data, (dim,))
    _, indices = getattr(torch, name)(data, dim, keepdim=True)
    values = op.apply(input, indices, dim, keepdim)
    if not keepdim and data.dim() > 0:
        indices = indices.squeeze(dim)
    return getattr(return_types, name)(values, Tensor._wrap(indices))


# --- amax and amin: over several dims, ties share ------------------------------------------------


class Amax(Function):
    """y = the largest element of x over `dim` (an int or a tuple; () or None: all of x)

    dL/dx = dL/dy / k at each of the k elements equal to the maximum of their slice, else 0
    (tied maxima share dL/dy evenly; computed as torch does, dL/dy / k * mask, so that
    a slice holding a NaN gets NaN)

    dim and shapes as `Sum`; x's dtype. Errors: RuntimeError for an empty x over every dim,
    IndexError for a dim out of range or empty, RuntimeError for a dim named twice, TypeError
    for a dim that is not an int.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x, dim=(), keepdim=False):
        return _extremes(ctx, x, dim, keepdim, "amax", torch.amax)

    @staticmethod
    def backward(ctx, grad):
        winners, count = ctx.saved_tensors
        return _kept(grad, ctx) / count * winners, None, None


class Amin(Function):
    """y = the smallest element of x over `dim` (an int or a tuple; () or None: all of x)

    dL/dx = dL/dy / k at each of the k elements equal to the minimum of their slice, else 0
    (tied minima share dL/dy evenly; computed as torch does, dL/dy / k * mask, so that
    a slice holding a NaN gets NaN)

    dim and shapes as `Sum`; x's dtype. Errors: RuntimeError for an empty x over every dim,
    IndexError for a dim out of range or empty, RuntimeError for a dim named twice, TypeError
    for a dim that is not an int.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x, dim=(), keepdim=False):
        return _extremes(ctx, x, dim, keepdim, "amin", torch.amin)

    @staticmethod
    def backward(ctx, grad):
        winners, count = ctx.saved_tensors
        return _kept(grad, ctx) / count * winners, None, None


def _extremes(ctx, x, dim, keepdim, name, kernel):
    """Amax's and Amin's forward: y; saved, the elements equal to it and their count per slice."""
    _note_dims(ctx, x, dim, keepdim)
    if _every_dim(dim):
        _refuse_empty(name, x)
    _refuse_empty_dims(name, x, ctx.dims)
    y = kernel(x, dim=() if dim is None else dim, keepdim=keepdim)
    winners = x == _kept(y, ctx)
    ctx.save_for_backward(winners, winners.sum(ctx.dims, keepdim=True))
    return y


# --- var and std ------------------------------------------------------------------------------


class Var(Function):
    """y = sum over `dim` of (x - mean)^2 / (n - correction)   (n per slice; correction=1: unbiased)

    dL/dx = dL/dy * 2 (x - mean) / (n - correction)
    (if n <= correction over all of x: inf, and NaN where x = mean, as in torch)

    dim and shapes as `Sum`; x floating-point (RuntimeError, torch's, for an integer x: `var`
    refuses one first, with DtypeError). Errors: IndexError for a dim out of range, RuntimeError for
    a dim named twice, TypeError for a dim that is not an int.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x, dim=None, correction=1, keepdim=False):
        _note_var(ctx, x, dim, correction, keepdim)
        ctx.save_for_backward(x)
        return torch.var(x, dim=dim, correction=correction, keepdim=keepdim)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return _var_backward(ctx, grad, x), None, None, None


class Std(Function):
    """y = sqrt(var(x))   (var over `dim` with `correction`, as in `Var`)

    dL/dx = dL/dy / (2 y) * 2 (x - mean) / (n - correction)   (0 where y = 0, as in torch)

    dim, shapes, dtypes and errors as `Var`.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x, dim=None, correction=1, keepdim=False):
        _note_var(ctx, x, dim, correction, keepdim)
        y = torch.std(x, dim=dim, correction=correction, keepdim=keepdim)
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        return _var_backward(ctx, where(y == 0, 0.0, grad / (y * 2)), x), None, None, None


def _note_var(ctx, x, dim, correction, keepdim) -> None:
    _note_dims(ctx, x, dim, keepdim)
    ctx.count = math.prod(x.shape[d] for d in ctx.dims) if x.dim() > 0 else 1
    ctx.correction = correction
    ctx.over_all = dim is None or x.dim() == 0  # torch's rule for n <= correction differs


def _var_backward(ctx, grad, x):
    """dL/dx of var: dL/dy * 2 (x - mean) / (n - correction); torch's values where
    n <= correction."""
    centred = x - x.mean(ctx.dims, keepdim=True)
    dof = ctx.count - ctx.correction
    grad = _kept(grad, ctx)
    if dof > 0:
        return grad * (2 / dof) * centred
    if ctx.over_all:  # torch: inf, or NaN where x = mean (|x - mean| * inf does both)
        return grad * (centred.abs() * math.inf)
    return grad * (math.inf if dof == 0 else 2 / dof) * centred


# --- prod -------------------------------------------------------------------------------------


class Prod(Function):
    """y = the product of the elements of x over `dim` (one int; None: all of x)

    dL/dx[i] = dL/dy * (the product of the other elements of x[i]'s slice)
    (= dL/dy * y / x[i] where no element is 0; right with zeros too, as torch's)

    y: x's shape without dim (size 1 with keepdim), 0-d over all; x's dtype (int64 for an
    integer x). Errors: IndexError for a dim out of range, TypeError (torch's) for a tuple dim.
    """

    check_grad_shapes = False  # (not fresh_grads: for a 0-d x, dL/dx is dL/dy itself)

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        _note_dims(ctx, x, dim, keepdim)
        y = torch.prod(x) if dim is None else torch.prod(x, dim, keepdim=keepdim)
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        if x.dim() == 0:
            return grad, None, None
        grad, y = _kept(grad, ctx), _kept(y, ctx)
        if not bool((x == 0).data.any()):
            return grad * (y / x), None, None
        if ctx.dims == tuple(range(x.dim())) and x.dim() > 1:  # all of x: as one slice
            others = _others(x.reshape(-1), 0).reshape(ctx.in_shape)
        else:
            others = _others(x, ctx.dims[0])
        return grad * others, None, None


def _others(x, dim):
    """z[i] = the product of the elements of x[i]'s slice along `dim` other than x[i] itself."""
    n = x.shape[dim]
    if isinstance(x, torch.Tensor):
        # the ordinary sweep: products of what comes before and after each element, O(n)
        ones = torch.ones_like(x.narrow(dim, 0, 1))
        before = torch.cat([ones, x.narrow(dim, 0, n - 1)], dim).cumprod(dim)
        after = torch.cat([ones, x.narrow(dim, 1, n - 1).flip(dim)], dim).cumprod(dim).flip(dim)
        return before * after
    # create_graph: a product over an n x n matrix with ones on its diagonal, recorded with Prod
    # itself, so that the tape can differentiate it again (O(n^2) memory; only when x holds a 0)
    row = x.transpose(dim, -1).unsqueeze(-2)  # (..., 1, n)
    square = row.expand(*row.shape[:-2], n, n)  # square[..., i, j] = x_j
    diagonal = torch.eye(n, dtype=torch.bool, device=x.device)
    return where(diagonal, 1.0, square).prod(-1).transpose(dim, -1)


# --- the functions torch has under torch. --------------------------------------------------------


def _data(input):
    return input.data if isinstance(input, Tensor) else input


def sum(input, dim=None, keepdim=False):
    """The sum of the elements over `dim` (`Sum`): None, an int or a tuple, negatives from the
    end.

    The reduced dims are removed (kept as size 1 with keepdim); input's dtype (int64 for an integer
    or bool tensor). Errors: IndexError for a dim out of range, RuntimeError for a dim named twice,
    TypeError for a dim that is not an int.
    """
    return Sum.apply(input, dim, keepdim)


def mean(input, dim=None, keepdim=False):
    """The mean of the elements over `dim` (`Mean`); input must be floating-point (as in torch).

    dim and shapes as `sum`; NaN over no elements. Errors: RuntimeError (torch's) for an integer
    tensor; IndexError for a dim out of range, RuntimeError for a dim named twice, TypeError for a
    dim that is not an int.
    """
    return Mean.apply(input, dim, keepdim)


def max(input, dim=None, keepdim=False):
    """The largest element: ``max(x)`` (0-d), ``max(x, dim)`` -> (values, indices), or
    ``max(x, other)``.

    max(x):              a 0-d tensor (`Max`); RuntimeError for an empty x.
    max(x, dim, keepdim) a named tuple ``(values, indices)`` as torch's: the gradient
                         goes to the index returned (the first of tied maxima);
                         IndexError for a dim out of range or an empty dim. Both have
                         x's shape without dim (size 1 with keepdim); indices are int64.
    max(x, other)        a tensor other: the elementwise `maximum` (shapes broadcast).

    TypeError for a dim that is not one int (use amax for several), or keepdim without dim.
    """
    if isinstance(dim, (Tensor, torch.Tensor)):
        from .select import maximum

        return maximum(input, dim)
    if dim is None:
        if keepdim:
            raise TypeError(
                "max(keepdim=True) needs a dim; to keep every dimension use amax(keepdim=True)"
            )
        return Max.apply(input)
    return _extreme_along("max", MaxDim, input, dim, keepdim)


def min(input, dim=None, keepdim=False):
    """The smallest element: ``min(x)``, ``min(x, dim)`` -> (values, indices), or ``min(x, other)``.

    As `max`, with the smallest element and `minimum`: RuntimeError for an empty x without
    dim; IndexError for a dim out of range or an empty dim; TypeError for a dim that is not
    one int, or keepdim without dim.
    """
    if isinstance(dim, (Tensor, torch.Tensor)):
        from .select import minimum

        return minimum(input, dim)
    if dim is None:
        if keepdim:
            raise TypeError(
                "min(keepdim=True) needs a dim; to keep every dimension use amin(keepdim=True)"
            )
        return Min.apply(input)
    return _extreme_along("min", MinDim, input, dim, keepdim)


def amax(input, dim=(), keepdim=False):
    """The largest element over `dim` (an int or a tuple; (): all); ties share the gradient
    (`Amax`).

    The reduced dims are removed (kept as size 1 with keepdim); input's dtype. Errors:
    RuntimeError for an empty tensor over every dim, IndexError for a dim out of range or
    empty, RuntimeError for a dim named twice, TypeError for a dim that is not an int.
    """
    return Amax.apply(input, dim, keepdim)


def amin(input, dim=(), keepdim=False):
    """The smallest element over `dim` (an int or a tuple; (): all); ties share the gradient
    (`Amin`). Shapes and errors as `amax`."""
    return Amin.apply(input, dim, keepdim)


def argmax(input, dim=None, keepdim=False):
    """The index of the largest element (in the flattened tensor for dim=None): int64, untracked.

    dim=None: a 0-d index (shape (1,) * ndim with keepdim); an int dim: one index per
    slice, that dim removed (or kept as size 1). Errors as torch: IndexError for a dim out
    of range, and for an empty tensor without dim or along an empty dim; TypeError for a
    dim that is not one int.
    """
    return _arg_extreme("argmax", input, dim, keepdim)


def argmin(input, dim=None, keepdim=False):
    """The index of the smallest element (in the flattened tensor for dim=None): int64,
    untracked. Shapes and errors as `argmax`."""
    return _arg_extreme("argmin", input, dim, keepdim)


def _arg_extreme(name, input, dim, keepdim):
    data = _data(input)
    if dim is None:
        if data.numel() == 0:
            raise IndexError(
                f"{name}() of an empty tensor (shape {tuple(data.shape)}) has no "
                "element to pick; give dim= to reduce along a dimension that is not "
                "empty"
            )
    else:
        dim = _one_dim(name, dim, data.shape)
        _refuse_empty_dims(name, data, (dim,))
    return Tensor._wrap(getattr(torch, name)(data, dim, keepdim=keepdim))


def _correction(name, input, unbiased, correction):
    """torch's two spellings: correction= (a number), or the older unbiased= (True: 1, False: 0)."""
    dtype = _data(input).dtype
    if not (dtype.is_floating_point or dtype.is_complex):
        raise DtypeError(
            f"{name}() needs a floating-point tensor, got {dtype}; convert it with "
            ".float() or .double()"
        )
    if unbiased is not None and correction is not None:
        raise TypeError(
            f"{name}(): give correction= or unbiased=, not both (unbiased=True is "
            "correction=1, unbiased=False is correction=0)"
        )
    if correction is not None:
        return correction
    return 1 if unbiased is None or unbiased else 0


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """The variance over `dim` (`Var`): sum of (x - mean)^2 / (n - correction).

    correction=1 (the default, or unbiased=True) is the unbiased estimate,
    correction=0 (unbiased=False) the population variance; as torch,
    ``var(x, True)`` reads the bool as unbiased. Where n <= correction the
    result is inf or NaN, as in torch (which warns). dim (None, an int or a
    tuple) and the shapes as `sum`. Errors: an integer tensor (DtypeError: a
    TypeError; torch: RuntimeError), both correction and unbiased (TypeError),
    a dim out of range (IndexError), a dim named twice (RuntimeError).
    """
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    return Var.apply(input, dim, _correction("var", input, unbiased, correction), keepdim)


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """The standard deviation over `dim` (`Std`): sqrt of `var` with the same arguments.

    Its derivative is 0 where the standard deviation is 0 (all elements of
    the slice equal), as torch's. Shapes and errors as `var`.
    """
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    return Std.apply(input, dim, _correction("std", input, unbiased, correction), keepdim)


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """(var, mean) over `dim`, as torch.var_mean: two tensors of one shape; see `var` and
    `mean` for the arguments and errors."""
    return (
        var(input, dim, unbiased, keepdim, correction=correction),
        mean(input, None if isinstance(dim, bool) else dim, keepdim),
    )


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """(std, mean) over `dim`, as torch.std_mean: two tensors of one shape; see `std` and
    `mean` for the arguments and errors."""
    return (
        std(input, dim, unbiased, keepdim, correction=correction),
        mean(input, None if isinstance(dim, bool) else dim, keepdim),
    )


def prod(input, dim=None, keepdim=False):
    """The product of the elements over one int `dim`, or of all of them (`Prod`).

    Its derivative is right where elements are 0 too (the product of the
    others, not y / x). Errors: a tuple dim (TypeError, as torch), keepdim
    without dim (TypeError), a dim out of range (IndexError).
    """
    if dim is not None:
        dim = _one_dim("prod", dim, _data(input).shape)
    elif keepdim:
        raise TypeError("prod(keepdim=True) needs a dim (as in torch)")
    return Prod.apply(input, dim, keepdim)
