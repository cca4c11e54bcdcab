"""Elementwise ops of the torch surface against torch: forward, first and second derivatives.

abs, sqrt, sin, cos, sign; maximum and minimum; clamp (clip, clamp_min,
clamp_max); where; ** with a tensor exponent; the method forms of the
arithmetic; comparisons. Each is checked with `helpers.check_both`
(torch autograd to second order, and central differences) on
hypothesis-drawn shapes, at hand-made ties, kinks and zeros against
torch, in float32, and with one `tapegrad.gradgradcheck`. At the end, one
tape records every op of this surface (this file's and
test_ops_reduction.py's) for the teaching tools.
"""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tapegrad as tg
import visualize
from tapegrad.printing import format_tape
from tapegrad.steps import derivative_rule

from helpers import (
    broadcast_shapes,
    check_against_torch,
    check_both,
    check_second_order,
    positive,
    randn,
    seeds,
    shapes,
)

EXAMPLES = settings(max_examples=25, deadline=None)
requires_pairs = st.sampled_from([(True, True), (True, False), (False, True)])


def leaf(values):
    return tg.Tensor(values.clone(), requires_grad=True)


def lib(t):
    """The library `t` belongs to: tapegrad on our side of a check, torch on torch's."""
    return tg if isinstance(t, tg.Tensor) else torch


# --- abs, sqrt, sin, cos, sign ------------------------------------------------------------

UNARY = {  # name: (the op as a method, values away from its kinks and poles)
    "abs": (lambda t: t.abs(), lambda s, seed: randn(s, seed, away_from_zero=0.1)),
    "sqrt": (lambda t: t.sqrt(), positive),
    "sin": (lambda t: t.sin(), randn),
    "cos": (lambda t: t.cos(), randn),
    "sign": (lambda t: t.sign(), lambda s, seed: randn(s, seed, away_from_zero=0.1)),
}


@pytest.mark.parametrize("name", UNARY)
@EXAMPLES
@given(shape=shapes(0, 4), seed=seeds)
def test_unary(name, shape, seed):
    fn, values = UNARY[name]
    check_both(fn, values(shape, seed))


@pytest.mark.parametrize("name", UNARY)
def test_unary_function_forms_match_the_methods(name):
    _, values = UNARY[name]
    check_both(lambda t: getattr(lib(t), name)(t), values((3, 2), 0))


@pytest.mark.parametrize("name", UNARY)
def test_unary_float32_empty_and_strided(name):
    fn, values = UNARY[name]
    check_against_torch(fn, values((5, 3), 0).float(), rtol=1e-6, atol=1e-6)
    check_both(fn, values((0, 3), 1))  # empty
    check_both(fn, values((4, 3), 2).T)  # a transposed (strided) input
    check_both(fn, values((6, 2), 3)[::2])  # a stepped slice


def test_python_abs_and_absolute():
    x = randn((3,), 0, away_from_zero=0.1)
    check_both(lambda t: abs(t), x)
    check_both(lambda t: t.absolute(), x)
    assert tg.absolute is tg.abs


def test_abs_sqrt_sign_at_zero_follow_torch():
    # abs'(0) = 0; sqrt'(0) = inf and sqrt of a negative is NaN; sign's gradient is zeros, not None
    x = torch.tensor([0.0, -0.0, -2.0, 3.0, 0.0], dtype=torch.float64)
    check_against_torch(lambda t: t.abs(), x)
    check_against_torch(lambda t: t.sign(), x)
    check_against_torch(
        lambda t: t.sqrt(), torch.tensor([0.0, 4.0, -1.0], dtype=torch.float64), equal_nan=True
    )
    check_second_order(lambda t: t.abs() * t, x)


def test_sign_gives_zeros_not_none():
    x = leaf(randn((2, 3), 0))
    y = x.sign()
    assert y.requires_grad and y.node.name == "Sign"  # recorded, as torch records it
    (y * 2).sum().backward()
    assert torch.equal(x.grad, torch.zeros(2, 3, dtype=torch.float64))


@pytest.mark.parametrize("name", ["abs", "sqrt", "sin", "cos"])
def test_unary_gradgradcheck(name):
    fn, values = UNARY[name]
    assert tg.gradgradcheck(fn, leaf(values((2, 3), 0)))


