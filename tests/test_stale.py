"""A stale tape: a tensor saved for a derivative changed in place after it was recorded.

torch bumps `tensor._version` on every in-place change (autograd on or
off); each node notes the versions of what it saved, and reading
`ctx.saved_tensors` in the sweep compares them. A mismatch raises, naming
the op and the tensor, instead of returning a gradient computed from the
new values. The sweep then rolls back: leaf gradients are as before it.
"""

import pytest
import torch

import tapegrad as tg
from tapegrad import _kernels, nn, optim


def make_model():
    g = torch.Generator().manual_seed(1)
    return nn.Sequential(nn.Linear(2, 4, generator=g), nn.Tanh(), nn.Linear(4, 1, generator=g))


def data():
    g = torch.Generator().manual_seed(2)
    return tg.tensor(torch.randn(8, 2, generator=g)), tg.tensor(torch.randn(8, 1, generator=g))


def grads_of(model):
    return {
        name: None if p.grad is None else p.grad.clone() for name, p in model.named_parameters()
    }


def same(a, b):
    return a.keys() == b.keys() and all(
        (a[k] is None and b[k] is None)
        or (a[k] is not None and b[k] is not None and torch.equal(a[k], b[k]))
        for k in a
    )


OPTIMIZERS = {
    "sgd": lambda params: optim.SGD(params, lr=0.1),
    "sgd-momentum": lambda params: optim.SGD(params, lr=0.1, momentum=0.9),
    "adam": lambda params: optim.Adam(params, lr=0.1),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_step_between_forward_and_backward_is_caught(name):
    model = make_model()
    opt = OPTIMIZERS[name](model.parameters())
    x, t = data()
    loss_fn = nn.MSELoss()
    nn.MSELoss()(model(x), t).backward()  # some gradient, so the step changes the weights
    stale = loss_fn(model(x), t)  # recorded with the current weights
    opt.step()  # ... which change in place here
    before = grads_of(model)
    with pytest.raises(RuntimeError) as info:
        stale.backward()
    message = str(info.value)
    # The op, its tape index, the tensor (by its parameter name) and the fix.
    assert "LinearFunction (tape index 2)" in message
    assert "parameter 'weight' of Linear(in_features=4, out_features=1" in message
    assert "shape (1, 4)" in message
    assert "modified in place" in message and "optimizer step" in message
    assert "Run the forward again" in message
    assert same(grads_of(model), before)  # the failed sweep rolled back


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_steps_in_the_right_order_are_fine(name):
    # The control: forward, backward, step, repeated, never trips the check.
    model = make_model()
    opt = OPTIMIZERS[name](model.parameters())
    x, t = data()
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = nn.MSELoss()(model(x), t)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_fused_sgd_kernel_bumps_the_version_counter():
    # torch's fused SGD kernel writes parameters without bumping _version;
    # _kernels bumps it, or the stale check above would be blind to SGD.
    p = torch.zeros(3)
    before = p._version
    _kernels.sgd_step(
        [p],
        [torch.ones(3)],
        [],
        lr=0.1,
        momentum=0.0,
        dampening=0.0,
        weight_decay=0.0,
        nesterov=False,
        is_first_step=True,
    )
    assert p._version > before
    assert torch.allclose(p, torch.full((3,), -0.1))


def test_public_sgd_fallback_is_caught_too(monkeypatch):
    monkeypatch.setattr(_kernels, "sgd_step", _kernels._public_sgd)
    model = make_model()
    opt = optim.SGD(model.parameters(), lr=0.1)
    x, t = data()
    nn.MSELoss()(model(x), t).backward()
    stale = nn.MSELoss()(model(x), t)
    before = [p.data.clone() for p in model.parameters()]
    opt.step()
    # (the fallback once skipped every update without momentum: zip over no buffers)
    assert all(not torch.equal(b, p.data) for b, p in zip(before, model.parameters()))
    with pytest.raises(RuntimeError, match=r"LinearFunction \(tape index 2\).*modified in place"):
        stale.backward()


def test_manual_in_place_edit_of_a_saved_input():
    a = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = tg.tensor([4.0, 5.0, 6.0], requires_grad=True)
    a.grad = torch.full((3,), 0.5)
    y = (a * b).sum()
    a.data.mul_(2)  # changes what Mul saved for dL/db
    with pytest.raises(RuntimeError) as info:
        y.backward()
    message = str(info.value)
    assert "Mul (tape index 0)" in message
    assert "input 0, a leaf tensor" in message and "shape (3,)" in message
    assert "version 0 -> 1" in message
    assert torch.equal(a.grad, torch.full((3,), 0.5))
    assert b.grad is None


def test_manual_in_place_edit_of_an_intermediate_output():
    x = tg.tensor([0.0, 1.0], requires_grad=True)
    w = tg.tensor([2.0, 3.0], requires_grad=True)
    with tg.Tape() as tape:  # keep_values: the error can name the output
        h = x.exp()
        y = (h * w).sum()
    h.data.add_(1)  # Mul saved h for dL/dw, Exp saved h for dL/dx
    with pytest.raises(RuntimeError) as info:
        y.backward()
    assert (
        "Mul (tape index 1): saved tensor 1 (input 0, the output of Exp (tape index 0), shape (2,))"
    ) in str(info.value)
    assert x.grad is None and w.grad is None
    assert len(tape) == 3


def test_manual_in_place_edit_of_an_ops_own_saved_output():
    x = tg.tensor([0.0, 1.0], requires_grad=True)
    with tg.Tape():
        h = x.exp()
        y = (h * 2).sum()  # Mul by a number saves nothing of h
    h.data.add_(1)
    with pytest.raises(
        RuntimeError,
        match=r"Exp \(tape index 0\): saved tensor 0 \(its own "
        r"output, shape \(2,\)\)",
    ):
        y.backward()
    assert x.grad is None


def test_in_place_edit_of_a_tensor_no_op_saved_is_harmless():
    # Add saves nothing: changing its input afterwards does not change its derivative.
    a = tg.tensor([1.0, 2.0], requires_grad=True)
    y = (a + 1).sum()
    a.data.add_(5)
    y.backward()
    assert torch.equal(a.grad, torch.ones(2))


def test_stale_after_retain_graph():
    model = make_model()
    opt = optim.SGD(model.parameters(), lr=0.1)
    x, t = data()
    loss = nn.MSELoss()(model(x), t)
    loss.backward(retain_graph=True)
    first = grads_of(model)
    opt.step()
    with pytest.raises(RuntimeError, match=r"modified in place"):
        loss.backward()
    assert same(grads_of(model), first)


def test_rollback_restores_retained_intermediate_grads():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    w = tg.tensor([3.0, 4.0], requires_grad=True)
    h = x * 2
    h.retain_grad()
    y = (h * w).sum()
    y.backward(retain_graph=True)
    h_grad, x_grad = h.grad.clone(), x.grad.clone()
    h.data.add_(1)  # Mul(h, w) saved h for dL/dw: stale
    with pytest.raises(RuntimeError, match=r"Mul \(tape index 1\)"):
        y.backward()
    assert torch.equal(h.grad, h_grad) and torch.equal(x.grad, x_grad)
    assert torch.equal(w.grad, torch.tensor([2.0, 4.0]))  # from the first sweep only


def test_rollback_undoes_gradients_accumulated_before_the_failure():
    x = tg.tensor([0.0, 1.0], requires_grad=True)
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    v = tg.tensor([3.0, 4.0], requires_grad=True)
    w.grad = torch.full((2,), 10.0)
    h = x.exp()  # tape index 0: saves its output h
    y = (h + w).sum() + (v * 3).sum()  # later nodes reach w and v first in the sweep
    assert [node.name for node in y.tape] == ["Exp", "Add", "Sum", "Mul", "Sum", "Add"]
    h.data.add_(1)
    with pytest.raises(
        RuntimeError,
        match=r"Exp \(tape index 0\): saved tensor 0 \(its "
        r"own output",
    ):
        y.backward()
    # Add and Mul had already added into w.grad and v.grad when Exp failed: undone.
    assert torch.equal(w.grad, torch.full((2,), 10.0))
    assert v.grad is None and x.grad is None


def test_what_the_check_prevents():
    # Without the version check, the sweep would have used the new weights:
    # this computes that wrong gradient by hand and shows it differs.
    w = torch.tensor([1.0, 2.0])
    right_dx = w.clone()  # d(sum(w * x))/dx with the weights of the forward
    w.mul_(10)  # the "optimizer step"
    wrong_dx = w  # what a sweep without the check would return
    assert not torch.equal(right_dx, wrong_dx)
