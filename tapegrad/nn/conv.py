"""`Conv2d`: 2-D convolution, one fused node, and the two convolutions that are its derivative.

What deep learning calls convolution is a correlation: each output pixel is
the kernel laid on the input and summed,

    y[n, o, i, j] = b[o] + sum over c, u, v of
                           x[n, c, s i + d u - p, s j + d v - p] * W[o, c, u, v]

(stride s, dilation d, zero padding p; with groups, output channel o sees
only its group's input channels). y is linear in x and linear in W, so
each derivative is the transpose of a linear map, and both are
convolutions again:

- dL/dx is dL/dy run through a *transposed* convolution with the same
  kernel: every input pixel collects dL/dy from each output pixel whose
  window covered it, weighted by the kernel entry that joined them
  (`Conv2dInputGrad`);
- dL/dW is a correlation of the input with dL/dy: entry W[o, c, u, v]
  multiplied the input shifted by (u, v) into every output of channel o
  (`Conv2dWeightGrad`).

Those two are linear too, and their derivatives are once more a
convolution, a transposed convolution or a correlation, so the three ops
below differentiate each other to any order. The ordinary sweep runs
aten's fused ``convolution_backward`` (both gradients, and the bias's, in
one call), as torch does.
"""

from __future__ import annotations

import math

import torch

from .. import _kernels
from ..errors import DtypeError, ShapeError
from ..function import Function
from ..tensor import Tensor
from . import init
from ._utils import data_of, pair
from .module import Module
from .parameter import Parameter

# torch.convolution is aten's convolution with less call overhead than torch.ops.aten's (~10 us)
_convolution = torch.convolution
_convolution_backward = _kernels.aten("convolution_backward")


def _traced(*values) -> bool:
    return any(isinstance(v, Tensor) for v in values)


class Conv2dFunction(Function):
    """y = conv2d(x, W) + b   x: (N, C_in, H, W),  W: (C_out, C_in / groups, kH, kW),  b: (C_out,)

    dL/dx = transposed convolution of dL/dy with W          (Conv2dInputGrad)
    dL/dW = correlation of x with dL/dy                       (Conv2dWeightGrad)
    dL/db = dL/dy summed over the batch and the pixels
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x, weight, bias, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
        need_x, need_weight = ctx.needs_input_grad[:2]
        ctx.conv = (stride, padding, dilation, groups)
        ctx.in_shape = x.shape
        ctx.save_for_backward(x if need_weight else None, weight)
        return _convolution(x, weight, bias, stride, padding, dilation, False, _NO_PAD, groups)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        need_x, need_weight, need_bias = ctx.needs_input_grad[:3]
        stride, padding, dilation, groups = ctx.conv
        if x is not None and isinstance(grad, torch.Tensor):
            # The ordinary sweep: all three gradients from one fused kernel.
            grads = _convolution_backward(
                grad,
                x,
                weight,
                [weight.shape[0]] if need_bias else None,
                stride,
                padding,
                dilation,
                False,
                _NO_PAD,
                groups,
                [need_x, need_weight, need_bias],
            )
            return (*grads, None, None, None, None)
        grad_x = conv2d_input_grad(grad, weight, ctx.in_shape, *ctx.conv) if need_x else None
        grad_weight = conv2d_weight_grad(x, grad, weight.shape, *ctx.conv) if need_weight else None
        grad_bias = grad.sum((0, 2, 3)) if need_bias else None
        return grad_x, grad_weight, grad_bias, None, None, None, None


_NO_PAD = [0, 0]


class Conv2dInputGrad(Function):
    """z = transposed convolution of g with W, shaped like the input x: (N, C_in, H, W)
           (conv2d's input gradient as an op: g is y's gradient)

    dL/dg = conv2d(dL/dz, W)                       (correlation with the same kernel)
    dL/dW = correlation of dL/dz with g            (dL/dz in the place of the input)
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, g, weight, in_shape, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
        need_g, need_weight = ctx.needs_input_grad[:2]
        ctx.conv = (stride, padding, dilation, groups)
        ctx.weight_shape = weight.shape
        ctx.save_for_backward(g if need_weight else None, weight if need_g else None)
        return _input_grad(g, weight, in_shape, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, grad):
        g, weight = ctx.saved_tensors
        grad_g = None if weight is None else conv2d_plain(grad, weight, *ctx.conv)
        grad_weight = (
            None if g is None else conv2d_weight_grad(grad, g, ctx.weight_shape, *ctx.conv)
        )
        return grad_g, grad_weight, None, None, None, None, None


