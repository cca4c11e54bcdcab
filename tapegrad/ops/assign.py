"""Ops that overwrite values: x[index] = v, x.fill_(v), x.copy_(src), recorded out of place.

They are what an in-place assignment records when a gradient must flow
through it (see `Tensor._in_place`): the output is a new tensor equal to x
with the values written. What was overwritten sends no gradient back to x.
"""

import torch

from ..errors import DtypeError, ShapeError
from ..function import Function
from .broadcast import shape_of, unbroadcast
from .dual import zeros_like
from .indexing import index_tensors, plain_index
from .select import where


class SetItem(Function):
    """y = x with y[index] = v   (v a tensor or a number, broadcast to x[index]'s shape)

    dL/dx = dL/dy, with 0 at the positions index wrote
    dL/dv = dL/dy[index], summed to v's shape

    With an advanced index that names a position twice (y[[0, 0]] = v),
    one of the writes wins, but as in torch each element of v still gets
    dL/dy at the position it was written to.

    y: x's shape and dtype. Errors: DtypeError for a v of the other float
    dtype (float32 into float64 or back); torch's IndexError for an index out
    of range, RuntimeError for a v that does not broadcast to x[index].
    """

    check_grad_shapes = False  # (not fresh_grads: dL/dv can be dL/dy itself, or a view of it)

    @staticmethod
    def forward(ctx, x, index, value):
        index, _ = plain_index(index)
        if isinstance(value, torch.Tensor):
            check_same_dtype(x, value, "x[index] = value")
        ctx.key = index
        ctx.value_shape = shape_of(value)
        written = torch.zeros(x.shape, dtype=torch.bool, device=x.device)
        written[index] = True
        ctx.save_for_backward(~written, *index_tensors(index))
        y = x.clone()
        y[index] = value
        return y

    @staticmethod
    def backward(ctx, grad):
        kept = ctx.saved_tensors[0]
        need_x, _, need_value = ctx.needs_input_grad
        grad_value = None
        if need_value:
            picked = grad[ctx.key]
            extra = len(ctx.value_shape) - picked.dim()
            if extra > 0:  # torch drops a value's leading size-1 dims: (1, 4) into x[0] of (4,)
                picked = picked.reshape((1,) * extra + tuple(picked.shape))
            grad_value = unbroadcast(picked, ctx.value_shape)
        return (where(kept, grad, 0.0) if need_x else None), None, grad_value


def check_same_dtype(x, value, name: str) -> None:
    """Refuse writing float32 into float64 (and back), as the no_grad path of in-place ops does."""
    if value.dtype != x.dtype and value.is_floating_point() and x.is_floating_point():
        raise DtypeError(
            f"{name}: the tensor is {x.dtype} but the value is {value.dtype}; "
            "convert the value with .to(tensor.dtype) so both agree"
        )


class Fill(Function):
    """y = a tensor shaped like x, every element v   (v a number, or a 0-d tensor)

    dL/dx = 0
    dL/dv = sum of dL/dy

    y: x's shape and dtype (a tensor v is converted to it). Errors: ShapeError (a
    RuntimeError) for a v that is a tensor of 1 or more dimensions.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x, value):
        if isinstance(value, torch.Tensor) and value.dim() != 0:
            raise ShapeError(
                f"fill_ takes a number or a 0-d tensor, got a tensor of shape "
                f"{tuple(value.shape)}; use copy_ or x[...] = value"
            )
        ctx.value_dtype = getattr(value, "dtype", None)
        if isinstance(value, torch.Tensor):
            return value.to(x.dtype).expand(x.shape).clone()
        return torch.full_like(x, value)

    @staticmethod
    def backward(ctx, grad):
        need_x, need_value = ctx.needs_input_grad
        grad_value = grad.sum().to(ctx.value_dtype) if need_value else None
        return (zeros_like(grad) if need_x else None), grad_value


class CopyInto(Function):
    """y = src, broadcast to x's shape and cast to x's dtype   (what x.copy_(src) writes)

    dL/dx = 0
    dL/dsrc = dL/dy summed to src's shape, in src's dtype

    y: x's shape, dtype and device. Errors: TypeError for a src that is not a tensor (use
    fill_ for a number), RuntimeError (torch's) for a src that does not broadcast to x.
    """

    check_grad_shapes = False  # (not fresh_grads: dL/dv can be dL/dy itself, or a view of it)

    @staticmethod
    def forward(ctx, x, src):
        if not isinstance(src, torch.Tensor):
            raise TypeError(
                f"copy_(src) takes a tensor, got {type(src).__name__}; use fill_ for a number"
            )
        ctx.source = (src.shape, src.dtype, src.device)
        return src.to(dtype=x.dtype, device=x.device).expand(x.shape).clone()

    @staticmethod
    def backward(ctx, grad):
        need_x, need_src = ctx.needs_input_grad
        shape, dtype, device = ctx.source
        grad_src = None
        if need_src:
            grad_src = unbroadcast(grad, shape).to(device=device, dtype=dtype)
        return (zeros_like(grad) if need_x else None), grad_src
