"""`BatchNorm1d`, `BatchNorm2d`, `LayerNorm`: normalise, then scale and shift; one fused node each.

Both compute, over some dimensions of x,

    xhat = (x - mean) / sqrt(var + eps)        y = weight * xhat + bias

BatchNorm averages each channel (dimension 1) over the batch and every
other dimension; LayerNorm averages each sample over its last dimensions
(`normalized_shape`). In training, mean and var are those of x itself
(var the biased one), so every input affects every output of its group:

    dL/dxhat = dL/dy * weight
    dL/dx    = (dL/dxhat - mean(dL/dxhat) - xhat * mean(dL/dxhat * xhat)) / sqrt(var + eps)

BatchNorm in eval mode uses its running statistics instead, constants, and
is then an affine map of x. The ordinary sweep runs aten's fused kernels
with the batch statistics that the forward computed (kept on the node: one
value per channel or per sample, torch keeps them too); a create_graph
sweep recomputes them from x with recorded ops, so they are differentiated
through.

Running statistics: in training, after each batch (torch's rule; the
running variance is the unbiased one, var * n / (n - 1)):

    running = (1 - momentum) * running + momentum * batch statistic
    momentum=None: the cumulative average, momentum = 1 / batches seen
"""

from __future__ import annotations

from typing import Any

import torch

from .. import _kernels
from ..errors import ShapeError
from ..function import Function
from ..tensor import Tensor
from ._utils import data_of
from .module import Module
from .parameter import Parameter

_native_batch_norm = _kernels.aten("native_batch_norm")
_native_batch_norm_backward = _kernels.aten("native_batch_norm_backward")
_native_layer_norm = _kernels.aten("native_layer_norm")
_native_layer_norm_backward = _kernels.aten("native_layer_norm_backward")


def _normalized_grads(
    grad, x, weight, dims, eps, need_x, need_weight, need_bias, bias_dims, stat_shape=None
):
    """The derivative written with operators both tensor kinds share (the create_graph sweep).

    dims: the dimensions averaged over; bias_dims: those weight and bias are
    shared over; stat_shape: weight reshaped to broadcast against x.
    """
    mean = x.mean(dims, keepdim=True)
    centred = x - mean
    invstd = ((centred * centred).mean(dims, keepdim=True) + eps) ** -0.5
    xhat = centred * invstd
    grad_xhat = (
        grad
        if weight is None
        else grad * (weight if stat_shape is None else weight.reshape(stat_shape))
    )
    grad_x = grad_weight = grad_bias = None
    if need_x:
        grad_x = invstd * (
            grad_xhat
            - grad_xhat.mean(dims, keepdim=True)
            - xhat * (grad_xhat * xhat).mean(dims, keepdim=True)
        )
    if need_weight:
        grad_weight = _sum(grad * xhat, bias_dims)
    if need_bias:
        grad_bias = _sum(grad, bias_dims)
    return grad_x, grad_weight, grad_bias


def _sum(t, dims):
    return t.sum(dims) if dims else t  # (torch reads sum(()) as a sum over everything)