class Conv2dWeightGrad(Function):
    """z = correlation of x with g, shaped like W: (C_out, C_in / groups, kH, kW)
           (conv2d's weight gradient as an op: g is y's gradient)

    dL/dx = transposed convolution of g with dL/dz   (dL/dz in the place of the kernel)
    dL/dg = conv2d(x, dL/dz)
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x, g, weight_shape, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
        need_x, need_g = ctx.needs_input_grad[:2]
        ctx.conv = (stride, padding, dilation, groups)
        ctx.in_shape = x.shape
        ctx.save_for_backward(x if need_g else None, g if need_x else None)
        return _weight_grad(x, g, weight_shape, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, grad):
        x, g = ctx.saved_tensors
        grad_x = None if g is None else conv2d_input_grad(g, grad, ctx.in_shape, *ctx.conv)
        grad_g = None if x is None else conv2d_plain(x, grad, *ctx.conv)
        return grad_x, grad_g, None, None, None, None, None


# --- the three convolutions, as kernels (torch tensors) or recorded ops (tapegrad tensors) ---


def _input_grad(g, weight, in_shape, stride, padding, dilation, groups):
    # The transposed convolution's output size is ambiguous when the stride skipped the
    # input's last rows or columns: output_padding adds them back, to x's size.
    output_padding = [
        in_shape[2 + i]
        - (
            (g.shape[2 + i] - 1) * stride[i]
            - 2 * padding[i]
            + dilation[i] * (weight.shape[2 + i] - 1)
            + 1
        )
        for i in range(2)
    ]
    return _convolution(g, weight, None, stride, padding, dilation, True, output_padding, groups)


def _weight_grad(x, g, weight_shape, stride, padding, dilation, groups):
    # convolution_backward reads only the weight's shape when it computes dL/dW alone.
    shape_only = x.new_empty(weight_shape)
    return _convolution_backward(
        g,
        x,
        shape_only,
        None,
        stride,
        padding,
        dilation,
        False,
        _NO_PAD,
        groups,
        [False, True, False],
    )[1]


def conv2d_plain(x, weight, stride, padding, dilation, groups):
    """conv2d without bias: aten's kernel on torch tensors, the recorded op on tapegrad tensors."""
    if _traced(x, weight):
        return Conv2dFunction.apply(x, weight, None, stride, padding, dilation, groups)
    return _convolution(x, weight, None, stride, padding, dilation, False, _NO_PAD, groups)


def conv2d_input_grad(g, weight, in_shape, stride, padding, dilation, groups):
    """`Conv2dInputGrad`: aten's kernel on torch tensors, the recorded op on tapegrad tensors."""
    if _traced(g, weight):
        return Conv2dInputGrad.apply(g, weight, in_shape, stride, padding, dilation, groups)
    return _input_grad(g, weight, in_shape, stride, padding, dilation, groups)


def conv2d_weight_grad(x, g, weight_shape, stride, padding, dilation, groups):
    """`Conv2dWeightGrad`: aten's kernel on torch tensors, the recorded op on tapegrad tensors."""
    if _traced(x, g):
        return Conv2dWeightGrad.apply(x, g, weight_shape, stride, padding, dilation, groups)
    return _weight_grad(x, g, weight_shape, stride, padding, dilation, groups)


