"""Ops that move values around without changing them: reshape, transpose, indexing, to()."""

import torch

from ..function import Function


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


def _plain_index(index):
    """The index with tapegrad tensors unwrapped, and whether it is basic (slices, ints, ...)."""
    from ..tensor import Tensor
    items = index if isinstance(index, tuple) else (index,)
    unwrapped = []
    basic = True
    for item in items:
        if isinstance(item, Tensor):
            item = item.data
        if isinstance(item, (torch.Tensor, list)):
            basic = False
        unwrapped.append(item)
    plain = tuple(unwrapped) if isinstance(index, tuple) else unwrapped[0]
    return plain, basic


class GetItem(Function):
    """y = x[index]   (basic slicing, or integer / boolean index tensors)

    dL/dx = zeros like x, with dL/dy added at the positions that index picked
    (added, not written: an integer index may pick one element twice)
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x, index):
        index, basic = _plain_index(index)
        ctx.key = index
        ctx.basic = basic
        ctx.in_shape = x.shape
        return x[index]

    @staticmethod
    def backward(ctx, grad):
        grad_x = grad.new_zeros(ctx.in_shape)
        if ctx.basic:
            # basic indexing picks each element at most once: write into the view
            grad_x[ctx.key] = grad
        else:
            # find which flat positions were picked (with repeats), and add there
            positions = torch.arange(grad_x.numel(), device=grad.device).reshape(ctx.in_shape)
            picked = positions[ctx.key].reshape(-1)
            grad_x.view(-1).index_add_(0, picked, grad.reshape(-1))
        return grad_x, None


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
