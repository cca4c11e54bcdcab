"""Higher-order derivatives: grad(), backward(create_graph=True), gradgradcheck,
once_differentiable.

torch autograd (used here in the tests only) is the reference for every value.
"""

import pytest
import torch
from hypothesis import given, settings

import tapegrad as tg
from tapegrad import nn

from helpers import check_second_order, positive, randn, seeds, shapes


def leaf(values, dtype=torch.float64):
    return tg.tensor(values, dtype=dtype, requires_grad=True)


# --- grad(): torch.autograd.grad's meaning --------------------------------------------


def test_grad_returns_gradients_and_leaves_dot_grad_alone():
    x, w = leaf([1.0, 2.0]), leaf([0.5, -1.0])
    x.grad = torch.tensor([7.0, 7.0], dtype=torch.float64)
    gx, gw = tg.grad((x * w).sum(), [x, w])
    assert isinstance(gx, tg.Tensor) and not gx.requires_grad
    assert gx.tolist() == [0.5, -1.0] and gw.tolist() == [1.0, 2.0]
    assert x.grad.tolist() == [7.0, 7.0] and w.grad is None


def test_grad_takes_single_tensors_or_sequences_and_grad_outputs():
    x = leaf([1.0, 2.0, 3.0])
    y = x * x
    (g,) = tg.grad(y, x, torch.tensor([1.0, 0.0, 2.0], dtype=torch.float64))
    assert g.tolist() == [2.0, 0.0, 12.0]
    a, b = tg.grad([x.sum(), (x * 2).sum()], (x,))[0], None
    assert a.tolist() == [3.0, 3.0, 3.0] and b is None


def test_grad_with_respect_to_an_intermediate():
    x = leaf([1.0, 2.0])
    h = x.exp()
    y = (h * h).sum()
    gh, gx = tg.grad(y, [h, x])
    r = x.data.clone().requires_grad_()
    rh = r.exp()
    rgh, rgx = torch.autograd.grad((rh * rh).sum(), [rh, r])
    torch.testing.assert_close(gh.data, rgh)
    torch.testing.assert_close(gx.data, rgx)
    assert h.grad is None


def test_unused_inputs_are_an_error_unless_allow_unused():
    x, z = leaf([1.0]), leaf([2.0])
    y = (x * 3).sum()
    with pytest.raises(RuntimeError, match="input 1 .* was not used .* allow_unused=True"):
        tg.grad(y, [x, z], retain_graph=True)
    gx, gz = tg.grad(y, [x, z], allow_unused=True)
    assert gx.tolist() == [3.0] and gz is None


def test_inputs_that_do_not_require_grad_are_refused():
    x = leaf([1.0])
    c = tg.tensor([2.0], dtype=torch.float64)
    with pytest.raises(RuntimeError, match="does not require grad"):
        tg.grad((x * c).sum(), [c])


def test_grad_frees_saved_tensors_unless_retained_or_create_graph():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    tg.grad(y, x)
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        tg.grad(y, x)
    y = (x.exp() * x).sum()
    tg.grad(y, x, create_graph=True)  # retain_graph defaults to create_graph
    assert tg.grad(y, x)[0] is not None


# --- backward(create_graph=True) -------------------------------------------------------


def test_create_graph_gives_leaves_a_grad_on_a_tape():
    x = leaf([0.5, -1.5])
    (x.tanh() ** 3).sum().backward(create_graph=True)
    assert isinstance(x.grad, tg.Tensor) and x.grad.requires_grad
    first = x.grad
    (second,) = tg.grad(first.sum(), x)
    r = x.data.clone().requires_grad_()
    (r.tanh() ** 3).sum().backward(create_graph=True)
    (rsecond,) = torch.autograd.grad(r.grad.sum(), r)
    torch.testing.assert_close(first.data, r.grad.detach())
    torch.testing.assert_close(second.data, rsecond)


def test_create_graph_accumulates_like_torch():
    x = leaf([0.5, 2.0])
    (x * x).sum().backward()
    (x**3).sum().backward(create_graph=True)  # .grad = old + new, recorded
    r = x.data.clone().requires_grad_()
    (r * r).sum().backward()
    (r**3).sum().backward(create_graph=True)
    torch.testing.assert_close(x.grad.data, r.grad.detach())
    (g,) = tg.grad(x.grad.sum(), x)
    (rg,) = torch.autograd.grad(r.grad.sum(), r)
    torch.testing.assert_close(g.data, rg)


