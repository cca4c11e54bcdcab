"""Second and third derivatives where the other tests check fixed shapes only, or not at all.

The layers' and losses' fused ops (`LinearFunction`, `MSEFunction`, `BCEFunction`) with
hypothesis-drawn shapes, empty batches included; `gradgradcheck` on them and on the in-place
ops (`Fill`, `CopyInto`); third derivatives of the elementwise ops of the torch surface;
the reductions with a `dim` over tensors with an empty dimension; and ``x[idx] = value``
with drawn shapes and indices. Each against torch's double backward in float64
(`helpers.check_second_order`), and where cheap, finite differences too.
"""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

import tapegrad as tg
import tapegrad.nn.functional as F

from helpers import check_both, check_second_order, positive, randn, seeds, shapes

EXAMPLES = settings(max_examples=int(os.environ.get("TAPEGRAD_FUZZ_EXAMPLES", "25")), deadline=None)


def either(ours, theirs):
    """One function for both libraries: tapegrad's on tapegrad tensors, torch's on torch's."""
    return lambda *args, **kwargs: (ours if isinstance(args[0], tg.Tensor) else theirs)(
        *args, **kwargs
    )


linear = either(F.linear, TF.linear)
mse_loss = either(F.mse_loss, TF.mse_loss)
binary_cross_entropy = either(F.binary_cross_entropy, TF.binary_cross_entropy)


@EXAMPLES
@given(
    batch=shapes(0, 2, min_side=0),
    features=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    bias=st.booleans(),
    seed=seeds,
)
def test_linear_second_derivatives_with_drawn_shapes(batch, features, bias, seed):
    n_in, n_out = features
    x, w = randn((*batch, n_in), seed), randn((n_out, n_in), seed + 1)
    if bias:
        check_second_order(lambda x, w, b: linear(x, w, b), x, w, randn((n_out,), seed + 2))
    else:
        check_second_order(lambda x, w: linear(x, w), x, w)


@EXAMPLES
@given(
    shape=shapes(0, 3, min_side=0),
    reduction=st.sampled_from(["mean", "sum", "none"]),
    seed=seeds,
)
def test_mse_and_bce_second_derivatives_with_drawn_shapes(shape, reduction, seed):
    if 0 in shape and reduction == "mean":
        shape = tuple(max(side, 1) for side in shape)  # (torch: the mean of nothing is NaN)
    prediction, target = positive(shape, seed, 0.1, 0.9), positive(shape, seed + 1, 0.0, 1.0)
    check_second_order(lambda p, t: mse_loss(p, t, reduction=reduction), prediction, target)
    check_second_order(
        lambda p, t: binary_cross_entropy(p, t, reduction=reduction),
        prediction,
        target,
        requires=[True, False],  # (torch has no derivative for BCE's target)
    )


def _fill(x, v):
    y = x * 1.5
    y.fill_(v)
    return y * x


def _copy_into(x, src):
    y = x * 1.5
    y.copy_(src.tanh())
    return y * x


@pytest.mark.parametrize(
    "fn, make",
    [
        (
            lambda x, w, b: F.linear(x, w, b).tanh(),
            lambda: (randn((3, 2), 0), randn((4, 2), 1), randn((4,), 2)),
        ),
        (lambda x: F.linear(x, x[:2]), lambda: (randn((2, 2), 3),)),
        (
            lambda p: F.binary_cross_entropy(
                p.sigmoid(), tg.tensor([0.2, 1.0, 0.0], dtype=torch.float64)
            ),
            lambda: (randn((3,), 4),),
        ),
        (_fill, lambda: (randn((3,), 5), randn((), 6))),
        (_copy_into, lambda: (randn((3, 2), 7), randn((3, 2), 8))),
    ],
    ids=["linear", "linear of itself", "binary_cross_entropy", "fill_", "copy_"],
)
def test_gradgradcheck_passes_the_layer_loss_and_in_place_ops(fn, make):
    assert tg.gradgradcheck(fn, *(tg.Tensor(v, requires_grad=True) for v in make()))


def test_fill_and_copy_second_derivatives_equal_torch():
    check_second_order(_fill, randn((3,), 5), randn((), 6))
    check_second_order(_copy_into, randn((3, 2), 7), randn((3, 2), 8))


