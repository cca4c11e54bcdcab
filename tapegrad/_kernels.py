"""Torch kernels that the derivatives and optimizers call, each with a public fallback.

Derivatives use aten's fused backward kernels (one kernel instead of two or
three elementwise ones). Those are public (`torch.ops.aten`); `aten` finds
each one's C++ entry, which skips a Python layer on every call. The private
entry points (an underscore name) that were measured to matter live here,
each with a fallback (public torch), so that a torch upgrade that drops one
slows tapegrad down instead of breaking it (`tests/test_kernels.py` checks
each kernel against its fallback).
"""

import torch


def aten(name: str, overload: str = "default"):
    """aten's kernel `name` (None where this torch has none), for the hot paths to call.

    ``torch.ops.aten.<name>.default(...)`` passes through two Python layers
    (the overload's ``__call__``, then its C++ entry) at about 0.6 us a call,
    measured: several times per training step. The overload keeps its C++
    entry as ``_op``; calling that is the same kernel without the Python
    layer, and it honours ``__torch_function__`` as the overload does (with
    the overload as the function it names). ``_op`` is private, so the
    overload itself is the fallback.
    """
    found = getattr(getattr(torch.ops.aten, name, None), overload, None)
    return getattr(found, "_op", found)


def _tanh_backward(grad, y):
    return grad * (1 - y * y)


def _sigmoid_backward(grad, y):
    return grad * y * (1 - y)


def _threshold_backward(grad, y, threshold):
    return grad * (y > threshold)


def _mse_loss_backward(grad, prediction, target, reduction):
    scale = 2.0 / prediction.numel() if reduction == 1 else 2.0
    return grad * scale * (prediction - target)


# dL/dx = dL/dy * (1 - y^2), from the output y = tanh(x)
tanh_backward = aten("tanh_backward") or _tanh_backward
# dL/dx = dL/dy * y * (1 - y), from the output y = sigmoid(x)
sigmoid_backward = aten("sigmoid_backward") or _sigmoid_backward
# dL/dx = dL/dy where y > threshold, else 0
threshold_backward = aten("threshold_backward") or _threshold_backward
# dL/dx = dL/dy * 2 (x - t) [/ numel for reduction=1 (mean)]
mse_loss_backward = aten("mse_loss_backward") or _mse_loss_backward


# --- private: the fused SGD update, and the version counter it must bump -----


@torch.no_grad()
def _public_sgd(
    params,
    grads,
    momentum_buffers,
    *,
    lr,
    momentum,
    dampening,
    weight_decay,
    nesterov,
    is_first_step,
    maximize=False,
):
    """torch.optim.SGD's update rule, one tensor at a time, in place (any layout, any dtype).

    Under torch.no_grad(), as torch.optim's step: a gradient that requires torch's grad
    (set by hand) must not make the parameters and buffers record torch's graph.
    """
    # Without momentum there are no buffers: zip over [] would update nothing.
    buffers = momentum_buffers if momentum else [None] * len(params)
    for p, g, buf in zip(params, grads, buffers):
        if maximize:
            g = -g
        if weight_decay:
            g = g.add(p, alpha=weight_decay)
        if momentum:
            if is_first_step:
                buf.copy_(g)
            else:
                buf.mul_(momentum).add_(g, alpha=1 - dampening)
            g = g.add(buf, alpha=momentum) if nesterov else buf
        p.add_(g, alpha=-lr)


def _fused_sgd(
    params,
    grads,
    momentum_buffers,
    *,
    lr,
    momentum,
    dampening,
    weight_decay,
    nesterov,
    is_first_step,
    maximize=False,
):
    """The same update in one torch kernel call, for tensors that `fused_sgd_takes`."""
    torch._fused_sgd_(
        params,
        grads,
        momentum_buffers if momentum else [],
        weight_decay=weight_decay,
        momentum=momentum,
        lr=lr,
        dampening=dampening,
        nesterov=bool(nesterov),  # (torch.optim takes any truthy value; the kernel a bool)
        maximize=bool(maximize),
        is_first_step=is_first_step,
    )
    # The fused kernel writes the parameters without bumping their version
    # counters; bump them, so a stale tape (saved before this step) is caught.
    bump_versions(params)


# Where _fused_sgd_ computes exactly the public rule (tests/test_optim_kernels.py measures it):
# real float32/float64 on the CPU or a CUDA GPU (the devices the tests cover). torch 2.13's CPU
# kernel leaves most elements of a float16/bfloat16 tensor unwritten (every full block of 16),
# and has no complex kernel.
FUSED_SGD_DTYPES = (torch.float32, torch.float64)


