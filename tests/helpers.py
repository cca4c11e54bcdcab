"""Shared test helpers: hypothesis strategies for shapes, and the two gradient references.

Every op is checked two ways (STYLE.md, principle 9):

- against torch autograd, used here in the tests only, as the reference for
  the forward value and for the gradient of every input;
- against central finite differences in float64 (`tapegrad.gradcheck`).

Values are not drawn element by element by hypothesis (slow, and it
shrinks towards zeros, which sit on the kinks of relu and the poles of
log and 1/x); hypothesis draws the shapes and a seed, and the values come
from a seeded torch generator, moved away from those points where needed.
"""

from __future__ import annotations

import torch
from hypothesis import strategies as st

import tapegrad as tg

SIDE = 4  # largest size of one dimension: keeps finite differences cheap


# --- shapes --------------------------------------------------------------------


def shapes(min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = SIDE):
    return st.lists(st.integers(min_side, max_side), min_size=min_dims, max_size=max_dims).map(
        tuple
    )


@st.composite
def broadcast_shapes(draw, min_dims: int = 0, max_dims: int = 3):
    """Two shapes that torch broadcasts together, e.g. (3, 1) and (2, 1, 4).

    Start from the result's shape; each operand keeps a suffix of it (it may
    lack leading dimensions) and may shrink any dimension to 1.
    """
    result = draw(shapes(min_dims, max_dims))
    pair = []
    for _ in range(2):
        keep = draw(st.integers(0, len(result)))
        suffix = result[len(result) - keep :]
        ones = draw(st.lists(st.booleans(), min_size=len(suffix), max_size=len(suffix)))
        pair.append(tuple(1 if one else size for size, one in zip(suffix, ones)))
    return tuple(pair)


seeds = st.integers(0, 2**31 - 1)


# --- values --------------------------------------------------------------------


