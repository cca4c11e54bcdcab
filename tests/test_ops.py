"""Every built-in op against torch autograd and against central differences in float64.

Hypothesis draws the shapes (broadcast pairs included) and a seed for the
values; `helpers.check_both` runs the two references on each example.
"""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tapegrad as tg

from helpers import (
    broadcast_shapes,
    check_against_torch,
    check_both,
    positive,
    randn,
    seeds,
    shapes,
)

EXAMPLES = settings(max_examples=30, deadline=None)

# which operands need a gradient: both, or just one (the other's derivative is skipped)
requires_pairs = st.sampled_from([(True, True), (True, False), (False, True)])


# --- + - * / between tensors, with broadcasting ---------------------------------

BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
}


@pytest.mark.parametrize("op", BINARY)
@EXAMPLES
@given(pair=broadcast_shapes(), seed=seeds, requires=requires_pairs)
def test_binary_tensor_tensor_broadcast(op, pair, seed, requires):
    shape_a, shape_b = pair
    a = randn(shape_a, seed)
    b = randn(shape_b, seed + 1, away_from_zero=0.5)  # a divisor away from 0
    check_both(BINARY[op], a, b, requires=list(requires))


@pytest.mark.parametrize("op", BINARY)
@pytest.mark.parametrize(
    "shape_a, shape_b",
    [((3, 1), (2, 1, 4)), ((), (2, 3)), ((1,), (3,)), ((2, 1, 1), (1, 3, 1)), ((4,), (2, 3, 1))],
)
def test_binary_named_broadcast_cases(op, shape_a, shape_b):
    # the pairs hypothesis should find, pinned: leading dims added, 1s stretched, 0-d operands
    check_both(BINARY[op], randn(shape_a, 0), randn(shape_b, 1, away_from_zero=0.5))
    check_both(BINARY[op], randn(shape_b, 2), randn(shape_a, 3, away_from_zero=0.5))


@pytest.mark.parametrize("op", BINARY)
@EXAMPLES
@given(
    shape=shapes(),
    seed=seeds,
    number=st.floats(0.5, 3.0) | st.floats(-3.0, -0.5) | st.integers(1, 3),
    number_on_left=st.booleans(),
)
def test_binary_tensor_number(op, shape, seed, number, number_on_left):
    x = randn(shape, seed, away_from_zero=0.5)
    if number_on_left:
        fn = lambda t: BINARY[op](number, t)  # noqa: E731  (radd, rsub, rmul, rtruediv)
    else:
        fn = lambda t: BINARY[op](t, number)  # noqa: E731
    check_both(fn, x)


def test_binary_with_a_plain_torch_tensor_constant():
    x = randn((3, 1), 0)
    c = randn((2, 1, 4), 1, away_from_zero=0.5)
    for fn in BINARY.values():
        check_both(lambda t: fn(t, c), x)
        check_both(lambda t: fn(c, t), x)


# --- unary minus, ** ----------------------------------------------------------------


@EXAMPLES
@given(shape=shapes(), seed=seeds)
def test_neg(shape, seed):
    check_both(lambda t: -t, randn(shape, seed))


@EXAMPLES
@given(shape=shapes(), seed=seeds, p=st.sampled_from([0, 1, 2, 3, -1, -2]))
def test_pow_integer_exponent(shape, seed, p):
    # negative bases are fine for integer exponents; negative exponents need x away from 0
    check_both(lambda t: t**p, randn(shape, seed, away_from_zero=0.5))


@EXAMPLES
@given(
    shape=shapes(),
    seed=seeds,
    p=st.sampled_from([0.5, 1.5, -0.5, -1.5, 2.5, 1 / 3]) | st.floats(-3.0, 3.0),
)
def test_pow_fractional_exponent(shape, seed, p):
    check_both(lambda t: t**p, positive(shape, seed))


def test_pow_zero_exponent_at_zero_has_zero_gradient():
    # y = x^0 = 1 is constant: its derivative is 0 everywhere, including x = 0 (torch agrees)
    check_against_torch(lambda t: t**0, torch.tensor([0.0, 1.0, -2.0], dtype=torch.float64))


# --- matrix product -----------------------------------------------------------------


