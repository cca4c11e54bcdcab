"""Losses, each one node with its own derivative (cross-entropy: log_softmax, then NLL).

MSE, BCE and BCE-with-logits: prediction and target must have the same
shape. torch would broadcast a (N, 1) prediction against a (N,) target
into an (N, N) difference and average that: a classic silent bug, refused
here.

Classification: `CrossEntropyLoss` is `LogSoftmax` along the class
dimension (1, or 0 for a single unbatched sample) followed by `NLLLoss`,
which picks -log p of each sample's class (weighted, averaged over the
total weight). Both are computed stably: log_softmax never forms exp(x)
of a large x, and BCE-with-logits never forms log(sigmoid(x)) from a
rounded sigmoid.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from .. import _kernels, ops
from ..errors import DtypeError, ShapeError
from ..function import Function
from ..ops.broadcast import unbroadcast
from ..ops.select import where
from ..tensor import Tensor
from ._utils import ArgumentError, check_constant, data_of, reduction_of
from .module import Module

_REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}  # aten's reduction codes


class MSEFunction(Function):
    """L = mean (or sum) over elements of (p - t)^2

    dL/dp = 2 (p - t) / n   (n = number of elements; no / n for 'sum')
    dL/dt = -dL/dp
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, prediction, target, reduction="mean"):
        ctx.reduction = reduction
        ctx.save_for_backward(prediction, target)
        return _mse_loss(prediction, target, _REDUCTIONS[reduction])

    @staticmethod
    def backward(ctx, grad):
        prediction, target = ctx.saved_tensors
        need_p, need_t, _ = ctx.needs_input_grad
        if isinstance(grad, Tensor):  # create_graph=True: the same derivative, recorded as an op
            grad_p = MSELossBackward.apply(grad, prediction, target, ctx.reduction)
        else:
            code = _REDUCTIONS[ctx.reduction]
            grad_p = _kernels.mse_loss_backward(grad, prediction, target, code)
        return (grad_p if need_p else None), (-grad_p if need_t else None), None


class MSELossBackward(Function):
    """z = g * s (p - t)
           (the derivative of MSE as an op: g is the loss's gradient; s = 2/n for 'mean', else 2)

    dL/dg = sum of dL/dz * s (p - t)   (over what g was broadcast to)
    dL/dp = dL/dz * g * s
    dL/dt = -dL/dz * g * s
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, g, prediction, target, reduction="mean"):
        ctx.scale = 2.0 / prediction.numel() if reduction == "mean" else 2.0
        ctx.save_for_backward(g, prediction, target)
        return _kernels.mse_loss_backward(g, prediction, target, _REDUCTIONS[reduction])

    @staticmethod
    def backward(ctx, grad):
        g, prediction, target = ctx.saved_tensors
        need_g, need_p, need_t, _ = ctx.needs_input_grad
        scale = ctx.scale
        grad_g = unbroadcast(grad * (prediction - target) * scale, g.shape) if need_g else None
        grad_p = grad * g * scale if (need_p or need_t) else None
        return grad_g, (grad_p if need_p else None), (-grad_p if need_t else None), None


_mse_loss = _kernels.aten("mse_loss") or (
    lambda p, t, r: F.mse_loss(p, t, reduction=["none", "mean", "sum"][r])
)


class BCEFunction(Function):
    """L = mean (or sum) of -(t log p + (1 - t) log(1 - p))   (logs clamped at -100, as torch)

    dL/dp = (p - t) / (p (1 - p)) / n
    dL/dt = (log(1 - p) - log p) / n      (the clamped logs: +-100 / n at p = 0 or 1, where
                                           torch's target gradient is +-inf)
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, prediction, target, reduction="mean"):
        ctx.reduction = reduction
        ctx.save_for_backward(prediction, target)
        return F.binary_cross_entropy(prediction, target, reduction=reduction)

    @staticmethod
    def backward(ctx, grad):
        prediction, target = ctx.saved_tensors
        need_p, need_t, _ = ctx.needs_input_grad
        eps = _BCE_EPS
        scale = 1.0 / prediction.numel() if ctx.reduction == "mean" else 1.0
        grad_p = (
            grad * scale * (prediction - target) / (prediction * (1 - prediction)).clamp_min(eps)
        )
        grad_t = None
        if need_t:  # dL/dt = -(log p - log(1 - p)) scaled
            grad_t = (
                -grad
                * scale
                * (prediction.log().clamp_min(-100) - (-prediction).log1p().clamp_min(-100))
            )
        return (grad_p if need_p else None), grad_t, None


