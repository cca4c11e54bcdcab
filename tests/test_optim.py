"""tapegrad.optim against torch.optim: the same parameter trajectories over 20 steps.

Each test trains the same small network twice from the same weights on the
same batches, once with tapegrad (tape, sweep, our optimizer) and once with
torch.nn + torch autograd + torch.optim, and compares every parameter after
every step, in float64.
"""

from __future__ import annotations

import copy

import pytest
import torch

import tapegrad as tg
from tapegrad import _kernels, nn, optim

STEPS = 20
TOL = dict(rtol=1e-10, atol=1e-12)


def twin_models():
    torch.manual_seed(3)
    theirs = torch.nn.Sequential(
        torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1), torch.nn.Sigmoid()
    ).double()
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
            torch.testing.assert_close(
                p.data, q.detach(), **TOL, msg=lambda m: f"step {step + 1}, {name}: {m}"
            )
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
    dict(lr=0.02, momentum=1.5, dampening=0.5),
    dict(lr=0.05, momentum=0.9, weight_decay=0.01, maximize=True),
]


@pytest.fixture(params=["fused", "public"])
def sgd_kernel(request, monkeypatch):
    """Run each SGD test with torch's fused kernel and with the public fallback."""
    if request.param == "public":
        monkeypatch.setattr(_kernels, "sgd_step", _kernels._public_sgd)
    elif not hasattr(torch, "_fused_sgd_"):
        pytest.skip("this torch has no _fused_sgd_")
    return request.param


@pytest.mark.parametrize(
    "config", SGD_CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items())
)
def test_sgd_follows_torch(config, sgd_kernel):
    assert_same_trajectory(
        lambda ps: optim.SGD(ps, **config), lambda ps: torch.optim.SGD(ps, **config)
    )


ADAM_CONFIGS = [
    (optim.Adam, torch.optim.Adam, dict()),
    (optim.Adam, torch.optim.Adam, dict(lr=0.01)),
    (optim.Adam, torch.optim.Adam, dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6)),
    (optim.Adam, torch.optim.Adam, dict(lr=0.01, weight_decay=0.1)),
    (optim.Adam, torch.optim.Adam, dict(lr=0.01, amsgrad=True)),
    (optim.Adam, torch.optim.Adam, dict(lr=0.01, maximize=True, weight_decay=0.01)),
    (optim.AdamW, torch.optim.AdamW, dict()),
    (optim.AdamW, torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
]


@pytest.mark.parametrize(
    "ours, theirs, config",
    ADAM_CONFIGS,
    ids=[
        f"{o.__name__}:" + (",".join(f"{k}={v}" for k, v in c.items()) or "defaults")
        for o, _, c in ADAM_CONFIGS
    ],
)
def test_adam_follows_torch(ours, theirs, config):
    loss = "mse" if config.get("maximize") else "bce"  # maximize walks away from BCE's domain
    assert_same_trajectory(
        lambda ps: ours(ps, **config), lambda ps: theirs(ps, **config), loss_name=loss
    )


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (optim.SGD, torch.optim.SGD),
        (optim.Adam, torch.optim.Adam),
        (optim.AdamW, torch.optim.AdamW),
    ],
)
def test_defaults_are_torchs(ours, theirs):
    mine = ours([nn.Parameter(torch.zeros(1))]).defaults
    reference = theirs([torch.zeros(1, requires_grad=True)]).defaults
    assert mine == {key: reference[key] for key in mine}
    # what torch has beyond these selects torch's own kernels, which tapegrad does not offer
    assert set(reference) - set(mine) <= {"foreach", "fused", "differentiable", "capturable"}


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: (optim.SGD(ps, lr=0.1, momentum=0.9), torch.optim.SGD),
        lambda ps: (optim.Adam(ps, lr=0.1), torch.optim.Adam),
    ],
    ids=["sgd", "adam"],
)
def test_a_parameter_without_gradient_is_skipped_like_torch(make, sgd_kernel):
    """`b` gets no gradient for 3 steps: its state (momentum buffer, step count) starts later."""
    a0, b0 = (
        torch.tensor([1.0, -2.0], dtype=torch.float64),
        torch.tensor([0.5], dtype=torch.float64),
    )
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


# --- parameter groups, closures, state ----------------------------------------------------


def train(ours, theirs, opt_ours, opt_theirs, steps, start=0, check=True):
    """`steps` steps of both twins, comparing every parameter after each (from step `start`)."""
    for step in range(start, start + steps):
        x, t = data(step)
        opt_ours.zero_grad()
        nn.MSELoss()(ours(x), t).backward()
        opt_ours.step()
        opt_theirs.zero_grad()
        torch.nn.MSELoss()(theirs(x), t).backward()
        opt_theirs.step()
        if check:
            for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
                torch.testing.assert_close(
                    p.data, q.detach(), **TOL, msg=lambda m: f"step {step + 1}, {name}: {m}"
                )