def test_sign_second_derivative_is_zero():
    x = randn((2, 3), 0, away_from_zero=0.1)
    check_second_order(lambda t: t.sign() * t * t, x)
    # sign's own derivative is a constant 0, so gradgradcheck checks it inside an expression
    assert tg.gradgradcheck(lambda t: t.sign() * t * t, leaf(x))


@pytest.mark.parametrize("name", ["exp", "log", "log1p", "relu", "tanh", "sigmoid"])
def test_function_forms_of_the_older_unary_ops(name):
    x = positive((2, 3), 0)
    check_both(lambda t: getattr(lib(t), name)(t), x)


# --- maximum, minimum ----------------------------------------------------------------------

PAIRWISE = {
    "maximum": lambda a, b: a.maximum(b),
    "minimum": lambda a, b: a.minimum(b),
}


@pytest.mark.parametrize("name", PAIRWISE)
@EXAMPLES
@given(pair=broadcast_shapes(), seed=seeds, requires=requires_pairs)
def test_maximum_minimum_broadcast(name, pair, seed, requires):
    shape_a, shape_b = pair
    check_both(
        PAIRWISE[name], randn(shape_a, seed), randn(shape_b, seed + 1), requires=list(requires)
    )


@pytest.mark.parametrize("name", PAIRWISE)
def test_maximum_minimum_ties_split_the_gradient_half_half_as_torch(name):
    a = torch.tensor([[1.0, 2.0, 3.0], [0.5, -1.0, 4.0]], dtype=torch.float64)
    b = torch.tensor([1.0, 5.0, 3.0], dtype=torch.float64)  # ties at (0, 0), (0, 2)
    check_against_torch(PAIRWISE[name], a, b)
    check_second_order(PAIRWISE[name], a, b)
    x, y = leaf(a), leaf(b)
    getattr(tg, name)(x, y).sum().backward()
    assert x.grad[0, 0] == 0.5 and x.grad[0, 2] == 0.5
    # b[0]: half of row 0's tie, and row 1's whole gradient if b[0] = 1 wins against a = 0.5
    assert y.grad[0] == (1.5 if name == "maximum" else 0.5)


@pytest.mark.parametrize("name", PAIRWISE)
def test_maximum_minimum_with_nan_follow_torch(name):
    nan = float("nan")
    a = torch.tensor([nan, 1.0, 2.0], dtype=torch.float64)
    b = torch.tensor([1.0, nan, 2.0], dtype=torch.float64)
    check_against_torch(PAIRWISE[name], a, b, equal_nan=True)


@pytest.mark.parametrize("name", PAIRWISE)
def test_maximum_minimum_functions_float32_and_gradgradcheck(name):
    a, b = randn((3, 1), 0), randn((2, 1, 4), 1)
    check_both(lambda x, y: getattr(lib(x), name)(x, y), a, b)
    check_against_torch(PAIRWISE[name], a.float(), b.float(), rtol=1e-6, atol=1e-6)
    assert tg.gradgradcheck(PAIRWISE[name], leaf(a), leaf(b))


def test_binary_selections_of_empty_tensors():
    a, b = randn((0, 3), 0), randn((3,), 1)
    for fn in (
        PAIRWISE["maximum"],
        PAIRWISE["minimum"],
        lambda x, y: x.clamp(y - 1, y),
        lambda x, y: x.where(x > 0, y),
        lambda x, y: x.abs() ** y,
    ):
        check_both(fn, a, b)


def test_max_and_min_of_two_tensors_are_maximum_and_minimum():
    a, b = randn((2, 3), 0), randn((3,), 1)
    check_both(lambda x, y: x.max(y), a, b)
    check_both(lambda x, y: x.min(y), a, b)
    x = leaf(a)
    assert tg.max(x, torch.zeros(3, dtype=torch.float64)).node.name == "Maximum"
    assert tg.min(x, torch.zeros(3, dtype=torch.float64)).node.name == "Minimum"


def test_maximum_errors():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(
        TypeError,
        match=r"Maximum: maximum\(a, b\) takes two tensors, got a float.*"
        r"clamp_min",
    ):
        tg.maximum(x, 0.5)  # torch: TypeError too
    with pytest.raises(TypeError, match="clamp_max"):
        x.minimum(1)
    with pytest.raises(TypeError, match="different dtypes"):
        tg.maximum(x, tg.tensor([1.0, 2.0], dtype=torch.float64))
    with pytest.raises(RuntimeError, match=r"(?s)Maximum: .*\(2,\) and \(3,\) do not broadcast"):
        tg.maximum(x, tg.tensor([1.0, 2.0, 3.0]))


