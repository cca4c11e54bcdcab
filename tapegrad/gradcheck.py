"""Check derivatives against central finite differences, in float64: first and second order.

    tapegrad.gradcheck(lambda x, w: (x @ w).tanh(), x, w)
    tapegrad.gradgradcheck(lambda x, w: (x @ w).tanh(), x, w)

For every element x[i] of every input that requires grad, the numerical
derivative of L = sum over outputs of sum(v * f(inputs)) (v a fixed random
weighting, so that a non-scalar output is checked in every element) is

    dL/dx[i] ~ (L(x[i] + eps) - L(x[i] - eps)) / (2 eps)

and it must agree with the gradient the tape's reverse sweep computes.
`gradgradcheck` does the same for the first derivative itself (as torch's
does): it checks the function (inputs, u) -> dL/d(inputs) for a random
output gradient u, whose own derivative is the second derivative of f.
"""

from __future__ import annotations

import torch

from .tape import enable_grad, no_grad
from .tensor import Tensor


class GradcheckError(RuntimeError):
    """A derivative disagrees with finite differences."""


def gradcheck(
    fn,
    *inputs,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
) -> bool:
    """Return True if the tape's gradients of `fn(*inputs)` match finite differences.

    `fn` returns a Tensor or a tuple of Tensors. Raises GradcheckError naming
    the input, the element, the analytic and the numerical value otherwise
    (returns False instead with ``raise_exception=False``, as torch's).
    Tensor inputs are copied to float64.
    """
    args = [_as_float64_leaf(a) for a in inputs]
    checked = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
    if not checked:
        raise ValueError(
            "gradcheck: no input requires grad; pass tensors made with requires_grad=True"
        )
    try:
        return _check(
            fn, args, checked, eps, atol, rtol, "gradcheck", "the tape's gradient", no_grad
        )
    except GradcheckError:
        if raise_exception:
            raise
        return False


def gradgradcheck(
    fn,
    *inputs,
    grad_outputs=None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
) -> bool:
    """Return True if the second derivatives of `fn(*inputs)` match finite differences.

    The first derivative is computed with ``tapegrad.grad(..., create_graph=True)``
    for an output gradient u (`grad_outputs`, else a seeded random one) and
    checked with `gradcheck` as a function of the inputs and u. On failure
    the GradcheckError names the element, and the derivative tape's node
    whose own derivative is wrong (found with `check_tape`); with
    ``raise_exception=False`` it returns False instead, as torch's.
    """
    from .sweep import grad

    args = [_as_float64_leaf(a) for a in inputs]
    checked = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
    if not checked:
        raise ValueError(
            "gradgradcheck: no input requires grad; pass tensors made with requires_grad=True"
        )
    outputs = _outputs(fn, args)
    if grad_outputs is None:
        generator = torch.Generator().manual_seed(1)
        grad_outputs = [
            torch.randn(o.shape, dtype=torch.float64, generator=generator) for o in outputs
        ]
    elif isinstance(grad_outputs, (Tensor, torch.Tensor)):
        grad_outputs = [grad_outputs]
    us = [
        Tensor(
            u.data.detach().to(torch.float64).clone()
            if isinstance(u, Tensor)
            else u.detach().to(torch.float64).clone(),
            requires_grad=True,
        )
        for u in grad_outputs
    ]
    n = len(args)

    def first_derivative(*values):
        xs, u = list(values[:n]), list(values[n:])
        outs = [o for o in _outputs(fn, xs)]
        pairs = [(o, g) for o, g in zip(outs, u) if o.requires_grad]
        grads = grad(
            [o for o, _ in pairs],
            [xs[i] for i in checked],
            [g for _, g in pairs],
            create_graph=True,
            allow_unused=True,
        )
        return tuple(
            g if g is not None else Tensor._wrap(torch.zeros_like(xs[i].data))
            for g, i in zip(grads, checked)
        )

    all_args = args + us
    all_checked = checked + list(range(n, n + len(us)))
    try:
        # (the first derivative must record even when only its values are wanted)
        return _check(
            first_derivative,
            all_args,
            all_checked,
            eps,
            atol,
            rtol,
            "gradgradcheck",
            "the second derivative",
            enable_grad,
        )
    except GradcheckError as error:
        if not raise_exception:
            return False
        culprit = _culprit(first_derivative, all_args)
        raise GradcheckError(f"{error}{culprit}") from None


def _culprit(first_derivative, args) -> str:
    """Which node of the first derivative's tape has a wrong derivative, if check_tape finds one."""
    from .check import check_tape

    leaves = [
        Tensor(a.data.clone(), requires_grad=True) if isinstance(a, Tensor) else a for a in args
    ]
    outs = [o for o in first_derivative(*leaves) if o.requires_grad]
    reports = [check_tape(o.sum()) for o in outs]
    wrong = [row for report in reports for row in report.failures]
    if not wrong:
        return ""
    row = wrong[0]
    return f"\n  the derivative's node %{row.index} {row.name} is wrong: {row.problem}"


def _check(fn, args, checked, eps, atol, rtol, caller, what, mode) -> bool:
    outs = _outputs(fn, args)
    if not any(o.requires_grad for o in outs):
        raise GradcheckError(
            f"{caller}: the output does not depend on any input that requires grad"
        )
    generator = torch.Generator().manual_seed(0)
    weights = [torch.randn(o.shape, dtype=torch.float64, generator=generator) for o in outs]
    for i in checked:
        args[i].grad = None
    live = [(o, w.to(o.dtype)) for o, w in zip(outs, weights) if o.requires_grad]
    from .sweep import backward

    backward([o for o, _ in live], [w for _, w in live])
    analytic = {
        i: (args[i].grad if args[i].grad is not None else torch.zeros_like(args[i].data))
        for i in checked
    }

    def loss() -> float:
        with mode():
            return float(
                sum(
                    (o.data.to(torch.float64) * w).sum()
                    for o, w in zip(_outputs(fn, args), weights)
                )
            )

    for i in checked:
        flat = args[i].data.view(-1)
        got_flat = analytic[i].reshape(-1)
        for k in range(flat.numel()):
            original = flat[k].item()
            flat[k] = original + eps
            plus = loss()
            flat[k] = original - eps
            minus = loss()
            flat[k] = original
            numerical = (plus - minus) / (2 * eps)
            got = got_flat[k].item()
            if not abs(got - numerical) <= atol + rtol * abs(numerical):
                where = tuple(int(j) for j in torch.unravel_index(torch.tensor(k), args[i].shape))
                raise GradcheckError(
                    f"{caller}: input {i} at index {where}: {what} is {got:.8g}, finite "
                    f"differences give {numerical:.8g} (difference {got - numerical:.3g}, "
                    f"allowed {atol + rtol * abs(numerical):.3g})"
                )
    return True


def _as_float64_leaf(a):
    if isinstance(a, Tensor):  # contiguous: elements are perturbed one by one through view(-1)
        data = a.data.detach().to(torch.float64).clone(memory_format=torch.contiguous_format)
        return Tensor(data, requires_grad=a.requires_grad)
    return a


def _outputs(fn, args) -> list:
    out = fn(*args)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    for o in outs:
        if not isinstance(o, Tensor):
            raise TypeError(
                f"gradcheck: fn must return a tapegrad Tensor (or a tuple of them), "
                f"got {type(o).__name__}"
            )
    return outs