def test_the_derivative_has_a_tape_of_its_own_that_prints_and_marks_derivative_nodes():
    x = leaf([0.5, -1.5])
    with tg.Tape() as forward:
        y = (x.sin() if hasattr(x, "sin") else x.tanh()).sum()
    (g,) = tg.grad(y, x, create_graph=True)
    tape = g.tape
    assert tape is not None and g.node in list(tape)
    derivative = [node for node in tape if node.derivative_of is not None]
    assert derivative and all(node.derivative_of in list(forward) for node in derivative)
    text = str(tape)
    assert "TanhBackward" in text or "Cos" in text


def test_third_derivatives_of_elementwise_ops_equal_torch():
    for fn, values in [
        (lambda t: t.tanh(), randn((4,), 0)),
        (lambda t: t.sigmoid(), randn((4,), 1)),
        (lambda t: t.exp(), randn((4,), 2)),
        (lambda t: t.log(), positive((4,), 3)),
        (lambda t: t**3, randn((4,), 4)),
        (lambda t: t.log1p(), positive((4,), 5)),
        (lambda t: 1 / t, positive((4,), 6)),
        (lambda t: t * t * t, randn((4,), 7)),
    ]:
        x = tg.Tensor(values.clone(), requires_grad=True)
        r = values.clone().requires_grad_()
        (g1,) = tg.grad(fn(x).sum(), x, create_graph=True)
        (g2,) = tg.grad(g1.sum(), x, create_graph=True)
        (g3,) = tg.grad(g2.sum(), x)
        (r1,) = torch.autograd.grad(fn(r).sum(), r, create_graph=True)
        (r2,) = torch.autograd.grad(r1.sum(), r, create_graph=True)
        (r3,) = torch.autograd.grad(r2.sum(), r)
        for ours, theirs in ((g1, r1), (g2, r2), (g3, r3)):
            torch.testing.assert_close(ours.data, theirs.detach(), rtol=1e-10, atol=1e-10)


def test_ordinary_backward_records_nothing():
    x = leaf([0.5, -1.5])
    y = (x.tanh() * x).sum()
    before = len(y.tape)
    y.backward()
    assert len(y.tape) == before
    assert isinstance(x.grad, torch.Tensor)


@settings(max_examples=20, deadline=None)
@given(shape=shapes(1, 3), seed=seeds)
def test_second_derivative_of_a_small_network_equals_torch(shape, seed):
    w = randn((shape[-1], 3), seed)
    x = randn(shape, seed + 1)

    def fn(x, w):
        h = (x @ w).tanh()
        return (h * h).sum(-1).sigmoid().mean() if len(shape) > 1 else (h * h).sum().sigmoid()

    check_second_order(fn, x, w)


# --- the disk network's Hessian-vector product -------------------------------------------


def _disk_network():
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(
        nn.Linear(2, 25, generator=g, dtype=torch.float64),
        nn.ReLU(),
        nn.Linear(25, 25, generator=g, dtype=torch.float64),
        nn.ReLU(),
        nn.Linear(25, 25, generator=g, dtype=torch.float64),
        nn.Tanh(),
        nn.Linear(25, 1, generator=g, dtype=torch.float64),
        nn.Tanh(),
    )
    for m in model:  # non-zero biases, so that every term of the Hessian is exercised
        if isinstance(m, nn.Linear):
            m.bias.data.uniform_(-0.5, 0.5, generator=g)
    x, t = tg.data.generate_disc_set(50, g, dtype=torch.float64)
    return model, x, t


def test_hessian_vector_product_of_the_disk_loss_equals_torch_functional_hvp():
    model, x, t = _disk_network()
    params = list(model.parameters())
    g = torch.Generator().manual_seed(1)
    v = [torch.randn(p.shape, generator=g, dtype=torch.float64) for p in params]
    loss = nn.MSELoss()(model(x), t)
    grads = tg.grad(loss, params, create_graph=True)
    dot = sum((gp * vp).sum() for gp, vp in zip(grads, v))
    hvp = tg.grad(dot, params)

    layers = [m for m in model if isinstance(m, nn.Linear)]
    acts = [type(m).__name__ for m in model if not isinstance(m, nn.Linear)]

    def torch_loss(*flat):
        h = x.data
        for i, act in enumerate(acts):
            h = torch.nn.functional.linear(h, flat[2 * i], flat[2 * i + 1])
            h = torch.relu(h) if act == "ReLU" else torch.tanh(h)
        return torch.nn.functional.mse_loss(h, t.data)

    flat = tuple(p.data.clone() for p in params)
    _, want = torch.autograd.functional.hvp(torch_loss, flat, tuple(v))
    assert len(layers) == 4
    for ours, theirs in zip(hvp, want):
        torch.testing.assert_close(ours.data, theirs, rtol=1e-9, atol=1e-9)


