"""Reductions against torch: sum, mean, max, min, amax, amin, argmax, argmin, var, std, prod.

Hypothesis draws shapes (0-d and empty ones too) and dims (None, ints and
tuples of either sign); `helpers.check_both` compares forward, first and
second derivatives with torch autograd and runs central differences.
Ties are made by hand: the derivative of max/min/amax/amin at a tie
follows torch (shared evenly over all of x or per slice; along a dim, to
the index returned). Bad input raises the exception type torch raises.
"""

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import tapegrad as tg

from helpers import (
    check_against_torch,
    check_both,
    check_second_order,
    positive,
    randn,
    seeds,
    shapes,
)

EXAMPLES = settings(max_examples=25, deadline=None)


def leaf(values):
    return tg.Tensor(values.clone(), requires_grad=True)


def lib(t):
    """The library `t` belongs to: tapegrad.max(t) on our side, torch.max(t) on torch's."""
    return tg if isinstance(t, tg.Tensor) else torch


@st.composite
def dims_for(draw, shape, tuples=True, none=True):
    """A dim for `shape`: None, an int, or a tuple of distinct dims (or () / a list), either
    sign."""
    ndim = max(len(shape), 1)  # torch lets a 0-d tensor reduce over dim 0 / -1
    kinds = (["none"] if none else []) + ["int"] + (["tuple", "empty", "list"] if tuples else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    if kind == "empty":
        return ()
    dims = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    negate = draw(st.lists(st.booleans(), min_size=len(dims), max_size=len(dims)))
    dims = [d - ndim if neg else d for d, neg in zip(dims, negate)]
    return tuple(dims) if kind == "tuple" else dims


@st.composite
def reduction_cases(draw, min_side=0, tuples=True, none=True):
    shape = draw(shapes(0, 4, min_side=min_side))
    return shape, draw(dims_for(shape, tuples, none)), draw(st.booleans())


def numel_over(shape, dim):
    """How many elements each output element of a reduction over `dim` gathers."""
    if not shape:
        return 1
    if dim is None or dim == () or dim == []:
        dims = range(len(shape))
    else:
        dims = [dim] if isinstance(dim, int) else dim
    n = 1
    for d in dims:
        n *= shape[d]
    return n


# --- sum and mean --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sum", "mean"])
@EXAMPLES
@given(case=reduction_cases(), seed=seeds, form=st.sampled_from(["method", "function"]))
def test_sum_mean(name, case, seed, form):
    shape, dim, keepdim = case
    assume(name == "sum" or numel_over(shape, dim) > 0)  # a mean of nothing is NaN

    def fn(t):
        if form == "function" and isinstance(t, tg.Tensor):
            return getattr(tg, name)(t, dim, keepdim)
        return getattr(t, name)(dim=dim, keepdim=keepdim)

    check_both(fn, randn(shape, seed))


@pytest.mark.parametrize("name", ["sum", "mean"])
def test_sum_mean_keepdim_without_dim_keeps_every_dim(name):
    # torch: x.sum(dim=None, keepdim=True) has shape (1, 1, 1)
    x = randn((2, 3, 4), 0)
    check_both(lambda t: getattr(t, name)(dim=None, keepdim=True), x)
    assert getattr(leaf(x), name)(None, True).shape == (1, 1, 1)


@pytest.mark.parametrize("name", ["sum", "mean"])
def test_sum_mean_of_empty_tensors_follow_torch(name):
    check_against_torch(lambda t: getattr(t, name)(), randn((0, 3), 0), equal_nan=True)
    check_against_torch(lambda t: getattr(t, name)(0), randn((0, 3), 0), equal_nan=True)
    check_against_torch(lambda t: getattr(t, name)(1), randn((0, 3), 0))
    check_against_torch(
        lambda t: getattr(t, name)((0, 1), keepdim=True), randn((2, 0), 0), equal_nan=True
    )


@pytest.mark.parametrize("name", ["sum", "mean"])
def test_sum_mean_strided_float32_and_gradgradcheck(name):
    x = randn((4, 3, 2), 0)
    check_both(lambda t: getattr(t, name)((0, -1)), x.transpose(0, 2))
    check_against_torch(
        lambda t: getattr(t, name)((-1, 0), keepdim=True), x.float(), rtol=1e-6, atol=1e-6
    )
    assert tg.gradgradcheck(lambda t: getattr(t * t, name)((0, 2)), leaf(x))


# --- max and min over every element ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["max", "min", "amax", "amin"])
@EXAMPLES
@given(shape=shapes(0, 4), seed=seeds)
def test_max_min_over_everything(name, shape, seed):
    check_both(lambda t: getattr(t, name)(), randn(shape, seed))


@pytest.mark.parametrize("name", ["max", "min", "amax", "amin"])
def test_ties_over_everything_share_evenly_as_torch(name):
    x = torch.tensor([[1.0, 3.0, -2.0], [3.0, -2.0, 3.0]], dtype=torch.float64)
    check_against_torch(lambda t: getattr(t, name)(), x)
    check_second_order(lambda t: getattr(t, name)() * t.sum(), x)
    y = leaf(x)
    getattr(y, name)().backward()
    share = y.grad[x == (x.max() if name in ("max", "amax") else x.min())]
    assert torch.equal(share, torch.full_like(share, 1 / share.numel()))
    assert y.grad.sum() == 1


@pytest.mark.parametrize("name", ["max", "min", "amax", "amin"])
def test_nan_over_everything_follows_torch(name):
    # max/min: the NaNs share the gradient (NaN is the result); amax/amin: NaN everywhere (as torch)
    nan = float("nan")
    x = torch.tensor([nan, 1.0, nan, -1.0], dtype=torch.float64)
    check_against_torch(lambda t: getattr(t, name)(), x, equal_nan=True)


def test_max_min_function_forms_float32_and_gradgradcheck():
    x = randn((3, 4), 0)
    for name in ["max", "min", "amax", "amin"]:
        check_both(lambda t: getattr(lib(t), name)(t), x)
        check_against_torch(lambda t: getattr(t, name)(), x.float(), rtol=1e-6, atol=1e-6)
        assert tg.gradgradcheck(lambda t: getattr(t, name)() * t, leaf(x))


@pytest.mark.parametrize("name", ["max", "min", "amax", "amin", "argmax", "argmin"])
def test_empty_tensor_without_dim_is_refused(name):
    x = tg.tensor(torch.zeros(0, 3), requires_grad=name[:3] != "arg")
    kind = IndexError if name.startswith("arg") else RuntimeError  # what torch raises
    with pytest.raises(kind):
        getattr(torch.zeros(0, 3), name)()
    with pytest.raises(
        kind,
        match=r"of an empty tensor \(shape \(0, 3\)\) has no element to pick; "
        r"give dim=",
    ):
        getattr(x, name)()


# --- max and min along a dim: (values, indices) --------------------------------------------------


@pytest.mark.parametrize("name", ["max", "min"])
@EXAMPLES
@given(case=reduction_cases(min_side=1, tuples=False, none=False), seed=seeds)
def test_max_min_along_a_dim(name, case, seed):
    shape, dim, keepdim = case
    x = randn(shape, seed)
    check_both(lambda t: getattr(t, name)(dim, keepdim=keepdim).values, x)
    ours = getattr(leaf(x), name)(dim, keepdim)
    theirs = getattr(x, name)(dim, keepdim)
    assert torch.equal(ours.indices.data, theirs.indices)
    assert ours.indices.dtype == torch.int64 and not ours.indices.requires_grad
    assert tg.gradcheck(lambda t: getattr(t, name)(dim, keepdim), leaf(x))  # a tuple output


@pytest.mark.parametrize("name", ["max", "min"])
def test_along_a_dim_the_gradient_goes_to_the_index_returned(name):
    x = torch.tensor([[2.0, 2.0, 1.0], [-1.0, -1.0, -1.0], [0.0, 5.0, 5.0]], dtype=torch.float64)
    x = x if name == "max" else -x
    for dim in (0, 1, -1):
        check_against_torch(lambda t: getattr(t, name)(dim).values, x)
        check_against_torch(lambda t: getattr(t, name)(dim, keepdim=True).values, x)
        check_second_order(lambda t: getattr(t, name)(dim).values * t.sum(dim), x)
    y = leaf(x)
    values, indices = getattr(y, name)(1)
    values.sum().backward()
    assert indices.tolist() == [0, 0, 1]  # the first of tied extremes, as torch
    assert y.grad.tolist() == [[1, 0, 0], [1, 0, 0], [0, 1, 0]]


def test_the_result_is_a_named_tuple_like_torchs():
    x = leaf(randn((2, 3), 0))
    result = tg.max(x, 1)
    values, indices = result
    assert result.values is values and result[1] is indices and len(result) == 2
    assert type(result).__name__ == "max" and type(tg.min(x, 0)).__name__ == "min"
    assert isinstance(result, tg.return_types.max) and isinstance(result, tuple)
    assert repr(result).startswith("max(values=tensor(")
    kept = x.max(dim=-1, keepdim=True)
    assert kept.values.shape == (2, 1) and kept.indices.shape == (2, 1)


def test_max_min_along_a_dim_of_0d_and_empty_tensors():
    check_both(lambda t: t.max(0).values, torch.tensor(1.5, dtype=torch.float64))
    check_both(lambda t: t.min(-1, keepdim=True).values, torch.tensor(1.5, dtype=torch.float64))
    check_against_torch(lambda t: t.max(1).values, randn((0, 3), 0))  # empty, not along 0
    with pytest.raises(IndexError, match=r"max\(dim=0\) of a tensor of shape \(0, 3\): dim 0 is"):
        leaf(randn((0, 3), 0)).max(0)
    with pytest.raises(IndexError):
        torch.zeros(0, 3).max(0)  # torch's type


def test_max_min_along_a_dim_float32_strided_and_gradgradcheck():
    x = randn((4, 3), 0)
    check_against_torch(lambda t: t.max(0).values, x.float(), rtol=1e-6, atol=1e-6)
    check_both(lambda t: t.min(1).values, x.T)
    assert tg.gradgradcheck(lambda t: t.max(1).values * t.sum(1), leaf(x))
    assert tg.gradgradcheck(lambda t: t.min(0, keepdim=True).values * t, leaf(x))


def test_max_min_dim_errors():
    x = leaf(randn((2, 3), 0))
    with pytest.raises(IndexError):
        torch.zeros(2, 3).max(dim=5)  # torch's type
    with pytest.raises(
        IndexError,
        match=r"dim 5 is out of range for a tensor of 2 dimension\(s\): "
        r"use a dim in \[-2, 1\]",
    ):
        x.max(dim=5)
    with pytest.raises(IndexError, match="dim -3 is out of range"):
        tg.min(x, -3)
    with pytest.raises(
        TypeError,
        match=r"max\(dim=...\) takes one int dim, got \(0, 1\); to reduce "
        "over several, use amax/amin",
    ):
        x.max((0, 1))
    with pytest.raises(
        TypeError, match=r"min\(keepdim=True\) needs a dim; to keep every dim.* amin"
    ):
        x.min(keepdim=True)


# --- amax and amin --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["amax", "amin"])
@EXAMPLES
@given(case=reduction_cases(min_side=1), seed=seeds, form=st.sampled_from(["method", "function"]))
def test_amax_amin(name, case, seed, form):
    shape, dim, keepdim = case
    if dim is None:
        dim = ()

    def fn(t):
        if form == "function" and isinstance(t, tg.Tensor):
            return getattr(tg, name)(t, dim, keepdim)
        return getattr(t, name)(dim, keepdim=keepdim)

    check_both(fn, randn(shape, seed))


@pytest.mark.parametrize("name", ["amax", "amin"])
def test_amax_amin_ties_share_per_slice_as_torch(name):
    x = torch.tensor([[[1.0, 3.0], [3.0, 0.0]], [[2.0, 2.0], [2.0, 2.0]]], dtype=torch.float64)
    x = x if name == "amax" else -x
    for dim in [0, 1, -1, (0, 2), (-1, -2), (), [1, 2]]:
        for keepdim in (False, True):
            check_against_torch(lambda t: getattr(t, name)(dim, keepdim), x)
            check_second_order(lambda t: getattr(t, name)(dim, keepdim) * 2, x)
    y = leaf(x)
    getattr(y, name)((1, 2)).sum().backward()
    assert y.grad.tolist() == [[[0, 0.5], [0.5, 0]], [[0.25, 0.25], [0.25, 0.25]]]


@pytest.mark.parametrize("name", ["amax", "amin"])
def test_amax_amin_float32_strided_empty_and_gradgradcheck(name):
    x = randn((3, 4, 2), 0)
    check_against_torch(lambda t: getattr(t, name)((0, 2)), x.float(), rtol=1e-6, atol=1e-6)
    check_both(lambda t: getattr(t, name)(-1), x.transpose(0, 1))
    check_against_torch(lambda t: getattr(t, name)(0), randn((2, 0), 1))  # an empty result
    assert tg.gradgradcheck(lambda t: getattr(t, name)((0, -1)) * t.sum((0, 2)), leaf(x))
    with pytest.raises(IndexError, match=r"dim=0\) of a tensor of shape \(0, 3\): dim 0 is empty"):
        getattr(leaf(randn((0, 3), 2)), name)(0)
    with pytest.raises(IndexError):
        getattr(torch.zeros(0, 3), name)(0)  # torch's type
    with pytest.raises(RuntimeError, match=r"dim \(0, -3\) names one dimension twice"):
        getattr(leaf(x), name)((0, -3))
    with pytest.raises(RuntimeError):
        getattr(x, name)((0, -3))  # torch's type
    with pytest.raises(IndexError, match="dim 3 is out of range"):
        getattr(leaf(x), name)((0, 3))


# --- argmax and argmin ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@EXAMPLES
@given(case=reduction_cases(min_side=1, tuples=False), seed=seeds, rounded=st.booleans())
def test_argmax_argmin(name, case, seed, rounded):
    shape, dim, keepdim = case
    x = randn(shape, seed)
    if rounded:
        x = torch.round(x)  # ties: the first index, as torch
    expected = getattr(x, name)(dim=dim, keepdim=keepdim)
    for got in (
        getattr(leaf(x), name)(dim, keepdim),
        getattr(tg, name)(leaf(x), dim=dim, keepdim=keepdim),
    ):
        assert isinstance(got, tg.Tensor) and got.dtype == torch.int64
        assert not got.requires_grad and got.node is None
        assert torch.equal(got.data, expected)


@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argmax_argmin_errors(name):
    x = leaf(randn((2, 3), 0))
    with pytest.raises(IndexError, match="dim 2 is out of range"):
        getattr(x, name)(2)
    with pytest.raises(TypeError, match=r"takes one int dim"):
        getattr(x, name)((0, 1))  # torch: TypeError too
    with pytest.raises(IndexError, match="dim 0 is empty"):
        getattr(tg, name)(leaf(randn((0, 2), 1)), 0)
    assert getattr(tg, name)(leaf(randn((0, 2), 1)), 1).shape == (0,)


# --- var and std ----------------------------------------------------------------------------------


@st.composite
def spread_cases(draw):
    shape, dim, keepdim = draw(reduction_cases(min_side=1))
    n = numel_over(shape, dim)
    style = draw(st.sampled_from(["default", "correction", "unbiased"]))
    if style == "correction":
        options = [c for c in (0, 1, 2, 0.5) if c < n]
        return shape, dim, keepdim, {"correction": draw(st.sampled_from(options))}
    if style == "unbiased":
        unbiased = draw(st.booleans()) if n > 1 else False
        return shape, dim, keepdim, {"unbiased": unbiased}
    assume(n > 1)
    return shape, dim, keepdim, {}


@pytest.mark.parametrize("name", ["var", "std"])
@EXAMPLES
@given(case=spread_cases(), seed=seeds, form=st.sampled_from(["method", "function"]))
def test_var_std(name, case, seed, form):
    shape, dim, keepdim, spelling = case
    assume(name == "var" or numel_over(shape, dim) > 1)  # std of one element: 0, see below
    if dim == () or dim == []:
        dim = None  # torch's derivative over dim=() is wrong (see below); checked there

    def fn(t):
        if form == "function" and isinstance(t, tg.Tensor):
            return getattr(tg, name)(t, dim, keepdim=keepdim, **spelling)
        return getattr(t, name)(dim, keepdim=keepdim, **spelling)

    check_both(fn, randn(shape, seed))


@pytest.mark.parametrize("name", ["var", "std"])
def test_var_std_positional_spellings_as_torch(name):
    x = randn((3, 4), 0)
    check_both(lambda t: getattr(t, name)(False), x)  # the bool is unbiased
    check_both(lambda t: getattr(t, name)(1, False, True), x)  # dim, unbiased, keepdim
    check_both(lambda t: getattr(t, name)(-1, True), x)
    check_both(lambda t: getattr(t, name)(dim=(0, 1), correction=0, keepdim=True), x)
    pair = getattr(tg, f"{name}_mean")(leaf(x), 1, correction=0)
    expected = getattr(torch, f"{name}_mean")(x, 1, correction=0)
    for got, want in zip(pair, expected):
        torch.testing.assert_close(got.data, want)


@pytest.mark.parametrize("name", ["var", "std"])
def test_var_std_over_dim_empty_tuple_is_the_true_derivative(name):
    # torch reads dim=() as every dimension in the forward, but its var/std derivative then
    # divides by n - correction with n = 1 (+-inf); tapegrad's is that of every dimension
    x = randn((2, 3), 0)
    ours = leaf(x)
    getattr(ours, name)(()).backward()
    reference = x.clone().requires_grad_()
    getattr(reference, name)().backward()
    torch.testing.assert_close(ours.grad, reference.grad)
    assert tg.gradcheck(lambda t: getattr(t, name)(()), leaf(x))


def test_std_at_zero_spread_has_zero_gradient_as_torch():
    x = torch.tensor([[1.0, 1.0, 1.0], [1.0, 2.0, 4.0]], dtype=torch.float64)
    check_against_torch(lambda t: t.std(1), x)
    check_against_torch(lambda t: t.std(1, correction=0, keepdim=True), x)
    check_against_torch(lambda t: t.std(), torch.full((2, 2), 3.0, dtype=torch.float64))
    y = leaf(x)
    y.std(1).sum().backward()
    assert torch.equal(y.grad[0], torch.zeros(3, dtype=torch.float64))


@pytest.mark.parametrize("name", ["var", "std"])
def test_var_std_with_no_degrees_of_freedom_follow_torch(name):
    # n <= correction: torch warns, gives inf or NaN, and so do the derivatives
    cases = [
        (torch.tensor([3.0], dtype=torch.float64), None, 1),
        (torch.tensor([3.0, 4.0], dtype=torch.float64), None, 3),
        (torch.tensor([3.0, 3.0], dtype=torch.float64), None, 2),
        (torch.tensor([3.0, 4.0], dtype=torch.float64), 0, 3),
        (torch.tensor([[3.0], [4.0]], dtype=torch.float64), 1, 1),
        (torch.tensor(2.0, dtype=torch.float64), None, 1),
    ]
    with pytest.warns(UserWarning, match="degrees of freedom"):
        for x, dim, correction in cases:
            check_against_torch(
                lambda t: getattr(t, name)(dim, correction=correction), x, equal_nan=True
            )


@pytest.mark.parametrize("name", ["var", "std"])
def test_var_std_float32_strided_0d_and_gradgradcheck(name):
    x = randn((4, 3), 0)
    check_against_torch(lambda t: getattr(t, name)(0), x.float(), rtol=1e-5, atol=1e-6)
    check_both(lambda t: getattr(t, name)(1, correction=0), x.T)
    check_both(
        lambda t: getattr(t, name)(correction=0) * t,
        torch.tensor(2.0, dtype=torch.float64)
        if name == "var"
        else torch.tensor([2.0, 3.0], dtype=torch.float64),
    )
    assert tg.gradgradcheck(lambda t: getattr(t, name)(1), leaf(x))
    assert tg.gradgradcheck(lambda t: getattr(t, name)() * t, leaf(x))


def test_var_std_errors():
    x = leaf(randn((2, 3), 0))
    for name in ["var", "std"]:
        with pytest.raises(TypeError, match="give correction= or unbiased=, not both"):
            getattr(x, name)(0, unbiased=True, correction=1)  # torch: TypeError too
        with pytest.raises(IndexError, match="dim 2 is out of range"):
            getattr(x, name)(2)
        with pytest.raises(
            RuntimeError, match=r"\(\) needs a floating-point tensor, got torch.int64"
        ):
            getattr(tg, name)(tg.tensor([1, 2, 3]))  # torch: RuntimeError
        with pytest.raises(TypeError, match="needs a floating-point tensor"):
            getattr(tg, name)(tg.tensor([1, 2, 3]))


# --- prod -----------------------------------------------------------------------------------------


@EXAMPLES
@given(case=reduction_cases(tuples=False), seed=seeds, zeros=st.integers(0, 3))
def test_prod(case, seed, zeros):
    shape, dim, keepdim = case
    x = randn(shape, seed)
    if zeros and x.numel():  # zeros anywhere: one in a slice, or two
        g = torch.Generator().manual_seed(seed)
        flat = x.view(-1)
        flat[torch.randint(0, x.numel(), (zeros,), generator=g)] = 0.0
    if dim is None:
        check_both(lambda t: t.prod(), x)
    else:
        check_both(lambda t: t.prod(dim, keepdim=keepdim), x)


def test_prod_with_zeros_against_torch_to_second_order():
    x = torch.tensor([[2.0, 0.0, 3.0], [0.0, 0.0, 5.0], [1.5, -2.0, 4.0]], dtype=torch.float64)
    for fn in (
        lambda t: t.prod(),
        lambda t: t.prod(1),
        lambda t: t.prod(0, keepdim=True),
        lambda t: t.prod(-1) * t.sum(1),
    ):
        check_both(fn, x)
    check_both(lambda t: lib(t).prod(t, 1), x)


def test_prod_0d_empty_float32_strided_gradgradcheck_and_errors():
    check_both(lambda t: t.prod() * t, torch.tensor(1.5, dtype=torch.float64))
    check_both(lambda t: t.prod(0), torch.tensor(1.5, dtype=torch.float64))
    check_against_torch(lambda t: t.prod(), randn((0, 3), 0))
    check_against_torch(lambda t: t.prod(0), randn((0, 3), 0))
    x = positive((3, 4), 1)
    check_against_torch(lambda t: t.prod(1), x.float(), rtol=1e-5, atol=1e-6)
    check_both(lambda t: t.prod(0), x.T)
    assert tg.gradgradcheck(lambda t: t.prod(1), leaf(x))
    with_zero = x.clone()
    with_zero[1, 2] = 0.0
    assert tg.gradgradcheck(lambda t: t.prod(), leaf(with_zero))
    with pytest.raises(TypeError, match=r"prod\(dim=...\) takes one int dim"):
        leaf(x).prod((0, 1))  # torch: TypeError too
    with pytest.raises(TypeError, match="keepdim=True\\) needs a dim"):
        leaf(x).prod(keepdim=True)
    with pytest.raises(IndexError, match="dim 2 is out of range"):
        leaf(x).prod(2)