def groups_of(model, first_options):
    """The first layer in a group with its own options; the rest in a group on the defaults."""
    layers = [m for m in model if list(m.parameters())]
    rest = [p for m in layers[1:] for p in m.parameters()]
    return [dict(params=list(layers[0].parameters()), **first_options), {"params": rest}]


@pytest.mark.parametrize(
    "ours, theirs, defaults, first",
    [
        (optim.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9), dict(lr=0.01, momentum=0.5)),
        (optim.SGD, torch.optim.SGD, dict(lr=0.1), dict(momentum=0.9, nesterov=True)),
        (
            optim.Adam,
            torch.optim.Adam,
            dict(lr=0.01),
            dict(lr=0.05, betas=(0.5, 0.9), amsgrad=True),
        ),
        (optim.AdamW, torch.optim.AdamW, dict(lr=0.01), dict(weight_decay=0.5)),
    ],
    ids=["sgd-lr-momentum", "sgd-nesterov", "adam-amsgrad", "adamw-decay"],
)
def test_parameter_groups_follow_torch(ours, theirs, defaults, first):
    model, reference = twin_models()
    opt_ours = ours(groups_of(model, first), **defaults)
    opt_theirs = theirs(groups_of(reference, first), **defaults)
    assert [sorted(g) for g in opt_ours.param_groups] == [
        sorted(k for k in g if k in opt_ours.defaults or k == "params")
        for g in opt_theirs.param_groups
    ]
    assert opt_ours.param_groups[0]["lr"] == first.get("lr", defaults["lr"])
    train(model, reference, opt_ours, opt_theirs, STEPS)


def test_add_param_group_during_training_follows_torch():
    model, reference = twin_models()
    head, head_ref = model[2], reference[2]
    opt_ours = optim.SGD(model[0].parameters(), lr=0.1, momentum=0.9)
    opt_theirs = torch.optim.SGD(reference[0].parameters(), lr=0.1, momentum=0.9)
    train(model, reference, opt_ours, opt_theirs, 5)  # the head is frozen (not stepped)
    opt_ours.add_param_group({"params": head.parameters(), "lr": 0.02})
    opt_theirs.add_param_group({"params": head_ref.parameters(), "lr": 0.02})
    before = head.weight.data.clone()
    train(model, reference, opt_ours, opt_theirs, 10, start=5)
    assert not torch.equal(before, head.weight.data)
    assert opt_ours.param_groups[1]["momentum"] == 0.9  # from the defaults


def test_state_is_keyed_by_parameter_like_torch():
    model, reference = twin_models()
    opt_ours = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt_theirs = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    train(model, reference, opt_ours, opt_theirs, 3)
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(
            opt_ours.state[p]["momentum_buffer"], opt_theirs.state[q]["momentum_buffer"], **TOL
        )


@pytest.mark.parametrize(
    "ours, theirs", [(optim.SGD, torch.optim.SGD), (optim.Adam, torch.optim.Adam)]
)
def test_step_with_a_closure_follows_torch_and_returns_the_loss(ours, theirs):
    model, reference = twin_models()
    opt_ours, opt_theirs = (
        ours(model.parameters(), lr=0.05),
        theirs(reference.parameters(), lr=0.05),
    )
    calls = []
    for step in range(STEPS):
        x, t = data(step)

        def closure():
            calls.append(step)
            opt_ours.zero_grad()
            loss = nn.MSELoss()(model(x), t)
            loss.backward()
            return loss

        def reference_closure():
            opt_theirs.zero_grad()
            loss = torch.nn.MSELoss()(reference(x), t)
            loss.backward()
            return loss

        with tg.no_grad():  # the closure records all the same
            loss = opt_ours.step(closure)
        expected = opt_theirs.step(reference_closure)
        assert isinstance(loss, tg.Tensor) and loss.item() == pytest.approx(
            expected.item(), rel=1e-12
        )
        for p, q in zip(model.parameters(), reference.parameters()):
            torch.testing.assert_close(p.data, q.detach(), **TOL)
    assert calls == list(range(STEPS))  # once per step
    assert opt_ours.step() is None


# --- state_dict / load_state_dict -------------------------------------------------------

TORCH_ONLY = {"foreach", "fused", "differentiable", "capturable"}


