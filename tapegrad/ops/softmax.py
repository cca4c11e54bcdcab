"""softmax, log_softmax and logsumexp along a dimension, each computed without overflow.

All three subtract the largest value along `dim` before exponentiating
(torch's kernels do it), so exp never sees a large positive number:

    logsumexp(x) = m + log(sum exp(x - m))       m = max of x along dim
    log_softmax(x) = x - logsumexp(x)
    softmax(x) = exp(log_softmax(x))

softmax and log_softmax save their output, from which their derivative
follows; aten's fused kernels compute it in one pass, and each kernel is
also an op of its own (`SoftmaxBackward`, `LogSoftmaxBackward`) for
``create_graph=True`` (see `ops/dual.py`).
"""

from __future__ import annotations

import torch

from .. import _kernels
from ..function import Function
from ..tensor import Tensor
from .dual import dual

_softmax_backward_data = _kernels.aten("_softmax_backward_data")
_log_softmax_backward_data = _kernels.aten("_log_softmax_backward_data")


class Softmax(Function):
    """y = exp(x) / (sum over dim of exp(x))   (each slice along dim sums to 1)

    dL/dx = y * (dL/dy - sum over dim of dL/dy * y)

    x: any shape, floating-point; dim: one int. y: x's shape and dtype. Errors, torch's:
    IndexError for a dim out of range, NotImplementedError (a RuntimeError) for an integer x.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x, dim):
        y = torch.softmax(x, dim)
        ctx.dim = dim
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        if isinstance(grad, Tensor):  # create_graph=True: the same derivative, recorded as an op
            return SoftmaxBackward.apply(grad, y, ctx.dim), None
        return _softmax_backward_data(grad, y, ctx.dim, y.dtype), None


class SoftmaxBackward(Function):
    """z = y * (g - s),  s = sum over dim of g * y
           (softmax's derivative as an op: g is y's gradient)

    dL/dg = y * (dL/dz - sum over dim of dL/dz * y)
    dL/dy = dL/dz * (g - s) - g * (sum over dim of dL/dz * y)

    g, y and z: one shape (y's) and floating dtype. Errors: RuntimeError (torch's) for g and
    y of different shapes.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, g, y, dim):
        ctx.dim = dim
        ctx.save_for_backward(g, y)
        return _softmax_backward_data(g, y, dim, y.dtype)

    @staticmethod
    def backward(ctx, grad):
        g, y = ctx.saved_tensors
        need_g, need_y, _ = ctx.needs_input_grad
        dim = ctx.dim
        grad_g = softmax_backward(grad, y, dim) if need_g else None
        grad_y = None
        if need_y:
            s = (g * y).sum(dim, keepdim=True)
            grad_y = grad * (g - s) - g * (grad * y).sum(dim, keepdim=True)
        return grad_g, grad_y, None


softmax_backward = dual(
    lambda g, y, dim: _softmax_backward_data(g, y, dim, y.dtype), SoftmaxBackward
)


