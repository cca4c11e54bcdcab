"""Indexing: y = x[index], and its derivative, which adds dL/dy back at the picked positions.

Every index torch accepts works: ints, slices, None, ``...``, and the
*advanced* forms (integer or bool tensors, numpy arrays, lists and nested
sequences, mixed with slices). Basic indices pick each element at most
once; advanced ones may pick an element several times (``x[[0, 0, 2]]``),
and then each pick adds to its gradient, so the derivative always adds.
"""

import torch

from ..function import Function
from ..tensor import Tensor


def plain_index(index):
    """`index` with tapegrad tensors and numpy arrays as torch tensors; and whether it is basic.

    Basic: only ints, slices, None and Ellipsis (torch returns a view and
    picks each element once). Anything else is advanced.
    """
    items = index if isinstance(index, tuple) else (index,)
    plain = []
    basic = True
    for item in items:
        if isinstance(item, Tensor):
            item = item.data
        elif type(item).__module__ == "numpy":
            item = torch.as_tensor(item) if hasattr(item, "shape") and item.shape else item.item()
        if not (item is None or item is Ellipsis or isinstance(item, slice)
                or (isinstance(item, int) and not isinstance(item, bool))):
            basic = False
        plain.append(item)
    return (tuple(plain) if isinstance(index, tuple) else plain[0]), basic


class GetItem(Function):
    """y = x[index]   (basic slicing, or advanced: integer / bool tensors, lists, numpy arrays)

    dL/dx = zeros like x, with dL/dy added at the positions that index picked
    (added, not written: an advanced index may pick one element twice)
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x, index):
        index, basic = plain_index(index)
        ctx.key = index
        ctx.basic = basic
        ctx.in_shape = x.shape
        return x[index]

    @staticmethod
    def backward(ctx, grad):
        if isinstance(grad, torch.Tensor):
            return _add_at(grad, ctx.key, ctx.basic, ctx.in_shape), None
        return GetItemBackward.apply(grad, ctx.key, ctx.basic, ctx.in_shape), None

    @staticmethod
    def returns_view(node) -> bool:
        return node.basic


class GetItemBackward(Function):
    """z = zeros of shape s, with g added at the positions index picks   (GetItem's derivative as an op)

    dL/dg = dL/dz[index]
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, g, index, basic, shape):
        ctx.key = index
        return _add_at(g, index, basic, shape)

    @staticmethod
    def backward(ctx, grad):
        return grad[ctx.key], None, None, None


def _add_at(grad, key, basic, shape):
    """zeros(shape) with `grad` added at x[key]'s positions."""
    out = grad.new_zeros(shape)
    if basic:
        out[key] = grad             # basic indexing picks each element at most once: write the view
        return out
    # the flat positions that x[key] picked (with repeats), then add at each
    positions = torch.arange(out.numel(), device=grad.device).reshape(shape)
    picked = positions[key].reshape(-1)
    out.view(-1).index_add_(0, picked, grad.reshape(-1))
    return out
