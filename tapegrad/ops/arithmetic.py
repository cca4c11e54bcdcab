"""Arithmetic: + - * / unary minus and ** (a number or a tensor exponent).

Each operand may be a tensor or a Python number, on either side, with full
torch broadcasting; `unbroadcast` sums each gradient back to its operand's
shape. Gradients are only computed for the inputs that need one.
"""

import math

import torch

from ..function import Function
from .broadcast import check_same_dtype, shape_of, unbroadcast
from .dual import zeros_like
from .select import where


class Add(Function):
    """y = a + b

    dL/da = dL/dy,   dL/db = dL/dy   (each summed over broadcast dimensions)

    a, b: tensors or numbers, shapes broadcast; y has the broadcast shape and torch's result
    dtype (a number takes the tensor's; int with float gives the float). Errors: RuntimeError
    for shapes that do not broadcast, DtypeError for float32 with float64, TypeError for an
    operand that is neither a tensor nor a number.
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
        return (
            unbroadcast(grad, shape_a) if need_a else None,
            unbroadcast(grad, shape_b) if need_b else None,
        )


class Sub(Function):
    """y = a - b

    dL/da = dL/dy,   dL/db = -dL/dy

    Shapes, dtypes and errors as `Add`.
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
        return (
            unbroadcast(grad, shape_a) if need_a else None,
            unbroadcast(-grad, shape_b) if need_b else None,
        )


class Mul(Function):
    """y = a * b

    dL/da = dL/dy * b,   dL/db = dL/dy * a

    Shapes, dtypes and errors as `Add`.
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
        return (
            None if b is None else unbroadcast(grad * b, shape_a),
            None if a is None else unbroadcast(grad * a, shape_b),
        )


class Div(Function):
    """y = a / b

    dL/da = dL/dy / b,   dL/db = -dL/dy * a / b^2 = -dL/dy * y / b

    True division: integer operands give floats, and b = 0 gives inf or NaN, not an error.
    Shapes, dtypes and errors otherwise as `Add`.
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
        return (
            unbroadcast(grad / b, shape_a) if need_a else None,
            unbroadcast(-grad * y / b, shape_b) if need_b else None,
        )


class Neg(Function):
    """y = -x

    dL/dx = -dL/dy

    x: any shape; y: x's shape and dtype. Errors: RuntimeError (torch's) for a bool x.
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

    x: a tensor of any shape; y: x's shape, torch's dtype (an integer x to a float p gives
    the default float dtype). Errors: RuntimeError (torch's) for an integer x to a negative
    integer p.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x, p):
        ctx.p = p
        ctx.save_for_backward(x)
        return x**p

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        p = ctx.p
        if p == 2:
            return grad * 2 * x, None
        if p == 0:  # y = 1 is constant; p * x^(p-1) would be 0 * inf = nan at x = 0
            return zeros_like(grad), None
        return grad * p * x ** (p - 1), None


class PowTensor(Function):
    """y = a^b, where the exponent b is a tensor (a may be a tensor or a number, as in 2 ** x)

    dL/da = dL/dy * b * a^(b-1)   (0 where b = 0, as in torch: y = 1 is flat in a, even at a = 0)
    dL/db = dL/dy * y * log(a)    (0 where a = 0 and b >= 0, as in torch: the limit of a^b log a;
                                   NaN everywhere for a number a < 0, whose log is NaN)

    Shapes broadcast; y has the broadcast shape and torch's result dtype. Errors: DtypeError
    for float32 with float64, RuntimeError for shapes that do not broadcast.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, a, b):
        check_same_dtype(a, b)
        need_a, need_b = ctx.needs_input_grad
        y = torch.pow(a, b)
        ctx.shapes = (shape_of(a), shape_of(b))
        ctx.save_for_backward(a, b, y if need_b else None)
        return y

    @staticmethod
    def backward(ctx, grad):
        a, b, y = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        shape_a, shape_b = ctx.shapes
        grad_a = grad_b = None
        if need_a:
            grad_a = unbroadcast(where(b == 0, 0.0, grad * b * a ** (b - 1)), shape_a)
        if need_b:
            if hasattr(a, "log"):  # where a = 0 and b >= 0, a^b log a -> 0
                grad_b = where((a == 0) & (b >= 0), 0.0, grad * y * a.log())
            elif a > 0:
                grad_b = grad * y * math.log(a)
            elif a == 0:  # a number base 0: that limit where b >= 0
                grad_b = where(b >= 0, 0.0, grad * y * -math.inf)
            else:  # a number base < 0: log(a) is NaN (torch agrees)
                grad_b = grad * y * math.nan
            grad_b = unbroadcast(grad_b, shape_b)
        return grad_a, grad_b


def pow(base, exponent):
    """base ** exponent: `Pow` for a number exponent, `PowTensor` when the exponent is a tensor.

    As torch.pow: base a tensor or a number, exponent a number or a tensor; shapes broadcast,
    torch's result dtype (an integer tensor to a float power gives floats). Errors: TypeError
    for a base or exponent of another kind, DtypeError for float32 with float64, RuntimeError
    for shapes that do not broadcast or an integer tensor to a negative integer power.
    """
    number = isinstance(exponent, (int, float)) and not isinstance(exponent, bool)
    if not number and not hasattr(exponent, "shape"):
        raise TypeError(
            f"the exponent of ** must be a number or a tensor, got {type(exponent).__name__}"
        )
    if not hasattr(base, "shape") and not isinstance(base, (int, float)):
        raise TypeError(f"the base of ** must be a tensor or a number, got {type(base).__name__}")
    return Pow.apply(base, exponent) if number else PowTensor.apply(base, exponent)
