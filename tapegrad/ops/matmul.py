"""Matrix product `a @ b`: 2-D, batched (with broadcast batch dimensions), and 1-D operands."""

from ..errors import ShapeError
from ..function import Function
from .broadcast import check_same_dtype, unbroadcast


class MatMul(Function):
    """y = a @ b

    dL/da = dL/dy @ b^T,   dL/db = a^T @ dL/dy
    (transposes swap the last two dimensions; batch dimensions that were
    broadcast are summed back; a 1-D operand is treated as a row or column)

    Shapes, as torch.matmul: (..., n, k) @ (..., k, m) -> (..., n, m), the batch dimensions
    broadcast; a 1-D a is a row (k,), a 1-D b a column, their dimension dropped from y.
    Errors: ShapeError (a RuntimeError) for a 0-d operand or inner sizes that differ,
    RuntimeError for batch dimensions that do not broadcast, DtypeError for float32 with
    float64.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, a, b):
        if a.dim() == 0 or b.dim() == 0:
            raise ShapeError(
                f"@ needs operands of at least 1 dimension, got shapes "
                f"{tuple(a.shape)} and {tuple(b.shape)}; use * for scalars"
            )
        if a.shape[-1] != b.shape[-2 if b.dim() > 1 else 0]:
            raise ShapeError(
                f"@ shape mismatch: {tuple(a.shape)} @ {tuple(b.shape)}: the last "
                f"dimension of the left ({a.shape[-1]}) must equal the "
                f"{'second-to-last' if b.dim() > 1 else 'only'} dimension of the right "
                f"({b.shape[-2 if b.dim() > 1 else 0]})"
            )
        check_same_dtype(a, b)
        need_a, need_b = ctx.needs_input_grad
        ctx.save_for_backward(a if need_b else None, b if need_a else None)
        ctx.shapes = (a.shape, b.shape)
        return a @ b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        a = a if need_b else None  # (a sweep to chosen inputs may need fewer than were saved)
        b = b if need_a else None
        shape_a, shape_b = ctx.shapes
        # Promote 1-D operands to matrices, as @ did, so one rule covers all cases.
        # b first: for vector @ vector, grad is 0-d and must become (1,) before (1, 1).
        if len(shape_b) == 1:
            grad = grad.unsqueeze(-1)
            b = None if b is None else b.unsqueeze(-1)
        if len(shape_a) == 1:
            grad = grad.unsqueeze(-2)
            a = None if a is None else a.unsqueeze(0)
        grad_a = grad_b = None
        if b is not None:
            grad_a = grad @ b.transpose(-1, -2)
            grad_a = _to_shape(grad_a, shape_a, (1,) + tuple(shape_a))
        if a is not None:
            grad_b = a.transpose(-1, -2) @ grad
            grad_b = _to_shape(grad_b, shape_b, tuple(shape_b) + (1,))
        return grad_a, grad_b


def _to_shape(grad, shape, promoted):
    """`grad` summed over broadcast batch dimensions and back to the operand's `shape`."""
    if grad.shape == shape:
        return grad
    grad = unbroadcast(grad, shape if len(shape) > 1 else promoted)
    return grad if grad.shape == shape else grad.reshape(shape)
