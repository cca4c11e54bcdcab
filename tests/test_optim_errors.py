"""Optimizer arguments, parameter groups and state dicts that must be refused.

Each mistake raises the exception type torch.optim raises for the same
mistake (checked against torch itself where torch refuses it), with a
message that names the option or group and says what is wrong; where
state could be touched, nothing is half-changed. Values torch accepts
silently but that can only be mistakes (a NaN learning rate) are refused
with ValueError, the type torch uses for bad values.
"""

from __future__ import annotations

import math

import pytest
import torch

import tapegrad as tg
from tapegrad import optim

OPTIMIZERS = {
    "SGD": (optim.SGD, torch.optim.SGD),
    "Adam": (optim.Adam, torch.optim.Adam),
    "AdamW": (optim.AdamW, torch.optim.AdamW),
}


def leaf(*shape):
    return tg.tensor(torch.randn(*shape), requires_grad=True)


def torch_leaf(*shape):
    return torch.randn(*shape).requires_grad_(True)


def raised(make):
    """The exception type make() raises (None if it raises nothing)."""
    try:
        make()
    except Exception as error:  # noqa: BLE001 - the type is what we compare
        return type(error)
    return None


# --- arguments, against torch's exception types ------------------------------------------


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("lr, error", [(-0.1, ValueError), ("0.1", TypeError), (None, TypeError)])
def test_bad_learning_rate_raises_torchs_type(name, lr, error):
    ours, theirs = OPTIMIZERS[name]
    assert raised(lambda: theirs([torch_leaf(2)], lr=lr)) is error
    with pytest.raises(error, match=rf"{name}: lr must be"):
        ours([leaf(2)], lr=lr)


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("lr", [math.nan, math.inf, -math.inf])
def test_a_learning_rate_that_is_not_finite_is_refused(name, lr):
    with pytest.raises(ValueError, match=rf"{name}: lr must be a finite number"):
        OPTIMIZERS[name][0]([leaf(2)], lr=lr)


def test_a_bool_learning_rate_is_refused():
    with pytest.raises(TypeError, match=r"SGD: lr must be a number, got True"):
        optim.SGD([leaf(2)], lr=True)


@pytest.mark.parametrize("momentum", [-0.1, math.nan])
def test_sgd_refuses_negative_momentum(momentum):
    with pytest.raises(ValueError, match=r"SGD: momentum must be (>= 0.0|a finite number)"):
        optim.SGD([leaf(2)], lr=0.1, momentum=momentum)
    if momentum < 0:
        assert (
            raised(lambda: torch.optim.SGD([torch_leaf(2)], lr=0.1, momentum=momentum))
            is ValueError
        )


@pytest.mark.parametrize(
    "momentum, dampening",
    [(0.0, 0.0), (0.99, 0.0), (1.0, 0.0), (1.5, 0.5), (0.9, -0.5), (0.9, 2.0)],
)
def test_sgd_accepts_what_torch_accepts(momentum, dampening):
    torch.optim.SGD([torch_leaf(2)], lr=0.1, momentum=momentum, dampening=dampening)
    opt = optim.SGD([leaf(2)], lr=0.1, momentum=momentum, dampening=dampening)
    assert opt.param_groups[0]["momentum"] == momentum


@pytest.mark.parametrize("nesterov_case", [dict(momentum=0.0), dict(momentum=0.9, dampening=0.1)])
def test_nesterov_needs_momentum_and_no_dampening(nesterov_case):
    assert (
        raised(lambda: torch.optim.SGD([torch_leaf(2)], lr=0.1, nesterov=True, **nesterov_case))
        is ValueError
    )
    with pytest.raises(
        ValueError, match=r"SGD: nesterov=True needs momentum > 0 and dampening = 0"
    ):
        optim.SGD([leaf(2)], lr=0.1, nesterov=True, **nesterov_case)


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
@pytest.mark.parametrize(
    "betas, error",
    [
        ((1.0, 0.999), ValueError),
        ((0.9, -0.1), ValueError),
        ((0.9, 1.0), ValueError),
        (0.9, TypeError),
    ],
)
def test_adam_refuses_bad_betas_with_torchs_type(name, betas, error):
    ours, theirs = OPTIMIZERS[name]
    assert raised(lambda: theirs([torch_leaf(2)], betas=betas)) is error
    with pytest.raises(error, match=rf"{name}: betas"):
        ours([leaf(2)], betas=betas)


