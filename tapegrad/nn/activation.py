"""Activation layers, and the ops of LeakyReLU and GELU.

The derivatives of ReLU, Tanh and Sigmoid live with their ops in
`tapegrad/ops/unary.py`, softmax's in `tapegrad/ops/softmax.py`. LeakyReLU
and GELU are written here: each op saves its input, aten's fused kernel
computes the derivative in the ordinary sweep, and that kernel is also an
op of its own (`LeakyReLUBackward`, `GELUBackward`) for create_graph.
"""

from __future__ import annotations

import math
import warnings

import torch

from .. import _kernels, ops
from ..function import Function
from ..ops.dual import zeros_like
from ._utils import ArgumentError
from .module import Module

_leaky_relu = _kernels.aten("leaky_relu")
_leaky_relu_backward = _kernels.aten("leaky_relu_backward")
_gelu = _kernels.aten("gelu")
_gelu_backward = _kernels.aten("gelu_backward")


# --- LeakyReLU ---------------------------------------------------------------------------


class LeakyReLUFunction(Function):
    """y = x where x > 0, else a x   (a = negative_slope)

    dL/dx = dL/dy where x > 0, else a dL/dy
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x, negative_slope=0.01):
        ctx.slope = negative_slope
        ctx.save_for_backward(x)
        return _leaky_relu(x, negative_slope)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return leaky_relu_backward(grad, x, ctx.slope), None


class LeakyReLUBackward(Function):
    """z = g where x > 0, else a g   (LeakyReLU's derivative as an op: g is y's gradient)

    dL/dg = dL/dz where x > 0, else a dL/dz
    dL/dx = 0   (x only chooses the slope: constant wherever it is defined)
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, g, x, negative_slope):
        ctx.slope = negative_slope
        ctx.save_for_backward(x)
        return _leaky_relu_backward(g, x, negative_slope, False)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        need_g, need_x, _ = ctx.needs_input_grad
        # x stays on the tape with a zero derivative, as in torch (see ThresholdBackward)
        return (
            leaky_relu_backward(grad, x, ctx.slope) if need_g else None,
            zeros_like(grad) if need_x else None,
            None,
        )


def leaky_relu_backward(grad, x, slope):
    """`LeakyReLUBackward`: aten's kernel on torch tensors, the recorded op on tapegrad tensors."""
    if isinstance(grad, torch.Tensor):
        return _leaky_relu_backward(grad, x, slope, False)
    return LeakyReLUBackward.apply(grad, x, slope)


# --- GELU --------------------------------------------------------------------------------

_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_C = 0.044715


class GELUFunction(Function):
    """y = x Phi(x)
           (Phi: the standard normal CDF;
            approximate='tanh': 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))))

    dL/dx = dL/dy * gelu'(x),   gelu'(x) = Phi(x) + x phi(x)
        (phi: the normal density; the tanh form's own derivative for 'tanh')
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x, approximate="none"):
        ctx.approximate = approximate
        ctx.save_for_backward(x)
        return _gelu(x, approximate=approximate)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return gelu_backward(grad, x, ctx.approximate), None


class GELUBackward(Function):
    """z = g * gelu'(x)   (GELU's derivative as an op: g is y's gradient)

    dL/dg = dL/dz * gelu'(x)
    dL/dx = dL/dz * g * gelu''(x),   gelu''(x) = phi(x) (2 - x^2)
        (for 'tanh': the tanh form's second derivative)
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, g, x, approximate):
        ctx.approximate = approximate
        ctx.save_for_backward(g, x)
        return _gelu_backward(g, x, approximate=approximate)

    @staticmethod
    def backward(ctx, grad):
        g, x = ctx.saved_tensors
        need_g, need_x = ctx.needs_input_grad[:2]
        grad_g = gelu_backward(grad, x, ctx.approximate) if need_g else None
        grad_x = grad * g * _gelu_second(x, ctx.approximate) if need_x else None
        return grad_g, grad_x, None