class BatchNormFunction(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias
           (per channel, dimension 1; batch statistics in training, running ones in eval)

    dL/dx = (dL/dxhat - mean(dL/dxhat) - xhat * mean(dL/dxhat * xhat)) / sqrt(var + eps)
            with dL/dxhat = dL/dy * weight   (training)
    dL/dx = dL/dy * weight / sqrt(running_var + eps)   (eval: the statistics are constants)
    dL/dweight = sum over all but the channels of dL/dy * xhat
    dL/dbias = sum over all but the channels of dL/dy
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(
        ctx, x, weight, bias, running_mean, running_var, training=True, momentum=0.1, eps=1e-5
    ):
        # Updates running_mean and running_var in place when training (torch's kernel does).
        y, mean, invstd = _native_batch_norm(
            x, weight, bias, running_mean, running_var, training, momentum, eps
        )
        ctx.training, ctx.eps = training, eps
        ctx.stats = (mean, invstd) if training else None
        ctx.save_for_backward(
            x, weight, None if training else running_mean, None if training else running_var
        )
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight, running_mean, running_var = ctx.saved_tensors
        need_x, need_weight, need_bias = ctx.needs_input_grad[:3]
        if isinstance(grad, torch.Tensor):
            mean, invstd = ctx.stats or (None, None)
            grads = _native_batch_norm_backward(
                grad,
                x,
                weight,
                running_mean,
                running_var,
                mean,
                invstd,
                ctx.training,
                ctx.eps,
                [need_x, need_weight, need_bias],
            )
            return (*grads, None, None, None, None, None)
        dims = (0,) + tuple(range(2, x.dim()))
        shape = (1, -1) + (1,) * (x.dim() - 2)
        if ctx.training:
            grads = _normalized_grads(
                grad, x, weight, dims, ctx.eps, need_x, need_weight, need_bias, dims, shape
            )
        else:
            invstd = (running_var + ctx.eps) ** -0.5
            xhat = (x - running_mean.reshape(shape)) * invstd.reshape(shape)
            scale = invstd if weight is None else weight * invstd
            grads = (
                grad * scale.reshape(shape) if need_x else None,
                (grad * xhat).sum(dims) if need_weight else None,
                grad.sum(dims) if need_bias else None,
            )
        return (*grads, None, None, None, None, None)


class LayerNormFunction(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias
           (mean, var over the last len(normalized_shape) dimensions of each sample)

    dL/dx = (dL/dxhat - mean(dL/dxhat) - xhat * mean(dL/dxhat * xhat)) / sqrt(var + eps)
            with dL/dxhat = dL/dy * weight
    dL/dweight = sum over the leading (batch) dimensions of dL/dy * xhat
    dL/dbias = sum over the leading dimensions of dL/dy
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x, weight, bias, normalized_shape, eps=1e-5):
        y, mean, rstd = _native_layer_norm(x, normalized_shape, weight, bias, eps)
        ctx.normalized_shape, ctx.eps = normalized_shape, eps
        ctx.stats = (mean, rstd)
        ctx.save_for_backward(x, weight, bias)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight, bias = ctx.saved_tensors
        need_x, need_weight, need_bias = ctx.needs_input_grad[:3]
        if isinstance(grad, torch.Tensor):
            mean, rstd = ctx.stats
            grads = _native_layer_norm_backward(
                grad,
                x,
                ctx.normalized_shape,
                mean,
                rstd,
                weight,
                bias,
                [need_x, need_weight, need_bias],
            )
            return (*grads, None, None)
        k = len(ctx.normalized_shape)
        dims = tuple(range(x.dim() - k, x.dim()))
        lead = tuple(range(x.dim() - k))
        return (
            *_normalized_grads(
                grad, x, weight, dims, ctx.eps, need_x, need_weight, need_bias, lead
            ),
            None,
            None,
        )


# --- the functions -------------------------------------------------------------------------


def batch_norm(
    input,
    running_mean,
    running_var,
    weight=None,
    bias=None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
):
    """torch.nn.functional.batch_norm: input (N, C, ...); training uses (and updates) batch
    stats."""
    return _batch_norm(
        input, running_mean, running_var, weight, bias, training, momentum, eps, "batch_norm"
    )


def _batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps, owner):
    running_mean, running_var = data_of(running_mean), data_of(running_var)
    shape = getattr(x, "shape", ())
    # aten's kernel does not check the channels (torch's Python wrapper does): checked here
    channels = shape[1] if len(shape) > 1 else None
    for value in (running_mean, running_var, weight, bias):
        if value is not None and (channels is None or value.shape[0] != channels):
            _check_norm_input(owner, x, (running_mean, running_var, weight, bias))
    if training:
        values = 1
        for size in shape[:1] + shape[2:]:
            values *= size
        if values == 1 and len(shape) >= 2:
            raise ValueError(
                f"{_name(owner)}: expected more than 1 value per channel when "
                f"training, got input of shape {tuple(shape)}; use a batch of more "
                "than one sample, or eval mode"
            )
    try:
        return BatchNormFunction.apply(
            x, weight, bias, running_mean, running_var, training, momentum, eps
        )
    except (TypeError, ValueError, RuntimeError):
        _check_norm_input(owner, x, (running_mean, running_var, weight, bias))
        raise


def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5):
    """torch.nn.functional.layer_norm: normalise over the last len(normalized_shape) dimensions."""
    return _layer_norm(input, normalized_shape, weight, bias, eps, "layer_norm")


def _layer_norm(x, normalized_shape, weight, bias, eps, owner):
    normalized_shape = _shape_tuple(normalized_shape, _name(owner))
    try:
        return LayerNormFunction.apply(x, weight, bias, normalized_shape, eps)
    except (TypeError, ValueError, RuntimeError):
        data = data_of(x)
        shape = tuple(getattr(data, "shape", ()))
        k = len(normalized_shape)
        if isinstance(data, torch.Tensor) and (
            len(shape) < k or shape[len(shape) - k :] != normalized_shape
        ):
            raise ShapeError(
                f"{_name(owner)}: normalized_shape={list(normalized_shape)} expects "
                f"an input of shape (*, {', '.join(map(str, normalized_shape))}), "
                f"got {shape}; make normalized_shape the input's last dimensions"
            ) from None
        raise