class LogSoftmax(Function):
    """y = x - log(sum over dim of exp(x))

    dL/dx = dL/dy - exp(y) * (sum over dim of dL/dy)

    x: any shape, floating-point; dim: one int. y: x's shape and dtype. Errors, torch's:
    IndexError for a dim out of range, NotImplementedError (a RuntimeError) for an integer x.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x, dim):
        y = torch.log_softmax(x, dim)
        ctx.dim = dim
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        if isinstance(grad, Tensor):  # create_graph=True: the same derivative, recorded as an op
            return LogSoftmaxBackward.apply(grad, y, ctx.dim), None
        return _log_softmax_backward_data(grad, y, ctx.dim, y.dtype), None


class LogSoftmaxBackward(Function):
    """z = g - exp(y) * (sum over dim of g)   (log_softmax's derivative as an op: g is y's gradient)

    dL/dg = dL/dz - sum over dim of dL/dz * exp(y)
    dL/dy = -dL/dz * exp(y) * (sum over dim of g)

    g, y and z: one shape (y's) and floating dtype, as the sweep passes them. aten's kernel
    does not check that g and y agree: it raises nothing, and reads wrong values, if they
    don't.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, g, y, dim):
        ctx.dim = dim
        ctx.save_for_backward(g, y)
        return _log_softmax_backward_data(g, y, dim, y.dtype)

    @staticmethod
    def backward(ctx, grad):
        g, y = ctx.saved_tensors
        need_g, need_y, _ = ctx.needs_input_grad
        dim = ctx.dim
        p = y.exp()
        grad_g = grad - (grad * p).sum(dim, keepdim=True) if need_g else None
        grad_y = -(grad * p) * g.sum(dim, keepdim=True) if need_y else None
        return grad_g, grad_y, None


class LogSumExp(Function):
    """y = log(sum over dim of exp(x))   (dim: an int or a tuple; keepdim as in sum)

    dL/dx = dL/dy * exp(x - y)   (dL/dy and y spread back over the summed dimensions)

    y: x's shape without the dims of `dim` (each kept as size 1 with keepdim); floating-point
    (an integer x gives the default float dtype). Errors, torch's: IndexError for a dim out
    of range, RuntimeError for a dim named twice or an empty tuple.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x, dim, keepdim=False):
        y = torch.logsumexp(x, dim, keepdim)
        ctx.dims = _dims(dim, x.dim())
        ctx.keepdim = keepdim
        ctx.kept_shape = _kept_shape(x.shape, ctx.dims)
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        if not ctx.keepdim and x.dim() > 0:
            grad = grad.reshape(ctx.kept_shape)
            y = y.reshape(ctx.kept_shape)
        return grad * (x - y).exp(), None, None


def _dims(dim, ndim: int) -> tuple:
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    if not dims:  # every dimension (torch 2.13's logsumexp itself refuses dim=(): passed on)
        return tuple(range(ndim))
    return tuple(sorted(d % max(ndim, 1) for d in dims))


def _kept_shape(shape, dims) -> tuple:
    return tuple(1 if i in dims else size for i, size in enumerate(shape))


# --- the functions (tapegrad.softmax, ...), with torch's signatures ---------------------


def _check_dim(name: str, x, dim) -> None:
    ndim = max(x.dim(), 1)
    dims = dim if isinstance(dim, (tuple, list)) and name == "logsumexp" else (dim,)
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, int):
            kind = "an int or a tuple of ints" if name == "logsumexp" else "an int"
            raise TypeError(f"{name}(): dim must be {kind}, got {dim!r}")
        if not -ndim <= d < ndim:
            raise IndexError(
                f"{name}(): dim {d} is out of range for a tensor of shape "
                f"{tuple(x.shape)} (expected a dim in [{-ndim}, {ndim - 1}])"
            )


def _as_dtype(x, dtype):
    return x if dtype is None or x.dtype == dtype else x.to(dtype)


def softmax(input, dim: int, dtype=None):
    """softmax(x, dim): exp(x) / sum exp(x) along `dim` (`dtype`: convert x first, as torch).

    `Softmax`; also ``x.softmax(dim)``. input's shape; each slice along dim sums to 1.
    Errors: IndexError for a dim out of range, TypeError for a dim that is not one int,
    NotImplementedError (a RuntimeError, torch's) for an integer tensor without dtype.
    """
    try:
        return Softmax.apply(_as_dtype(input, dtype), dim)
    except (TypeError, IndexError, RuntimeError):
        _check_dim("softmax", input, dim)
        raise


def log_softmax(input, dim: int, dtype=None):
    """log_softmax(x, dim): x - logsumexp(x, dim), computed stably (`dtype`: convert x first).

    `LogSoftmax`; also ``x.log_softmax(dim)``. input's shape; the errors of `softmax`.
    """
    try:
        return LogSoftmax.apply(_as_dtype(input, dtype), dim)
    except (TypeError, IndexError, RuntimeError):
        _check_dim("log_softmax", input, dim)
        raise


def logsumexp(input, dim, keepdim: bool = False):
    """logsumexp(x, dim, keepdim=False): log(sum(exp(x))) over `dim` (an int or a tuple), stably.

    `LogSumExp`; also ``x.logsumexp(dim)``. The dims of `dim` are removed (kept as size 1
    with keepdim); floating-point (an integer tensor gives the default float dtype). Errors:
    IndexError for a dim out of range, TypeError for a dim that is not an int or a tuple of
    ints (None too), RuntimeError (torch's) for a dim named twice or dim=().
    """
    try:
        return LogSumExp.apply(input, dim, keepdim)
    except (TypeError, IndexError, RuntimeError):
        _check_dim("logsumexp", input, dim)
        raise