# --- clamp, clip, clamp_min, clamp_max -------------------------------------------------------


@EXAMPLES
@given(
    shape=shapes(0, 3),
    seed=seeds,
    low=st.none() | st.floats(-1.5, 0.5),
    high=st.none() | st.floats(-0.5, 1.5),
    method=st.sampled_from(["clamp", "clip"]),
)
def test_clamp_with_number_bounds(shape, seed, low, high, method):
    if low is None and high is None:
        low = -0.5
    # low > high happens here too: every element is then high, and x gets no gradient
    check_both(lambda t: getattr(t, method)(low, high), randn(shape, seed))


@EXAMPLES
@given(
    shapes_=broadcast_shapes(),
    seed=seeds,
    which=st.sampled_from(["both", "min", "max"]),
    requires=st.sampled_from(
        [(True, True, True), (True, False, True), (False, True, True), (True, True, False)]
    ),
)
def test_clamp_with_tensor_bounds_broadcast(shapes_, seed, which, requires):
    shape_x, shape_bound = shapes_
    x = randn(shape_x, seed)
    low = randn(shape_bound, seed + 1) - 0.5
    high = randn(shape_bound, seed + 2) + 0.5  # mostly above low, sometimes below
    if which == "both":
        check_both(lambda t, lo, hi: t.clamp(lo, hi), x, low, high, requires=list(requires))
    elif which == "min":
        check_both(lambda t, lo: t.clamp(min=lo), x, low, requires=list(requires[:2]))
    else:
        check_both(lambda t, hi: t.clamp(max=hi), x, high, requires=[requires[0], requires[2]])


def test_clamp_ties_at_the_bounds_follow_torch():
    # x exactly at a bound: x gets the gradient (torch: low <= x <= high), the bound none
    x = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0, 2.0], dtype=torch.float64)
    check_against_torch(lambda t: t.clamp(-0.5, 0.5), x)
    check_against_torch(lambda t: t.clamp_min(0.5), x)
    check_against_torch(lambda t: t.clamp_max(-0.5), x)
    low = torch.tensor(-0.5, dtype=torch.float64)
    high = torch.tensor([0.5, 0.5, 0.5, 0.5, 1.0, 1.0], dtype=torch.float64)
    check_against_torch(lambda t, lo, hi: t.clamp(lo, hi), x, low, high)
    check_second_order(lambda t, lo, hi: t.clamp(lo, hi) * t, x, low, high)
    # ties between the bounds themselves (low == high): torch gives x the gradient where x is there
    check_against_torch(lambda t, lo, hi: t.clamp(lo, hi), x, high.clone(), high)


def test_clamp_min_above_max_follows_torch():
    x = randn((2, 3), 0)
    check_against_torch(lambda t: t.clamp(1.0, -1.0), x)  # numbers: all -1
    low = torch.full((3,), 1.0, dtype=torch.float64)
    high = torch.full((2, 1), -1.0, dtype=torch.float64)
    check_against_torch(lambda t, lo, hi: t.clamp(lo, hi), x, low, high)  # max gets everything
    y = leaf(x)
    y.clamp(1.0, -1.0).sum().backward()
    assert torch.equal(y.grad, torch.zeros(2, 3, dtype=torch.float64))


def test_clamp_number_and_tensor_bound_mixed():
    # torch refuses one number and one tensor; tapegrad takes them (the number acts as a constant)
    x, high = randn((2, 3), 0), randn((3,), 1) + 0.5
    ours = leaf(x).clamp(-0.5, tg.Tensor(high))
    assert torch.equal(ours.data, torch.clamp(x, torch.tensor(-0.5, dtype=torch.float64), high))
    check_both(
        lambda t, hi: t.clamp(-0.5 if lib(t) is tg else torch.tensor(-0.5, dtype=t.dtype), hi),
        x,
        high,
    )


def test_clamp_function_forms():
    x, low, high = randn((2, 3), 0), randn((3,), 1), torch.tensor(1.0, dtype=torch.float64)
    for name in ["clamp", "clip"]:
        check_both(lambda t: getattr(lib(t), name)(t, -0.2, 0.2), x)
        check_both(lambda t, lo: getattr(lib(t), name)(t, lo, high), x, low)
    for name in ["clamp_min", "clamp_max"]:
        check_both(lambda t: getattr(lib(t), name)(t, 0.2), x)


