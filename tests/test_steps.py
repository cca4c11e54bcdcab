"""The steppable sweep: backward_steps and explain give exactly what loss.backward() gives."""

import io

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tapegrad as tg
from tapegrad import nn
from tapegrad.steps import Step, derivative_rule, forward_rule, rule_text


def disk_network(generator, hidden=25):
    """The course's network: 2 -> 25 -> 25 -> 25 -> 1, ReLU, ReLU, Tanh, Tanh."""
    return nn.Sequential(
        nn.Linear(2, hidden, generator=generator),
        nn.ReLU(),
        nn.Linear(hidden, hidden, generator=generator),
        nn.ReLU(),
        nn.Linear(hidden, hidden, generator=generator),
        nn.Tanh(),
        nn.Linear(hidden, 1, generator=generator),
        nn.Tanh(),
    )


def disk_loss(seed=0, n=100, hidden=25):
    g = torch.Generator().manual_seed(seed)
    x, t = tg.data.generate_disc_set(n, g)
    model = disk_network(g, hidden)
    with tg.Tape() as tape:
        loss = nn.MSELoss()(model(x), t)
    return model, loss, tape, x, t


def grads_of(model):
    return [p.grad for p in model.parameters()]


# --- exactly loss.backward() -----------------------------------------------------------


def test_steps_give_exactly_the_gradients_of_backward_on_the_disk_network():
    model, loss, tape, _, _ = disk_loss()
    steps = list(tg.backward_steps(loss, retain_graph=True))
    stepped = grads_of(model)
    assert all(g is not None for g in stepped)
    model.zero_grad()
    loss.backward()
    for a, b in zip(stepped, grads_of(model)):
        assert torch.equal(a, b)
    assert [s.index for s in steps] == list(range(len(tape) - 1, -1, -1))


def test_steps_on_a_second_recording_match_backward_bit_for_bit():
    # two separate tapes of the same computation: one swept by steps, one by backward
    model_a, loss_a, _, _, _ = disk_loss(seed=3)
    model_b, loss_b, _, _, _ = disk_loss(seed=3)
    for _ in tg.backward_steps(loss_a):
        pass
    loss_b.backward()
    for a, b in zip(grads_of(model_a), grads_of(model_b)):
        assert torch.equal(a, b)


def test_steps_accumulate_into_existing_gradients_like_backward():
    model_a, loss_a, _, _, _ = disk_loss(seed=1, n=20)
    model_b, loss_b, _, _, _ = disk_loss(seed=1, n=20)
    for model in (model_a, model_b):
        for p in model.parameters():
            p.grad = torch.full_like(p.data, 0.25)
    list(tg.backward_steps(loss_a))
    loss_b.backward()
    for a, b in zip(grads_of(model_a), grads_of(model_b)):
        assert torch.equal(a, b)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 12), hidden=st.integers(1, 6))
def test_steps_equal_backward_for_any_small_disk_network(seed, n, hidden):
    model_a, loss_a, _, _, _ = disk_loss(seed, n, hidden)
    model_b, loss_b, _, _, _ = disk_loss(seed, n, hidden)
    list(tg.backward_steps(loss_a))
    loss_b.backward()
    for a, b in zip(grads_of(model_a), grads_of(model_b)):
        assert torch.equal(a, b)


def test_x_times_x_and_fan_out_accumulate_in_steps():
    x = tg.tensor([1.0, -2.0, 3.0], requires_grad=True, dtype=torch.float64)
    y = x * 3
    loss = (x * x).sum() + (y * y).sum()  # x used by two ops, y twice by one
    steps = list(tg.backward_steps(loss))
    assert x.grad.tolist() == [2.0 * 1 + 18.0 * 1, 2.0 * -2 + 18.0 * -2, 2.0 * 3 + 18.0 * 3]
    # the Mul x*x sends two contributions to the same leaf: both are in its record
    square = next(s for s in steps if s.node.name == "Mul" and s.node.inputs[0] is x)
    assert [holder for holder, _ in square.contributions] == [x, x]


# --- what each step records ----------------------------------------------------------


def test_each_step_records_the_gradient_the_sweep_gathered():
    model, loss, tape, _, _ = disk_loss(n=10)
    steps = list(tg.backward_steps(loss, retain_graph=True))
    model.zero_grad()
    loss.backward(keep_grads=True)  # node.grad: every node's dL/dy
    for step in steps:
        assert isinstance(step, Step)
        assert torch.equal(step.grad_output, step.node.grad)
        assert step.rule == derivative_rule(step.node.op)
        assert len(step.grads) == len(step.node.inputs)
    assert steps[0].grad_output.item() == 1.0  # the seed dL/dL


