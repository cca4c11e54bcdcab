"""`MaxPool2d` and `AvgPool2d`: one value per window of each channel, each one fused node.

Max pooling keeps the largest value of each window and remembers where it
was (its flat position h * W + w in the channel, aten's "indices"). Its
derivative sends each output's gradient back to that one position
(`MaxPool2dScatter`, which adds: overlapping windows may pick a pixel
twice); the derivative of that scatter is a gather at the same positions
(`MaxPool2dGather`), and the gather's derivative is the scatter again.
The positions are constants of the derivative, as in torch: the max is
piecewise linear.

Average pooling is linear: its derivative spreads each output's gradient
evenly over its window (`AvgPool2dBackward`), and the derivative of that
is average pooling again. The ordinary sweep runs aten's fused kernels.
"""

from __future__ import annotations

import torch

from .. import _kernels
from ..errors import ShapeError
from ..function import Function
from ..tensor import Tensor
from ._utils import data_of, pair
from .module import Module

# aten's max_pool2d_with_indices; torch.nn.functional's entry to it has less call overhead
_max_pool2d_with_indices = torch.nn.functional.max_pool2d_with_indices
_max_pool2d_backward = _kernels.aten("max_pool2d_with_indices_backward")
_avg_pool2d = _kernels.aten("avg_pool2d")
_avg_pool2d_backward = _kernels.aten("avg_pool2d_backward")


class MaxPool2dFunction(Function):
    """y = max of x over each kernel window   x: (N, C, H, W) or (C, H, W)

    dL/dx = dL/dy added at the position of each window's max, 0 elsewhere
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding=(0, 0), dilation=(1, 1), ceil_mode=False):
        y, indices = _max_pool2d_with_indices(x, kernel_size, stride, padding, dilation, ceil_mode)
        ctx.pool = (kernel_size, stride, padding, dilation, ceil_mode)
        ctx.in_shape = x.shape
        ctx.save_for_backward(x, indices)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, indices = ctx.saved_tensors
        if isinstance(grad, torch.Tensor):
            return _max_pool2d_backward(grad, x, *ctx.pool, indices), None, None, None, None, None
        return MaxPool2dScatter.apply(grad, indices, ctx.in_shape), None, None, None, None, None


class MaxPool2dScatter(Function):
    """z = zeros shaped like the pooled input, with g added at the positions of the maxima
           (max pooling's derivative as an op)

    dL/dg = dL/dz at the positions of the maxima   (a gather)
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, g, indices, in_shape):
        ctx.save_for_backward(indices)
        return _scatter(g, indices, in_shape)

    @staticmethod
    def backward(ctx, grad):
        (indices,) = ctx.saved_tensors
        return max_pool_gather(grad, indices), None, None


class MaxPool2dGather(Function):
    """y = x at the given positions of each channel
        (flat positions h * W + w, as max pooling's indices)

    dL/dx = zeros, with dL/dy added at those positions   (MaxPool2dScatter)
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x, indices):
        ctx.in_shape = x.shape
        ctx.save_for_backward(indices)
        return _gather(x, indices)

    @staticmethod
    def backward(ctx, grad):
        (indices,) = ctx.saved_tensors
        if isinstance(grad, torch.Tensor):
            return _scatter(grad, indices, ctx.in_shape), None
        return MaxPool2dScatter.apply(grad, indices, ctx.in_shape), None


def _scatter(g, indices, in_shape):
    out = g.new_zeros(in_shape)
    out.flatten(-2).scatter_add_(-1, indices.flatten(-2), g.flatten(-2))
    return out


def _gather(x, indices):
    return x.flatten(-2).gather(-1, indices.flatten(-2)).view(indices.shape)


def max_pool_gather(x, indices):
    """`MaxPool2dGather`: torch's gather on torch tensors, the recorded op on tapegrad tensors."""
    if isinstance(x, Tensor):
        return MaxPool2dGather.apply(x, indices)
    return _gather(x, indices)


class AvgPool2dFunction(Function):
    """y = mean of x over each kernel window
        (padding counted unless count_include_pad=False; or the sum / divisor_override)

    dL/dx = each dL/dy spread evenly over its window (divided like y was)
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(
        ctx,
        x,
        kernel_size,
        stride,
        padding=(0, 0),
        ceil_mode=False,
        count_include_pad=True,
        divisor_override=None,
    ):
        ctx.pool = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
        ctx.in_shape = x.shape
        return _avg_pool2d(x, *ctx.pool)

    @staticmethod
    def backward(ctx, grad):
        return avg_pool_backward(grad, ctx.in_shape, ctx.pool), None, None, None, None, None, None


class AvgPool2dBackward(Function):
    """z = each g spread evenly over its pooling window, shaped like the pooled input
           (average pooling's derivative as an op)

    dL/dg = average pooling of dL/dz
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, g, in_shape, pool):
        ctx.pool = pool
        return _avg_pool_backward(g, in_shape, pool)

    @staticmethod
    def backward(ctx, grad):
        if isinstance(grad, torch.Tensor):
            return _avg_pool2d(grad, *ctx.pool), None, None
        return AvgPool2dFunction.apply(grad, *ctx.pool), None, None


def _avg_pool_backward(g, in_shape, pool):
    # aten's kernel reads only the input's shape
    return _avg_pool2d_backward(g, g.new_empty(in_shape), *pool)


def avg_pool_backward(g, in_shape, pool):
    if isinstance(g, Tensor):
        return AvgPool2dBackward.apply(g, in_shape, pool)
    return _avg_pool_backward(g, in_shape, pool)