def randn(
    shape, seed: int, dtype=torch.float64, away_from_zero: float = 0.0, device="cpu"
) -> torch.Tensor:
    """Seeded normal values; |x| >= away_from_zero (for relu's kink and division)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    if away_from_zero:
        x = torch.where(x < 0, x - away_from_zero, x + away_from_zero)
    return x.to(dtype=dtype, device=device)


def positive(
    shape, seed: int, low: float = 0.5, high: float = 2.0, dtype=torch.float64, device="cpu"
) -> torch.Tensor:
    """Seeded uniform values in [low, high) (for log and fractional powers)."""
    g = torch.Generator().manual_seed(seed)
    x = low + (high - low) * torch.rand(shape, generator=g, dtype=torch.float64)
    return x.to(dtype=dtype, device=device)


# --- the two references -----------------------------------------------------------


def check_against_torch(fn, *values, requires=None, rtol=1e-7, atol=1e-7, equal_nan=False):
    """Run `fn` on tapegrad leaves and on torch autograd leaves; compare output and gradients.

    fn takes tensors (tapegrad or torch: it must use only operators and
    methods both share). values: torch tensors; `requires[i]` says which
    need a gradient (default: all). A non-scalar output is reduced with a
    fixed random weighting, so that every output element is checked.
    equal_nan: NaN must meet NaN (for hand-made points: kinks, poles, 0^0).
    """
    requires = requires or [True] * len(values)
    ours = [tg.Tensor(v.clone(), requires_grad=r) for v, r in zip(values, requires)]
    refs = [v.clone().requires_grad_(r) for v, r in zip(values, requires)]

    out = fn(*ours)
    expected = fn(*refs)
    torch.testing.assert_close(
        out.data, expected.detach(), rtol=rtol, atol=atol, equal_nan=equal_nan
    )
    assert out.data.grad_fn is None and not out.data.requires_grad

    g = torch.Generator().manual_seed(1)
    weights = torch.randn(expected.shape, generator=g, dtype=torch.float64)
    weights = weights.to(dtype=expected.dtype, device=expected.device)
    out.backward(weights)
    wanted = [r for r in refs if r.requires_grad]
    reference = torch.autograd.grad(expected, wanted, weights, allow_unused=True)
    reference = iter(reference)
    for position, (leaf, r) in enumerate(zip(ours, requires)):
        if not r:
            assert leaf.grad is None, f"input {position} needs no gradient but got one"
            continue
        want = next(reference)
        if want is None:
            want = torch.zeros_like(values[position])
        assert leaf.grad is not None, f"input {position}: no gradient"
        assert leaf.grad.shape == values[position].shape, f"input {position}: gradient shape"
        assert leaf.grad.dtype == values[position].dtype, f"input {position}: gradient dtype"
        assert leaf.grad.device == values[position].device, f"input {position}: gradient device"
        torch.testing.assert_close(
            leaf.grad,
            want,
            rtol=rtol,
            atol=atol,
            equal_nan=equal_nan,
            msg=lambda m: f"input {position}: {m}",
        )
    return out


def check_second_order(fn, *values, requires=None, rtol=1e-7, atol=1e-7):
    """The derivative of the derivative, against torch's double backward.

    With w a random weighting of the output (itself a leaf, so that the
    derivative with respect to it is checked too) and v_i random weightings
    of the gradients, compare d/d(x_i, w) of  sum_i <v_i, dL/dx_i>,  where
    dL/dx_i comes from ``tapegrad.grad(..., create_graph=True)`` and from
    ``torch.autograd.grad(..., create_graph=True)``. A derivative that does
    not depend on something (a linear op's, say) counts as zero there.
    """
    requires = requires or [True] * len(values)
    ours = [tg.Tensor(v.clone(), requires_grad=r) for v, r in zip(values, requires)]
    refs = [v.clone().requires_grad_(r) for v, r in zip(values, requires)]
    out, expected = fn(*ours), fn(*refs)
    if not expected.requires_grad:
        return
    g = torch.Generator().manual_seed(2)
    weights = torch.randn(expected.shape, generator=g, dtype=torch.float64).to(expected.dtype)
    w_ours, w_ref = tg.Tensor(weights.clone(), requires_grad=True), weights.clone().requires_grad_()
    leaves = [t for t, r in zip(ours, requires) if r]
    wanted = [t for t in refs if t.requires_grad]
    first = tg.grad(out, leaves, w_ours, create_graph=True, allow_unused=True)
    reference = torch.autograd.grad(expected, wanted, w_ref, create_graph=True, allow_unused=True)
    for position, (a, b) in enumerate(zip(first, reference)):
        a = torch.zeros_like(wanted[position]) if a is None else a.data
        b = torch.zeros_like(wanted[position]) if b is None else b.detach()
        torch.testing.assert_close(
            a, b, rtol=rtol, atol=atol, msg=lambda m: f"first derivative {position}: {m}"
        )
    directions = [
        torch.randn(t.shape, generator=g, dtype=torch.float64).to(t.dtype) for t in wanted
    ]
    ours_sum = sum((d * v).sum() for d, v in zip(first, directions) if d is not None)
    ref_sum = sum((d * v).sum() for d, v in zip(reference, directions) if d is not None)
    targets_ours, targets_ref = leaves + [w_ours], wanted + [w_ref]
    zeros = [torch.zeros_like(t) for t in targets_ref]
    if isinstance(ours_sum, tg.Tensor) and ours_sum.requires_grad:
        second = [
            s.data if s is not None else None
            for s in tg.grad(ours_sum, targets_ours, allow_unused=True)
        ]
    else:
        second = [None] * len(targets_ours)
    if isinstance(ref_sum, torch.Tensor) and ref_sum.requires_grad:
        want = torch.autograd.grad(ref_sum, targets_ref, allow_unused=True)
    else:
        want = [None] * len(targets_ref)
    for position, (a, b, zero) in enumerate(zip(second, want, zeros)):
        torch.testing.assert_close(
            zero if a is None else a,
            zero if b is None else b.detach(),
            rtol=rtol,
            atol=atol,
            msg=lambda m: f"second derivative, input {position}: {m}",
        )


def check_both(fn, *values, requires=None):
    """torch autograd (first and second order) and central differences (values must be float64)."""
    check_against_torch(fn, *values, requires=requires)
    check_second_order(fn, *values, requires=requires)
    requires = requires or [True] * len(values)
    leaves = [tg.Tensor(v.clone(), requires_grad=r) for v, r in zip(values, requires)]
    if any(requires):
        assert tg.gradcheck(fn, *leaves)
