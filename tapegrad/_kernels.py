"""Torch kernels that the derivatives and optimizers call, each with a public fallback.

Derivatives use aten's fused backward kernels (one kernel instead of two or
three elementwise ones). Those are public (`torch.ops.aten`). The two
private entry points (an underscore name) that were measured to matter live
here too, each with a fallback written in public torch, so that a torch
upgrade that drops one slows tapegrad down instead of breaking it
(`tests/test_kernels.py` checks each kernel against its fallback).
"""

import torch


def _aten(name):
    packet = getattr(torch.ops.aten, name, None)
    return None if packet is None else getattr(packet, "default", None)


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
tanh_backward = _aten("tanh_backward") or _tanh_backward
# dL/dx = dL/dy * y * (1 - y), from the output y = sigmoid(x)
sigmoid_backward = _aten("sigmoid_backward") or _sigmoid_backward
# dL/dx = dL/dy where y > threshold, else 0
threshold_backward = _aten("threshold_backward") or _threshold_backward
# dL/dx = dL/dy * 2 (x - t) [/ numel for reduction=1 (mean)]
mse_loss_backward = _aten("mse_loss_backward") or _mse_loss_backward


# --- private: the fused SGD update, and the version counter it must bump -----

def _public_sgd(params, grads, momentum_buffers, *, lr, momentum, dampening, weight_decay,
                nesterov, is_first_step):
    """torch.optim.SGD's update rule, one tensor at a time, in place."""
    # Without momentum there are no buffers: zip over [] would update nothing.
    buffers = momentum_buffers if momentum else [None] * len(params)
    for p, g, buf in zip(params, grads, buffers):
        if weight_decay:
            g = g.add(p, alpha=weight_decay)
        if momentum:
            if is_first_step:
                buf.copy_(g)
            else:
                buf.mul_(momentum).add_(g, alpha=1 - dampening)
            g = g.add(buf, alpha=momentum) if nesterov else buf
        p.add_(g, alpha=-lr)


def _fused_sgd(params, grads, momentum_buffers, *, lr, momentum, dampening, weight_decay,
               nesterov, is_first_step):
    torch._fused_sgd_(params, grads, momentum_buffers if momentum else [],
                      weight_decay=weight_decay, momentum=momentum, lr=lr, dampening=dampening,
                      nesterov=nesterov, maximize=False, is_first_step=is_first_step)
    # The fused kernel writes the parameters without bumping their version
    # counters; bump them, so a stale tape (saved before this step) is caught.
    bump_versions(params)


def _public_bump_versions(tensors):
    for t in tensors:
        t.add_(0)       # any in-place op bumps the counter


bump_versions = getattr(torch._C, "_increment_version", None) or _public_bump_versions
sgd_step = _fused_sgd if hasattr(torch, "_fused_sgd_") else _public_sgd
