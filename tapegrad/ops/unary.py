"""Elementwise functions of one tensor: exp, log, log1p, relu, tanh, sigmoid, abs, sqrt, sin, cos
and sign.

Where the derivative is a function of the output (exp, relu, tanh,
sigmoid), the output is what is saved, and aten's fused backward kernel
computes it in one pass. Each fused kernel is also an op of its own
(`TanhBackward`, ...), with its own derivative, which is what a
``create_graph=True`` sweep records (see `dual`).

At the end, the functions torch has under ``torch.``: ``tapegrad.abs(x)``
is ``x.abs()``, and so on (this module's `abs` hides Python's builtin).
"""

import torch

from .. import _kernels
from ..function import Function
from ..tensor import Tensor
from .dual import dual, zeros_like


class Exp(Function):
    """y = exp(x)

    dL/dx = dL/dy * y

    x: any shape; y: x's shape, floating-point (an integer x gives the default float dtype, as
    torch). Errors: TypeError (torch's) for an x that is not a tensor. Overflow gives inf.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x):
        y = torch.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * y


class Log(Function):
    """y = log(x)

    dL/dx = dL/dy / x

    x: any shape; y: x's shape, floating-point (an integer x gives the default float dtype, as
    torch). Errors: TypeError (torch's) for an x that is not a tensor.
    log(0) = -inf and log(x < 0) = NaN, as torch: values, not errors.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.log(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / x


class Log1p(Function):
    """y = log(1 + x)   (accurate for small x)

    dL/dx = dL/dy / (1 + x)

    x: any shape; y: x's shape, floating-point (an integer x gives the default float dtype, as
    torch). Errors: TypeError (torch's) for an x that is not a tensor.
    y = -inf at x = -1 and NaN below, as torch: values, not errors.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.log1p(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / (x + 1)


class ReLU(Function):
    """y = max(x, 0)

    dL/dx = dL/dy where y > 0, else 0

    x: any shape; y: x's shape and dtype. Errors: RuntimeError (torch's) for a bool x,
    TypeError for an x that is not a tensor.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x):
        y = torch.relu(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        if isinstance(grad, Tensor):  # create_graph=True: the same derivative, recorded as an op
            return ThresholdBackward.apply(grad, y, 0)
        return _kernels.threshold_backward(grad, y, 0)


class ThresholdBackward(Function):
    """z = g where y > t, else 0
       (the derivative of y = relu(x) as an op: g is y's gradient, t = 0)

    dL/dg = dL/dz where y > t, else 0
    dL/dy = 0   (y only chooses where: the mask is flat in y wherever it is defined)

    g, y and z: one shape (y's: the sweep passes them so) and dtype; t a number. Errors:
    RuntimeError (torch's) for g and y whose shapes do not broadcast.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, g, y, threshold):
        ctx.threshold = threshold
        ctx.save_for_backward(y)
        return _kernels.threshold_backward(g, y, threshold)

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        need_g, need_y, _ = ctx.needs_input_grad
        # y stays on the tape with a zero derivative, as in torch: the derivative of a ReLU
        # network's derivative is then zeros, not "unused"
        return (
            threshold_backward(grad, y, ctx.threshold) if need_g else None,
            zeros_like(grad) if need_y else None,
            None,
        )


threshold_backward = dual(_kernels.threshold_backward, ThresholdBackward)


class Tanh(Function):
    """y = tanh(x)

    dL/dx = dL/dy * (1 - y^2)

    x: any shape; y: x's shape, floating-point (an integer x gives the default float dtype, as
    torch). Errors: TypeError (torch's) for an x that is not a tensor.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x):
        y = torch.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        if isinstance(grad, Tensor):  # create_graph=True: the same derivative, recorded as an op
            return TanhBackward.apply(grad, y)
        return _kernels.tanh_backward(grad, y)


class TanhBackward(Function):
    """z = g * (1 - y^2)   (the derivative of y = tanh(x) as an op: g is y's gradient)

    dL/dg = dL/dz * (1 - y^2)
    dL/dy = -2 dL/dz * g * y

    g, y and z: one shape (y's: the sweep passes them so) and floating dtype. Errors:
    RuntimeError (torch's) for g and y whose shapes do not broadcast.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, g, y):
        ctx.save_for_backward(g, y)
        return _kernels.tanh_backward(g, y)

    @staticmethod
    def backward(ctx, grad):
        g, y = ctx.saved_tensors
        need_g, need_y = ctx.needs_input_grad
        return (tanh_backward(grad, y) if need_g else None, grad * g * y * -2 if need_y else None)


tanh_backward = dual(_kernels.tanh_backward, TanhBackward)


class Sigmoid(Function):
    """y = 1 / (1 + exp(-x))

    dL/dx = dL/dy * y * (1 - y)

    x: any shape; y: x's shape, floating-point (an integer x gives the default float dtype, as
    torch). Errors: TypeError (torch's) for an x that is not a tensor.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x):
        y = torch.sigmoid(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        if isinstance(grad, Tensor):  # create_graph=True: the same derivative, recorded as an op
            return SigmoidBackward.apply(grad, y)
        return _kernels.sigmoid_backward(grad, y)


class SigmoidBackward(Function):
    """z = g * y * (1 - y)   (the derivative of y = sigmoid(x) as an op: g is y's gradient)

    dL/dg = dL/dz * y * (1 - y)
    dL/dy = dL/dz * g * (1 - 2y)

    g, y and z: one shape (y's: the sweep passes them so) and floating dtype. Errors:
    RuntimeError (torch's) for g and y whose shapes do not broadcast.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, g, y):
        ctx.save_for_backward(g, y)
        return _kernels.sigmoid_backward(g, y)

    @staticmethod
    def backward(ctx, grad):
        g, y = ctx.saved_tensors
        need_g, need_y = ctx.needs_input_grad
        return (
            sigmoid_backward(grad, y) if need_g else None,
            grad * g * (1 - y * 2) if need_y else None,
        )


sigmoid_backward = dual(_kernels.sigmoid_backward, SigmoidBackward)


class Abs(Function):
    """y = |x|

    dL/dx = dL/dy * sign(x)   (0 at x = 0, as in torch)

    x: any shape; y: x's shape and dtype. Errors: NotImplementedError (a RuntimeError,
    torch's) for a bool x, TypeError for an x that is not a tensor.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.abs(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * x.sign()


class Sqrt(Function):
    """y = sqrt(x)

    dL/dx = dL/dy / (2 y)   (inf at x = 0, as in torch; NaN for x < 0, where y is NaN)

    x: any shape; y: x's shape, floating-point (an integer x gives the default float dtype, as
    torch). Errors: TypeError (torch's) for an x that is not a tensor.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x):
        y = torch.sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad / (y * 2)


class Sin(Function):
    """y = sin(x)

    dL/dx = dL/dy * cos(x)

    x: any shape; y: x's shape, floating-point (an integer x gives the default float dtype, as
    torch). Errors: TypeError (torch's) for an x that is not a tensor.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sin(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * x.cos()


class Cos(Function):
    """y = cos(x)

    dL/dx = -dL/dy * sin(x)

    x: any shape; y: x's shape, floating-point (an integer x gives the default float dtype, as
    torch). Errors: TypeError (torch's) for an x that is not a tensor.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.cos(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * -x.sin()


class Sign(Function):
    """y = sign(x): -1 where x < 0, 0 where x = 0, 1 where x > 0

    dL/dx = 0   (y is flat wherever it is defined; torch gives zeros too, not None)

    x: any shape; y: x's shape and dtype (0 where x is NaN, as torch). Errors: TypeError
    (torch's) for an x that is not a tensor.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x):
        return torch.sign(x)

    @staticmethod
    def backward(ctx, grad):
        return zeros_like(grad)


# --- the functions torch has under torch.: tapegrad.abs(x) is x.abs() ---------------------


def abs(input):
    """|input| elementwise (`Abs`); also ``x.abs()`` and Python's ``abs(x)``.

    input's shape and dtype. Errors, torch's: NotImplementedError (a RuntimeError) for a bool
    tensor, TypeError for an input that is not a tensor (a number: use Python's abs).
    """
    return Abs.apply(input)


absolute = abs


def sqrt(input):
    """The square root elementwise, sqrt(input) (`Sqrt`); also ``x.sqrt()``.

    input's shape, floating-point (an integer tensor gives the default float dtype); NaN
    where input < 0, as torch. Errors: TypeError (torch's) for an input that is not a tensor
    (a Python number too).
    """
    return Sqrt.apply(input)


def sin(input):
    """The sine elementwise, sin(input), input in radians (`Sin`); also ``x.sin()``.

    input's shape, floating-point (an integer tensor gives the default float dtype).
    Errors: TypeError (torch's) for an input that is not a tensor (a Python number too).
    """
    return Sin.apply(input)


def cos(input):
    """The cosine elementwise, cos(input), input in radians (`Cos`); also ``x.cos()``.

    input's shape, floating-point (an integer tensor gives the default float dtype).
    Errors: TypeError (torch's) for an input that is not a tensor (a Python number too).
    """
    return Cos.apply(input)


def sign(input):
    """-1, 0 or 1 elementwise, as input is negative, zero or positive (`Sign`); its gradient
    is zero. Also ``x.sign()``.

    input's shape and dtype (0 where input is NaN, as torch). Errors: TypeError (torch's)
    for an input that is not a tensor (a Python number too).
    """
    return Sign.apply(input)


def exp(input):
    """e^input elementwise (`Exp`); also ``x.exp()``.

    input's shape, floating-point (an integer tensor gives the default float dtype);
    overflow gives inf. Errors: TypeError (torch's) for an input that is not a tensor (a
    Python number too).
    """
    return Exp.apply(input)


def log(input):
    """The natural logarithm elementwise, log(input) (`Log`); also ``x.log()``.

    input's shape, floating-point (an integer tensor gives the default float dtype); -inf at
    0 and NaN below, as torch. Errors: TypeError (torch's) for an input that is not a tensor
    (a Python number too).
    """
    return Log.apply(input)


def log1p(input):
    """log(1 + input) elementwise, accurate for small input (`Log1p`); also ``x.log1p()``.

    input's shape, floating-point (an integer tensor gives the default float dtype); -inf
    at -1 and NaN below. Errors: TypeError (torch's) for an input that is not a tensor (a
    Python number too).
    """
    return Log1p.apply(input)


def relu(input):
    """max(input, 0) elementwise (`ReLU`); also ``x.relu()``.

    input's shape and dtype. Errors, torch's: RuntimeError for a bool tensor, TypeError for
    an input that is not a tensor (a Python number too).
    """
    return ReLU.apply(input)


def tanh(input):
    """The hyperbolic tangent elementwise, in (-1, 1) (`Tanh`); also ``x.tanh()``.

    input's shape, floating-point (an integer tensor gives the default float dtype).
    Errors: TypeError (torch's) for an input that is not a tensor (a Python number too).
    """
    return Tanh.apply(input)


def sigmoid(input):
    """1 / (1 + e^-input) elementwise, in (0, 1) (`Sigmoid`); also ``x.sigmoid()``.

    input's shape, floating-point (an integer tensor gives the default float dtype).
    Errors: TypeError (torch's) for an input that is not a tensor (a Python number too).
    """
    return Sigmoid.apply(input)