def two_group_optimizers(kind):
    model, reference = twin_models()
    if kind == "sgd":
        opt = optim.SGD(groups_of(model, dict(lr=0.02, nesterov=True)), lr=0.1, momentum=0.9)
        ref = torch.optim.SGD(
            groups_of(reference, dict(lr=0.02, nesterov=True)), lr=0.1, momentum=0.9
        )
    elif kind == "adam":
        opt = optim.Adam(groups_of(model, dict(amsgrad=True)), lr=0.01)
        ref = torch.optim.Adam(groups_of(reference, dict(amsgrad=True)), lr=0.01)
    else:
        opt = optim.AdamW(groups_of(model, dict(lr=0.05)), lr=0.01, weight_decay=0.1)
        ref = torch.optim.AdamW(groups_of(reference, dict(lr=0.05)), lr=0.01, weight_decay=0.1)
    return model, reference, opt, ref


def assert_same_state_dict(ours: dict, theirs: dict):
    assert set(ours) == {"state", "param_groups"}
    assert list(ours["state"]) == list(theirs["state"])
    for index, state in ours["state"].items():
        assert set(state) == set(theirs["state"][index]), index
        for key, value in state.items():
            reference = theirs["state"][index][key]
            assert value.dtype == reference.dtype and value.shape == reference.shape, (index, key)
            torch.testing.assert_close(value, reference, **TOL)
    assert len(ours["param_groups"]) == len(theirs["param_groups"])
    for mine, reference in zip(ours["param_groups"], theirs["param_groups"]):
        assert mine == {k: v for k, v in reference.items() if k not in TORCH_ONLY}


@pytest.mark.parametrize("kind", ["sgd", "adam", "adamw"])
def test_state_dict_has_torchs_layout_and_values(kind):
    model, reference, opt, ref = two_group_optimizers(kind)
    assert_same_state_dict(opt.state_dict(), ref.state_dict())  # before any step
    train(model, reference, opt, ref, 4, check=False)
    assert_same_state_dict(opt.state_dict(), ref.state_dict())
    assert opt.state_dict()["param_groups"][1]["params"] == [2, 3]


@pytest.mark.parametrize("kind", ["sgd", "adam", "adamw"])
def test_loading_a_state_dict_resumes_exactly(kind):
    model, reference, opt, ref = two_group_optimizers(kind)
    train(model, reference, opt, ref, 8, check=False)
    saved_model = {k: v.clone() for k, v in model.state_dict().items()}
    saved = opt.state_dict()
    saved = {
        "state": {i: {k: v.clone() for k, v in s.items()} for i, s in saved["state"].items()},
        "param_groups": [dict(g) for g in saved["param_groups"]],
    }
    train(model, reference, opt, ref, 8, start=8, check=False)  # the uninterrupted run

    resumed, _, fresh, _ = two_group_optimizers(kind)
    resumed.load_state_dict(saved_model)
    fresh.load_state_dict(saved)
    for step in range(8, 16):
        x, t = data(step)
        fresh.zero_grad()
        nn.MSELoss()(resumed(x), t).backward()
        fresh.step()
    for p, q in zip(model.parameters(), resumed.parameters()):
        assert torch.equal(p.data, q.data)


@pytest.mark.parametrize("kind", ["sgd", "adam", "adamw"])
def test_state_dicts_move_between_torch_and_tapegrad(kind):
    """torch's state dict loads into tapegrad's optimizer and the other way, and both continue."""
    model, reference, opt, ref = two_group_optimizers(kind)
    train(model, reference, opt, ref, 5)
    other_model, other_reference, other, other_ref = two_group_optimizers(kind)
    other_model.load_state_dict(model.state_dict())
    other_reference.load_state_dict(reference.state_dict())
    other.load_state_dict(ref.state_dict())  # torch's into ours
    # (torch's load keeps the given tensors, so it gets a copy: it would share opt's buffers)
    other_ref.load_state_dict(copy.deepcopy(opt.state_dict()))  # ours into torch's
    train(other_model, other_reference, other, other_ref, 10, start=5)
    train(model, reference, opt, ref, 10, start=5, check=False)
    for p, q in zip(model.parameters(), other_model.parameters()):
        torch.testing.assert_close(p.data, q.data, **TOL)


def test_load_state_dict_copies_state_to_the_parameters_dtype_like_torch():
    p = nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float64))
    source = optim.Adam([nn.Parameter(torch.tensor([1.0, 2.0]))], lr=0.1)
    source.param_groups[0]["params"][0].grad = torch.ones(2)
    source.step()
    saved = source.state_dict()
    target = optim.Adam([p], lr=0.5)
    target.load_state_dict(saved)
    assert target.param_groups[0]["lr"] == 0.1  # the saved options
    state = target.state[p]
    assert state["exp_avg"].dtype == torch.float64 and state["exp_avg_sq"].dtype == torch.float64
    assert state["step"].dtype == saved["state"][0]["step"].dtype  # the count keeps its own
    saved["state"][0]["exp_avg"].fill_(7.0)  # the optimizer owns its copy
    assert not torch.equal(state["exp_avg"], torch.full((2,), 7.0, dtype=torch.float64))
    reference = torch.optim.Adam([torch.zeros(2, dtype=torch.float64, requires_grad=True)])
    reference.load_state_dict(source.state_dict())
    assert next(iter(reference.state.values()))["exp_avg"].dtype == torch.float64


