"""Arithmetic: + - * / unary minus and ** (number exponent).

Each operand may be a tensor or a Python number, on either side, with full
torch broadcasting; `unbroadcast` sums each gradient back to its operand's
shape. Gradients are only computed for the inputs that need one.
"""

import torch

from ..function import Function
from .broadcast import check_same_dtype, shape_of, unbroadcast


class Add(Function):
    """y = a + b

    dL/da = dL/dy,   dL/db = dL/dy   (each summed over broadcast dimensions)
    """

    check_grad_shapes = False

    @staticmethod
    def forward(ctx, a, b):
        check_same_dtype(a, b)
        ctx.shapes = (shape_of(a), shape_of(b))
        return a + b

    @staticmethod
    def backward(ctx, grad):
        need_a, need_b = ctx.needs_input_grad
        shape_a, shape_b = ctx.shapes
        return (unbroadcast(grad, shape_a) if need_a else None,
                unbroadcast(grad, shape_b) if need_b else None)


class Sub(Function):
    """y = a - b

    dL/da = dL/dy,   dL/db = -dL/dy
    """

    check_grad_shapes = False

    @staticmethod
    def forward(ctx, a, b):
        check_same_dtype(a, b)
        ctx.shapes = (shape_of(a), shape_of(b))
        return a - b

    @staticmethod
    def backward(ctx, grad):
        need_a, need_b = ctx.needs_input_grad
        shape_a, shape_b = ctx.shapes
        return (unbroadcast(grad, shape_a) if need_a else None,
                unbroadcast(-grad, shape_b) if need_b else None)


class Mul(Function):
    """y = a * b

    dL/da = dL/dy * b,   dL/db = dL/dy * a
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, a, b):
        check_same_dtype(a, b)
        need_a, need_b = ctx.needs_input_grad
        ctx.shapes = (shape_of(a), shape_of(b))
        ctx.save_for_backward(b if need_a else None, a if need_b else None)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        b, a = ctx.saved_tensors
        shape_a, shape_b = ctx.shapes
        return (None if b is None else unbroadcast(grad * b, shape_a),
                None if a is None else unbroadcast(grad * a, shape_b))


class Div(Function):
    """y = a / b

    dL/da = dL/dy / b,   dL/db = -dL/dy * a / b^2 = -dL/dy * y / b
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, a, b):
        check_same_dtype(a, b)
        need_a, need_b = ctx.needs_input_grad
        y = a / b
        ctx.shapes = (shape_of(a), shape_of(b))
        ctx.save_for_backward(b if (need_a or need_b) else None, y if need_b else None)
        return y

    @staticmethod
    def backward(ctx, grad):
        need_a, need_b = ctx.needs_input_grad
        b, y = ctx.saved_tensors
        shape_a, shape_b = ctx.shapes
        return (unbroadcast(grad / b, shape_a) if need_a else None,
                unbroadcast(-grad * y / b, shape_b) if need_b else None)


class Neg(Function):
    """y = -x

    dL/dx = -dL/dy
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Pow(Function):
    """y = x^p, for a number p

    dL/dx = dL/dy * p * x^(p-1)
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x, p):
        if isinstance(p, bool) or not isinstance(p, (int, float)):
            raise TypeError(f"the exponent of ** must be a Python number, got {type(p).__name__}; "
                            "for a tensor exponent write exp(log(x) * p)")
        ctx.p = p
        ctx.save_for_backward(x)
        return x ** p

    @staticmethod
    def backward(ctx, grad):
        x, = ctx.saved_tensors
        p = ctx.p
        if p == 2:
            return grad * 2 * x, None
        if p == 0:      # y = 1 is constant; p * x^(p-1) would be 0 * inf = nan at x = 0
            return torch.zeros_like(grad), None
        return grad * p * x ** (p - 1), None
