"""Reductions: sum and mean, over everything or over `dim` (an int or a tuple), with `keepdim`."""

from ..function import Function


def _reduced_dims(dim, ndim):
    """`dim` as a sorted tuple of non-negative ints (None: every dimension)."""
    dims = (dim,) if isinstance(dim, int) else dim
    if dims is None or len(dims) == 0:
        return tuple(range(ndim))    # torch reads dim=() as every dimension, too
    dims = tuple(dims)
    if ndim == 0:
        ndim = 1        # torch lets a 0-d tensor reduce over dim 0 or -1
    try:
        return tuple(sorted(d % ndim for d in dims))
    except TypeError:
        raise TypeError(f"dim must be None, an int or a tuple of ints, got {dim!r}") from None


def _spread(grad, ctx):
    """dL/dy spread back over the reduced dimensions, to the input's shape."""
    if not ctx.keepdim and ctx.dims and len(ctx.in_shape) > 0:
        shape = list(ctx.in_shape)
        for d in ctx.dims:
            shape[d] = 1
        grad = grad.reshape(shape)
    return grad.expand(ctx.in_shape)


class Sum(Function):
    """y = sum of x over `dim` (all of x when dim is None)

    dL/dx[i] = dL/dy[the output element that x[i] was summed into]
    """

    check_grad_shapes = False

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        ctx.in_shape = x.shape
        ctx.dims = _reduced_dims(dim, x.dim())
        ctx.keepdim = keepdim and dim is not None
        if dim is None:
            return x.sum()
        return x.sum(dim, keepdim=keepdim)

    @staticmethod
    def backward(ctx, grad):
        return _spread(grad, ctx), None, None


class Mean(Function):
    """y = mean of x over `dim` (all of x when dim is None), n = number of elements averaged

    dL/dx[i] = dL/dy[the output element x[i] was averaged into] / n
    """

    check_grad_shapes = False

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        ctx.in_shape = x.shape
        ctx.dims = _reduced_dims(dim, x.dim())
        ctx.keepdim = keepdim and dim is not None
        count = 1
        for d in ctx.dims:
            count *= x.shape[d] if x.dim() > 0 else 1
        ctx.count = count
        if dim is None:
            return x.mean()
        return x.mean(dim, keepdim=keepdim)

    @staticmethod
    def backward(ctx, grad):
        return _spread(grad / ctx.count, ctx), None, None