# --- the functions -------------------------------------------------------------------------


def max_pool2d(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    """torch.nn.functional.max_pool2d (stride defaults to kernel_size)."""
    return _max_pool2d(
        input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, "max_pool2d"
    )


def _pool_args(owner, kernel_size, stride, padding, dilation=1):
    name = _name(owner)
    kernel_size = pair(kernel_size, "kernel_size", name, 1)
    stride = (
        kernel_size
        if stride is None or stride == () or stride == []
        else pair(stride, "stride", name, 1)
    )
    return kernel_size, stride, pair(padding, "padding", name), pair(dilation, "dilation", name, 1)


def _max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, owner):
    kernel_size, stride, padding, dilation = _pool_args(
        owner, kernel_size, stride, padding, dilation
    )
    try:
        if return_indices:
            # the positions first (no gradient), then y as the gather at them
            _, indices = _max_pool2d_with_indices(
                data_of(x), kernel_size, stride, padding, dilation, ceil_mode
            )
            return MaxPool2dGather.apply(x, indices), Tensor._wrap(indices)
        return MaxPool2dFunction.apply(x, kernel_size, stride, padding, dilation, ceil_mode)
    except (TypeError, ValueError, RuntimeError, IndexError):
        _check_pool_input(owner, x, kernel_size, padding, dilation)
        raise


def avg_pool2d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    """torch.nn.functional.avg_pool2d (stride defaults to kernel_size)."""
    return _avg_pool2d_call(
        input,
        kernel_size,
        stride,
        padding,
        ceil_mode,
        count_include_pad,
        divisor_override,
        "avg_pool2d",
    )


def _avg_pool2d_call(
    x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, owner
):
    kernel_size, stride, padding, _ = _pool_args(owner, kernel_size, stride, padding)
    if divisor_override is not None and (
        isinstance(divisor_override, bool)
        or not isinstance(divisor_override, int)
        or divisor_override == 0
    ):
        raise ValueError(
            f"{_name(owner)}: divisor_override must be a non-zero int or None, got "
            f"{divisor_override!r}"
        )
    try:
        return AvgPool2dFunction.apply(
            x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
        )
    except (TypeError, ValueError, RuntimeError, IndexError):
        _check_pool_input(owner, x, kernel_size, padding, (1, 1))
        raise


def _name(owner) -> str:
    return owner if isinstance(owner, str) else repr(owner)


def _check_pool_input(owner, x, kernel_size, padding, dilation) -> None:
    owner = _name(owner)
    data = data_of(x)
    if not isinstance(data, torch.Tensor):
        raise TypeError(f"{owner} takes a tensor, got {type(x).__name__}") from None
    shape = tuple(data.shape)
    if data.dim() not in (3, 4):
        raise ShapeError(
            f"{owner}: expected a 4-D input (N, C, H, W) or a 3-D one (C, H, W), got shape {shape}"
        ) from None
    for i in range(2):
        if 2 * padding[i] > kernel_size[i]:
            raise ShapeError(
                f"{owner}: padding {padding} must be at most half the kernel size "
                f"{kernel_size}; use less padding or a larger kernel"
            ) from None
        reach = dilation[i] * (kernel_size[i] - 1) + 1
        if reach > shape[-2 + i] + 2 * padding[i]:
            raise ShapeError(
                f"{owner}: the window ({reach} pixels, dilation included) is larger "
                f"than the padded input (shape {shape}, padding {padding}); use a "
                "smaller kernel_size or larger images"
            ) from None


# --- the layers --------------------------------------------------------------------------


class MaxPool2d(Module):
    """y = the largest value of each kernel_size window (torch's arguments).

    stride defaults to kernel_size.
    """

    _args: tuple  # the checked arguments (set by _arguments, kept in the instance __dict__)

    def __init__(
        self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False
    ):
        super().__init__()
        self.kernel_size, self.stride, self.padding, self.dilation = (
            kernel_size,
            (stride if stride is not None else kernel_size),
            padding,
            dilation,
        )
        self.return_indices, self.ceil_mode = return_indices, ceil_mode
        self._arguments()

    def _arguments(self) -> tuple:
        """The arguments as pairs, checked; recomputed only when an attribute was changed."""
        given = (self.kernel_size, self.stride, self.padding, self.dilation)
        if self.__dict__.get("_given") != given:
            self.__dict__["_args"] = _pool_args(self, *given)
            self.__dict__["_given"] = given
        return self._args

    def forward(self, x):
        args = self._arguments()
        if not self.return_indices:
            try:
                return MaxPool2dFunction.apply(x, *args, self.ceil_mode)
            except (TypeError, ValueError, RuntimeError, IndexError):
                kernel_size, _, padding, dilation = args
                _check_pool_input(self, x, kernel_size, padding, dilation)
                raise
        return _max_pool2d(x, *args, self.ceil_mode, True, self)

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class AvgPool2d(Module):
    """y = the mean of each kernel_size window (torch's arguments).

    stride defaults to kernel_size.
    """

    def __init__(
        self,
        kernel_size,
        stride=None,
        padding=0,
        ceil_mode=False,
        count_include_pad=True,
        divisor_override=None,
    ):
        super().__init__()
        self.kernel_size, self.stride, self.padding = (
            kernel_size,
            (stride if stride is not None else kernel_size),
            padding,
        )
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad
        self.divisor_override = divisor_override
        _pool_args("AvgPool2d", kernel_size, stride, padding)

    def forward(self, x):
        return _avg_pool2d_call(
            x,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
            self.divisor_override,
            self,
        )

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