@pytest.mark.parametrize("betas", [(0.9,), (0.9, 0.99, 0.999)])
def test_adam_betas_must_be_a_pair(betas):
    with pytest.raises(ValueError, match=r"Adam: betas must be a pair"):
        optim.Adam([leaf(2)], betas=betas)


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("option", ["eps", "weight_decay"])
def test_adam_and_sgd_refuse_negative_options(name, option):
    ours, theirs = OPTIMIZERS[name]
    if option == "eps" and name == "SGD":
        pytest.skip("SGD has no eps")
    assert raised(lambda: theirs([torch_leaf(2)], **{option: -1.0})) is ValueError
    with pytest.raises(ValueError, match=rf"{name}: {option} must be >= 0"):
        ours([leaf(2)], **{option: -1.0})


# --- the parameters ---------------------------------------------------------------------


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("params", [[], (), iter([])], ids=["list", "tuple", "iterator"])
def test_an_empty_parameter_list_is_refused(name, params):
    ours, theirs = OPTIMIZERS[name]
    assert raised(lambda: theirs([])) is ValueError
    with pytest.raises(ValueError, match=rf"{name} got an empty parameter list"):
        ours(params)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_a_single_tensor_is_refused(name):
    ours, theirs = OPTIMIZERS[name]
    assert raised(lambda: theirs(torch_leaf(2))) is TypeError
    with pytest.raises(TypeError, match=r"got a single Tensor; wrap it in a list: \[p\]"):
        ours(leaf(2))


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_a_non_leaf_is_refused_with_torchs_value_error(name):
    ours, theirs = OPTIMIZERS[name]
    assert raised(lambda: theirs([torch_leaf(2) * 2])) is ValueError
    p = leaf(2)
    with pytest.raises(ValueError, match=r"parameter 1 is not a leaf \(it is the output of Mul"):
        ours([p, p * 2])


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_what_is_not_a_tensor_is_refused(name):
    ours, theirs = OPTIMIZERS[name]
    assert raised(lambda: theirs([torch_leaf(2), 3])) is TypeError
    with pytest.raises(TypeError, match=r"parameter 1 must be a tapegrad Tensor, got int"):
        ours([leaf(2), 3])
    with pytest.raises(TypeError, match=r"got Tensor \(a torch tensor: wrap it as tapegrad.Tensor"):
        ours([torch.zeros(2)])


def test_a_leaf_that_does_not_require_grad_is_accepted_like_torch():
    torch.optim.SGD([torch.zeros(2)], lr=0.1)
    p = tg.tensor([1.0, 2.0])
    opt = optim.SGD([p], lr=0.1)
    opt.step()  # it has no gradient: skipped
    assert torch.equal(p.data, torch.tensor([1.0, 2.0]))


def test_a_set_of_parameters_is_refused():
    assert raised(lambda: torch.optim.SGD([{"params": {torch_leaf(2)}}])) is TypeError
    with pytest.raises(TypeError, match=r"not a set"):
        optim.SGD({leaf(2)}, lr=0.1)
    with pytest.raises(TypeError, match=r"param group 0: 'params' must be an ordered collection"):
        optim.SGD([{"params": {leaf(2)}}], lr=0.1)


# --- parameter groups ---------------------------------------------------------------------


def test_mixing_tensors_and_groups_is_refused():
    t = torch_leaf(2)
    assert raised(lambda: torch.optim.SGD([{"params": [t]}, torch_leaf(2)])) is TypeError
    assert raised(lambda: torch.optim.SGD([t, {"params": [torch_leaf(2)]}])) is TypeError
    p = leaf(2)
    with pytest.raises(TypeError, match=r"param group 1 must be a dict"):
        optim.SGD([{"params": [p]}, leaf(2)])
    with pytest.raises(TypeError, match=r"parameter 1 must be a tapegrad Tensor, got dict"):
        optim.SGD([p, {"params": [leaf(2)]}])


def test_a_group_without_params_is_refused_with_torchs_key_error():
    assert raised(lambda: torch.optim.SGD([{"lr": 0.1}])) is KeyError
    with pytest.raises(KeyError, match=r"param group 0 has no 'params' entry"):
        optim.SGD([{"lr": 0.1}])


