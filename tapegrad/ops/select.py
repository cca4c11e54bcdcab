"""Ops that choose between values elementwise: where(cond, a, b) and clamp(x, min, max).

Their derivatives send dL/dy to whichever input was chosen, with `where`
(never `grad * mask`: a NaN or infinite gradient times 0 would leak NaN
into the input that was not chosen).
"""

import torch

from ..errors import ArgumentError, DtypeError
from ..function import Function
from ..tensor import Tensor
from .broadcast import check_same_dtype, shape_of, unbroadcast


class Where(Function):
    """y = a where cond, else b   (cond a bool tensor; a, b tensors or numbers; all broadcast)

    dL/da = dL/dy where cond, else 0
    dL/db = dL/dy where not cond, else 0
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, cond, a, b):
        if not isinstance(cond, torch.Tensor) or cond.dtype != torch.bool:
            raise DtypeError(f"where(cond, a, b): cond must be a bool tensor, got "
                            f"{getattr(cond, 'dtype', type(cond).__name__)}; build it with a "
                            "comparison such as x > 0")
        check_same_dtype(a, b)
        ctx.shapes = (shape_of(a), shape_of(b))
        ctx.save_for_backward(cond)
        return torch.where(cond, a, b)

    @staticmethod
    def backward(ctx, grad):
        cond, = ctx.saved_tensors
        _, need_a, need_b = ctx.needs_input_grad
        shape_a, shape_b = ctx.shapes
        return (None,
                unbroadcast(where(cond, grad, 0.0), shape_a) if need_a else None,
                unbroadcast(where(cond, 0.0, grad), shape_b) if need_b else None)


def where(cond, a, b):
    """torch.where on torch tensors (the ordinary sweep); the recorded `Where` on tapegrad tensors."""
    if isinstance(a, Tensor) or isinstance(b, Tensor) or isinstance(cond, Tensor):
        return Where.apply(cond, a, b)
    return torch.where(cond, a, b)


class Clamp(Function):
    """y = min(max(x, low), high)   (low and high: None, numbers or tensors; low > high gives high)

    dL/dx    = dL/dy where low <= x <= high, else 0   (1 at the bounds, as in torch)
    dL/dlow  = dL/dy where x < low and low < high, else 0
    dL/dhigh = dL/dy where x > high or high < low, else 0
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x, low=None, high=None):
        if low is None and high is None:
            raise ArgumentError("clamp: give at least one of min and max")
        for bound in (low, high):
            if isinstance(bound, torch.Tensor):
                check_same_dtype(x, bound)
        ctx.shapes = (x.shape, shape_of(low), shape_of(high))
        # Masks, kept as bool tensors: which input each element of y came from.
        keep = _between(x, low, high)
        from_low = from_high = None
        if isinstance(low, torch.Tensor):
            from_low = x < low if high is None else (x < low) & (low < high)
        if isinstance(high, torch.Tensor):
            from_high = x > high if low is None else (x > high) | (high < low)
        ctx.save_for_backward(keep, from_low, from_high)
        return torch.clamp(x, low, high)

    @staticmethod
    def backward(ctx, grad):
        keep, from_low, from_high = ctx.saved_tensors
        need_x, need_low, need_high = ctx.needs_input_grad
        shape_x, shape_low, shape_high = ctx.shapes
        return (unbroadcast(where(keep, grad, 0.0), shape_x) if need_x else None,
                unbroadcast(where(from_low, grad, 0.0), shape_low) if need_low else None,
                unbroadcast(where(from_high, grad, 0.0), shape_high) if need_high else None)


def _between(x, low, high):
    if low is None:
        return x <= high
    if high is None:
        return x >= low
    return (x >= low) & (x <= high)