def test_contributions_are_what_the_parents_receive():
    model, loss, tape, _, _ = disk_loss(n=10)
    steps = list(tg.backward_steps(loss))
    by_index = {s.index: s for s in steps}
    for step in steps:
        for holder, grad in step.contributions:
            if isinstance(holder, tg.Node):
                # each node here feeds exactly one later node, so it receives exactly that
                assert torch.equal(by_index[holder.index].grad_output, grad)
            else:
                assert torch.equal(holder.grad, grad)  # each parameter is used once


def test_rules_come_from_the_op_docstrings():
    assert derivative_rule(tg.ops.Tanh) == "dL/dx = dL/dy * (1 - y^2)"
    assert forward_rule(tg.ops.Tanh) == "y = tanh(x)"
    assert derivative_rule(nn.LinearFunction).splitlines() == [
        "dL/dx = dL/dy W",
        "dL/dW = dL/dy^T x       (summed over the batch)",
        "dL/db = sum over the batch of dL/dy",
    ]
    for name in tg.ops.__all__:
        op = getattr(tg.ops, name)
        if isinstance(op, type) and issubclass(op, tg.Function):
            assert derivative_rule(op).startswith("dL/d"), name
    for op in (nn.LinearFunction, nn.MSEFunction, nn.BCEFunction):
        assert derivative_rule(op).startswith("dL/d"), op.__name__


def test_a_user_op_steps_like_a_built_in():
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
            return grad * 3 * x**2

    class Quiet(tg.Function):  # no docstring: no rule to show, and the step says how
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad * 2

    x = tg.tensor([1.0, 2.0], requires_grad=True)
    steps = list(tg.backward_steps(Quiet.apply(Cube.apply(x)).sum()))
    assert [s.node.name for s in steps] == ["Sum", "Quiet", "Cube"]
    assert steps[2].rule == "dL/dx = dL/dy * 3 x^2"
    assert steps[1].rule == "" and "docstring of Quiet" in rule_text(steps[1].node.op)
    assert x.grad.tolist() == [6.0, 24.0]
    assert str(steps[2]).splitlines()[0] == "%0 = Cube(leaf(2,))"


# --- the sweep's semantics --------------------------------------------------------------


def test_saved_tensors_are_released_at_the_end_unless_retain_graph():
    _, loss, tape, _, _ = disk_loss(n=5)
    list(tg.backward_steps(loss, retain_graph=True))
    assert not any(node.released for node in tape)
    list(tg.backward_steps(loss))
    assert all(node.released for node in tape)
    with pytest.raises(RuntimeError, match="a second time"):
        list(tg.backward_steps(loss))


def test_stopping_half_way_changes_nothing():
    model, loss, tape, _, _ = disk_loss(n=5)
    steps = tg.backward_steps(loss)
    next(steps), next(steps), next(steps)
    steps.close()
    assert all(p.grad is None for p in model.parameters())
    assert not any(node.released for node in tape)
    loss.backward()  # the tape is intact
    assert all(p.grad is not None for p in model.parameters())


def test_a_failing_derivative_writes_nothing():
    class Broken(tg.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, grad):
            return grad, grad  # two gradients for one input

    w = tg.tensor([1.0, 2.0], requires_grad=True)
    loss = (Broken.apply(w * 2) + w).sum()
    with pytest.raises(RuntimeError, match="Broken.backward returned 2 gradient"):
        list(tg.backward_steps(loss))
    assert w.grad is None
    with pytest.raises(RuntimeError, match="Broken.backward returned 2 gradient"):
        loss.backward()  # the same error as the sweep's


def test_wrong_gradient_shape_is_refused_like_the_sweep():
    class Flat(tg.Function):
        @staticmethod
        def forward(ctx, x):
            return x.sum()

        @staticmethod
        def backward(ctx, grad):
            return grad.reshape(1)  # should be shaped like x

    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"gradient of shape \(1,\) for input 0"):
        list(tg.backward_steps(Flat.apply(x)))


def test_errors_are_raised_when_called_not_at_the_first_step():
    x = tg.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        tg.backward_steps(x.sum())
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="single-element"):
        tg.backward_steps(w * 2)
    with pytest.raises(RuntimeError, match="grad has shape"):
        tg.backward_steps(w * 2, grad=torch.ones(3))


def test_non_scalar_root_with_grad_matches_backward():
    w1 = tg.tensor([1.0, 2.0], requires_grad=True)
    w2 = tg.tensor([1.0, 2.0], requires_grad=True)
    seed = torch.tensor([0.5, -1.0])
    list(tg.backward_steps((w1 * w1).exp(), grad=seed))
    (w2 * w2).exp().backward(seed)
    assert torch.equal(w1.grad, w2.grad)