# torch's clamp of p (1 - p) in the derivative: 1e-12 stored as a float32, so that a saturated
# prediction (p = 0 or 1) gets torch's gradient to the last digit.
_BCE_EPS = float(torch.tensor(1e-12, dtype=torch.float32))


def _check_same_shape(owner, prediction, target) -> None:
    """Prediction and target: tensors of one shape and one dtype (see the module docstring).

    `owner` names the caller in errors: a function's name, or the loss module itself.
    """
    p = prediction._data if isinstance(prediction, Tensor) else prediction
    t = target._data if isinstance(target, Tensor) else target
    if isinstance(owner, Module):
        if p.__class__ is t.__class__ is torch.Tensor and p.shape == t.shape and p.dtype == t.dtype:
            return  # the common case, checked in one line (a loss is called every step)
        owner = type(owner).__name__
    for role, value in (("prediction", p), ("target", t)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{owner}: {role} must be a tensor, got {type(value).__name__}")
    if p.shape != t.shape:
        raise ValueError(
            f"{owner}: prediction has shape {tuple(p.shape)} but "
            f"target has shape {tuple(t.shape)}; they must match (torch would "
            "broadcast them and silently compute the wrong loss). Reshape one, "
            "e.g. target.reshape(prediction.shape)"
        )
    if p.dtype != t.dtype:
        raise DtypeError(
            f"{owner}: prediction is {p.dtype} but target is "
            f"{t.dtype}; convert the target with .to(prediction.dtype)"
        )


class _Loss(Module):
    """Shared checks and the course API's `backward()` for the losses."""

    function: type
    _not_copied = (*Module._not_copied, "_last_inputs")  # (the latest inputs: tapes)

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction_of(type(self).__name__, reduction, size_average, reduce)
        self._last_inputs = None

    def forward(self, prediction, target):
        _check_same_shape(self, prediction, target)
        self.__dict__["_last_inputs"] = (prediction, target)  # plain attribute: skip __setattr__
        return self._loss(prediction, target)

    def _loss(self, prediction, target):
        return self.function.apply(prediction, target, self.reduction)

    def backward(self, grad_output=None):
        """The course API: dL/d(prediction) for the latest call, as a torch tensor."""
        if self._last_inputs is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward(): call the loss on a prediction first"
            )
        prediction, target = self._last_inputs
        p = prediction.data if isinstance(prediction, Tensor) else prediction
        t = target.data if isinstance(target, Tensor) else target
        leaf = Tensor(p, requires_grad=True)
        loss = self._loss(leaf, t)
        loss.backward(grad_output)
        return leaf.grad

    def extra_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """Mean squared error: mean((prediction - target)^2), or the sum with reduction='sum'.

    torch's arguments: MSELoss(size_average=None, reduce=None, reduction='mean').
    """

    function = MSEFunction


LossMSE = MSELoss  # the course's name


class BCELoss(_Loss):
    """Binary cross-entropy on probabilities in [0, 1] (e.g. after Sigmoid).

    torch's arguments: BCELoss(weight=None, size_average=None, reduce=None, reduction='mean');
    `weight` (broadcast to the prediction's shape) rescales each element's loss.
    """

    function = BCEFunction

    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        check_constant(type(self).__name__, "weight", weight)
        self.register_buffer("weight", None if weight is None else data_of(weight))

    def _loss(self, prediction, target):
        if self.weight is None:
            return self.function.apply(prediction, target, self.reduction)
        return binary_cross_entropy(
            prediction, target, weight=self.weight, reduction=self.reduction
        )


