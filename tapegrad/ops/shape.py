"""Ops that move values around without changing them: reshape, transpose, unsqueeze, expand, to().

They are linear, and each derivative is the transposed move: reshape back,
transpose back, sum over what expand repeated. Indexing is in `indexing.py`.
"""

from ..function import Function
from .broadcast import unbroadcast


class Reshape(Function):
    """y = x.reshape(shape)

    dL/dx = dL/dy.reshape(x.shape)
    """

    check_grad_shapes = False

    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.in_shape), None

    @staticmethod
    def returns_view(node) -> bool:
        return True


class Transpose(Function):
    """y = x.transpose(d0, d1)   (swap two dimensions)

    dL/dx = dL/dy.transpose(d0, d1)
    """

    check_grad_shapes = False

    @staticmethod
    def forward(ctx, x, dim0, dim1):
        ctx.dims = (dim0, dim1)
        return x.transpose(dim0, dim1)

    @staticmethod
    def backward(ctx, grad):
        return grad.transpose(*ctx.dims), None, None

    @staticmethod
    def returns_view(node) -> bool:
        return True


class Unsqueeze(Function):
    """y = x.unsqueeze(dim)   (a new dimension of size 1 at `dim`)

    dL/dx = dL/dy.reshape(x.shape)
    """

    check_grad_shapes = False

    @staticmethod
    def forward(ctx, x, dim):
        ctx.in_shape = x.shape
        return x.unsqueeze(dim)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.in_shape), None

    @staticmethod
    def returns_view(node) -> bool:
        return True


class Expand(Function):
    """y = x.expand(sizes)   (size-1 dimensions repeated, new leading dimensions added; a view)

    dL/dx = dL/dy summed over the repeated and added dimensions
    """

    check_grad_shapes = False

    @staticmethod
    def forward(ctx, x, sizes):
        ctx.in_shape = x.shape
        return x.expand(sizes)

    @staticmethod
    def backward(ctx, grad):
        return unbroadcast(grad, ctx.in_shape), None

    @staticmethod
    def returns_view(node) -> bool:
        return True


class To(Function):
    """y = x.to(dtype / device)

    dL/dx = dL/dy.to(x's dtype and device)
    """

    check_grad_shapes = False

    @staticmethod
    def forward(ctx, x, args, kwargs):
        ctx.source = (x.dtype, x.device)
        return x.to(*args, **kwargs)

    @staticmethod
    def backward(ctx, grad):
        dtype, device = ctx.source
        return grad.to(device=device, dtype=dtype), None, None

    @staticmethod
    def returns_view(node) -> bool:
        return True         # when nothing changes, x.to(...) is x itself