def test_load_state_dict_moves_state_to_the_parameters_device():
    model = nn.Linear(3, 2)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    nn.MSELoss()(model(torch.rand(4, 3)), torch.rand(4, 2)).backward()
    opt.step()
    meta_model = nn.Linear(3, 2, device="meta")
    meta_opt = optim.SGD(meta_model.parameters(), lr=0.1, momentum=0.9)
    meta_opt.load_state_dict(opt.state_dict())
    assert all(s["momentum_buffer"].device.type == "meta" for s in meta_opt.state.values())


def test_named_parameters_keep_their_names_in_the_state_dict_like_torch():
    model, reference = twin_models()
    opt = optim.SGD(model.named_parameters(), lr=0.1)
    ref = torch.optim.SGD(reference.named_parameters(), lr=0.1)
    assert (
        opt.state_dict()["param_groups"][0]["param_names"]
        == ref.state_dict()["param_groups"][0]["param_names"]
        == ["0.weight", "0.bias", "2.weight", "2.bias"]
    )
    train(model, reference, opt, ref, 3)


def test_repr_lists_each_group_like_torch():
    p, q = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2))
    text = repr(optim.SGD([{"params": [p]}, {"params": [q], "lr": 0.5}], lr=0.1, momentum=0.9))
    assert text.startswith("SGD (\nParameter Group 0\n    dampening: 0.0\n    lr: 0.1\n")
    assert "Parameter Group 1\n" in text and "    lr: 0.5\n" in text and text.endswith("\n)")


@pytest.mark.parametrize(
    "make, layout",
    [
        (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), "contiguous"),  # the fused kernel
        (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), "strided"),  # the per-tensor path
        (lambda ps: optim.SGD(ps, lr=0.1), "complex"),
        (lambda ps: optim.Adam(ps, lr=0.1), "contiguous"),
        (lambda ps: optim.AdamW(ps, lr=0.1), "complex"),
    ],
    ids=["sgd-fused", "sgd-strided", "sgd-complex", "adam", "adamw-complex"],
)
def test_every_update_path_makes_a_tape_recorded_before_it_stale(make, layout):
    if layout == "contiguous":
        w = tg.Tensor(torch.randn(3, 2), requires_grad=True)
    elif layout == "strided":
        w = tg.Tensor(torch.randn(3, 2, 2)[..., 0], requires_grad=True)
    else:
        w = tg.Tensor(torch.randn(3, 2, dtype=torch.complex64), requires_grad=True)
    x = tg.Tensor(torch.randn(3, 2, dtype=w.dtype), requires_grad=True)
    opt = make([w])
    w.grad = torch.ones_like(w.data)
    # (ops on complex tensors are not recorded: there the version counter is what a tape checks)
    stale = None if layout == "complex" else (w * x).sum()  # saves w, for dL/dx
    before = w.data._version
    opt.step()
    assert w.data._version > before
    if stale is not None:
        with pytest.raises(RuntimeError, match="modified in place"):
            stale.backward(torch.ones_like(stale.data))


@pytest.mark.parametrize("owner", ["optimizer", "module"])
@pytest.mark.parametrize("recorded", [False, True], ids=["plain", "after create_graph"])
def test_zero_grad_without_none_zeroes_the_gradient_in_place_like_torch(owner, recorded):
    """A reference held to p.grad stays p.grad: zeroed, then summed into by the next
    backward (torch's zero_grad(set_to_none=False) detaches and zeroes in place)."""
    import warnings

    results = {}
    for lib, layer in ((torch, torch.nn.Linear), (tg, tg.nn.Linear)):
        torch.manual_seed(0)
        model = layer(3, 1)
        optimizer = lib.optim.SGD(model.parameters(), lr=0.1)
        x = lib.ones(2, 3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's note on create_graph=True's cycle
            model(x).sum().backward(create_graph=recorded)
        held = model.weight.grad
        (optimizer if owner == "optimizer" else model).zero_grad(set_to_none=False)
        assert not model.weight.grad.requires_grad
        model(x * 2).sum().backward()
        results[lib.__name__] = (held.data.tolist(), model.weight.grad.tolist())
        if not recorded:
            assert held is model.weight.grad
    assert results["tapegrad"] == results["torch"]