# --- classification: NLL (and cross-entropy built on it), BCE with logits -------------------

_nll_loss_forward = _kernels.aten("nll_loss_forward")
_nll_loss_backward = _kernels.aten("nll_loss_backward")
_nll_loss2d_forward = _kernels.aten("nll_loss2d_forward")
_nll_loss2d_backward = _kernels.aten("nll_loss2d_backward")
_bce_with_logits = _kernels.aten("binary_cross_entropy_with_logits")


class NLLLossFunction(Function):
    """L = -w[t] logp[t] per sample (t its class; 0 where t == ignore_index),
        summed ('sum'), divided by the sum of w[t] ('mean') or kept ('none')

    dL/dlogp = -w[t] / W at each sample's class t, 0 elsewhere
               (W = that sum of w[t] for 'mean', else 1)
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, logp, target, weight=None, reduction="mean", ignore_index=-100):
        kernel = _nll_loss2d_forward if logp.dim() == 4 else _nll_loss_forward
        loss, total_weight = kernel(logp, target, weight, _REDUCTIONS[reduction], ignore_index)
        ctx.nll = (reduction, ignore_index)
        # W depends only on the targets and the class weights, both constants: no derivative
        # is lost by keeping it on the node.
        ctx.total_weight = total_weight
        ctx.save_for_backward(logp, target, weight)
        return loss

    @staticmethod
    def backward(ctx, grad):
        logp, target, weight = ctx.saved_tensors
        grad_logp = nll_loss_backward(grad, logp, target, weight, *ctx.nll, ctx.total_weight)
        return grad_logp, None, None, None, None


class NLLLossBackward(Function):
    """z = zeros like logp, with -g w[t] / W at each sample's class t
           (NLLLoss's derivative as an op: g is L's gradient)

    dL/dg = NLL loss of dL/dz (z is linear in g: the same targets, weights and reduction)
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, g, logp, target, weight, reduction, ignore_index, total_weight):
        ctx.nll = (reduction, ignore_index)
        ctx.save_for_backward(target, weight)
        kernel = _nll_loss2d_backward if logp.dim() == 4 else _nll_loss_backward
        return kernel(g, logp, target, weight, _REDUCTIONS[reduction], ignore_index, total_weight)

    @staticmethod
    def backward(ctx, grad):
        target, weight = ctx.saved_tensors
        if isinstance(grad, torch.Tensor):
            kernel = _nll_loss2d_forward if grad.dim() == 4 else _nll_loss_forward
            reduction, ignore_index = ctx.nll
            grad_g = kernel(grad, target, weight, _REDUCTIONS[reduction], ignore_index)[0]
        else:
            grad_g = NLLLossFunction.apply(grad, target, weight, *ctx.nll)
        return grad_g, None, None, None, None, None, None


def nll_loss_backward(grad, logp, target, weight, reduction, ignore_index, total_weight):
    """`NLLLossBackward`: aten's kernel on torch tensors, the recorded op on tapegrad tensors."""
    if isinstance(grad, torch.Tensor):
        kernel = _nll_loss2d_backward if logp.dim() == 4 else _nll_loss_backward
        return kernel(
            grad, logp, target, weight, _REDUCTIONS[reduction], ignore_index, total_weight
        )
    # logp gives only its shape: a constant of the derivative, as it is in fact
    return NLLLossBackward.apply(
        grad, logp.detach(), target, weight, reduction, ignore_index, total_weight
    )