def test_clamp_float32_gradgradcheck_and_errors():
    x, low, high = randn((3, 4), 0), randn((4,), 1) - 0.5, randn((3, 1), 2) + 0.5
    check_against_torch(
        lambda t, lo, hi: t.clamp(lo, hi),
        x.float(),
        low.float(),
        high.float(),
        rtol=1e-6,
        atol=1e-6,
    )
    assert tg.gradgradcheck(lambda t, lo, hi: t.clamp(lo, hi) * t, leaf(x), leaf(low), leaf(high))
    with pytest.raises(RuntimeError, match=r"Clamp: clamp\(\) needs min or max \(or both\), got"):
        leaf(x).clamp()  # torch: RuntimeError
    with pytest.raises(TypeError, match="different dtypes"):
        leaf(x).clamp(min=tg.tensor(low.float()))
    with pytest.raises(RuntimeError, match="do not broadcast"):
        leaf(x).clamp(min=tg.tensor(randn((5,), 3)))


# --- where ---------------------------------------------------------------------------------------


@st.composite
def where_shapes(draw):
    """Three shapes that broadcast together: cond, a, b."""
    result = draw(shapes(0, 3))
    picked = []
    for _ in range(3):
        keep = draw(st.integers(0, len(result)))
        suffix = result[len(result) - keep :]
        ones = draw(st.lists(st.booleans(), min_size=len(suffix), max_size=len(suffix)))
        picked.append(tuple(1 if one else size for size, one in zip(suffix, ones)))
    return tuple(picked)


@EXAMPLES
@given(
    three=where_shapes(),
    seed=seeds,
    requires=requires_pairs,
    form=st.sampled_from(["function", "method", "ops"]),
)
def test_where_broadcasts_cond_and_both_inputs(three, seed, requires, form):
    shape_c, shape_a, shape_b = three
    g = torch.Generator().manual_seed(seed)
    cond = torch.rand(shape_c, generator=g) > 0.5

    def fn(a, b):
        if not isinstance(a, tg.Tensor):
            return torch.where(cond, a, b)
        if form == "method":
            return a.where(tg.tensor(cond), b)  # x.where(cond, y), as torch
        return (tg.where if form == "function" else tg.ops.where)(cond, a, b)

    check_both(fn, randn(shape_a, seed), randn(shape_b, seed + 1), requires=list(requires))


def test_where_with_numbers_on_either_side():
    x = randn((2, 3), 0)
    check_both(lambda t: lib(t).where(t > 0, t, 0.0), x)
    check_both(lambda t: lib(t).where(t > 0, -1.5, t), x)
    check_both(lambda t: t.where(t > 0, 2.0), x)
    check_against_torch(lambda t: t.where(t > 0, 2.0), x.float(), rtol=1e-6, atol=1e-6)


def test_where_gradgradcheck_and_the_one_argument_form():
    x, y = randn((2, 3), 0), randn((3,), 1)
    assert tg.gradgradcheck(lambda a, b: tg.where(a > 0, a * a, b * a), leaf(x), leaf(y))
    cond = tg.tensor(x > 0)
    found = tg.where(cond)
    assert isinstance(found, tuple) and all(isinstance(t, tg.Tensor) for t in found)
    assert all(torch.equal(a.data, b) for a, b in zip(found, torch.where(x > 0)))
    # given only torch tensors, it is torch.where itself (derivatives use it so)
    assert isinstance(tg.where(x > 0, x, y), torch.Tensor)


def test_where_errors():
    x = tg.tensor(randn((2, 3), 0), requires_grad=True)
    with pytest.raises(TypeError, match="cond must be a bool tensor, got torch.float64"):
        tg.where(x, x, 0.0)
    with pytest.raises(RuntimeError, match="cond must be a bool tensor"):  # torch's type
        tg.where(x, x, 0.0)
    with pytest.raises(TypeError, match="different dtypes"):
        tg.where(x > 0, x, tg.tensor(torch.zeros(3)))


# --- ** with a tensor exponent --------------------------------------------------------------------


@EXAMPLES
@given(pair=broadcast_shapes(), seed=seeds, requires=requires_pairs)
def test_pow_tensor_base_tensor_exponent(pair, seed, requires):
    shape_a, shape_b = pair
    check_both(
        lambda a, b: a**b,
        positive(shape_a, seed),
        randn(shape_b, seed + 1),
        requires=list(requires),
    )
    check_both(
        lambda a, b: a.pow(b),
        positive(shape_a, seed + 2),
        randn(shape_b, seed + 3),
        requires=list(requires),
    )