# --- the function --------------------------------------------------------------------------


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.nn.functional.conv2d: input (N, C_in, H, W) or (C_in, H, W); padding an int, a pair,
    'valid' (none) or 'same' (output as large as the input; stride 1 only)."""
    return _conv2d(input, weight, bias, stride, padding, dilation, groups, "conv2d")


def _conv2d(x, weight, bias, stride, padding, dilation, groups, owner):
    stride = pair(stride, "stride", _name(owner), 1)
    dilation = pair(dilation, "dilation", _name(owner), 1)
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{_name(owner)}: groups must be a positive int, got {groups!r}")
    crop = None
    if isinstance(padding, str):
        padding, crop = _string_padding(
            padding, data_of(weight).shape, stride, dilation, _name(owner)
        )
    else:
        padding = pair(padding, "padding", _name(owner))
    unbatched = data_of(x).dim() == 3 if hasattr(x, "dim") else False
    try:
        y = Conv2dFunction.apply(
            x.unsqueeze(0) if unbatched else x, weight, bias, stride, padding, dilation, groups
        )
    except (TypeError, ValueError, RuntimeError):
        # Checked only after a failure: the hot path pays nothing for the clear message.
        _check_conv_input(owner, x, weight, bias, padding, dilation, groups)
        raise
    if crop:  # 'same' with an even kernel: padded one more on the top and left, cut it off
        y = y[(slice(None), slice(None)) + crop]
    return y.reshape(y.shape[1:]) if unbatched else y


def _string_padding(padding, weight_shape, stride, dilation, owner):
    """'valid' -> no padding; 'same' -> the padding that keeps H and W (and what to crop)."""
    if padding == "valid":
        return (0, 0), None
    if padding != "same":
        raise ValueError(
            f"{owner}: padding must be an int, a pair, 'valid' or 'same', got {padding!r}"
        )
    if stride != (1, 1):
        raise ValueError(
            f"{owner}: padding='same' is not supported for strided convolutions "
            f"(stride={stride}); use stride=1 or pad with numbers"
        )
    total = [dilation[i] * (weight_shape[2 + i] - 1) for i in range(2)]
    # torch pads total // 2 before and the rest after. An odd total is padded symmetrically
    # with the larger half, which adds one row (column) at the start: cropped off the output.
    padding = tuple(t - t // 2 for t in total)
    crop = tuple(slice(1, None) if t % 2 else slice(None) for t in total)
    return padding, (crop if any(t % 2 for t in total) else None)


def _name(owner) -> str:
    return owner if isinstance(owner, str) else repr(owner)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _check_conv_input(owner, x, weight, bias, padding, dilation, groups) -> None:
    """Raise the clear error for a conv2d call that failed: the layer, the shapes, the fix."""
    owner = _name(owner)
    data, w = data_of(x), data_of(weight)
    if not isinstance(data, torch.Tensor):
        raise TypeError(f"{owner} takes a tensor, got {type(x).__name__}") from None
    shape = tuple(data.shape)
    if data.dim() not in (3, 4):
        raise ShapeError(
            f"{owner}: expected a 4-D input (N, C, H, W) or a 3-D one (C, H, W), got "
            f"shape {shape}; reshape it, e.g. x.reshape(N, C, H, W) for a batch of "
            "images"
        ) from None
    channels = shape[-3]
    if channels != w.shape[1] * groups:
        wanted = w.shape[1] * groups
        raise ShapeError(
            f"{owner}: expected input with {_count(wanted, 'channel')} (dimension "
            f"{data.dim() - 3}), got {_count(channels, 'channel')} in input of shape "
            f"{shape}; the weight has shape {tuple(w.shape)}. Make in_channels "
            "match the data (or convert the data)"
        ) from None
    for i, side in enumerate(("height", "width")):
        padded = shape[-2 + i] + 2 * padding[i]
        reach = dilation[i] * (w.shape[2 + i] - 1) + 1
        if reach > padded:
            raise ShapeError(
                f"{owner}: the kernel ({reach} pixels of {side}, dilation included) "
                f"is larger than the padded input ({padded} pixels: input shape "
                f"{shape}, padding {padding}). Use a smaller kernel, more padding, "
                "or larger images"
            ) from None
    for role, value in (("weight", w), ("bias", data_of(bias))):
        if value is None:
            continue
        if value.dtype != data.dtype:
            raise DtypeError(
                f"{owner}: input is {data.dtype} but the {role} is {value.dtype}; "
                "convert the input (x.to(dtype)) or the model (model.double() / "
                "model.float())"
            ) from None
        if value.device != data.device:
            raise RuntimeError(
                f"{owner}: input is on {data.device} but the {role} is on "
                f"{value.device}; move the input (x.to(device)) or the model "
                "(model.to(device)) so both agree"
            ) from None


# --- the layer -----------------------------------------------------------------------------


class Conv2d(Module):
    """A 2-D convolution layer: y = conv2d(x, W) + b, with torch's arguments and initialisation.

    W and b start uniform in +-1/sqrt(fan_in), fan_in = C_in / groups * kH * kW
    (torch's kaiming_uniform_(a=sqrt(5))). `generator` makes that
    reproducible without touching the global seed. Only padding_mode='zeros'.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        owner = "Conv2d"
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("groups", groups),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}")
        if in_channels % groups:
            raise ValueError(
                f"{owner}: in_channels must be divisible by groups "
                f"({in_channels} channels, {groups} groups)"
            )
        if out_channels % groups:
            raise ValueError(
                f"{owner}: out_channels must be divisible by groups "
                f"({out_channels} channels, {groups} groups)"
            )
        if padding_mode != "zeros":
            if padding_mode in ("reflect", "replicate", "circular"):
                raise NotImplementedError(
                    f"{owner}: padding_mode={padding_mode!r} is not "
                    "implemented in tapegrad; only 'zeros'"
                )
            raise ValueError(
                f"{owner}: padding_mode must be 'zeros', 'reflect', 'replicate' or "
                f"'circular', got {padding_mode!r}"
            )
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = pair(kernel_size, "kernel_size", owner, 1)
        self.stride = pair(stride, "stride", owner, 1)
        self.dilation = pair(dilation, "dilation", owner, 1)
        self.padding_mode = padding_mode
        if isinstance(padding, str):
            # checks the string (and stride 1 for 'same') now rather than at the first call
            _string_padding(
                padding,
                (out_channels, in_channels // groups) + self.kernel_size,
                self.stride,
                self.dilation,
                owner,
            )
            self.padding: str | tuple = padding
        else:
            self.padding = pair(padding, "padding", owner)
        dtype = dtype or torch.get_default_dtype()
        self.weight = Parameter(
            torch.empty(
                out_channels, in_channels // groups, *self.kernel_size, device=device, dtype=dtype
            )
        )
        if bias:
            self.bias = Parameter(torch.empty(out_channels, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        fan_in = self.weight.data[0].numel()
        bound = 1 / math.sqrt(fan_in) if fan_in else 0.0
        init.uniform_(self.weight, -bound, bound, generator=generator)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound, generator=generator)

    def forward(self, x):
        padding = self.padding
        if padding.__class__ is tuple and isinstance(x, Tensor) and x.ndim == 4:
            try:  # the usual case, straight to the op
                return Conv2dFunction.apply(
                    x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups
                )
            except (TypeError, ValueError, RuntimeError):
                _check_conv_input(
                    self, x, self.weight, self.bias, padding, self.dilation, self.groups
                )
                raise
        return _conv2d(
            x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups, self
        )

    def extra_repr(self) -> str:
        text = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text
