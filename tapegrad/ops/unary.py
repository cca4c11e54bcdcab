"""Elementwise functions of one tensor: exp, log, relu, tanh, sigmoid.

Where the derivative is a function of the output (exp, relu, tanh,
sigmoid), the output is what is saved, and aten's fused backward kernel
computes it in one pass.
"""

import torch

from .. import _kernels
from ..function import Function


class Exp(Function):
    """y = exp(x)

    dL/dx = dL/dy * y
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
        y, = ctx.saved_tensors
        return grad * y


class Log(Function):
    """y = log(x)

    dL/dx = dL/dy / x
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.log(x)

    @staticmethod
    def backward(ctx, grad):
        x, = ctx.saved_tensors
        return grad / x


class ReLU(Function):
    """y = max(x, 0)

    dL/dx = dL/dy where y > 0, else 0
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
        y, = ctx.saved_tensors
        return _kernels.threshold_backward(grad, y, 0)


class Tanh(Function):
    """y = tanh(x)

    dL/dx = dL/dy * (1 - y^2)
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
        y, = ctx.saved_tensors
        return _kernels.tanh_backward(grad, y)


class Sigmoid(Function):
    """y = 1 / (1 + exp(-x))

    dL/dx = dL/dy * y * (1 - y)
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
        y, = ctx.saved_tensors
        return _kernels.sigmoid_backward(grad, y)
