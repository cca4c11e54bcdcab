"""`Linear`: y = x W^T + b, recorded as one fused node with its own derivative."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from ..errors import ArgumentError, DtypeError, ShapeError
from ..function import Function
from ..tensor import Tensor
from . import init
from .module import Module
from .parameter import Parameter


class LinearFunction(Function):
    """y = x W^T + b        x: (..., in),  W: (out, in),  b: (out,)

    dL/dx = dL/dy W
    dL/dW = dL/dy^T x       (summed over the batch)
    dL/db = sum over the batch of dL/dy
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x, weight, bias):
        need_x, need_weight, _ = ctx.needs_input_grad
        ctx.save_for_backward(x if need_weight else None, weight if need_x else None)
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        _, need_weight, need_bias = ctx.needs_input_grad
        if grad.dim() != 2:  # a batch with several leading dimensions: flatten it
            grad_x = None if weight is None else grad @ weight
            grad = grad.reshape(-1, grad.shape[-1])
            x = None if x is None else x.reshape(-1, x.shape[-1])
        else:
            grad_x = None if weight is None else grad.mm(weight)
        grad_weight = grad.t().mm(x) if need_weight else None
        grad_bias = grad.sum(0) if need_bias else None
        return grad_x, grad_weight, grad_bias


class Linear(Module):
    """A fully connected layer: y = x W^T + b, with Xavier (Glorot) uniform init.

    The bias starts at zero. `generator` makes the initialisation
    reproducible without touching the global seed.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device=None,
        dtype=None,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ArgumentError(f"Linear: {name} must be a positive int, got {value!r}")
        self.in_features = in_features
        self.out_features = out_features
        dtype = dtype or torch.get_default_dtype()
        self.weight = Parameter(torch.empty(out_features, in_features, device=device, dtype=dtype))
        if bias:
            self.bias = Parameter(torch.empty(out_features, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        init.xavier_uniform_(self.weight, generator=generator)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, x):
        try:
            return LinearFunction.apply(x, self.weight, self.bias)
        except (TypeError, ValueError, RuntimeError):
            # The input is checked only after a failure, so the hot path pays nothing for
            # it; the check raises an error that names this layer and the fix.
            self._check_input(x)
            raise

    def _check_input(self, x) -> None:
        data = x.data if isinstance(x, Tensor) else x
        weight = self.weight.data
        if not isinstance(data, torch.Tensor):
            raise TypeError(f"{self!r} takes a tensor, got {type(x).__name__}") from None
        if data.dim() == 0 or data.shape[-1] != self.in_features:
            raise ShapeError(
                f"{self!r}: expected input with {self.in_features} features in its last "
                f"dimension, got shape {tuple(data.shape)}"
            ) from None
        if data.dtype != weight.dtype:
            raise DtypeError(
                f"{self!r}: input is {data.dtype} but the weights are "
                f"{weight.dtype}; convert the input (x.to(dtype)) or the "
                "model (model.double() / model.float())"
            ) from None
        if data.device != weight.device:
            raise RuntimeError(
                f"{self!r}: input is on {data.device} but the weights are on "
                f"{weight.device}; move the input (x.to(device)) or "
                "the model (model.to(device)) so both agree"
            ) from None

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )
