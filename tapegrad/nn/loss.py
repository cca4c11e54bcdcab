"""Losses: mean squared error and binary cross-entropy, each one node with its own derivative.

Prediction and target must have the same shape. torch would broadcast a
(N, 1) prediction against a (N,) target into an (N, N) difference and
average that: a classic silent bug, refused here.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from .. import _kernels
from ..function import Function
from ..ops.broadcast import unbroadcast
from ..ops.dual import dual
from ..tensor import Tensor
from .module import Module

_REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}     # aten's reduction codes


class MSEFunction(Function):
    """L = mean (or sum) over elements of (p - t)^2

    dL/dp = 2 (p - t) / n   (n = number of elements; no / n for 'sum')
    dL/dt = -dL/dp
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, prediction, target, reduction):
        ctx.reduction = reduction
        ctx.save_for_backward(prediction, target)
        return _mse_loss(prediction, target, reduction)

    @staticmethod
    def backward(ctx, grad):
        prediction, target = ctx.saved_tensors
        need_p, need_t, _ = ctx.needs_input_grad
        grad_p = mse_loss_backward(grad, prediction, target, ctx.reduction)
        return (grad_p if need_p else None), (-grad_p if need_t else None), None


class MSELossBackward(Function):
    """z = g * s (p - t)   (the derivative of MSE as an op: g is the loss's gradient; s = 2/n for 'mean', else 2)

    dL/dg = sum of dL/dz * s (p - t)   (over what g was broadcast to)
    dL/dp = dL/dz * g * s
    dL/dt = -dL/dz * g * s
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, g, prediction, target, reduction):
        ctx.scale = 2.0 / prediction.numel() if reduction == 1 else 2.0
        ctx.save_for_backward(g, prediction, target)
        return _kernels.mse_loss_backward(g, prediction, target, reduction)

    @staticmethod
    def backward(ctx, grad):
        g, prediction, target = ctx.saved_tensors
        need_g, need_p, need_t, _ = ctx.needs_input_grad
        scale = ctx.scale
        grad_g = unbroadcast(grad * (prediction - target) * scale, g.shape) if need_g else None
        grad_p = grad * g * scale if (need_p or need_t) else None
        return grad_g, (grad_p if need_p else None), (-grad_p if need_t else None), None


mse_loss_backward = dual(_kernels.mse_loss_backward, MSELossBackward)


_mse_loss = getattr(getattr(torch.ops.aten, "mse_loss", None), "default", None) or (
    lambda p, t, r: F.mse_loss(p, t, reduction=["none", "mean", "sum"][r]))


class BCEFunction(Function):
    """L = mean (or sum) of -(t log p + (1 - t) log(1 - p))   (logs clamped at -100, as torch)

    dL/dp = (p - t) / (p (1 - p)) / n
    dL/dt = (log(1 - p) - log p) / n      (the clamped logs: +-100 / n at p = 0 or 1, where
                                           torch's target gradient is +-inf)
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, prediction, target, reduction):
        ctx.reduction = reduction
        ctx.save_for_backward(prediction, target)
        return F.binary_cross_entropy(prediction, target,
                                      reduction=["none", "mean", "sum"][reduction])

    @staticmethod
    def backward(ctx, grad):
        prediction, target = ctx.saved_tensors
        need_p, need_t, _ = ctx.needs_input_grad
        eps = _BCE_EPS
        scale = 1.0 / prediction.numel() if ctx.reduction == 1 else 1.0
        grad_p = grad * scale * (prediction - target) / (prediction * (1 - prediction)).clamp_min(eps)
        grad_t = None
        if need_t:  # dL/dt = -(log p - log(1 - p)) scaled
            grad_t = -grad * scale * (prediction.log().clamp_min(-100)
                                      - (-prediction).log1p().clamp_min(-100))
        return (grad_p if need_p else None), grad_t, None


# torch's clamp of p (1 - p) in the derivative: 1e-12 stored as a float32, so that a saturated
# prediction (p = 0 or 1) gets torch's gradient to the last digit.
_BCE_EPS = float(torch.tensor(1e-12, dtype=torch.float32))


class _Loss(Module):
    """Shared checks and the course API's `backward()` for the losses."""

    function: type

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be one of 'mean', 'sum', "
                             f"'none', got {reduction!r}")
        self.reduction = reduction
        self._code = _REDUCTIONS[reduction]
        self._last_inputs = None

    def forward(self, prediction, target):
        p = prediction.data if isinstance(prediction, Tensor) else prediction
        t = target.data if isinstance(target, Tensor) else target
        for role, value in (("prediction", p), ("target", t)):
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"{type(self).__name__}: {role} must be a tensor, got "
                                f"{type(value).__name__}")
        if p.shape != t.shape:
            raise ValueError(f"{type(self).__name__}: prediction has shape {tuple(p.shape)} but "
                             f"target has shape {tuple(t.shape)}; they must match (torch would "
                             "broadcast them and silently compute the wrong loss). Reshape one, "
                             "e.g. target.reshape(prediction.shape)")
        if p.dtype != t.dtype:
            raise TypeError(f"{type(self).__name__}: prediction is {p.dtype} but target is "
                            f"{t.dtype}; convert the target with .to(prediction.dtype)")
        self.__dict__["_last_inputs"] = (prediction, target)     # plain attribute: skip __setattr__
        return self.function.apply(prediction, target, self._code)

    def backward(self, grad_output=None):
        """The course API: dL/d(prediction) for the latest call, as a torch tensor."""
        if self._last_inputs is None:
            raise RuntimeError(f"{type(self).__name__}.backward(): call the loss on a prediction first")
        prediction, target = self._last_inputs
        p = prediction.data if isinstance(prediction, Tensor) else prediction
        t = target.data if isinstance(target, Tensor) else target
        leaf = Tensor(p, requires_grad=True)
        loss = self.function.apply(leaf, t, self._code)
        loss.backward(grad_output)
        return leaf.grad

    def extra_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """Mean squared error: mean((prediction - target)^2), or the sum with reduction='sum'."""

    function = MSEFunction


LossMSE = MSELoss       # the course's name


class BCELoss(_Loss):
    """Binary cross-entropy on probabilities in [0, 1] (e.g. after Sigmoid)."""

    function = BCEFunction