def _shape_tuple(shape, owner) -> tuple:
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if not shape or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape):
        raise ValueError(
            f"{owner}: normalized_shape must be a positive int or a sequence of them, got {shape!r}"
        )
    return shape


def _name(owner) -> str:
    return owner if isinstance(owner, str) else repr(owner)


def _check_norm_input(owner, x, statistics) -> None:
    data = data_of(x)
    if not isinstance(data, torch.Tensor):
        raise TypeError(f"{_name(owner)} takes a tensor, got {type(x).__name__}") from None
    for role, value in zip(("running_mean", "running_var", "weight", "bias"), statistics):
        value = data_of(value)
        if value is not None and (data.dim() < 2 or data.shape[1] != value.shape[0]):
            n = value.shape[0]
            raise ShapeError(
                f"{_name(owner)}: expected input with {n} channel{'s' * (n != 1)} in "
                f"dimension 1 (the {role} has {n} element{'s' * (n != 1)}), got "
                f"input of shape {tuple(data.shape)}; make num_features match the "
                "channels of the data"
            ) from None


# --- the layers ----------------------------------------------------------------------------


class _BatchNorm(Module):
    """Shared by BatchNorm1d and BatchNorm2d (torch's arguments, buffers and state_dict keys)."""

    # buffers (registered in __init__; None without track_running_stats)
    running_mean: Any
    running_var: Any
    num_batches_tracked: Any

    _dims: tuple = ()  # the input ranks the layer takes
    _shape_text = ""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device=None,
        dtype=None,
        *,
        bias: bool = True,
    ):
        super().__init__()
        owner = type(self).__name__
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features <= 0:
            raise ValueError(f"{owner}: num_features must be a positive int, got {num_features!r}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        dtype = dtype or torch.get_default_dtype()
        like = dict(device=device, dtype=dtype)
        if affine:
            self.weight = Parameter(torch.ones(num_features, **like))
            if bias:
                self.bias = Parameter(torch.zeros(num_features, **like))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features, **like))
            self.register_buffer("running_var", torch.ones(num_features, **like))
            self.register_buffer(
                "num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device)
            )
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            data_of(self.running_mean).zero_()
            data_of(self.running_var).fill_(1)
            data_of(self.num_batches_tracked).zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.weight is not None:
            self.weight.data.fill_(1)
        if self.bias is not None:
            self.bias.data.zero_()

    def forward(self, x):
        ndim = x.dim() if isinstance(x, (Tensor, torch.Tensor)) else None
        if ndim not in self._dims:
            got = f"shape {tuple(x.shape)}" if ndim is not None else type(x).__name__
            hint = (
                "; for images use BatchNorm2d"
                if ndim == 4
                else "; for (N, C) or (N, C, L) use BatchNorm1d"
                if ndim in (2, 3)
                else ""
            )
            raise ShapeError(f"{self!r}: expected {self._shape_text} input, got {got}{hint}")
        # torch's rules: which statistics to use, and the momentum of their update
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            data_of(self.num_batches_tracked).add_(1)
            if self.momentum is None:
                factor = 1.0 / float(data_of(self.num_batches_tracked))
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        keep = not self.training or self.track_running_stats
        return _batch_norm(
            x,
            self.running_mean if keep else None,
            self.running_var if keep else None,
            self.weight,
            self.bias,
            use_batch,
            factor,
            self.eps,
            self,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.bias is not None}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) inputs, per channel C.

    See the module's docstring.
    """

    _dims = (2, 3)
    _shape_text = "a 2-D (N, C) or 3-D (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) images, per channel C (see the module docstring)."""

    _dims = (4,)
    _shape_text = "a 4-D (N, C, H, W)"


class LayerNorm(Module):
    """Layer normalisation over the last dimensions, `normalized_shape` (torch's arguments).

    weight starts at ones and bias at zeros, each shaped like normalized_shape.
    """

    def __init__(
        self,
        normalized_shape,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device=None,
        dtype=None,
    ):
        super().__init__()
        self.normalized_shape = _shape_tuple(normalized_shape, "LayerNorm")
        self.eps, self.elementwise_affine = eps, elementwise_affine
        like = dict(device=device, dtype=dtype or torch.get_default_dtype())
        if elementwise_affine:
            self.weight = Parameter(torch.ones(self.normalized_shape, **like))
            if bias:
                self.bias = Parameter(torch.zeros(self.normalized_shape, **like))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x):
        return _layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps, self)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, "
            f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}"
        )