@EXAMPLES
@given(
    shape=shapes(0, 3), seed=seeds, base=st.sampled_from([2, 2.5, 0.5, 1.0]) | st.floats(0.1, 4.0)
)
def test_pow_number_base(shape, seed, base):
    check_both(lambda t: base**t, randn(shape, seed))


def test_pow_function_and_float32():
    a, b = positive((2, 3), 0), randn((3,), 1)
    check_both(lambda x, y: lib(x).pow(x, y), a, b)
    check_both(lambda y: lib(y).pow(2.0, y), b)
    check_against_torch(lambda x, y: x**y, a.float(), b.float(), rtol=1e-6, atol=1e-6)
    check_against_torch(lambda y: 3**y, b.float(), rtol=1e-6, atol=1e-6)


def test_pow_at_zero_base_follows_torch():
    # torch's 0^b: d/da is 0 where b = 0 (also at a = 0), d/db is 0 where a = 0 and b >= 0
    a = torch.tensor([0.0, 0.0, 0.0, 2.0, -2.0, 0.0, -3.0], dtype=torch.float64)
    b = torch.tensor([0.0, 1.0, -1.0, 0.0, 2.0, 0.5, 3.0], dtype=torch.float64)
    check_against_torch(lambda x, y: x**y, a, b, equal_nan=True)
    check_against_torch(lambda x, y: x**y, a, b, requires=[True, False], equal_nan=True)
    check_against_torch(lambda x, y: x**y, a, b, requires=[False, True], equal_nan=True)
    for base in [0.0, 0, -2.0, 2.0, 1.0]:  # number bases, 0 and negative too
        check_against_torch(lambda y: base**y, b, equal_nan=True)
    # second derivatives where they are finite (b = 0 included: the where of d/da)
    check_second_order(
        lambda x, y: x**y,
        torch.tensor([2.0, 1.5, 0.5], dtype=torch.float64),
        torch.tensor([0.0, 3.0, -1.0], dtype=torch.float64),
    )


def test_pow_gradgradcheck():
    assert tg.gradgradcheck(lambda a, b: a**b, leaf(positive((2, 3), 0)), leaf(randn((3,), 1)))
    assert tg.gradgradcheck(lambda b: 2**b, leaf(randn((2, 3), 2)))


# --- the method forms of the arithmetic -----------------------------------------------------------


@EXAMPLES
@given(
    pair=broadcast_shapes(),
    seed=seeds,
    alpha=st.sampled_from([1, 2, -0.5, 0]),
    requires=requires_pairs,
)
def test_add_sub_with_alpha(pair, seed, alpha, requires):
    shape_a, shape_b = pair
    a, b = randn(shape_a, seed), randn(shape_b, seed + 1)
    check_both(lambda x, y: x.add(y, alpha=alpha), a, b, requires=list(requires))
    check_both(lambda x, y: x.sub(y, alpha=alpha), a, b, requires=list(requires))


def test_method_forms_against_torch():
    a, b = randn((2, 3), 0), randn((3,), 1, away_from_zero=0.5)
    m = randn((3, 4), 2)
    check_both(lambda x, y: x.mul(y), a, b)
    check_both(lambda x, y: x.div(y), a, b)
    check_both(lambda x: x.neg(), a)
    check_both(lambda x: x.add(2.5, alpha=2), a)
    check_both(lambda x: x.sub(2.5, alpha=-1), a)
    check_both(lambda x: x.mul(3).div(2), a)
    check_both(lambda x: x.pow(3), a)
    check_both(lambda x, y: x.pow(y), positive((2, 3), 3), b)
    check_both(lambda x, y: x.matmul(y), a, m)
    check_both(lambda x, y: x.mm(y), a, m)


def test_arithmetic_function_forms():
    a, b = randn((2, 3), 0), randn((3,), 1, away_from_zero=0.5)
    m = randn((3, 4), 2)
    for name in ["add", "sub", "mul", "div"]:
        check_both(lambda x, y: getattr(lib(x), name)(x, y), a, b)
    check_both(lambda x, y: lib(x).add(x, y, alpha=3), a, b)
    check_both(lambda x: lib(x).neg(x), a)
    for name in ["matmul", "mm"]:
        check_both(lambda x, y: getattr(lib(x), name)(x, y), a, m)


