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
    picks each element once). A 0-d integer tensor and a numpy integer count
    as ints, as in torch. Anything else is advanced. Lists are converted
    element by element.
    """
    items = index if isinstance(index, tuple) else (index,)
    plain = []
    basic = True
    for item in items:
        item = _plain(item)
        if (
            isinstance(item, torch.Tensor)
            and item.dim() == 0
            and not item.is_floating_point()
            and not item.is_complex()
            and item.dtype not in (torch.bool, torch.uint8)
        ):
            item = int(item)  # torch reads a 0-d integer tensor as an int: a view
        if not (
            item is None
            or item is Ellipsis
            or isinstance(item, slice)
            or (isinstance(item, int) and not isinstance(item, bool))
        ):
            basic = False
        plain.append(item)
    return (tuple(plain) if isinstance(index, tuple) else plain[0]), basic


def _plain(item):
    """One index item as torch takes it (tapegrad tensors, numpy values and arrays converted)."""
    if isinstance(item, Tensor):
        return item.data
    if type(item).__module__ == "numpy":
        import numpy

        if isinstance(item, numpy.integer) or (
            isinstance(item, numpy.ndarray)
            and not item.ndim
            and numpy.issubdtype(item.dtype, numpy.signedinteger)
        ):
            return int(item)
        if isinstance(item, numpy.ndarray) and item.ndim:
            return torch.as_tensor(item)
        return item  # numpy bools, floats and 0-d arrays: torch judges them as it does
    if isinstance(item, list):
        return [_plain(i) for i in item]
    return item


def index_tensors(index) -> tuple:
    """The tensors in a plain index (saved with the node, so that editing one in place is
    caught)."""
    items = index if isinstance(index, tuple) else (index,)
    return tuple(item for item in items if isinstance(item, torch.Tensor))


class GetItem(Function):
    """y = x[index]   (basic slicing, or advanced: integer / bool tensors, lists, numpy arrays)

    dL/dx = zeros like x, with dL/dy added at the positions that index picked
    (added, not written: an advanced index may pick one element twice)

    y: torch's result of x[index], x's dtype: a view for a basic index, a copy for an
    advanced one. Errors, torch's: IndexError for an index out of range, too many indices,
    a bool mask of the wrong shape or a float index; TypeError for an index of another type.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x, index):
        index, basic = plain_index(index)
        ctx.key = index
        ctx.basic = basic
        ctx.in_shape = x.shape
        if not basic:
            ctx.save_for_backward(*index_tensors(index))
        try:
            return x[index]
        except IndexError as error:
            if "out of bounds" not in str(error):
                raise
            raise IndexError(
                f"{error} (x has shape {tuple(x.shape)}; an index into a "
                "dimension of size n runs from -n to n - 1)"
            ) from error

    @staticmethod
    def backward(ctx, grad):
        _ = ctx.saved_tensors  # refuses an index tensor changed in place since the forward
        if isinstance(grad, torch.Tensor):
            return _add_at(grad, ctx.key, ctx.basic, ctx.in_shape), None
        return GetItemBackward.apply(grad, ctx.key, tuple(ctx.in_shape)), None


class GetItemBackward(Function):
    """z = zeros of shape s, with g added at the positions index picks
       (GetItem's derivative as an op)

    dL/dg = dL/dz[index]

    g: the shape of zeros(s)[index]; z: shape s, g's dtype. Errors, torch's: IndexError for
    an index that does not fit s, RuntimeError for a g of another shape.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, g, index, shape):
        index, basic = plain_index(index)
        ctx.key = index
        return _add_at(g, index, basic, shape)

    @staticmethod
    def backward(ctx, grad):
        return grad[ctx.key], None, None


def _add_at(grad, key, basic, shape):
    """zeros(shape) with `grad` added at x[key]'s positions."""
    out = grad.new_zeros(shape)
    if basic:
        out[key] = grad  # basic indexing picks each element at most once: write the view
        return out
    # the flat positions that x[key] picked (with repeats), then add at each
    positions = torch.arange(out.numel(), device=grad.device).reshape(shape)
    picked = positions[key].reshape(-1)
    out.view(-1).index_add_(0, picked, grad.reshape(-1))
    return out