@EXAMPLES
@given(
    n=st.integers(1, 4),
    k=st.integers(1, 4),
    m=st.integers(1, 4),
    seed=seeds,
    requires=requires_pairs,
)
def test_matmul_2d(n, k, m, seed, requires):
    check_both(
        lambda a, b: a @ b, randn((n, k), seed), randn((k, m), seed + 1), requires=list(requires)
    )


@EXAMPLES
@given(
    batch=broadcast_shapes(min_dims=1, max_dims=2),
    n=st.integers(1, 3),
    k=st.integers(1, 3),
    m=st.integers(1, 3),
    seed=seeds,
    requires=requires_pairs,
)
def test_matmul_batched_with_broadcast_batch_dims(batch, n, k, m, seed, requires):
    batch_a, batch_b = batch
    a = randn(batch_a + (n, k), seed)
    b = randn(batch_b + (k, m), seed + 1)
    check_both(lambda x, y: x @ y, a, b, requires=list(requires))


@EXAMPLES
@given(
    batch=shapes(0, 2, max_side=3),
    n=st.integers(1, 3),
    k=st.integers(1, 4),
    seed=seeds,
    side=st.sampled_from(["left", "right", "both"]),
    requires=requires_pairs,
)
def test_matmul_1d_operands(batch, n, k, seed, side, requires):
    if side == "left":  # (k,) @ (..., k, n)
        a, b = randn((k,), seed), randn(batch + (k, n), seed + 1)
    elif side == "right":  # (..., n, k) @ (k,)
        a, b = randn(batch + (n, k), seed), randn((k,), seed + 1)
    else:  # (k,) @ (k,): a 0-d result
        a, b = randn((k,), seed), randn((k,), seed + 1)
    check_both(lambda x, y: x @ y, a, b, requires=list(requires))


def test_matmul_methods_and_reflected():
    a, b = randn((2, 3), 0), randn((3, 4), 1)
    check_both(lambda x, y: x.matmul(y), a, b)
    check_both(lambda x: x @ b, a)  # tapegrad @ torch constant
    check_both(lambda y: a @ y, b)  # torch constant @ tapegrad (__rmatmul__)


# --- reductions -------------------------------------------------------------------------


@st.composite
def reduction_cases(draw):
    """A shape, and a `dim` for it: None, an int or a tuple of distinct dims, either sign."""
    shape = draw(shapes(0, 4))
    ndim = max(len(shape), 1)  # torch lets a 0-d tensor reduce over dim 0 / -1
    kind = draw(st.sampled_from(["all", "int", "tuple"]))
    if kind == "all":
        return shape, None
    if kind == "int":
        return shape, draw(st.integers(-ndim, ndim - 1))
    dims = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    negate = draw(st.lists(st.booleans(), min_size=len(dims), max_size=len(dims)))
    return shape, tuple(d - ndim if neg else d for d, neg in zip(dims, negate))


@pytest.mark.parametrize("name", ["sum", "mean"])
@EXAMPLES
@given(case=reduction_cases(), keepdim=st.booleans(), seed=seeds)
def test_reductions(name, case, keepdim, seed):
    shape, dim = case
    x = randn(shape, seed)
    if dim is None:
        # torch's sum()/mean() take no keepdim without a dim
        fn = lambda t: getattr(t, name)()  # noqa: E731
    else:
        fn = lambda t: getattr(t, name)(dim, keepdim=keepdim)  # noqa: E731
    check_both(fn, x)


@pytest.mark.parametrize("name", ["sum", "mean"])
@pytest.mark.parametrize("keepdim", [False, True])
def test_reductions_over_empty_dims_mean_every_dim(name, keepdim):
    # torch reads dim=() (and dim=[]) as "every dimension"; mean must divide by all of them
    x = randn((3, 4), 0)
    check_both(lambda t: getattr(t, name)((), keepdim=keepdim), x)
    check_both(lambda t: getattr(t, name)([], keepdim=keepdim), x)


# --- elementwise functions --------------------------------------------------------------

UNARY = {
    "exp": (lambda t: t.exp(), randn),
    "log": (lambda t: t.log(), positive),
    "relu": (lambda t: t.relu(), lambda s, seed: randn(s, seed, away_from_zero=0.1)),
    "tanh": (lambda t: t.tanh(), randn),
    "sigmoid": (lambda t: t.sigmoid(), randn),
}


