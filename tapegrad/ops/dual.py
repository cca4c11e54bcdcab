"""One derivative for two sweeps: on torch tensors (ordinary) and on tapegrad tensors
(create_graph).

Every op's ``backward`` is written once, with operators and methods that
torch tensors and tapegrad tensors share (``grad * y``, ``.sum(dims)``,
``.reshape(shape)``). The ordinary sweep hands it torch tensors, so it runs
plain torch kernels and records nothing. A ``create_graph=True`` sweep hands
it tapegrad tensors, so the same lines record ops on a tape, and the
derivative can itself be differentiated (HIPS autograd's idea).

Where a fused torch kernel makes the ordinary sweep fast (aten's
``tanh_backward`` computes ``grad * (1 - y^2)`` in one pass), the kernel is
also an op of its own (``TanhBackward``, with its own derivative), and
`dual` picks the kernel or the op by the kind of tensor it is given. The
first derivatives of the layers every model uses (ReLU, Tanh, Sigmoid,
softmax, MSE) make that choice inline, ``if isinstance(grad, Tensor)``:
the Python call `dual` adds costs about 0.5 us a node in a training step
(workload A, measured), which is as much as a small kernel.
"""

from __future__ import annotations

import torch

from ..tensor import Tensor


def traced(value) -> bool:
    """True for a tapegrad tensor: the derivative is being recorded (create_graph=True)."""
    return isinstance(value, Tensor)


def zeros_like(value):
    """Zeros shaped like `value`: a torch tensor, or a constant tapegrad tensor when traced."""
    if isinstance(value, Tensor):
        return Tensor._wrap(torch.zeros_like(value.data))
    return torch.zeros_like(value)


def dual(kernel, op):
    """``kernel(grad, *args)`` on torch tensors, ``op.apply(grad, *args)`` on tapegrad tensors."""
    apply = op.apply
    if kernel is None:
        return apply

    def run(grad, *args):
        if isinstance(grad, torch.Tensor):
            return kernel(grad, *args)
        return apply(grad, *args)

    run.__name__ = getattr(kernel, "__name__", op.__name__)
    run.__doc__ = op.__doc__
    return run
