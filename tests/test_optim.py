"""tapegrad.optim against torch.optim: the same parameter trajectories over 20 steps.

Each test trains the same small network twice from the same weights on the
same batches, once with tapegrad (tape, sweep, our optimizer) and once with
torch.nn + torch autograd + torch.optim, and compares every parameter after
every step, in float64.
"""

from __future__ import annotations

import pytest
import torch

import tapegrad as tg
from tapegrad import _kernels, nn, optim

STEPS = 20
TOL = dict(rtol=1e-10, atol=1e-12)


def twin_models():
    torch.manual_seed(3)
    theirs = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1),
                                 torch.nn.Sigmoid()).double()
    ours = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1), nn.Sigmoid()).double()
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def data(step):
    g = torch.Generator().manual_seed(100 + step)
    x = torch.rand(16, 2, generator=g, dtype=torch.float64)
    return x, ((x - 0.5).pow(2).sum(1, keepdim=True) < 0.16).double()


def assert_same_trajectory(make_ours, make_theirs, loss_name="mse", steps=STEPS):
    ours, theirs = twin_models()
    opt_ours, opt_theirs = make_ours(ours.parameters()), make_theirs(theirs.parameters())
    loss_ours = nn.MSELoss() if loss_name == "mse" else nn.BCELoss()
    loss_theirs = torch.nn.MSELoss() if loss_name == "mse" else torch.nn.BCELoss()
    moved = False
    start = [p.data.clone() for p in ours.parameters()]
    for step in range(steps):
        x, t = data(step)
        opt_ours.zero_grad()
        loss_ours(ours(x), t).backward()
        opt_ours.step()
        opt_theirs.zero_grad()
        loss_theirs(theirs(x), t).backward()
        opt_theirs.step()
        for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
            torch.testing.assert_close(p.data, q.detach(), **TOL,
                                       msg=lambda m: f"step {step + 1}, {name}: {m}")
    moved = any(not torch.equal(p.data, s) for p, s in zip(ours.parameters(), start))
    assert moved, "the optimizer did not change the parameters"


SGD_CONFIGS = [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3),
    dict(lr=0.05, momentum=0.8, nesterov=True),
    dict(lr=0.1, weight_decay=0.01),
    dict(lr=0.05, momentum=0.9, weight_decay=0.05),
    dict(lr=0.05, momentum=0.7, nesterov=True, weight_decay=0.02),
]


@pytest.fixture(params=["fused", "public"])
def sgd_kernel(request, monkeypatch):
    """Run each SGD test with torch's fused kernel and with the public fallback."""
    if request.param == "public":
        monkeypatch.setattr(_kernels, "sgd_step", _kernels._public_sgd)
    elif not hasattr(torch, "_fused_sgd_"):
        pytest.skip("this torch has no _fused_sgd_")
    return request.param


@pytest.mark.parametrize("config", SGD_CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_sgd_follows_torch(config, sgd_kernel):
    assert_same_trajectory(lambda ps: optim.SGD(ps, **config),
                           lambda ps: torch.optim.SGD(ps, **config))


@pytest.mark.parametrize("config", [
    dict(),
    dict(lr=0.01),
    dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6),
    dict(lr=0.01, weight_decay=0.1),
], ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "defaults")
def test_adam_follows_torch(config):
    assert_same_trajectory(lambda ps: optim.Adam(ps, **config),
                           lambda ps: torch.optim.Adam(ps, **config), loss_name="bce")


def test_adam_defaults_are_torchs():
    ours = optim.Adam([nn.Parameter(torch.zeros(1))])
    theirs = torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    for key in ("lr", "betas", "eps", "weight_decay"):
        assert ours.defaults[key] == theirs.defaults[key], key


@pytest.mark.parametrize("make", [
    lambda ps: (optim.SGD(ps, lr=0.1, momentum=0.9), torch.optim.SGD),
    lambda ps: (optim.Adam(ps, lr=0.1), torch.optim.Adam),
], ids=["sgd", "adam"])
def test_a_parameter_without_gradient_is_skipped_like_torch(make, sgd_kernel):
    """`b` gets no gradient for 3 steps: its state (momentum buffer, step count) starts later."""
    a0, b0 = torch.tensor([1.0, -2.0], dtype=torch.float64), torch.tensor([0.5], dtype=torch.float64)
    a, b = nn.Parameter(a0.clone()), nn.Parameter(b0.clone())
    ta, tb = a0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
    opt, torch_class = make([a, b])
    kwargs = {k: v for k, v in opt.defaults.items() if k in ("lr", "momentum")}
    reference = torch_class([ta, tb], **kwargs)
    for step in range(8):
        opt.zero_grad()
        reference.zero_grad()
        if step < 3:
            (a * a).sum().backward()
            (ta * ta).sum().backward()
        else:
            ((a * a).sum() + (b * a).sum() * 3.0).backward()
            ((ta * ta).sum() + (tb * ta).sum() * 3.0).backward()
        opt.step()
        reference.step()
        torch.testing.assert_close(a.data, ta.detach(), **TOL)
        torch.testing.assert_close(b.data, tb.detach(), **TOL)
    assert not torch.equal(b.data, b0)


def test_step_is_in_place_and_not_recorded():
    model = nn.Linear(2, 1)
    weight, storage = model.weight, model.weight.data.data_ptr()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    nn.MSELoss()(model(torch.rand(4, 2)), torch.rand(4, 1)).backward()
    with tg.Tape() as tape:
        opt.step()
    assert len(tape) == 0
    assert model.weight is weight and weight.is_leaf and weight.data.data_ptr() == storage


def test_a_tape_recorded_before_a_step_refuses_its_backward():
    """The step changed a weight the tape saved (the second layer's, for dL/dh): refused."""
    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    opt = optim.SGD(model.parameters(), lr=0.1)
    nn.MSELoss()(model(torch.rand(4, 2)), torch.rand(4, 1)).backward()
    stale = nn.MSELoss()(model(torch.rand(4, 2)), torch.rand(4, 1))
    opt.step()
    with pytest.raises(RuntimeError, match="modified in place"):
        stale.backward()


def test_optimizer_zero_grad():
    model = nn.Linear(2, 1)
    opt = optim.Adam(model.parameters())
    nn.MSELoss()(model(torch.rand(4, 2)), torch.rand(4, 1)).backward()
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in model.parameters())
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("make, match", [
    (lambda ps: optim.SGD(ps, lr=-0.1), "lr"),
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=1.0), "momentum"),
    (lambda ps: optim.SGD(ps, lr=0.1, nesterov=True), "nesterov"),
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "nesterov"),
    (lambda ps: optim.SGD(ps, lr=float("nan")), "lr"),
    (lambda ps: optim.Adam(ps, betas=(0.9,)), "betas"),
    (lambda ps: optim.Adam(ps, betas=(0.9, 1.0)), "betas"),
    (lambda ps: optim.Adam(ps, eps=-1.0), "eps"),
    (lambda ps: optim.SGD([], lr=0.1), "empty"),
])
def test_bad_hyperparameters_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make(nn.Linear(2, 1).parameters())


def test_parameters_must_be_leaves_that_require_grad():
    with pytest.raises(TypeError, match="wrap it in a list"):
        optim.SGD(nn.Parameter(torch.zeros(2)), lr=0.1)
    with pytest.raises(TypeError, match="parameter 0"):
        optim.SGD([torch.zeros(2)], lr=0.1)