class BCEWithLogitsFunction(Function):
    """L = mean (or sum) of -w (pw t log sigmoid(x) + (1 - t) log sigmoid(-x))
           (x: logits; w: weight, pw: pos_weight, 1 when not given)

    dL/dx = w ((pw t + 1 - t) sigmoid(x) - pw t) / n
        (= w (sigmoid(x) - t) / n without pos_weight)
    dL/dt = w (log sigmoid(-x) - pw log sigmoid(x)) / n   (= -w x / n without pos_weight)
    (n = number of elements for 'mean', else 1)
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x, target, weight=None, pos_weight=None, reduction="mean"):
        ctx.reduction = reduction
        ctx.save_for_backward(x, target, weight, pos_weight)
        return _bce_with_logits(x, target, weight, pos_weight, _REDUCTIONS[reduction])

    @staticmethod
    def backward(ctx, grad):
        x, t, weight, pos_weight = ctx.saved_tensors
        need_x, need_t = ctx.needs_input_grad[:2]
        if ctx.reduction == "mean":
            grad = grad / x.numel()
        grad_x = grad_t = None
        if need_x:
            s = x.sigmoid()
            if pos_weight is None:
                grad_x = s - t
            else:
                pt = pos_weight * t
                grad_x = (pt + 1 - t) * s - pt
            grad_x = (grad_x if weight is None else grad_x * weight) * grad
        if need_t:
            if pos_weight is None:
                grad_t = -x
            else:
                log_p = _log_sigmoid(x)
                grad_t = (log_p - x) - pos_weight * log_p  # log sigmoid(-x) = log sigmoid(x) - x
            grad_t = (grad_t if weight is None else grad_t * weight) * grad
        return grad_x, grad_t, None, None, None


def _log_sigmoid(x):
    """log sigmoid(x) = min(x, 0) - log(1 + exp(-|x|)), stable for large |x|."""
    return where(x < 0, x, 0.0) - where(x > 0, -x, x).exp().log1p()


# --- the functions (torch.nn.functional's names and signatures) ------------------------------


def mse_loss(input, target, size_average=None, reduce=None, reduction: str = "mean", weight=None):
    """Mean squared error; input and target of one shape (see the module docstring)."""
    reduction = reduction_of("mse_loss", reduction, size_average, reduce)
    _check_same_shape("mse_loss", input, target)
    if weight is None:
        return MSEFunction.apply(input, target, reduction)
    if tuple(data_of(weight).shape) != tuple(data_of(input).shape):
        raise ValueError(
            f"mse_loss: weight has shape {tuple(data_of(weight).shape)}, the input "
            f"{tuple(data_of(input).shape)}; weights and input must have the same "
            "size"
        )
    squared = ops.Mul.apply(ops.Pow.apply(ops.Sub.apply(input, target), 2), weight)
    if reduction == "none":
        return squared
    total = squared.sum()
    return total if reduction == "sum" else total / data_of(weight).sum()


def binary_cross_entropy(
    input, target, weight=None, size_average=None, reduce=None, reduction: str = "mean"
):
    """Binary cross-entropy of probabilities in [0, 1] (e.g. after sigmoid); shapes must match."""
    reduction = reduction_of("binary_cross_entropy", reduction, size_average, reduce)
    _check_same_shape("binary_cross_entropy", input, target)
    check_constant("binary_cross_entropy", "weight", weight)
    if weight is None:
        return BCEFunction.apply(input, target, reduction)
    losses = ops.Mul.apply(BCEFunction.apply(input, target, "none"), data_of(weight))
    return losses if reduction == "none" else losses.sum() if reduction == "sum" else losses.mean()


def binary_cross_entropy_with_logits(
    input,
    target,
    weight=None,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
    pos_weight=None,
):
    """Binary cross-entropy of sigmoid(input), computed from the logits without rounding sigmoid."""
    return _bce_with_logits_call(
        input,
        target,
        weight,
        pos_weight,
        reduction_of("binary_cross_entropy_with_logits", reduction, size_average, reduce),
        "binary_cross_entropy_with_logits",
    )


def _bce_with_logits_call(x, target, weight, pos_weight, reduction, owner):
    _check_same_shape(_name(owner), x, target)
    check_constant(_name(owner), "weight", weight)
    check_constant(_name(owner), "pos_weight", pos_weight)
    try:
        return BCEWithLogitsFunction.apply(
            x, target, data_of(weight), data_of(pos_weight), reduction
        )
    except (TypeError, ValueError, RuntimeError):
        shape = tuple(data_of(x).shape)
        for role, value in (("weight", weight), ("pos_weight", pos_weight)):
            if value is not None:
                try:
                    torch.broadcast_shapes(data_of(value).shape, shape)
                except RuntimeError:
                    raise ShapeError(
                        f"{_name(owner)}: {role} of shape "
                        f"{tuple(data_of(value).shape)} does not broadcast against "
                        f"the input of shape {shape}; pos_weight has one entry per "
                        "class (the last dimension)"
                    ) from None
        raise


def nll_loss(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index: int = -100,
    reduce=None,
    reduction: str = "mean",
):
    """-log p at class indices `target`, from log-probabilities input (N, C) or (N, C, d1, ...)."""
    reduction = reduction_of("nll_loss", reduction, size_average, reduce)
    check_constant("nll_loss", "weight", weight)
    return _nll_loss(input, target, data_of(weight), reduction, ignore_index, "nll_loss")


def _nll_loss(logp, target, weight, reduction, ignore_index, owner):
    t = data_of(target)
    try:
        ndim = logp.dim()
        if ndim == 3 or ndim > 4:  # aten takes 1, 2 or 4 dims: (N, C, d...) -> (N, C, D, 1)
            n, c = logp.shape[:2]
            loss = NLLLossFunction.apply(
                logp.reshape(n, c, -1, 1), t.reshape(n, -1, 1), weight, reduction, ignore_index
            )
            return loss.reshape(t.shape) if reduction == "none" else loss
        return NLLLossFunction.apply(logp, t, weight, reduction, ignore_index)
    except (TypeError, ValueError, RuntimeError, IndexError, AttributeError):
        _check_class_target(owner, logp, target, weight, ignore_index)
        raise


def cross_entropy(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index: int = -100,
    reduce=None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
):
    """log_softmax over the classes, then NLL (class indices) or -sum(target * logp)
    (probabilities)."""
    reduction = reduction_of("cross_entropy", reduction, size_average, reduce)
    check_constant("cross_entropy", "weight", weight)
    return _cross_entropy(
        input, target, data_of(weight), reduction, ignore_index, label_smoothing, "cross_entropy"
    )


def _cross_entropy(x, target, weight, reduction, ignore_index, label_smoothing, owner):
    data, t = data_of(x), data_of(target)
    if not isinstance(data, torch.Tensor) or not isinstance(t, torch.Tensor):
        raise TypeError(
            f"{_name(owner)}: input and target must be tensors, got "
            f"{type(x).__name__} and {type(target).__name__}"
        )
    if not 0.0 <= label_smoothing <= 1.0:
        raise ArgumentError(
            f"{_name(owner)}: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}"
        )
    if data.dim() == 0:
        raise ShapeError(
            f"{_name(owner)}: input must hold class scores, (C,), (N, C) or "
            f"(N, C, d1, ...), got a 0-d tensor"
        )
    class_dim = 0 if data.dim() == 1 else 1
    logp = ops.LogSoftmax.apply(x, class_dim)
    if t.shape == data.shape:
        return _cross_entropy_probabilities(
            logp, target, weight, reduction, ignore_index, label_smoothing, class_dim, owner
        )
    loss = _nll_loss(logp, t, weight, reduction, ignore_index, owner)
    if not label_smoothing:
        return loss
    # torch's label smoothing: (1 - e) * NLL + e / C * (the loss against uniform targets)
    classes = data.shape[class_dim]
    shape = [1] * data.dim()
    shape[class_dim] = classes
    ignored = t == ignore_index
    spread = -(logp if weight is None else logp * weight.reshape(shape)).sum(class_dim)
    spread = where(ignored, 0.0, spread)
    if reduction == "mean":
        if weight is None:
            count = (~ignored).sum().to(data.dtype)
        else:
            count = weight.gather(0, t.masked_select(~ignored).flatten()).sum()
        spread = spread.sum() / count
    elif reduction == "sum":
        spread = spread.sum()
    return loss * (1 - label_smoothing) + spread * (label_smoothing / classes)


def _cross_entropy_probabilities(
    logp, target, weight, reduction, ignore_index, label_smoothing, class_dim, owner
):
    t = data_of(target)
    if not t.is_floating_point():
        raise DtypeError(
            f"{_name(owner)}: a target shaped like the input {tuple(t.shape)} holds "
            f"class probabilities and must be floating point, got {t.dtype}; for "
            "class indices give one index per sample, shape (N,)"
        )
    if ignore_index >= 0:
        raise RuntimeError(
            f"{_name(owner)}: ignore_index is not supported for class-probability "
            "targets; leave it at its default"
        )
    classes = logp.shape[class_dim]
    if label_smoothing > 0:
        target = target * (1 - label_smoothing) + label_smoothing / classes
    products = ops.Mul.apply(logp, target)
    if weight is not None:
        shape = [1] * logp.dim()
        shape[class_dim] = classes
        products = products * weight.reshape(shape)
    if reduction == "none":
        return -products.sum(class_dim)
    if reduction == "sum":
        return -products.sum()
    if logp.numel() == 0:
        return -products.sum() * float("nan")
    return -products.sum() / (logp.numel() // classes)


def _name(owner) -> str:
    return owner if isinstance(owner, str) else repr(owner)


def _check_class_target(owner, logp, target, weight, ignore_index) -> None:
    """The clear error for a failed NLL / cross-entropy call: which input, which shapes, the fix."""
    owner = _name(owner)
    data, t = data_of(logp), data_of(target)
    for role, value in (("input", data), ("target", t)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(
                f"{owner}: {role} must be a tensor, got {type(value).__name__}"
            ) from None
    if t.dtype != torch.int64:
        raise DtypeError(
            f"{owner}: target must hold class indices as int64 (torch.long), got "
            f"{t.dtype}; convert it with target.long() (class probabilities go to "
            "cross_entropy as a float target shaped like the input)"
        ) from None
    shape = tuple(data.shape)
    if data.dim() == 0:
        raise ShapeError(
            f"{owner}: input must hold class scores, (C,), (N, C) or (N, C, d1, ...), "
            "got a 0-d tensor"
        ) from None
    wanted = () if data.dim() == 1 else shape[:1] + shape[2:]
    if tuple(t.shape) != wanted:
        raise ShapeError(
            f"{owner}: input of shape {shape} (classes in dimension "
            f"{0 if data.dim() == 1 else 1}) needs a target of shape {wanted}, one "
            f"class index per sample, got {tuple(t.shape)}"
        ) from None
    classes = shape[0 if data.dim() == 1 else 1]
    if weight is not None and tuple(weight.shape) != (classes,):
        raise ShapeError(
            f"{owner}: weight must have one entry per class, shape ({classes},), got "
            f"{tuple(weight.shape)}"
        ) from None
    bad = t[(t != ignore_index) & ((t < 0) | (t >= classes))]
    if bad.numel():
        raise IndexError(
            f"{owner}: target {int(bad[0])} is out of bounds: the input has "
            f"{classes} classes, so targets must be in [0, {classes - 1}], or equal "
            f"ignore_index ({ignore_index}) for a sample to skip"
        ) from None


# --- the layers ----------------------------------------------------------------------------


class _TorchLoss(Module):
    """The losses with torch's constructor arguments: reductions, weights as buffers, course API."""

    _not_copied = (*Module._not_copied, "_last_inputs")  # (the latest inputs: tapes)

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction_of(type(self).__name__, reduction, size_average, reduce)
        self.__dict__["_last_inputs"] = None

    def forward(self, input, target):
        self.__dict__["_last_inputs"] = (input, target)  # plain attribute: skip __setattr__
        return self._loss(input, target)

    def _loss(self, input, target):
        raise NotImplementedError

    def backward(self, grad_output=None):
        """The course API: dL/d(input) for the latest call, as a torch tensor."""
        if self._last_inputs is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward(): call the loss on a prediction first"
            )
        prediction, target = self._last_inputs
        leaf = Tensor(data_of(prediction), requires_grad=True)
        self._loss(leaf, data_of(target)).backward(grad_output)
        return leaf.grad

    def extra_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class NLLLoss(_TorchLoss):
    """-log p of each sample's class, from log-probabilities (N, C) and classes (N,).

    The log-probabilities come from LogSoftmax.
    """

    def __init__(
        self,
        weight=None,
        size_average=None,
        ignore_index: int = -100,
        reduce=None,
        reduction: str = "mean",
    ):
        super().__init__(size_average, reduce, reduction)
        check_constant("NLLLoss", "weight", weight)
        self.register_buffer("weight", data_of(weight))
        self.ignore_index = ignore_index

    def _loss(self, input, target):
        return _nll_loss(
            input, target, data_of(self.weight), self.reduction, self.ignore_index, self
        )

    def extra_repr(self) -> str:
        text = super().extra_repr()
        return (
            text
            if self.ignore_index == -100
            else ", ".join(filter(None, [text, f"ignore_index={self.ignore_index}"]))
        )