def test_retain_grad_outputs_get_their_gradient_at_the_end():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    h.retain_grad()
    steps = tg.backward_steps((h * h).sum())
    next(steps)
    assert h.grad is None  # written only when the sweep is done
    list(steps)
    assert h.grad.tolist() == [6.0, 12.0]


def test_accumulate_false_only_looks():
    model, loss, tape, _, _ = disk_loss(n=5)
    steps = list(tg.backward_steps(loss, accumulate=False))
    assert len(steps) == len(tape)
    assert all(p.grad is None for p in model.parameters())
    assert not any(node.released for node in tape)


def test_a_leaf_root_receives_the_seed():
    w = tg.tensor(3.0, requires_grad=True)
    assert list(tg.backward_steps(w)) == []
    assert w.grad.item() == 1.0


def test_gradients_changed_between_steps_are_not_overwritten():
    model, loss, tape, _, _ = disk_loss(n=5)
    steps = tg.backward_steps(loss, retain_graph=True)
    while not any(isinstance(h, tg.Tensor) for h, _ in next(steps).contributions):
        pass  # until a parameter has received a contribution
    loss.backward(retain_graph=True)  # someone sweeps while we are stepping
    before = [p.grad.clone() for p in model.parameters()]
    with pytest.raises(RuntimeError, match="changed while the sweep was being stepped"):
        list(steps)
    assert all(torch.equal(a, p.grad) for a, p in zip(before, model.parameters()))


def test_steps_refuse_to_start_inside_a_derivative():
    class Nested(tg.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, grad):
            tg.backward_steps(tg.tensor(1.0, requires_grad=True))
            return grad

    x = tg.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="from inside a backward"):
        list(tg.backward_steps(Nested.apply(x).sum()))
    with pytest.raises(RuntimeError, match="from inside a backward"):
        Nested.apply(x).sum().backward()
    # and a sweep may run between two steps (the flag is only up inside a derivative)
    steps = tg.backward_steps((x * 2).sum())
    next(steps)
    y = tg.tensor([1.0], requires_grad=True)
    (y * 3).sum().backward()
    list(steps)
    assert x.grad.tolist() == [2.0] and y.grad.tolist() == [3.0]


def test_tape_backward_steps_delegates():
    _, loss, tape, _, _ = disk_loss(n=5)
    assert [s.index for s in tape.backward_steps(loss, retain_graph=True)] == [
        s.index for s in tg.backward_steps(loss)
    ]


# --- explain ----------------------------------------------------------------------------


def test_explain_prints_every_node_and_accumulates_like_backward():
    model_a, loss_a, tape, x, t = disk_loss(n=10)
    model_b, loss_b, _, _, _ = disk_loss(n=10)
    out = io.StringIO()
    tg.explain(loss_a, model=model_a, names={"x": x, "t": t}, file=out)
    text = out.getvalue()
    loss_b.backward()
    for a, b in zip(grads_of(model_a), grads_of(model_b)):
        assert torch.equal(a, b)
    for node in tape:
        assert f"%{node.index} = {node.name}(" in text
    assert "%0 = LinearFunction(x, 0.weight, 0.bias)" in text
    assert "%8 = MSEFunction(%7, t)" in text
    assert "dL/dx = dL/dy * (1 - y^2)" in text
    assert text.count("-> 0.weight") == 1 and "-> %7" in text
    tail = text.split("Gradients accumulated into the leaves (.grad):")[1]
    assert [line.split()[0] for line in tail.strip().splitlines()] == [
        "6.weight",
        "6.bias",
        "4.weight",
        "4.bias",
        "2.weight",
        "2.bias",
        "0.weight",
        "0.bias",
    ]


def test_leaves_own_their_gradients_as_after_backward():
    # sum's derivative is a broadcast view and + hands it straight through: without a copy,
    # w.grad would be that view, and v.grad the very same tensor
    w1, v1 = (tg.tensor([1.0, 2.0, 3.0], requires_grad=True) for _ in range(2))
    w2, v2 = (tg.tensor([1.0, 2.0, 3.0], requires_grad=True) for _ in range(2))
    list(tg.backward_steps((w1 + v1).sum()))
    (w2 + v2).sum().backward()
    for stepped, swept in ((w1, w2), (v1, v2)):
        assert torch.equal(stepped.grad, swept.grad)
        assert stepped.grad._base is None and stepped.grad.is_contiguous()
    assert w1.grad is not v1.grad
    w1.grad.mul_(2)  # an in-place edit of one leaf's gradient...
    assert v1.grad.tolist() == [1.0, 1.0, 1.0]  # ...leaves the other alone
