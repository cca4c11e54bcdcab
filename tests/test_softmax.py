"""softmax, log_softmax and logsumexp: against torch autograd (first and second order) and
finite differences.

Hypothesis draws the shape and the dimension; values come from a seeded
generator. Stability is checked where the naive formulas overflow
(exp(1000)); edge values (-inf, 0-d and empty tensors) against torch.
"""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tapegrad as tg
from tapegrad import ops

from helpers import check_against_torch, check_both, check_second_order, randn, seeds, shapes

EXAMPLES = settings(max_examples=25, deadline=None)

FUNCTIONS = {
    "softmax": lambda x, dim: x.softmax(dim),
    "log_softmax": lambda x, dim: x.log_softmax(dim),
    "logsumexp": lambda x, dim: x.logsumexp(dim),
    "logsumexp keepdim": lambda x, dim: x.logsumexp(dim, keepdim=True),
}


@st.composite
def shape_and_dim(draw):
    shape = draw(shapes(min_dims=0, max_dims=3))
    ndim = max(len(shape), 1)
    return shape, draw(st.integers(-ndim, ndim - 1))


@pytest.mark.parametrize("name", FUNCTIONS)
@EXAMPLES
@given(case=shape_and_dim(), seed=seeds)
def test_against_torch_and_finite_differences(name, case, seed):
    shape, dim = case
    check_both(lambda x: FUNCTIONS[name](x, dim), randn(shape, seed) * 3)