def _gelu_second(x, approximate):
    """gelu''(x), written with operators both tensor kinds share (so it differentiates again)."""
    if approximate == "tanh":
        x2 = x * x
        t = ((x + x2 * x * _C) * _SQRT_2_OVER_PI).tanh()
        du = (x2 * (3 * _C) + 1) * _SQRT_2_OVER_PI  # u'
        ddu = x * (6 * _C * _SQRT_2_OVER_PI)  # u''
        return (1 - t * t) * (du + x * 0.5 * (ddu - t * du * du * 2))
    x2 = x * x
    return (x2 * -0.5).exp() * _INV_SQRT_2PI * (2 - x2)


def gelu_backward(grad, x, approximate):
    """`GELUBackward`: aten's kernel on torch tensors, the recorded op on tapegrad tensors."""
    if isinstance(grad, torch.Tensor):
        return _gelu_backward(grad, x, approximate=approximate)
    return GELUBackward.apply(grad, x, approximate)


def _check_approximate(owner: str, approximate) -> None:
    if approximate not in ("none", "tanh"):
        raise ArgumentError(f"{owner}: approximate must be 'none' or 'tanh', got {approximate!r}")


# --- the functions -------------------------------------------------------------------------


def relu(input, inplace: bool = False):
    """max(x, 0). (`inplace` is accepted for torch's signature; the result is a new tensor.)"""
    return ops.ReLU.apply(input)


def tanh(input):
    return ops.Tanh.apply(input)


def sigmoid(input):
    return ops.Sigmoid.apply(input)


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False):
    """x where x > 0, else negative_slope * x (computed out of place, whatever `inplace` says)."""
    return LeakyReLUFunction.apply(input, negative_slope)


def gelu(input, approximate: str = "none"):
    """x Phi(x); approximate='tanh' for the tanh approximation."""
    _check_approximate("gelu", approximate)
    return GELUFunction.apply(input, approximate)


def softmax(input, dim=None, _stacklevel: int = 3, dtype=None):
    """exp(x) / sum exp(x) along `dim` (torch.nn.functional's signature)."""
    if dim is None:
        dim = _implicit_dim("softmax", input.dim(), _stacklevel)
    return ops.softmax(input, dim, dtype)


def log_softmax(input, dim=None, _stacklevel: int = 3, dtype=None):
    """x - logsumexp(x) along `dim` (torch.nn.functional's signature)."""
    if dim is None:
        dim = _implicit_dim("log_softmax", input.dim(), _stacklevel)
    return ops.log_softmax(input, dim, dtype)


def _implicit_dim(name: str, ndim: int, stacklevel: int) -> int:
    """torch's legacy choice when no dim is given (with its warning): 0 for 0-, 1- and 3-D,
    else 1."""
    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. Change the call "
        "to include dim=X as an argument.",
        stacklevel=stacklevel,
    )
    return 0 if ndim in (0, 1, 3) else 1


# --- the layers ----------------------------------------------------------------------------


class ReLU(Module):
    """y = max(x, 0)"""

    def forward(self, x):
        return ops.ReLU.apply(x)


class Tanh(Module):
    """y = tanh(x)"""

    def forward(self, x):
        return ops.Tanh.apply(x)


class Sigmoid(Module):
    """y = 1 / (1 + exp(-x))"""

    def forward(self, x):
        return ops.Sigmoid.apply(x)


class LeakyReLU(Module):
    """y = x where x > 0, else negative_slope * x"""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, x):
        return LeakyReLUFunction.apply(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class GELU(Module):
    """y = x Phi(x), Phi the standard normal CDF (approximate='tanh': its tanh approximation)"""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        _check_approximate("GELU", approximate)
        self.approximate = approximate

    def forward(self, x):
        return GELUFunction.apply(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Softmax(Module):
    """y = exp(x) / sum exp(x) along `dim`: each slice along dim is a probability distribution"""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return softmax(x, self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """y = x - logsumexp(x) along `dim`: the log of softmax, computed stably"""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return log_softmax(x, self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