def test_mm_refuses_what_is_not_a_matrix():
    with pytest.raises(RuntimeError, match="mm takes two 2-D tensors"):  # torch: RuntimeError
        tg.tensor(torch.zeros(2, 3)).mm(tg.tensor(torch.zeros(3)))


# --- comparisons: untracked bool tensors ----------------------------------------------------------

COMPARE = ["lt", "le", "gt", "ge", "eq", "ne"]
OPERATOR = {
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
}


@pytest.mark.parametrize("name", COMPARE)
@EXAMPLES
@given(pair=broadcast_shapes(), seed=seeds, other=st.sampled_from(["tapegrad", "torch", "number"]))
def test_comparisons_are_plain_bool_tensors(name, pair, seed, other):
    shape_a, shape_b = pair
    a = torch.round(randn(shape_a, seed))  # rounded: equal elements happen
    b = torch.round(randn(shape_b, seed + 1)) if other != "number" else 0.0
    x = leaf(a)
    y = leaf(b) if other == "tapegrad" else b
    expected = OPERATOR[name](a, b)
    for result in (OPERATOR[name](x, y), getattr(x, name)(y), getattr(tg, name)(x, y)):
        assert isinstance(result, tg.Tensor)
        assert result.dtype == torch.bool and not result.requires_grad and result.node is None
        assert torch.equal(result.data, expected)


def test_a_comparison_records_nothing():
    x = leaf(randn((3,), 0))
    with tg.Tape() as tape:
        mask = x > 0
        mask = mask & (x.le(1.0))
    assert len(tape) == 0 and mask.tape is None


# --- the teaching tools: every op of this surface on one tape -------------------------------------


def every_surface_op_tape():
    """One tape recording every op of the torch surface added here and in test_ops_reduction.py."""
    g = torch.Generator().manual_seed(0)
    a = tg.Tensor(torch.randn(3, 4, generator=g, dtype=torch.float64), requires_grad=True)
    b = tg.Tensor(torch.randn(4, generator=g, dtype=torch.float64), requires_grad=True)
    pos = tg.Tensor(0.5 + torch.rand(3, 4, generator=g, dtype=torch.float64), requires_grad=True)
    with tg.Tape() as tape:
        s = a.abs().sum() + pos.sqrt().sum() + a.sin().sum() + a.cos().sum()
        s = s + (a.sign() * a).sum() + tg.maximum(a, b).sum() + tg.minimum(b, a).sum()
        s = s + a.max() + a.min() + a.max(1).values.sum() + a.min(dim=-2).values.sum()
        s = s + a.amax((0, 1)) + a.amin(-1).sum() + a.var(1).sum() + a.std(0, correction=0).sum()
        s = (
            s
            + pos.prod(1).sum()
            + tg.ops.TakeAlongDim.apply(a, torch.tensor([[0], [2], [1]]), 1, False).sum()
        )
        (picked,) = tg.grad((a.max(1).values ** 2).sum(), [a], create_graph=True)  # PutAlongDim
        loss = s + (picked * a).sum()
    return tape, loss


SURFACE_OPS = [
    "Abs",
    "Sqrt",
    "Sin",
    "Cos",
    "Sign",
    "Maximum",
    "Minimum",
    "Max",
    "Min",
    "MaxDim",
    "MinDim",
    "Amax",
    "Amin",
    "Var",
    "Std",
    "Prod",
    "TakeAlongDim",
    "PutAlongDim",
]


def test_teaching_tools_show_and_check_every_op():
    tape, loss = every_surface_op_tape()
    report = tg.check_tape(loss)
    assert report, str(report)
    assert set(SURFACE_OPS) <= {row.name for row in report.rows}
    text = format_tape(tape)
    for name in SURFACE_OPS:
        assert f"= {name}(" in text, name
    assert "MaxDim(leaf(3, 4), input(3, 1), dim=1, keepdim=False)" in text  # indices: an input
    assert "shape=(3, 4))" in text  # PutAlongDim's
    steps = list(tg.backward_steps(loss))
    shown = "\n".join(str(step) for step in steps)
    for name in SURFACE_OPS:
        rule = derivative_rule(getattr(tg.ops, name))
        assert rule.startswith("dL/d"), name
        assert rule.splitlines()[0] in shown, name
    source = visualize.to_dot(tape).source
    for name in SURFACE_OPS:
        assert name in source, name
