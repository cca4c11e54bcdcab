"""Check a derivative against central finite differences, in float64.

    tapegrad.gradcheck(lambda x, w: (x @ w).tanh(), x, w)

For every element x[i] of every input that requires grad, the numerical
derivative of L = sum(v * f(inputs)) (v a fixed random weighting, so that
a non-scalar output is checked in every element) is

    dL/dx[i] ~ (L(x[i] + eps) - L(x[i] - eps)) / (2 eps)

and it must agree with the gradient the tape's reverse sweep computes.
"""

from __future__ import annotations

import torch

from .tape import no_grad
from .tensor import Tensor


class GradcheckError(RuntimeError):
    """A derivative disagrees with finite differences."""


def gradcheck(fn, *inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3) -> bool:
    """Return True if the tape's gradients of `fn(*inputs)` match finite differences.

    Raises GradcheckError naming the input, the element, the analytic and
    the numerical value otherwise. Tensor inputs are copied to float64.
    """
    args = [_as_float64_leaf(a) for a in inputs]
    checked = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad; pass tensors made with "
                         "requires_grad=True")

    out = _call(fn, args)
    if not out.requires_grad:
        raise GradcheckError("gradcheck: the output does not depend on any input that requires grad")
    weights = torch.randn(out.shape, dtype=torch.float64, device=out.device,
                          generator=torch.Generator(device=out.device).manual_seed(0))
    out.backward(weights)
    analytic = {i: (args[i].grad if args[i].grad is not None else torch.zeros_like(args[i].data))
                for i in checked}

    def loss() -> float:
        with no_grad():
            return float((_call(fn, args).data * weights).sum())

    for i in checked:
        flat = args[i].data.view(-1)
        for k in range(flat.numel()):
            original = flat[k].item()
            flat[k] = original + eps
            plus = loss()
            flat[k] = original - eps
            minus = loss()
            flat[k] = original
            numerical = (plus - minus) / (2 * eps)
            got = analytic[i].reshape(-1)[k].item()
            if not abs(got - numerical) <= atol + rtol * abs(numerical):
                where = tuple(int(j) for j in torch.unravel_index(torch.tensor(k), args[i].shape))
                raise GradcheckError(
                    f"gradcheck: input {i} at index {where}: the tape's gradient is {got:.8g}, "
                    f"finite differences give {numerical:.8g} (difference {got - numerical:.3g}, "
                    f"allowed {atol + rtol * abs(numerical):.3g})")
    return True


def _as_float64_leaf(a):
    if isinstance(a, Tensor):
        return Tensor(a.data.detach().to(torch.float64).clone(), requires_grad=a.requires_grad)
    return a


def _call(fn, args) -> Tensor:
    out = fn(*args)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a tapegrad Tensor, got {type(out).__name__}")
    return out