@pytest.mark.parametrize("name", UNARY)
@EXAMPLES
@given(shape=shapes(0, 4), seed=seeds)
def test_unary(name, shape, seed):
    fn, values = UNARY[name]
    check_both(fn, values(shape, seed))


@pytest.mark.parametrize("name", UNARY)
def test_unary_in_float32_matches_torch(name):
    fn, values = UNARY[name]
    check_against_torch(fn, values((5, 3), 0).float(), rtol=1e-6, atol=1e-6)


# --- shape ops ------------------------------------------------------------------------------


@st.composite
def reshape_cases(draw):
    shape = draw(shapes(0, 4))
    numel = 1
    for size in shape:
        numel *= size
    target = draw(
        st.sampled_from(
            [(-1,), (numel,), (1, numel), (numel, 1), tuple(reversed(shape)), (-1, 1), ()]
            if numel == 1
            else [(-1,), (numel,), (1, numel), (numel, 1, -1), tuple(reversed(shape))]
        )
    )
    return shape, target


@EXAMPLES
@given(case=reshape_cases(), seed=seeds, as_varargs=st.booleans())
def test_reshape(case, seed, as_varargs):
    shape, target = case
    if as_varargs and target:
        check_both(lambda t: t.reshape(*target), randn(shape, seed))
    else:
        check_both(lambda t: t.reshape(target), randn(shape, seed))


@st.composite
def transpose_cases(draw):
    shape = draw(shapes(2, 4))
    n = len(shape)
    return shape, draw(st.integers(-n, n - 1)), draw(st.integers(-n, n - 1))


@EXAMPLES
@given(case=transpose_cases(), seed=seeds)
def test_transpose(case, seed):
    shape, d0, d1 = case
    check_both(lambda t: t.transpose(d0, d1), randn(shape, seed))


@EXAMPLES
@given(shape=shapes(2, 2), seed=seeds)
def test_T(shape, seed):
    check_both(lambda t: t.T, randn(shape, seed))


def test_T_of_0d_and_1d_is_the_tensor_itself():
    # torch's .T is the identity there too (and deprecated); nothing is recorded
    for shape in [(), (3,)]:
        x = tg.tensor(torch.ones(shape), requires_grad=True)
        assert x.T is x


def test_T_refuses_more_than_two_dims():
    with pytest.raises(ValueError, match=r"transpose\(dim0, dim1\)"):
        _ = tg.tensor(torch.zeros(2, 3, 4), requires_grad=True).T


# --- indexing ---------------------------------------------------------------------------------


@st.composite
def basic_indices(draw):
    """A shape and a basic index for it: ints, slices with steps, None and Ellipsis."""
    shape = draw(shapes(1, 4))
    items = []
    for size in shape:
        kind = draw(st.sampled_from(["int", "slice", "all"]))
        if kind == "int":
            items.append(draw(st.integers(-size, size - 1)))
        elif kind == "slice":
            start = draw(st.none() | st.integers(-size, size))
            stop = draw(st.none() | st.integers(-size, size))
            step = draw(st.none() | st.integers(1, 3))  # torch has no negative steps
            items.append(slice(start, stop, step))
        else:
            items.append(slice(None))
    if draw(st.booleans()):  # an Ellipsis standing for a run of trailing ':'
        cut = draw(st.integers(0, len(items)))
        items = items[:cut] + [Ellipsis]
    if draw(st.booleans()):  # None inserts a dimension of size 1
        items.insert(draw(st.integers(0, len(items))), None)
    index = tuple(items) if len(items) != 1 or draw(st.booleans()) else items[0]
    return shape, index


@EXAMPLES
@given(case=basic_indices(), seed=seeds)
def test_basic_indexing(case, seed):
    shape, index = case
    check_both(lambda t: t[index], randn(shape, seed))


@st.composite
def integer_indices(draw):
    """A shape and an integer index tensor for its first dimension (repeats likely)."""
    shape = draw(shapes(1, 3))
    n = draw(st.integers(1, 6))
    picked = draw(st.lists(st.integers(-shape[0], shape[0] - 1), min_size=n, max_size=n))
    return shape, torch.tensor(picked)