def test_a_parameter_in_two_groups_is_refused_and_nothing_changes():
    p, q = leaf(2), leaf(2)
    t = torch_leaf(2)
    assert raised(lambda: torch.optim.SGD([{"params": [t]}, {"params": [t]}])) is ValueError
    with pytest.raises(
        ValueError,
        match=r"param group 1: some parameters are already in param "
        r"group 0",
    ):
        optim.SGD([{"params": [p]}, {"params": [q, p]}], lr=0.1)
    opt = optim.SGD([p], lr=0.1)
    with pytest.raises(ValueError, match=r"already in param group 0"):
        opt.add_param_group({"params": [q, p]})
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["params"] == [p]
    with pytest.raises(TypeError, match=r"param group 1 must be a dict"):
        opt.add_param_group([q])
    assert len(opt.param_groups) == 1


def test_a_parameter_twice_in_one_group_is_refused():
    # torch warns that this "will cause an error in future": it would update p twice per step.
    p = leaf(2)
    with pytest.raises(ValueError, match=r"param group 0: parameter 1 appears twice"):
        optim.SGD([p, p], lr=0.1)


def test_a_bad_option_in_a_group_names_the_group():
    p, q = leaf(2), leaf(2)
    with pytest.raises(ValueError, match=r"SGD param group 1: lr must be >= 0.0, got -1"):
        optim.SGD([{"params": [p]}, {"params": [q], "lr": -1}], lr=0.1)
    opt = optim.Adam([p])
    with pytest.raises(ValueError, match=r"Adam param group 1: betas\[1\] must be in \[0.0, 1.0\)"):
        opt.add_param_group({"params": [q], "betas": (0.9, 1.5)})
    assert len(opt.param_groups) == 1