@pytest.mark.parametrize("dims", [(0, 2), (-1, 0), (0, 1, 2), (1,)])
def test_logsumexp_over_several_dimensions(dims):
    x = randn((2, 3, 4), 0)
    check_both(lambda t: t.logsumexp(dims), x)
    check_both(lambda t: t.logsumexp(dims, keepdim=True), x)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_strided_inputs_and_float32(name):
    x = randn((4, 5), 1).t()  # a transposed view
    # (tapegrad.gradcheck takes contiguous inputs: torch's two references here)
    check_against_torch(lambda t: FUNCTIONS[name](t, 1), x)
    check_second_order(lambda t: FUNCTIONS[name](t, 1), x)
    check_against_torch(lambda t: FUNCTIONS[name](t, 0), x.float(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_empty_tensors(name):
    check_against_torch(lambda t: FUNCTIONS[name](t, 1), torch.empty(0, 3, dtype=torch.float64))


def test_large_values_do_not_overflow():
    x = torch.tensor([[1000.0, 1001.0, 999.0], [-1000.0, -1002.0, -1001.0]], dtype=torch.float64)
    for name in FUNCTIONS:
        out = check_against_torch(lambda t: FUNCTIONS[name](t, 1), x)
        assert torch.isfinite(out.data).all(), name
    naive = x.exp() / x.exp().sum(1, keepdim=True)
    assert torch.isnan(naive).any()  # what the stable forms avoid


def test_minus_infinity_follows_torch():
    # a masked-out class (-inf) has probability 0 and gradient 0; an all -inf row is nan, as torch
    x = torch.tensor([[0.5, float("-inf"), 1.0], [-1.0, 2.0, float("-inf")]], dtype=torch.float64)
    for name in FUNCTIONS:
        if name.startswith("log_softmax"):
            continue  # -inf outputs: the random weighting gives inf - inf
        check_against_torch(lambda t: FUNCTIONS[name](t, 1), x)
    row = torch.full((1, 3), float("-inf"), dtype=torch.float64)
    ours = tg.Tensor(row.clone(), requires_grad=True)
    ours.logsumexp(1).sum().backward()
    theirs = row.clone().requires_grad_()
    theirs.logsumexp(1).sum().backward()
    torch.testing.assert_close(ours.grad, theirs.grad, equal_nan=True)


@pytest.mark.parametrize("op", [ops.softmax, ops.log_softmax])
def test_gradgradcheck(op):
    x = tg.Tensor(randn((3, 4), 2), requires_grad=True)
    assert tg.gradgradcheck(lambda t: op(t, 1), x)
    assert tg.gradgradcheck(lambda t: op(t, 0), x)


def test_logsumexp_gradgradcheck():
    x = tg.Tensor(randn((3, 4), 3), requires_grad=True)
    assert tg.gradgradcheck(lambda t: t.logsumexp(1), x)
    assert tg.gradgradcheck(lambda t: t.logsumexp((0, 1), keepdim=True), x)


def test_third_order_through_the_derivative_ops():
    """SoftmaxBackward's and LogSoftmaxBackward's own derivatives, against torch's third
    derivative."""
    for name in ("softmax", "log_softmax"):
        x = randn((2, 3), 4)
        ours = tg.Tensor(x.clone(), requires_grad=True)
        theirs = x.clone().requires_grad_()
        results = []
        for leaf in (ours, theirs):
            grad = tg.grad if isinstance(leaf, tg.Tensor) else torch.autograd.grad
            y = (
                FUNCTIONS[name](leaf, 1) * torch.arange(6.0, dtype=torch.float64).reshape(2, 3)
            ).sum()
            (g1,) = grad(y, [leaf], create_graph=True)
            (g2,) = grad((g1 * g1).sum(), [leaf], create_graph=True)
            (g3,) = grad((g2 * g2 * g1).sum(), [leaf])
            results.append(g3.data if isinstance(g3, tg.Tensor) else g3)
        torch.testing.assert_close(results[0], results[1])


def test_functions_methods_and_dtype():
    x = randn((2, 3), 5)
    t = tg.Tensor(x)
    torch.testing.assert_close(tg.softmax(t, 1).data, torch.softmax(x, 1))
    torch.testing.assert_close(tg.log_softmax(t, -1).data, torch.log_softmax(x, -1))
    torch.testing.assert_close(tg.logsumexp(t, 0).data, torch.logsumexp(x, 0))
    assert t.softmax(1, dtype=torch.float32).dtype == torch.float32
    assert tg.log_softmax(tg.Tensor(x.float()), 0, dtype=torch.float64).dtype == torch.float64
    # on plain torch tensors too (nothing recorded)
    torch.testing.assert_close(tg.softmax(x, 0).data, torch.softmax(x, 0))


def test_derivative_ops_are_recorded_by_create_graph():
    x = tg.Tensor(randn((2, 3), 6), requires_grad=True)
    y = (x.softmax(1) * x.log_softmax(0)).sum()
    (g,) = tg.grad(y, [x], create_graph=True)
    names = {node.name for node in g.tape.nodes}
    assert {"SoftmaxBackward", "LogSoftmaxBackward"} <= names


def test_one_node_each_on_the_tape():
    x = tg.Tensor(randn((2, 3), 7), requires_grad=True)
    with tg.Tape() as tape:
        x.softmax(1)
        x.log_softmax(1)
        x.logsumexp(1)
    assert [node.op for node in tape.nodes] == [ops.Softmax, ops.LogSoftmax, ops.LogSumExp]


@pytest.mark.parametrize(
    "fn", [lambda t: t.softmax(2), lambda t: t.log_softmax(-3), lambda t: t.logsumexp((0, 5))]
)
def test_a_dimension_out_of_range_is_an_index_error(fn):
    x = tg.Tensor(randn((2, 3), 8), requires_grad=True)
    with pytest.raises(IndexError, match=r"out of range .*shape \(2, 3\).*\[-2, 1\]"):
        fn(x)
    with pytest.raises(IndexError):
        fn(torch.zeros(2, 3))  # torch raises IndexError too


def test_a_bad_dim_type_is_a_type_error():
    with pytest.raises(TypeError, match="dim must be an int"):
        tg.Tensor(randn((2, 3), 9)).softmax(1.5)


@pytest.mark.parametrize(
    "op", [ops.Softmax, ops.SoftmaxBackward, ops.LogSoftmax, ops.LogSoftmaxBackward, ops.LogSumExp]
)
def test_fresh_grads_are_really_fresh(op):
    x = tg.Tensor(randn((3, 4), 10), requires_grad=True)
    g = tg.Tensor(randn((3, 4), 11), requires_grad=True)
    if op is ops.SoftmaxBackward:
        out = op.apply(g, x.softmax(1), 1)
    elif op is ops.LogSoftmaxBackward:
        out = op.apply(g, x.log_softmax(1), 1)
    elif op is ops.LogSumExp:
        out = op.apply(x, 1, False)
    else:
        out = op.apply(x, 1)
    node = out.node
    assert op.fresh_grads
    grad_output = torch.rand(out.shape, dtype=out.dtype)
    saved = [t for t in node.saved_tensors if isinstance(t, torch.Tensor)]
    grads = [t for t in op.backward(node, grad_output) if t is not None]
    taken = {t.untyped_storage().data_ptr() for t in saved + [grad_output]}
    for t in grads:
        assert t.untyped_storage().data_ptr() not in taken
        taken.add(t.untyped_storage().data_ptr())


def softmax_tape():
    """Every op of ops/softmax.py on one tape, the derivative ops recorded by a create_graph
    sweep."""
    x = tg.Tensor(randn((3, 4), 12), requires_grad=True)
    with tg.Tape() as tape:
        h = x.softmax(1) * 2 + x.log_softmax(0) + x.logsumexp(1, keepdim=True)
        (g,) = tg.grad((h * h).sum(), [x], create_graph=True)
        loss = (g * g).sum() + h.sum()
    return tape, loss


def test_teaching_tools_show_and_check_every_softmax_op():
    tape, loss = softmax_tape()
    report = tg.check_tape(loss)
    assert report, str(report)
    names = {row.name for row in report.rows}
    assert {"Softmax", "SoftmaxBackward", "LogSoftmax", "LogSoftmaxBackward", "LogSumExp"} <= names
    text = str(tape)
    for name in names:
        assert name in text
    steps = tg.backward_steps(loss)
    rules = {step.node.name: step.rule for step in steps}
    assert rules["Softmax"].startswith("dL/dx = y * (dL/dy")
    assert rules["LogSumExp"].startswith("dL/dx = dL/dy * exp(x - y)")
