"""check_tape: every node's derivative against central differences, naming the wrong one."""

import pytest
import torch
from test_ops_shape import shape_ops_loss

import tapegrad as tg
from tapegrad import nn
from tapegrad.check import TapeCheck


def leaf(shape, seed, low=None, high=None, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    if low is None:
        values = torch.randn(shape, generator=g, dtype=torch.float64)
    else:
        values = low + (high - low) * torch.rand(shape, generator=g, dtype=torch.float64)
    return tg.Tensor(values.to(dtype), requires_grad=True)


def every_builtin_op_tape():
    """One tape using every built-in op, every floating input requiring grad."""
    a, b = leaf((3, 4), 0), leaf((4,), 1)
    pos = leaf((3, 4), 2, 0.5, 2.0)
    w = leaf((4, 2), 3)
    with tg.Tape() as tape:
        h = (a + b) - 0.5 * a  # Add, Sub, Mul (number, broadcast)
        h = h * b / pos + (-a)  # Mul, Div, Neg
        h = h**2 + pos**0.5 + pos.log() + a.exp()  # Pow, Log, Exp
        m = h @ w  # MatMul
        m = m.relu() + m.tanh() + m.sigmoid()  # ReLU, Tanh, Sigmoid
        r = m.reshape(2, 3).transpose(0, 1)  # Reshape, Transpose
        picked = r[1:, :].sum() + r[torch.tensor([0, 2, 2])].mean(0).sum()  # GetItem x2, Sum, Mean
        d = a.to(torch.float32).to(torch.float64).sum(1)  # To (through float32 and back)
        x, weight, bias = leaf((5, 3), 4), leaf((2, 3), 5), leaf((2,), 6)
        y = nn.LinearFunction.apply(x, weight, bias)
        p = y.sigmoid()
        target = leaf((5, 2), 7, 0.1, 0.9)
        mse = nn.MSEFunction.apply(p, target, "mean")  # targets require grad: dL/dt checked too
        bce = nn.BCEFunction.apply(p, target, "sum")
        s = pos.log1p().sum() + a.clamp(-0.5, 0.5).sum() + a.clamp(min=b).sum()  # Log1p, Clamp
        s = (
            s + tg.ops.where(a > 0, a, pos).sum() + (pos**b).sum() + (2**a).sum()
        )  # Where, PowTensor
        s = s + b.unsqueeze(0).expand(3, 4).sum()  # Unsqueeze, Expand
        s = s + shape_ops_loss(a, b)  # View, Squeeze, Permute, Cat, Stack, ...
        e = a * 1.0
        e[0] = b  # SetItem
        f = a * 2.0
        f.fill_(b[0])  # Fill
        c = a * 3.0
        c.copy_(b)  # CopyInto (b broadcast to (3, 4))
        s = s + e.sum() + f.sum() + c.sum()
        # the derivative ops, recorded by a create_graph sweep
        u = (m.relu() + m.tanh() + m.sigmoid()).sum() + (r[torch.tensor([0, 0])] ** 2).sum() + mse
        grads = tg.grad(u, [w, p], create_graph=True)  # ThresholdBackward, TanhBackward, ...
        s = s + sum((g * g).sum() for g in grads)
        # elementwise and reductions (the torch surface)
        s = s + a.abs().sum() + pos.sqrt().sum() + a.sin().sum() + a.cos().sum()  # Abs .. Cos
        s = (
            s + (a.sign() * a).sum() + tg.maximum(a, b).sum() + tg.minimum(b, a).sum()
        )  # Sign, Maximum, Minimum
        s = (
            s + a.max() + a.min() + a.max(1).values.sum() + a.min(-2).values.sum()
        )  # Max, Min, MaxDim, MinDim
        s = (
            s + a.amax((0, 1)) + a.amin(-1).sum() + a.var(1).sum() + a.std(0).sum()
        )  # Amax, Amin, Var, Std
        s = (
            s
            + pos.prod(1).sum()
            + tg.ops.TakeAlongDim.apply(a, torch.tensor([[0], [2], [1]]), 1, False).sum()
        )
        (picked_grad,) = tg.grad(
            (a.max(1).values ** 2).sum(), [a], create_graph=True
        )  # PutAlongDim
        s = s + (picked_grad * a).sum()
        # the softmax family, and its derivative ops
        s = s + (a.softmax(1) * b).sum() + (a.log_softmax(0) * b).sum() + a.logsumexp(1).sum()
        (soft_grad,) = tg.grad(
            (a.softmax(1) ** 2).sum() + (a.log_softmax(1) ** 2).sum(), [a], create_graph=True
        )  # SoftmaxBackward, LogSoftmaxBackward
        s = s + (soft_grad * a).sum()
        loss = picked + d.sum() + mse + bce + s
    return tape, loss


def test_every_builtin_op_passes():
    tape, loss = every_builtin_op_tape()
    report = tg.check_tape(loss)
    assert report, str(report)
    checked = {row.name for row in report.rows}
    builtin = {
        name
        for name in tg.ops.__all__
        if isinstance(getattr(tg.ops, name), type)
        and issubclass(getattr(tg.ops, name), tg.Function)
    }
    builtin |= {"LinearFunction", "MSEFunction", "BCEFunction"}
    assert builtin <= checked, builtin - checked
    assert all(row.checked > 0 for row in report.rows)
    assert all(row.error < 1e-4 for row in report.rows)


def test_disk_network_passes_in_float32_and_without_kept_values():
    g = torch.Generator().manual_seed(0)
    x, t = tg.data.generate_disc_set(8, g)
    model = nn.Sequential(
        nn.Linear(2, 6, generator=g),
        nn.ReLU(),
        nn.Linear(6, 6, generator=g),
        nn.ReLU(),
        nn.Linear(6, 6, generator=g),
        nn.Tanh(),
        nn.Linear(6, 1, generator=g),
        nn.Tanh(),
    )
    loss = nn.MSELoss()(model(x), t)  # an implicit tape: no values kept
    assert not loss.tape.keep_values
    report = tg.check_tape(loss)
    assert report, str(report)
    assert [row.name for row in report.rows] == [
        "LinearFunction",
        "ReLU",
        "LinearFunction",
        "ReLU",
        "LinearFunction",
        "Tanh",
        "LinearFunction",
        "Tanh",
        "MSEFunction",
    ]
    assert str(report).startswith("check_tape: 9 nodes against central differences")
    assert "WRONG" not in str(report)
    loss.backward()  # checking swept nothing and freed nothing
    assert all(p.grad is not None for p in model.parameters())


class BadSquare(tg.Function):
    """y = x^2

    dL/dx = dL/dy * 2x      (but backward below forgets the 2)
    """

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * x


class GoodSquare(tg.Function):
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
        return grad * 2 * x


def test_a_wrong_user_op_is_caught_and_named():
    x = leaf((4, 3), 0)
    w = leaf((3,), 1)
    loss = GoodSquare.apply(BadSquare.apply(x * w).tanh()).sum()
    report = tg.check_tape(loss)
    assert not report
    assert isinstance(report, TapeCheck)
    assert [(r.index, r.name) for r in report.failures] == [(1, "BadSquare")]
    worst = report.worst
    assert worst.name == "BadSquare" and not worst.ok
    # the error is the missing half of 2x: |x v| for some weight v, far above tolerance
    assert worst.error > 1e-2
    assert "input 0 at (" in worst.problem and "backward gives" in worst.problem
    text = str(report)
    assert "1 WRONG" in text
    bad_lines = [line for line in text.splitlines() if "WRONG:" in line]
    assert len(bad_lines) == 1 and bad_lines[0].split()[:2] == ["%1", "BadSquare"]
    # the good user op and the built-ins around it pass
    assert {r.name for r in report.rows if r.ok} == {"Mul", "Tanh", "GoodSquare", "Sum"}


def test_the_largest_error_matches_the_known_mistake():
    # BadSquare's backward is off by exactly dL/dy * x: on a single element with dL/dy = v
    # the largest error is |v x|, up to the finite-difference error
    x = leaf((1,), 3)
    loss = BadSquare.apply(x)
    report = tg.check_tape(loss, seed=5)
    v = torch.randn((1,), generator=torch.Generator().manual_seed(5 + 0), dtype=torch.float64)
    assert report.worst.error == pytest.approx(abs(v.item() * x.data.item()), rel=1e-6)


def test_wrong_shape_and_crashing_derivatives_are_reported_not_raised():
    class WrongShape(tg.Function):
        @staticmethod
        def forward(ctx, x):
            return x.sum()

        @staticmethod
        def backward(ctx, grad):
            return grad.reshape(1)

    class Crashes(tg.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            raise ValueError("oops")

    x = leaf((3,), 0)
    report = tg.check_tape(WrongShape.apply(Crashes.apply(x)))
    assert {r.name for r in report.failures} == {"Crashes", "WrongShape"}
    problems = {r.name: r.problem for r in report.failures}
    assert "ValueError: oops" in problems["Crashes"]
    assert "for an input of shape (3,)" in problems["WrongShape"]


def test_large_inputs_are_sampled_and_checked_along_a_direction():
    class OneWrongElement(tg.Function):
        """y = x;  dL/dx = dL/dy, except that backward gets one element wrong"""

        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, grad):
            grad = grad.clone()
            grad.view(-1)[123] += 1.0
            return grad

    x = leaf((20, 20), 0)
    ok = tg.check_tape((x * 2).sum(), max_elements=10)
    assert ok and ok.rows[0].checked == 10 + 1  # 10 elements and one direction
    report = tg.check_tape(OneWrongElement.apply(x), max_elements=10)
    assert not report and report.failures[0].name == "OneWrongElement"


def test_a_tape_can_be_checked_whole_and_a_leaf_is_refused():
    tape, _ = every_builtin_op_tape()
    assert tg.check_tape(tape)
    with pytest.raises(ValueError, match="not recorded on a tape"):
        tg.check_tape(leaf((2,), 0))


def test_checking_leaves_values_and_gradients_alone():
    x = leaf((3,), 0)
    before = x.data.clone()
    loss = (x * x).sum()
    assert tg.check_tape(loss)
    assert torch.equal(x.data, before) and x.grad is None
    loss.backward()
    assert torch.equal(x.grad, 2 * before)


def test_a_block_record_is_checked_with_the_nodes_it_reads_from_outside_its_block():
    x = leaf((3,), 0)
    outside = x.exp()
    with tg.Tape() as tape:
        (outside * x).tanh().sum()
    assert tape.is_record and [node.name for node in tape] == ["Mul", "Tanh", "Sum"]
    report = tg.check_tape(tape)
    assert report and [row.name for row in report.rows] == ["Exp", "Mul", "Tanh", "Sum"]


def test_a_kink_is_not_a_wrong_derivative():
    # relu at exactly 0 and a tie of max: torch's derivative is one of the one-sided slopes
    x = tg.tensor([0.0, 1.0, -1.0], dtype=torch.float64, requires_grad=True)
    with tg.Tape() as tape:
        (x.relu() + tg.maximum(x, x * 0)).sum()
    assert tg.check_tape(tape)


def test_a_wrong_derivative_at_a_kink_is_still_caught():
    class BadRelu(tg.Function):
        """y = max(x, 0)

        dL/dx = 2 dL/dy where x > 0 (wrong: 2)
        """

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.clamp(min=0)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * (x >= 0) * 2

    x = tg.tensor([0.0, 1.0], dtype=torch.float64, requires_grad=True)
    report = tg.check_tape(BadRelu.apply(x).sum())
    assert not report and report.failures[0].name == "BadRelu"