# --- user ops: higher orders for free, or a clear refusal ---------------------------------


class Cube(tg.Function):
    """y = x^3

    dL/dx = dL/dy * 3 x^2
    """

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x * x


class OpaqueCube(tg.Function):
    """y = x^3, its derivative computed with a torch function"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * torch.square(x)


class MarkedCube(tg.Function):
    """y = x^3, marked once-differentiable"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    @tg.once_differentiable
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x * x


def test_a_user_op_with_a_traceable_backward_gets_higher_orders_for_free():
    x = leaf([0.5, -2.0])
    (g,) = tg.grad(Cube.apply(x).sum(), x, create_graph=True)
    (h,) = tg.grad(g.sum(), x)
    assert h.tolist() == [3.0, -12.0]  # 6x
    assert tg.gradgradcheck(Cube.apply, x)


@pytest.mark.parametrize("op", [OpaqueCube, MarkedCube])
def test_an_op_that_cannot_be_differentiated_again_refuses_at_second_order(op):
    x = leaf([0.5, -2.0])
    (g,) = tg.grad(op.apply(x).sum(), x, create_graph=True)  # first order: fine
    assert g.tolist() == [0.75, 12.0] and g.requires_grad
    with pytest.raises(
        RuntimeError, match=rf"{op.__name__} \(tape index 0\).*can't be differentiated again"
    ):
        tg.grad(g.sum(), x)


def test_an_op_saving_an_intermediate_refuses_at_second_order():
    class Intermediate(tg.Function):
        @staticmethod
        def forward(ctx, x):
            e = torch.exp(x)
            ctx.save_for_backward(e)
            return e * 2

        @staticmethod
        def backward(ctx, grad):
            (e,) = ctx.saved_tensors
            return grad * e * 2

    x = leaf([0.0, 1.0])
    (g,) = tg.grad(Intermediate.apply(x).sum(), x, create_graph=True)
    torch.testing.assert_close(g.data, 2 * torch.exp(x.data))
    with pytest.raises(RuntimeError, match="neither an input nor the output"):
        tg.grad(g.sum(), x)


# --- gradgradcheck -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn, make",
    [
        (lambda a, b: a * b + a / b, lambda: (randn((3,), 0), positive((3,), 1))),
        (lambda a: a.tanh().sigmoid().exp(), lambda: (randn((2, 3), 2),)),
        (lambda a, b: (a @ b).relu() * (a @ b), lambda: (randn((2, 3), 3), randn((3, 2), 4))),
        (lambda a: (a**2.5).log().mean(0), lambda: (positive((3, 2), 5),)),
        (lambda a: a[[0, 0, 1]].sum(0) * a.sum(), lambda: (randn((2, 3), 6),)),
        (lambda a, b: a.clamp(min=b) * a, lambda: (randn((4,), 7), randn((4,), 8) * 0.1)),
        (lambda a, b: a**b, lambda: (positive((3,), 9), randn((3,), 10))),
        (
            lambda a: nn.MSELoss()(a.sigmoid(), tg.tensor([0.2, 0.7, 0.5], dtype=torch.float64)),
            lambda: (randn((3,), 11),),
        ),
    ],
)
def test_gradgradcheck_passes_builtin_ops(fn, make):
    assert tg.gradgradcheck(fn, *(tg.Tensor(v, requires_grad=True) for v in make()))


def test_gradgradcheck_fails_an_op_whose_second_derivative_is_wrong():
    class SquareBackward(tg.Function):
        """z = 2 x g

        dL/dg = dL/dz * 2x
        dL/dx = dL/dz * 2g
        """

        @staticmethod
        def forward(ctx, g, x):
            ctx.save_for_backward(g, x)
            return 2 * x * g

        @staticmethod
        def backward(ctx, grad):
            g, x = ctx.saved_tensors
            return grad * 2 * x, grad * 3 * g  # wrong: 3 g instead of 2 g

    class Square(tg.Function):
        """y = x^2

        dL/dx = dL/dy * 2x
        """

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return SquareBackward.apply(grad, x)

    x = leaf([0.3, -1.2])
    assert tg.gradcheck(Square.apply, x)  # the first derivative is right
    with pytest.raises(tg.GradcheckError, match=r"(?s)second derivative.*SquareBackward is wrong"):
        tg.gradgradcheck(Square.apply, x)
    assert tg.gradgradcheck(Square.apply, x, raise_exception=False) is False  # torch's keyword
    assert tg.gradcheck(SquareBackward.apply, leaf([1.0, 0.5]), x, raise_exception=False) is False
