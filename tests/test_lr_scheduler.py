"""tapegrad.optim.lr_scheduler against torch.optim.lr_scheduler: the same learning rates, exactly.

Each test drives a tapegrad optimizer with a tapegrad scheduler and a torch
optimizer with torch's scheduler of the same kind, two parameter groups
with different base learning rates, for 40 epochs, and compares every
group's lr (``==``, not approximately) after construction and after every
step, and the schedulers' state dicts.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch

import tapegrad as tg
from tapegrad import nn, optim
from tapegrad.optim import lr_scheduler

EPOCHS = 40


def twin_optimizers(momentum=0.9):
    ours = optim.SGD(
        [
            {"params": [nn.Parameter(torch.zeros(2))]},
            {"params": [nn.Parameter(torch.zeros(3))], "lr": 0.03},
        ],
        lr=0.1,
        momentum=momentum,
    )
    theirs = torch.optim.SGD(
        [
            {"params": [torch.zeros(2, requires_grad=True)]},
            {"params": [torch.zeros(3, requires_grad=True)], "lr": 0.03},
        ],
        lr=0.1,
        momentum=momentum,
    )
    return ours, theirs


def lrs(optimizer):
    return [group["lr"] for group in optimizer.param_groups]


SCHEDULES = {
    "StepLR": lambda m, opt: m.StepLR(opt, step_size=7, gamma=0.5),
    "StepLR-default-gamma": lambda m, opt: m.StepLR(opt, step_size=3),
    "MultiStepLR": lambda m, opt: m.MultiStepLR(opt, milestones=[5, 12, 12, 30], gamma=0.3),
    "ExponentialLR": lambda m, opt: m.ExponentialLR(opt, gamma=0.93),
    "CosineAnnealingLR-past-T_max": lambda m, opt: m.CosineAnnealingLR(
        opt, T_max=10, eta_min=0.001
    ),
    "CosineAnnealingLR": lambda m, opt: m.CosineAnnealingLR(opt, T_max=EPOCHS),
    "LambdaLR": lambda m, opt: m.LambdaLR(opt, lambda epoch: 0.95**epoch),
    "LambdaLR-per-group": lambda m, opt: m.LambdaLR(opt, [lambda e: 1 / (e + 1), lambda e: 0.9**e]),
}


def step_both(pair):
    (opt, sched), (ref, ref_sched) = pair
    opt.step()
    ref.step()
    sched.step()
    ref_sched.step()


def scheduled(name):
    opt, ref = twin_optimizers()
    return (opt, SCHEDULES[name](lr_scheduler, opt)), (
        ref,
        SCHEDULES[name](torch.optim.lr_scheduler, ref),
    )


@pytest.mark.parametrize("name", SCHEDULES)
def test_learning_rates_equal_torchs(name):
    pair = scheduled(name)
    (opt, sched), (ref, ref_sched) = pair
    assert sched.get_last_lr() == ref_sched.get_last_lr() == lrs(ref) == lrs(opt)
    seen = {tuple(lrs(opt))}
    for epoch in range(EPOCHS):
        step_both(pair)
        assert sched.get_last_lr() == ref_sched.get_last_lr(), f"epoch {epoch + 1}"
        assert lrs(opt) == lrs(ref), f"epoch {epoch + 1}"
        assert sched.last_epoch == ref_sched.last_epoch == epoch + 1
        seen.add(tuple(lrs(opt)))
    assert len(seen) > 2, "the schedule never changed the learning rate"
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.03]


@pytest.mark.parametrize("name", SCHEDULES)
def test_state_dict_resumes_like_torch(name):
    """Save optimizer and scheduler half-way, rebuild both, load, continue: the same lrs."""
    pair = scheduled(name)
    for _ in range(EPOCHS // 2):
        step_both(pair)
    (opt, sched), (ref, ref_sched) = pair
    saved, saved_opt = sched.state_dict(), opt.state_dict()
    reference_keys = set(ref_sched.state_dict()) - {"_get_lr_called_within_step"}
    assert set(saved) == reference_keys
    fresh_opt, _ = twin_optimizers()
    fresh = SCHEDULES[name](lr_scheduler, fresh_opt)
    fresh_opt.load_state_dict(saved_opt)
    fresh.load_state_dict(saved)
    from_torch_opt, _ = twin_optimizers()
    from_torch = SCHEDULES[name](lr_scheduler, from_torch_opt)
    from_torch_opt.load_state_dict(ref.state_dict())
    from_torch.load_state_dict(ref_sched.state_dict())  # torch's scheduler state, here
    for epoch in range(EPOCHS // 2, EPOCHS):
        for o, s in ((fresh_opt, fresh), (from_torch_opt, from_torch)):
            o.step()
            s.step()
        step_both(pair)
        assert lrs(fresh_opt) == lrs(from_torch_opt) == lrs(ref), f"epoch {epoch + 1}"
        assert fresh.get_last_lr() == ref_sched.get_last_lr()


@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR"])
def test_step_with_an_epoch_uses_the_closed_form_and_warns_like_torch(name):
    (opt, sched), (ref, ref_sched) = scheduled(name)
    opt.step()
    ref.step()
    for epoch in (3, 12, 7, 25, 30):
        with pytest.warns(UserWarning, match="deprecated"):
            sched.step(epoch)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref_sched.step(epoch)
        assert lrs(opt) == lrs(ref), epoch


def plateau_metrics():
    """A loss that improves, stalls, creeps up, improves a little: every branch of the rule."""
    values = [1.0, 0.8, 0.7, 0.7, 0.7, 0.6999, 0.71, 0.72, 0.5, 0.5, 0.5, 0.5, 0.49999, 0.4]
    values += [0.4 + 0.01 * math.sin(i) for i in range(EPOCHS - len(values))]
    return values


@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(patience=1),
        dict(patience=1, threshold=0.0),  # an equal metric is no improvement
        dict(patience=1, threshold=0.0, threshold_mode="abs"),
        dict(patience=0, factor=0.5, cooldown=2),
        dict(patience=1, threshold=0.05, threshold_mode="abs"),
        dict(mode="max", patience=1, factor=0.5),
        dict(mode="max", patience=2, threshold_mode="abs", threshold=0.001),
        dict(patience=0, factor=0.5, min_lr=0.02),
        dict(patience=0, factor=0.5, min_lr=[0.05, 0.001]),
        dict(patience=0, factor=0.9, eps=0.005),
    ],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "defaults",
)
def test_reduce_lr_on_plateau_equals_torchs(options):
    opt, ref = twin_optimizers()
    sched = lr_scheduler.ReduceLROnPlateau(opt, **options)
    ref_sched = torch.optim.lr_scheduler.ReduceLROnPlateau(ref, **options)
    changes = 0
    for epoch, metric in enumerate(plateau_metrics()):
        before = lrs(opt)
        opt.step()
        ref.step()
        if epoch % 2:  # a number, or a 1-element tensor (float32: rounded)
            sched.step(metric)
            ref_sched.step(metric)
        else:
            sched.step(tg.tensor(metric))
            ref_sched.step(torch.tensor(metric))
        assert lrs(opt) == lrs(ref), f"epoch {epoch + 1}"
        assert sched.get_last_lr() == ref_sched.get_last_lr()
        for key in ("best", "num_bad_epochs", "cooldown_counter", "last_epoch"):
            assert getattr(sched, key) == getattr(ref_sched, key), (epoch + 1, key)
        changes += lrs(opt) != before
    assert changes >= 1, "the learning rate was never reduced"
    saved = sched.state_dict()
    assert set(saved) == set(ref_sched.state_dict()) - {"_get_lr_called_within_step"}
    fresh = lr_scheduler.ReduceLROnPlateau(opt, **options)
    fresh.load_state_dict(ref_sched.state_dict())
    assert {k: getattr(fresh, k) for k in saved} == {k: getattr(sched, k) for k in saved}


def test_a_schedule_changes_the_training_trajectory_exactly_as_torchs():
    torch.manual_seed(0)
    theirs = torch.nn.Linear(3, 1).double()
    ours = nn.Linear(3, 1).double()
    ours.load_state_dict(theirs.state_dict())
    opt = optim.SGD(ours.parameters(), lr=0.1, momentum=0.9)
    ref = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)
    sched = lr_scheduler.CosineAnnealingLR(opt, T_max=15)
    ref_sched = torch.optim.lr_scheduler.CosineAnnealingLR(ref, T_max=15)
    g = torch.Generator().manual_seed(1)
    for _ in range(30):
        x = torch.randn(8, 3, generator=g, dtype=torch.float64)
        t = x.sum(1, keepdim=True)
        opt.zero_grad()
        nn.MSELoss()(ours(x), t).backward()
        opt.step()
        ref.zero_grad()
        torch.nn.MSELoss()(theirs(x), t).backward()
        ref.step()
        sched.step()
        ref_sched.step()
        torch.testing.assert_close(ours.weight.data, theirs.weight.detach(), rtol=1e-10, atol=1e-12)


def test_stepping_the_scheduler_before_the_optimizer_warns_like_torch():
    opt, ref = twin_optimizers()
    sched, ref_sched = lr_scheduler.StepLR(opt, 2), torch.optim.lr_scheduler.StepLR(ref, 2)
    with pytest.warns(UserWarning, match=r"lr_scheduler.step\(\)` before `optimizer.step\(\)"):
        ref_sched.step()
    with pytest.warns(UserWarning, match=r"lr_scheduler.step\(\)` before `optimizer.step\(\)"):
        sched.step()
    opt2, _ = twin_optimizers()
    quiet = lr_scheduler.StepLR(opt2, 2)
    opt2.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet.step()


def test_an_optimizer_of_your_own_counts_its_steps_for_the_order_warning():
    class PlainSGD(optim.Optimizer):
        def __init__(self, params, lr):
            super().__init__(params, dict(lr=lr))

        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.data.add_(p.grad, alpha=-group["lr"])

    p = nn.Parameter(torch.ones(2))
    opt = PlainSGD([p], lr=0.5)
    sched = lr_scheduler.ExponentialLR(opt, gamma=0.5)
    p.grad = torch.ones(2)
    opt.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched.step()
    assert torch.equal(p.data, torch.full((2,), 0.5)) and opt.param_groups[0]["lr"] == 0.25
    other = PlainSGD([nn.Parameter(torch.ones(2))], lr=0.5)
    early = lr_scheduler.ExponentialLR(other, gamma=0.5)
    with pytest.warns(UserWarning, match=r"before `optimizer.step\(\)`"):
        early.step()


def test_resuming_with_last_epoch_needs_initial_lr_like_torch():
    opt, ref = twin_optimizers()
    with pytest.raises(KeyError):
        torch.optim.lr_scheduler.StepLR(ref, 2, last_epoch=4)
    with pytest.raises(KeyError, match=r"param group 0 has no 'initial_lr'"):
        lr_scheduler.StepLR(opt, 2, last_epoch=4)
    for group, ref_group in zip(opt.param_groups, ref.param_groups):
        group["initial_lr"] = ref_group["initial_lr"] = group["lr"]
    sched = lr_scheduler.StepLR(opt, 2, last_epoch=4)
    ref_sched = torch.optim.lr_scheduler.StepLR(ref, 2, last_epoch=4)
    for _ in range(6):
        opt.step()
        ref.step()
        sched.step()
        ref_sched.step()
        assert lrs(opt) == lrs(ref)


def raised(make):
    try:
        make()
    except Exception as error:  # noqa: BLE001 - the type is what we compare
        return type(error)
    return None


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda m, opt: m.StepLR("not an optimizer", 2), TypeError, r"is not a"),
        (lambda m, opt: m.ReduceLROnPlateau(opt, factor=1.0), ValueError, r"factor must be < 1.0"),
        (
            lambda m, opt: m.ReduceLROnPlateau(opt, mode="avg"),
            ValueError,
            r"mode must be 'min' or 'max'",
        ),
        (
            lambda m, opt: m.ReduceLROnPlateau(opt, threshold_mode="pct"),
            ValueError,
            r"threshold_mode must be 'rel' or 'abs'",
        ),
        (lambda m, opt: m.ReduceLROnPlateau(opt, min_lr=[0.1]), ValueError, r"expected 2 min_lrs"),
        (lambda m, opt: m.LambdaLR(opt, [lambda e: 1.0]), ValueError, r"expected 2 lr_lambdas"),
    ],
    ids=["not-an-optimizer", "factor", "mode", "threshold_mode", "min_lr", "lr_lambdas"],
)
def test_bad_arguments_raise_torchs_types(make, error, match):
    opt, ref = twin_optimizers()
    assert raised(lambda: make(torch.optim.lr_scheduler, ref)) is error
    with pytest.raises(error, match=match):
        make(lr_scheduler, opt)


@pytest.mark.parametrize(
    "make, error, match",
    [
        (
            lambda opt: lr_scheduler.StepLR(opt, step_size=0),
            ValueError,
            r"StepLR: step_size must be >= 1",
        ),
        (
            lambda opt: lr_scheduler.StepLR(opt, step_size=2.5),
            TypeError,
            r"step_size must be an integer",
        ),
        (
            lambda opt: lr_scheduler.CosineAnnealingLR(opt, T_max=0),
            ValueError,
            r"T_max must be > 0",
        ),
        (
            lambda opt: lr_scheduler.ExponentialLR(opt, gamma="0.9"),
            TypeError,
            r"gamma must be a number",
        ),
        (
            lambda opt: lr_scheduler.MultiStepLR(opt, milestones=[2.5]),
            TypeError,
            r"must be an integer",
        ),
        (lambda opt: lr_scheduler.LambdaLR(opt, 0.9), TypeError, r"lr_lambda must be a function"),
        (
            lambda opt: lr_scheduler.ReduceLROnPlateau(opt, patience=-1),
            ValueError,
            r"patience must be >= 0",
        ),
    ],
)
def test_arguments_torch_would_only_trip_over_later_are_refused_at_once(make, error, match):
    opt, _ = twin_optimizers()
    before = lrs(opt)
    with pytest.raises(error, match=match):
        make(opt)
    assert lrs(opt) == before and all("initial_lr" not in g for g in opt.param_groups)


def test_load_state_dict_refuses_another_schedulers_state_and_changes_nothing():
    opt, _ = twin_optimizers()
    sched = lr_scheduler.StepLR(opt, 3)
    other = lr_scheduler.ExponentialLR(twin_optimizers()[0], 0.9).state_dict()
    before = sched.state_dict()
    with pytest.raises(ValueError, match=r"has no 'step_size'.*another kind of scheduler"):
        sched.load_state_dict(other)
    assert sched.state_dict() == before
    with pytest.raises(TypeError, match=r"takes the dict that state_dict\(\) returns"):
        sched.load_state_dict([before])


def test_lambda_lr_saves_a_callable_objects_attributes_not_a_function():
    class Warmup:
        def __init__(self, steps):
            self.steps = steps

        def __call__(self, epoch):
            return min(1.0, (epoch + 1) / self.steps)

    opt, _ = twin_optimizers()
    sched = lr_scheduler.LambdaLR(opt, [Warmup(5), lambda e: 1.0])
    assert sched.state_dict()["lr_lambdas"] == [{"steps": 5}, None]
    fresh = lr_scheduler.LambdaLR(twin_optimizers()[0], [Warmup(9), lambda e: 1.0])
    fresh.load_state_dict(sched.state_dict())
    assert fresh.lr_lambdas[0].steps == 5