THIRD_ORDER = {
    "abs": (lambda t: t.abs() * t, lambda: (randn((4,), 0, away_from_zero=0.2),)),
    "sqrt": (lambda t: t.sqrt(), lambda: (positive((4,), 1),)),
    "sin": (lambda t: t.sin(), lambda: (randn((4,), 2),)),
    "cos": (lambda t: t.cos(), lambda: (randn((4,), 3),)),
    "clamp": (lambda t: t.clamp(-0.5, 0.5) * t * t, lambda: (randn((6,), 4),)),
    "maximum": (
        lambda a, b: torch_or_tg(a).maximum(a * a, b),
        lambda: (randn((4,), 5), randn((4,), 6)),
    ),
    "minimum": (
        lambda a, b: torch_or_tg(a).minimum(a * a, b * b * b),
        lambda: (randn((4,), 7), randn((4,), 8)),
    ),
    "where": (
        lambda a, b: torch_or_tg(a).where(a > 0, a * a * a, b.exp()),
        lambda: (randn((4,), 9), randn((4,), 10)),
    ),
    "tensor exponent": (lambda a, b: a**b, lambda: (positive((4,), 11), randn((4,), 12))),
    "number base": (lambda t: 2**t, lambda: (randn((4,), 13),)),
}


def torch_or_tg(t):
    return tg if isinstance(t, tg.Tensor) else torch


@pytest.mark.parametrize("name", list(THIRD_ORDER))
def test_third_derivatives_of_the_surface_elementwise_ops_equal_torch(name):
    fn, make = THIRD_ORDER[name]
    values = make()
    ours = [tg.Tensor(v.clone(), requires_grad=True) for v in values]
    refs = [v.clone().requires_grad_() for v in values]
    mine, theirs = fn(*ours).sum(), fn(*refs).sum()
    for order in range(3):
        last = order == 2
        got = tg.grad(mine, ours, create_graph=not last, allow_unused=True)
        want = torch.autograd.grad(theirs, refs, create_graph=not last, allow_unused=True)
        for position, (a, b) in enumerate(zip(got, want)):
            a = torch.zeros_like(values[position]) if a is None else a.data
            b = torch.zeros_like(values[position]) if b is None else b.detach()
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10, msg=f"order {order + 1}")
        if last:
            break
        pairs = [(g, r) for g, r in zip(got, want) if g is not None and r is not None]
        mine = sum(g.sum() for g, _ in pairs)
        theirs = sum(r.sum() for _, r in pairs)
        if not isinstance(mine, tg.Tensor) or not mine.requires_grad:
            break  # (linear from here on: nothing left to differentiate)


EMPTY_REDUCTIONS = {
    "var": lambda t: t.var(1),
    "std": lambda t: t.std(1, keepdim=True),
    "max(dim)": lambda t: t.max(1).values,
    "min(dim)": lambda t: t.min(-1, keepdim=True).values,
    "softmax": lambda t: t.softmax(1),
    "log_softmax": lambda t: t.log_softmax(-1),
    "logsumexp": lambda t: t.logsumexp(1),
    "amax": lambda t: t.amax((1, 2)),
}


@pytest.mark.parametrize("name", list(EMPTY_REDUCTIONS))
def test_reductions_over_a_tensor_with_an_empty_dimension_to_second_order(name):
    # the reduced dimensions are not empty; another one is: empty results, empty gradients
    check_both(EMPTY_REDUCTIONS[name], randn((0, 3, 2), 0))


@st.composite
def assignments(draw):
    """A shape, an index into it (int, slice or a pair of them) and the shape of a value
    that broadcasts to what the index selects."""
    shape = draw(shapes(1, 3, min_side=1))
    first = draw(
        st.one_of(
            st.integers(-shape[0], shape[0] - 1),
            st.tuples(st.integers(-4, 4), st.integers(-4, 4), st.sampled_from([1, 2])).map(
                lambda t: slice(*t)
            ),
        )
    )
    index = first
    if len(shape) > 1 and draw(st.booleans()):
        index = (first, draw(st.integers(-shape[1], shape[1] - 1)))
    selected = torch.empty(shape)[index].shape
    keep = draw(st.integers(0, len(selected)))
    value_shape = tuple(1 if draw(st.booleans()) else s for s in selected[len(selected) - keep :])
    return shape, index, value_shape


@EXAMPLES
@given(case=assignments(), seed=seeds)
def test_setitem_on_a_recorded_tensor_with_drawn_indices(case, seed):
    shape, index, value_shape = case

    def fn(x, v):
        y = x * x
        y[index] = v * 2
        return y * x

    check_both(fn, randn(shape, seed), randn(value_shape, seed + 1))