def test_named_and_unnamed_groups_do_not_mix():
    p, q = leaf(2), leaf(2)
    opt = optim.SGD([("w", p)], lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["w"]
    with pytest.raises(ValueError, match=r"either every group names its parameters"):
        opt.add_param_group({"params": [q]})
    with pytest.raises(ValueError, match=r"give every parameter a name"):
        optim.SGD([("w", p), q], lr=0.1)


# --- load_state_dict ------------------------------------------------------------------------


def trained(make):
    """An optimizer over three parameters that has taken two steps, and a copy of its state."""
    torch.manual_seed(0)
    params = [leaf(3, 2), leaf(2), leaf(4)]
    opt = make([{"params": params[:2]}, {"params": params[2:], "lr": 0.05}])
    for _ in range(2):
        for p in params:
            p.grad = torch.randn_like(p.data)
        opt.step()
    return opt, params


def frozen(opt):
    """Everything load_state_dict could change: the groups, and each state tensor's values."""
    groups = [dict(g) for g in opt.param_groups]
    state = {
        p: {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in s.items()}
        for p, s in opt.state.items()
    }
    return opt.param_groups, groups, opt.state, state


def assert_unchanged(opt, snapshot):
    groups_object, groups, state_object, state = snapshot
    assert opt.param_groups is groups_object and opt.state is state_object
    assert [dict(g) for g in opt.param_groups] == groups
    for p, s in state.items():
        for key, value in s.items():
            now = opt.state[p][key]
            assert torch.equal(now, value) if isinstance(value, torch.Tensor) else now == value


def sgd(params):
    return optim.SGD(params, lr=0.1, momentum=0.9)


def adam(params):
    return optim.Adam(params, lr=0.1, amsgrad=True)


def edit(state_dict, change):
    """A copy of a state dict (its dicts and lists; tensors shared) with change() applied."""
    copy = {
        "state": {i: dict(s) for i, s in state_dict["state"].items()},
        "param_groups": [dict(g, params=list(g["params"])) for g in state_dict["param_groups"]],
    }
    change(copy)
    return copy


BAD_STATE_DICTS = [
    ("not a dict", sgd, lambda sd: [sd], TypeError, r"takes the dict that state_dict\(\) returns"),
    ("no param_groups", sgd, lambda sd: {"state": sd["state"]}, KeyError, r"no 'param_groups'"),
    (
        "one group fewer",
        sgd,
        lambda sd: edit(sd, lambda c: c["param_groups"].pop()),
        ValueError,
        r"has 1 parameter groups, this optimizer has 2",
    ),
    (
        "a group of another size",
        sgd,
        lambda sd: edit(sd, lambda c: c["param_groups"][0]["params"].pop()),
        ValueError,
        r"param group 0 has 1 parameters in the state dict, 2 in this optimizer",
    ),
    (
        "a buffer of another shape",
        sgd,
        lambda sd: edit(sd, lambda c: c["state"][1].update(momentum_buffer=torch.zeros(3))),
        ValueError,
        r"parameter 1: 'momentum_buffer' is shape \(3,\), the parameter has shape \(2,\)",
    ),
    (
        "a buffer that is not a tensor",
        sgd,
        lambda sd: edit(sd, lambda c: c["state"][0].update(momentum_buffer=[1.0])),
        ValueError,
        r"'momentum_buffer' is a list",
    ),
    (
        "a state for no parameter",
        sgd,
        lambda sd: edit(sd, lambda c: c["state"].update({7: {}})),
        ValueError,
        r"parameter 7: no parameter group lists that index",
    ),
    (
        "a bad option",
        sgd,
        lambda sd: edit(sd, lambda c: c["param_groups"][1].update(lr=-1.0)),
        ValueError,
        r"param group 1: lr must be >= 0.0",
    ),
    (
        "an SGD state into Adam",
        adam,
        lambda sd: sgd_state_dict(),
        ValueError,
        r"has no 'step', 'exp_avg', 'exp_avg_sq'.*another kind of optimizer",
    ),
    (
        "amsgrad without its maximum",
        adam,
        lambda sd: edit(sd, lambda c: c["state"][2].pop("max_exp_avg_sq")),
        ValueError,
        r"parameter 2 has no 'max_exp_avg_sq'",
    ),
    (
        "a step that is not a number",
        adam,
        lambda sd: edit(sd, lambda c: c["state"][0].update(step="two")),
        ValueError,
        r"'step' must be a number",
    ),
]


def sgd_state_dict():
    opt, _ = trained(sgd)
    sd = opt.state_dict()
    sd["param_groups"] = [
        dict(g, betas=(0.9, 0.999), eps=1e-8, amsgrad=True) for g in sd["param_groups"]
    ]
    return sd


@pytest.mark.parametrize(
    "label, make, corrupt, error, match", BAD_STATE_DICTS, ids=[case[0] for case in BAD_STATE_DICTS]
)
def test_a_bad_state_dict_is_refused_and_the_optimizer_is_unchanged(
    label, make, corrupt, error, match
):
    source, _ = trained(make)
    target, _ = trained(make)
    for state in target.state.values():  # make the target's state differ from the source's
        for value in state.values():
            if isinstance(value, torch.Tensor) and value.dim():
                value.add_(1.0)
    snapshot = frozen(target)
    with pytest.raises(error, match=match):
        target.load_state_dict(corrupt(source.state_dict()))
    assert_unchanged(target, snapshot)


def test_torch_refuses_the_same_group_mistakes_with_the_same_types():
    params = [torch_leaf(3, 2), torch_leaf(2), torch_leaf(4)]
    opt = torch.optim.SGD([{"params": params[:2]}, {"params": params[2:]}], lr=0.1)
    sd = opt.state_dict()
    assert raised(lambda: opt.load_state_dict([sd])) is TypeError
    assert raised(lambda: opt.load_state_dict({"state": {}})) is KeyError
    assert (
        raised(lambda: opt.load_state_dict(edit(sd, lambda c: c["param_groups"].pop())))
        is ValueError
    )
    assert (
        raised(
            lambda: opt.load_state_dict(edit(sd, lambda c: c["param_groups"][0]["params"].pop()))
        )
        is ValueError
    )


def test_amsgrad_switched_on_after_steps_is_refused_before_any_update():
    """torch.optim fails here too (KeyError); tapegrad says why, and changes nothing."""
    ps = [tg.Tensor(torch.ones(3), requires_grad=True) for _ in range(2)]
    opt = tg.optim.Adam(ps, lr=0.1)
    for p in ps:
        p.grad = torch.ones(3)
    opt.step()
    opt.param_groups[0]["amsgrad"] = True
    before = [p.data.clone() for p in ps]
    steps = [opt.state[p]["step"].clone() for p in ps]
    with pytest.raises(KeyError, match="without amsgrad"):
        opt.step()
    assert all(torch.equal(p.data, b) for p, b in zip(ps, before))
    assert all(torch.equal(opt.state[p]["step"], s) for p, s in zip(ps, steps))