def fused_sgd_takes(param, grad, buffer=None) -> bool:
    """Does `_fused_sgd` update `param` exactly as `_public_sgd` would?

    The kernel walks the parameter, its gradient and its momentum buffer as
    three flat arrays of the parameter's length from their first element, so
    they must have one shape (else it reads or writes past the end of the
    smaller) and lie in memory in the same order with no gaps: all contiguous,
    or all with the same strides and dense (e.g. transposed alike). A strided view such as
    ``store[..., 0]`` would have it write its neighbours' memory; a gradient
    laid out differently from its parameter would be read in the wrong order.
    All three must have the parameter's dtype (float32 or float64) and device
    (the CPU or one GPU), and the buffer must share memory with neither of the
    others: the kernel reads each element's gradient and buffer before it
    writes, where torch's per-tensor rule (``buf.mul_(momentum)`` first) would
    change a gradient that is the buffer, so the two disagree. A gradient that
    is the parameter itself is exact; one that views the parameter's memory
    otherwise is refused. A tensor with torch's negative bit (``torch._neg_view``) is
    refused by the kernel; an inference tensor outside inference mode is updated by
    the kernel where torch's per-tensor ops raise. (SGD asks it again only when a
    parameter's data or buffer changes; is_cpu and get_device() are the cheap device
    queries.)

    "Exact" is to rounding: the kernel may round the update differently from
    the per-tensor ops in the last bit (tests/test_optim_kernels.py measures it).
    """
    dtype = param.dtype
    if dtype not in FUSED_SGD_DTYPES or grad.dtype != dtype:
        return False
    tensors = (param, grad) if buffer is None else (param, grad, buffer)
    if any(t.is_neg() for t in tensors):
        return False  # a negative-bit view (torch._neg_view ...): the kernel refuses it
    if not torch.is_inference_mode_enabled() and any(t.is_inference() for t in tensors):
        return False  # torch's loop refuses to update an inference tensor outside the mode
    shape = param.shape
    if grad.shape != shape or (buffer is not None and buffer.shape != shape):
        return False
    on_cpu, device = param.is_cpu, param.get_device()
    if not (on_cpu or param.is_cuda) or grad.is_cpu != on_cpu or grad.get_device() != device:
        return False
    if buffer is not None and (
        buffer.dtype != dtype or buffer.is_cpu != on_cpu or buffer.get_device() != device
    ):
        return False
    if buffer is not None and (same_memory(buffer, param) or same_memory(buffer, grad)):
        return False
    if grad is not param and same_memory(grad, param):
        return False
    if (
        param.is_contiguous()
        and grad.is_contiguous()
        and (buffer is None or buffer.is_contiguous())
    ):
        return True
    stride = param.stride()
    return (
        grad.stride() == stride
        and (buffer is None or buffer.stride() == stride)
        and is_dense(param)
    )


def same_memory(a, b) -> bool:
    """Do tensors a and b lie in one block of memory (a storage), so that writing one can
    change the other? (Either empty: no.)"""
    if a.nbytes == 0 or b.nbytes == 0:
        return False
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def storage_shared(t) -> bool:
    """Does another tensor (a view, or the tensor t views) use t's memory?

    torch counts the users of a storage; one is t itself and one the storage
    object this asks through. Without that private count, assume not shared.
    """
    count = getattr(torch._C, "_storage_Use_Count", None)
    if count is None:
        return False
    return t._base is not None or count(t.untyped_storage()._cdata) > 2


def is_dense(t) -> bool:
    """Do t's elements fill one block of memory, with no gaps and no overlaps, in some order?"""
    if t.numel() == 0:
        return True
    expected = 1
    for stride, size in sorted((st, s) for st, s in zip(t.stride(), t.shape) if s != 1):
        if stride != expected:
            return False
        expected *= size
    return True


# --- private: one call that checks the layout of many tensors ------------------


def _tensor_guards(tensors):
    """A check that `tensors` (a list) still are what they are now: ``guard.check(*tensors)``.

    ``check`` takes as many tensors as the list held, in the same order, and
    says whether each has the Python type, dtype, device, shape and strides
    that the one in its place had (False for None or a non-tensor; TypeError
    for a different count). torch's private C++ `TensorGuards` (what
    torch.compile's guards use; it also compares requires_grad and the
    dispatch keys, so a tensor made in inference mode fails it) checks them
    all in one call: 24 tensors in 1.6 us, measured, against 10 us for the
    public reads (`_PublicLayoutGuard`). Its constructor wants each tensor's
    sizes and strides as the static values to compare (None would mean "any").
    The guard cannot be pickled.
    """
    return _TensorGuards(
        *tensors,
        dynamic_dims_sizes=[list(t.shape) for t in tensors],
        dynamic_dims_strides=[list(t.stride()) for t in tensors],
    )


class _PublicLayoutGuard:
    """What `_tensor_guards` checks (but requires_grad and dispatch keys), in public torch."""

    def __init__(self, tensors):
        self._expected = [_layout(t) for t in tensors]

    def check(self, *tensors) -> bool:
        if len(tensors) != len(self._expected):
            raise TypeError(f"wrong length: {len(tensors)} tensors, {len(self._expected)} guarded")
        try:
            return all(map(_same_layout, tensors, self._expected))
        except AttributeError:  # None, or anything else that is no tensor
            return False


def _layout(t) -> tuple:
    return (type(t), t.dtype, t.get_device(), t.shape, t.stride())  # (get_device: -1 on the CPU)


def _same_layout(t, expected) -> bool:
    return _layout(t) == expected


_TensorGuards = getattr(getattr(torch._C, "_dynamo", None), "guards", None)
_TensorGuards = getattr(_TensorGuards, "TensorGuards", None)
layout_guard = _PublicLayoutGuard if _TensorGuards is None else _tensor_guards


def _public_bump_versions(tensors):
    for t in tensors:
        t.add_(0)  # any in-place op bumps the counter


bump_versions = getattr(torch._C, "_increment_version", None) or _public_bump_versions
sgd_step = _fused_sgd if hasattr(torch, "_fused_sgd_") else _public_sgd