@EXAMPLES
@given(case=integer_indices(), seed=seeds, wrap=st.sampled_from(["torch", "tapegrad", "list"]))
def test_integer_index_tensor_with_repeats(case, seed, wrap):
    shape, index = case
    check_against_torch(lambda t: t[index], randn(shape, seed))  # torch's own index
    if wrap == "tapegrad":
        index = tg.tensor(index)
    elif wrap == "list":
        index = index.tolist()
    assert tg.gradcheck(lambda t: t[index], tg.Tensor(randn(shape, seed), requires_grad=True))


def test_integer_index_repeats_accumulate():
    # x[[0, 0, 0]].sum(): element 0 was picked three times, so its gradient is 3
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[torch.tensor([0, 0, 0, 2])].sum().backward()
    assert x.grad.tolist() == [3.0, 0.0, 1.0]


def test_several_index_tensors_and_mixed_with_slices():
    x = randn((3, 4, 2), 0)
    rows, cols = torch.tensor([0, 0, 2, 1]), torch.tensor([1, 1, 3, -1])
    check_both(lambda t: t[rows, cols], x)
    check_both(lambda t: t[1:, cols], x)
    check_both(lambda t: t[..., torch.tensor([1, 1])], x)


@EXAMPLES
@given(shape=shapes(1, 3), seed=seeds, whole=st.booleans())
def test_boolean_mask(shape, seed, whole):
    x = randn(shape, seed)
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(shape if whole else shape[:1], generator=g) > 0.5
    check_both(lambda t: t[mask], x)


def test_boolean_mask_from_a_comparison():
    x = tg.tensor(randn((4, 3), 0), requires_grad=True)
    y = x[x > 0]
    y.sum().backward()
    assert torch.equal(x.grad, (x.data > 0).to(x.dtype))


def test_taking_a_batch():
    # the use the issue names: a minibatch of rows picked by a permutation
    x = randn((10, 3), 0)
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(0))
    for start in range(0, 10, 4):
        check_both(lambda t: t[perm[start : start + 4]], x)


# --- to(dtype) -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source, target",
    [
        (torch.float64, torch.float32),
        (torch.float32, torch.float64),
        (torch.float64, torch.float64),
    ],
)
def test_to_dtype(source, target):
    x = randn((3, 4), 0, dtype=source)
    w = randn((3, 4), 1, dtype=target)
    # the gradient comes back in the leaf's own dtype (checked inside)
    check_against_torch(lambda t: t.to(target) * w, x, rtol=1e-6, atol=1e-6)
    check_against_torch(lambda t: t.to(dtype=target).exp(), x, rtol=1e-6, atol=1e-6)


def test_float_and_double():
    check_against_torch(lambda t: t.float() * 2, randn((3,), 0), rtol=1e-6, atol=1e-6)
    assert tg.gradcheck(
        lambda t: t.to(torch.float64) * 3, tg.Tensor(randn((2, 2), 0), requires_grad=True)
    )


# --- several ops at once ------------------------------------------------------------------------


@EXAMPLES
@given(pair=broadcast_shapes(min_dims=1), seed=seeds)
def test_expression_mixing_ops(pair, seed):
    shape_a, shape_b = pair
    a, b = randn(shape_a, seed), positive(shape_b, seed + 1)

    def fn(x, y):
        z = (x * y - x / y).tanh() + (y.log() * 2) ** 2
        return (z.sigmoid() * x.exp()).relu().mean() - (-z).sum() / 3

    check_both(fn, a, b)


# --- other dtypes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dtype, tol", [(torch.float32, 1e-5), (torch.float16, 2e-3), (torch.bfloat16, 2e-2)]
)
def test_gradients_keep_the_dtype_and_match_torch_in_it(dtype, tol):
    # torch autograd in the same dtype is the reference: same kernels, same rounding, up to tol
    def fn(x, w):
        h = (x @ w).tanh().sigmoid().relu() * 2
        return (h - x.exp().log().mean(0, keepdim=True).T ** 2).sum() / 3 + x[
            torch.tensor([0, 0])
        ].sum()

    x = randn((2, 2), 0, dtype=dtype)
    w = randn((2, 1), 1, dtype=dtype)
    check_against_torch(fn, x, w, rtol=tol, atol=tol)