class CrossEntropyLoss(_TorchLoss):
    """Cross-entropy of scores (logits) (N, C) against class indices (N,) or probabilities (N, C).

    = NLLLoss(LogSoftmax(dim=1)(input), target), with torch's weight,
    ignore_index and label_smoothing. Inputs (N, C, d1, ...) take targets
    (N, d1, ...): one class per position.
    """

    def __init__(
        self,
        weight=None,
        size_average=None,
        ignore_index: int = -100,
        reduce=None,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ):
        super().__init__(size_average, reduce, reduction)
        check_constant("CrossEntropyLoss", "weight", weight)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ArgumentError(
                f"CrossEntropyLoss: label_smoothing must be between 0.0 and 1.0, "
                f"got {label_smoothing}"
            )
        self.register_buffer("weight", data_of(weight))
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def _loss(self, input, target):
        return _cross_entropy(
            input,
            target,
            data_of(self.weight),
            self.reduction,
            self.ignore_index,
            self.label_smoothing,
            self,
        )

    def extra_repr(self) -> str:
        parts = [super().extra_repr()]
        if self.ignore_index != -100:
            parts.append(f"ignore_index={self.ignore_index}")
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing}")
        return ", ".join(filter(None, parts))


class BCEWithLogitsLoss(_TorchLoss):
    """Binary cross-entropy of sigmoid(logits), computed stably from the logits (shapes must match).

    `pos_weight` (one per class, the last dimension) weighs the positive
    targets; `weight` weighs every element (broadcast against the input).
    """

    def __init__(
        self, weight=None, size_average=None, reduce=None, reduction: str = "mean", pos_weight=None
    ):
        super().__init__(size_average, reduce, reduction)
        check_constant("BCEWithLogitsLoss", "weight", weight)
        check_constant("BCEWithLogitsLoss", "pos_weight", pos_weight)
        self.register_buffer("weight", data_of(weight))
        self.register_buffer("pos_weight", data_of(pos_weight))

    def _loss(self, input, target):
        return _bce_with_logits_call(
            input, target, self.weight, self.pos_weight, self.reduction, self
        )
