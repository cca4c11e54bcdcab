"""tapegrad.nn against torch.nn: whole-network gradients, the course API, and the Module API.

Gradients are compared with torch.nn + torch autograd (the reference, used in
tests only) on identical weights in float64.
"""

from __future__ import annotations

import math

import pytest
import torch

import tapegrad as tg
from tapegrad import nn
from tapegrad.nn import LinearFunction

ACTIVATIONS = {
    "relu": (nn.ReLU, torch.nn.ReLU),
    "tanh": (nn.Tanh, torch.nn.Tanh),
    "sigmoid": (nn.Sigmoid, torch.nn.Sigmoid),
}
LOSSES = {"mse": (nn.MSELoss, torch.nn.MSELoss), "bce": (nn.BCELoss, torch.nn.BCELoss)}

TOL = dict(rtol=1e-12, atol=1e-14)  # float64: only summation order may differ


def twin_networks(sizes, activation, bias=True, last=None, dtype=torch.float64):
    """The same MLP in tapegrad and in torch, with torch's random weights copied into ours."""
    ours, theirs = [], []
    ours_act, theirs_act = ACTIVATIONS[activation]
    for index, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        ours.append(nn.Linear(n_in, n_out, bias=bias, dtype=dtype))
        theirs.append(torch.nn.Linear(n_in, n_out, bias=bias, dtype=dtype))
        if index < len(sizes) - 2:
            ours.append(ours_act())
            theirs.append(theirs_act())
    if last is not None:
        ours.append(ACTIVATIONS[last][0]())
        theirs.append(ACTIVATIONS[last][1]())
    ours, theirs = nn.Sequential(*ours), torch.nn.Sequential(*theirs)
    reference = dict(theirs.named_parameters())
    assert [name for name, _ in ours.named_parameters()] == list(reference)
    for name, p in ours.named_parameters():
        p.data.copy_(reference[name].detach())
    return ours, theirs


def assert_same_grads(ours, theirs):
    reference = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert p.grad is not None, name
        torch.testing.assert_close(p.grad, reference[name].grad, **TOL, msg=name)


# --- whole networks against torch ------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("loss_name", ["mse", "bce"])
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("bias", [True, False])
def test_network_gradients_match_torch(bias, activation, loss_name, reduction):
    g = torch.Generator().manual_seed(hash((bias, activation, loss_name, reduction)) % 2**31)
    torch.manual_seed(g.initial_seed())
    # BCE needs probabilities: end the network with a sigmoid.
    last = "sigmoid" if loss_name == "bce" else None
    ours, theirs = twin_networks([3, 6, 5, 2], activation, bias=bias, last=last)
    x = torch.randn(7, 3, generator=g, dtype=torch.float64)
    if loss_name == "bce":
        target = torch.rand(7, 2, generator=g, dtype=torch.float64)  # soft labels in [0, 1]
    else:
        target = torch.randn(7, 2, generator=g, dtype=torch.float64)

    x_ours = tg.Tensor(x.clone(), requires_grad=True)
    t_ours = tg.Tensor(target.clone(), requires_grad=True)
    loss = LOSSES[loss_name][0](reduction=reduction)(ours(x_ours), t_ours)
    loss.backward()

    x_ref = x.clone().requires_grad_(True)
    t_ref = target.clone().requires_grad_(True)
    loss_ref = LOSSES[loss_name][1](reduction=reduction)(theirs(x_ref), t_ref)
    loss_ref.backward()

    torch.testing.assert_close(loss.data, loss_ref.detach(), **TOL)
    assert_same_grads(ours, theirs)
    torch.testing.assert_close(x_ours.grad, x_ref.grad, **TOL)
    torch.testing.assert_close(t_ours.grad, t_ref.grad, **TOL)


@pytest.mark.parametrize("shape", [(4,), (2, 3, 4), (2, 1, 3, 4)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_on_batches_of_any_rank_matches_torch(shape, bias):
    """x of shape (..., in): every leading dimension is a batch dimension."""
    ours, theirs = twin_networks([4, 5, 3], "tanh", bias=bias)
    x = torch.randn(shape, dtype=torch.float64)
    target = torch.randn(shape[:-1] + (3,), dtype=torch.float64)
    x_ours = tg.Tensor(x.clone(), requires_grad=True)
    out = ours(x_ours)
    assert out.shape == target.shape
    nn.MSELoss()(out, tg.Tensor(target)).backward()
    x_ref = x.clone().requires_grad_(True)
    torch.nn.MSELoss()(theirs(x_ref), target).backward()
    assert_same_grads(ours, theirs)
    torch.testing.assert_close(x_ours.grad, x_ref.grad, **TOL)


@pytest.mark.parametrize("loss_name", ["mse", "bce"])
def test_losses_without_reduction_match_torch(loss_name):
    p = torch.rand(5, 2, dtype=torch.float64) * 0.8 + 0.1
    t = torch.rand(5, 2, dtype=torch.float64)
    seed = torch.randn(5, 2, dtype=torch.float64)
    ours, theirs = LOSSES[loss_name][0](reduction="none"), LOSSES[loss_name][1](reduction="none")
    p_ours, t_ours = (
        tg.Tensor(p.clone(), requires_grad=True),
        tg.Tensor(t.clone(), requires_grad=True),
    )
    loss = ours(p_ours, t_ours)
    loss.backward(seed)
    p_ref, t_ref = p.clone().requires_grad_(True), t.clone().requires_grad_(True)
    reference = theirs(p_ref, t_ref)
    reference.backward(seed)
    torch.testing.assert_close(loss.data, reference.detach(), **TOL)
    torch.testing.assert_close(p_ours.grad, p_ref.grad, **TOL)
    torch.testing.assert_close(t_ours.grad, t_ref.grad, **TOL)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_bce_at_saturated_predictions_matches_torch_exactly(reduction):
    """p = 0 or 1: torch clamps the logs at -100 and p (1 - p) at a float32 1e-12."""
    p = torch.tensor([[0.0], [1.0], [0.3], [1.0], [0.0]], dtype=torch.float64)
    t = torch.tensor([[0.0], [1.0], [1.0], [0.0], [0.5]], dtype=torch.float64)
    p_ours, t_ours = (
        tg.Tensor(p.clone(), requires_grad=True),
        tg.Tensor(t.clone(), requires_grad=True),
    )
    loss = nn.BCELoss(reduction=reduction)(p_ours, t_ours)
    loss.backward()
    p_ref, t_ref = p.clone().requires_grad_(True), t.clone().requires_grad_(True)
    reference = torch.nn.BCELoss(reduction=reduction)(p_ref, t_ref)
    reference.backward()
    assert torch.equal(loss.data, reference.detach())
    torch.testing.assert_close(p_ours.grad, p_ref.grad, **TOL)
    # dL/dt = log(1 - p) - log(p) with both logs clamped at -100, as in the loss: torch's target
    # gradient skips the clamp and gives +-inf at p = 0 or 1; ours is the derivative of the loss
    # that was computed, +-100 (scaled).
    inside = (p > 0) & (p < 1)
    torch.testing.assert_close(t_ours.grad[inside], t_ref.grad[inside], **TOL)
    assert torch.isinf(t_ref.grad[~inside]).all()
    scale = 1 / len(p) if reduction == "mean" else 1.0
    expected = torch.where(p == 0, 100.0, -100.0).to(torch.float64) * scale
    assert torch.equal(t_ours.grad[~inside], expected[~inside])


def test_linear_is_one_fused_node_on_the_tape():
    layer = nn.Linear(3, 2)
    with tg.Tape() as tape:
        layer(tg.tensor([[1.0, 2.0, 3.0]]))
    assert len(tape) == 1
    assert tape[0].op is LinearFunction
    assert tape[0].module is layer
    assert tape[0].inputs[1] is layer.weight and tape[0].inputs[2] is layer.bias


def test_linear_function_passes_gradcheck():
    x = tg.Tensor(torch.randn(3, 4, dtype=torch.float64), requires_grad=True)
    w = tg.Tensor(torch.randn(2, 4, dtype=torch.float64), requires_grad=True)
    b = tg.Tensor(torch.randn(2, dtype=torch.float64), requires_grad=True)
    assert tg.gradcheck(LinearFunction.apply, x, w, b)
    assert tg.gradcheck(lambda x, w: LinearFunction.apply(x, w, None), x, w)


def test_gradients_accumulate_over_two_backwards():
    ours, theirs = twin_networks([2, 4, 1], "relu")
    x = torch.randn(5, 2, dtype=torch.float64)
    t = torch.randn(5, 1, dtype=torch.float64)
    for _ in range(2):
        nn.MSELoss()(ours(x), t).backward()
        torch.nn.MSELoss()(theirs(x), t).backward()
    assert_same_grads(ours, theirs)


# --- the course API ----------------------------------------------------------------


@pytest.mark.parametrize("loss_name", ["mse", "bce"])
def test_seed_style_backward_gives_the_same_gradients(loss_name):
    """``model.backward(loss_fn.backward())`` == ``loss.backward()``, bit for bit."""
    ours, _ = twin_networks([2, 8, 8, 1], "tanh", last="sigmoid")
    x = torch.rand(10, 2, dtype=torch.float64)
    t = (torch.rand(10, 1, dtype=torch.float64) > 0.5).double()
    loss_fn = LOSSES[loss_name][0]()

    loss_fn(ours(x), t).backward()
    expected = [p.grad.clone() for p in ours.parameters()]
    ours.zero_grad()

    loss_fn(ours(x), t)
    grad_prediction = loss_fn.backward()
    assert isinstance(grad_prediction, torch.Tensor) and grad_prediction.shape == (10, 1)
    assert ours.backward(grad_prediction) is None
    for p, grad in zip(ours.parameters(), expected):
        assert torch.equal(p.grad, grad)


def test_loss_backward_is_dloss_dprediction():
    p = torch.rand(6, 1, dtype=torch.float64) * 0.8 + 0.1
    t = torch.rand(6, 1, dtype=torch.float64)
    for ours, theirs in (
        (nn.MSELoss(reduction="sum"), torch.nn.MSELoss(reduction="sum")),
        (nn.BCELoss(), torch.nn.BCELoss()),
    ):
        ours(tg.Tensor(p), tg.Tensor(t))
        reference = p.clone().requires_grad_(True)
        theirs(reference, t).backward()
        torch.testing.assert_close(ours.backward(), reference.grad, **TOL)


def test_lossmse_is_the_course_name_for_mseloss():
    assert nn.LossMSE is nn.MSELoss


def test_param_returns_parameter_gradient_pairs():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    pairs = model.param()
    assert [p for p, _ in pairs] == list(model.parameters())
    assert all(g is None for _, g in pairs)
    nn.MSELoss()(model(torch.rand(4, 2)), torch.rand(4, 1)).backward()
    pairs = model.param()
    assert len(pairs) == 4
    for p, g in pairs:
        assert g is p.grad and g.shape == p.shape
    assert nn.ReLU().param() == []


def test_backward_before_any_forward_says_so():
    with pytest.raises(RuntimeError, match="has not been called"):
        nn.Linear(2, 1).backward(torch.ones(1, 1))
    with pytest.raises(RuntimeError, match="call the loss"):
        nn.MSELoss().backward()


def test_backward_after_a_forward_under_no_grad_says_so():
    model = nn.Linear(2, 1)
    with tg.no_grad():
        model(torch.rand(3, 2))
    with pytest.raises(RuntimeError, match="not .*recorded"):
        model.backward(torch.ones(3, 1))


# --- registration, names, traversal --------------------------------------------------


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 4, bias=False))
        self.head = nn.Linear(4, 1)
        self.scale = 3.0  # a plain attribute: not registered

    def forward(self, x):
        return self.head(self.body(x))


class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 4, bias=False)
        )
        self.head = torch.nn.Linear(4, 1)
        self.scale = 3.0

    def forward(self, x):
        return self.head(self.body(x))


TorchNet.__name__ = "Net"  # so that the two reprs can be compared as text


def test_named_parameters_have_torchs_dotted_names():
    names = [name for name, _ in Net().named_parameters()]
    assert names == [name for name, _ in TorchNet().named_parameters()]
    assert names == ["body.0.weight", "body.0.bias", "body.2.weight", "head.weight", "head.bias"]
    model = Net()
    assert list(model.parameters()) == [p for _, p in model.named_parameters()]
    assert [n for n, _ in model.named_parameters(recurse=False)] == []
    assert [n for n, _ in model.head.named_parameters()] == ["weight", "bias"]


def test_a_shared_parameter_is_listed_once():
    head = nn.Linear(4, 1)
    shared = nn.Sequential(head, nn.Tanh(), head)
    assert [n for n, _ in shared.named_parameters()] == ["0.weight", "0.bias"]
    assert len(list(shared.modules())) == 3  # the Sequential, the Linear, the Tanh


def test_children_and_modules_follow_torch():
    ours, theirs = Net(), TorchNet()
    assert [type(m).__name__ for m in ours.children()] == [
        type(m).__name__ for m in theirs.children()
    ]
    assert [type(m).__name__ for m in ours.modules()] == [
        type(m).__name__ for m in theirs.modules()
    ]
    assert [name for name, _ in ours.named_modules()] == [
        name for name, _ in theirs.named_modules()
    ]
    assert [name for name, _ in ours.named_children()] == ["body", "head"]


def test_assignment_registers_and_reassignment_follows_torch():
    model = Net()
    extra = model.extra = nn.Parameter(torch.zeros(2))
    assert "extra" in dict(model.named_parameters())
    # A tensor that is not a Parameter would silently drop 'extra' from the optimizer: refused.
    with pytest.raises(TypeError, match="cannot assign 'torch.FloatTensor' as parameter 'extra'"):
        model.extra = torch.zeros(2)
    assert dict(model.named_parameters())["extra"] is extra and model.extra is extra
    model.extra = None  # kept registered, as None (like bias=False)
    assert "extra" not in dict(model.named_parameters()) and model.extra is None
    assert "extra" in model._parameters
    model.head = nn.Tanh()
    assert [n for n, _ in model.named_parameters()] == [
        "body.0.weight",
        "body.0.bias",
        "body.2.weight",
    ]
    del model.body
    assert list(model.parameters()) == []
    assert [n for n, _ in model.named_children()] == ["head"]


def test_assigning_before_init_says_call_super_init():
    class Broken(nn.Module):
        def __init__(self):
            self.layer = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Broken()


def test_sequential_is_indexable_iterable_and_has_len():
    layers = [nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)]
    model = nn.Sequential(*layers)
    assert len(model) == 3
    assert list(model) == layers
    assert model[0] is layers[0] and model[-1] is layers[2]
    head = model[:2]
    assert isinstance(head, nn.Sequential) and list(head) == layers[:2]
    x = torch.rand(4, 2)
    torch.testing.assert_close(model(x).data, layers[2](layers[1](layers[0](x))).data)
    with pytest.raises(TypeError, match="argument 1"):
        nn.Sequential(nn.ReLU(), torch.nn.ReLU())


# --- gradients, modes, dtypes, devices -------------------------------------------------


def test_zero_grad():
    model = Net()
    nn.MSELoss()(model(torch.rand(3, 2)), torch.rand(3, 1)).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_train_and_eval_reach_every_submodule():
    model = Net()
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    model.body.train(False)
    assert model.training and model.head.training and not model.body[0].training


def test_to_double_and_float_convert_parameters_and_gradients():
    model = Net()
    assert all(p.dtype == torch.float32 for p in model.parameters())
    nn.MSELoss()(model(torch.rand(3, 2)), torch.rand(3, 1)).backward()
    weight = model.head.weight
    assert model.double() is model
    assert model.head.weight is weight  # in place: optimizers keep working
    assert all(
        p.dtype == torch.float64 and p.grad.dtype == torch.float64 for p in model.parameters()
    )
    assert model(torch.rand(3, 2, dtype=torch.float64)).dtype == torch.float64
    model.float()
    assert all(p.dtype == torch.float32 for p in model.parameters())
    model.to(dtype=torch.float64)
    assert all(p.dtype == torch.float64 for p in model.parameters())
    model.to(torch.float32)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    model.to("cpu")
    assert all(p.device.type == "cpu" for p in model.parameters())
    with pytest.raises(TypeError, match="floating-point"):
        model.to(dtype=torch.int64)


def test_wrong_input_dtype_names_the_layer_and_the_fix():
    with pytest.raises(TypeError, match=r"Linear\(in_features=2.*float64.*model.double"):
        nn.Linear(2, 1)(torch.rand(3, 2, dtype=torch.float64))


def test_wrong_input_width_names_the_layer_and_the_shape():
    with pytest.raises(ValueError, match=r"Linear\(in_features=2.*2 features.*\(3, 5\)"):
        nn.Linear(2, 1)(torch.rand(3, 5))


@pytest.mark.cuda
def test_to_cuda_and_back():
    model = Net().to("cuda")
    assert all(p.device.type == "cuda" for p in model.parameters())
    out = model(torch.rand(3, 2, device="cuda"))
    nn.MSELoss()(out, torch.rand(3, 1, device="cuda")).backward()
    assert all(p.grad.device.type == "cuda" for p in model.parameters())
    model.to("cpu")
    assert all(p.device.type == "cpu" and p.grad.device.type == "cpu" for p in model.parameters())


# --- modules and losses take tapegrad Tensors or plain torch tensors ----------------------


def test_modules_and_losses_accept_torch_tensors_and_tapegrad_tensors():
    model = Net()
    x = torch.rand(5, 2)
    t = torch.rand(5, 1)
    expected = model(tg.Tensor(x))
    from_torch = model(x)
    assert isinstance(from_torch, tg.Tensor)
    assert torch.equal(from_torch.data, expected.data)
    for act in (nn.ReLU(), nn.Tanh(), nn.Sigmoid()):
        assert torch.equal(act(x).data, act(tg.Tensor(x)).data)
    loss_fn = nn.MSELoss()
    values = {
        loss_fn(p, target).item() for p in (expected, expected.data) for target in (t, tg.Tensor(t))
    }
    assert len(values) == 1
    bce = nn.BCELoss()
    # -log(1/2) for every element
    assert bce(torch.full((2, 1), 0.5), torch.ones(2, 1)).item() == pytest.approx(math.log(2))


def test_loss_refuses_mismatched_shapes_and_dtypes():
    with pytest.raises(ValueError, match=r"\(4, 1\).*\(4,\)"):
        nn.MSELoss()(torch.rand(4, 1), torch.rand(4))
    with pytest.raises(TypeError, match="float64"):
        nn.BCELoss()(torch.rand(4, 1), torch.rand(4, 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="average")


# --- Linear ----------------------------------------------------------------------


def test_linear_xavier_init_and_reset_parameters():
    layer = nn.Linear(30, 20)
    bound = (6 / (30 + 20)) ** 0.5
    w = layer.weight.data
    assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound
    # the variance of U(-a, a) is a^2 / 3
    assert w.var().item() == pytest.approx(bound**2 / 3, rel=0.15)
    assert not layer.bias.data.any()
    a = nn.Linear(3, 2, generator=torch.Generator().manual_seed(5))
    b = nn.Linear(3, 2, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a.weight.data, b.weight.data)
    a.weight.data.fill_(7.0)
    a.bias.data.fill_(7.0)
    a.reset_parameters(torch.Generator().manual_seed(5))
    assert torch.equal(a.weight.data, b.weight.data) and not a.bias.data.any()


def test_linear_without_bias():
    layer = nn.Linear(3, 2, bias=False)
    assert layer.bias is None
    assert [n for n, _ in layer.named_parameters()] == ["weight"]
    assert repr(layer) == "Linear(in_features=3, out_features=2, bias=False)"
    layer.reset_parameters()


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, "3"])
def test_linear_refuses_bad_sizes(bad):
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(bad, 2)


# --- state_dict -------------------------------------------------------------------


def test_state_dict_names_and_values_match_torch():
    ours, theirs = Net(), TorchNet()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    x = torch.rand(6, 2)
    torch.testing.assert_close(ours(x).data, theirs(x).detach())
    # the state dict shares storage with the parameters, as torch's does
    ours.state_dict()["head.bias"].fill_(1.5)
    assert (ours.head.bias.data == 1.5).all()


def test_load_state_dict_keeps_dtype_and_device():
    model = Net().double()
    source = Net()  # float32
    model.load_state_dict(source.state_dict())
    for (name, p), q in zip(model.named_parameters(), source.parameters()):
        assert p.dtype == torch.float64 and p.device == q.device, name
        torch.testing.assert_close(p.data, q.data.double())
    weight = model.head.weight
    model.load_state_dict(source.state_dict())
    assert model.head.weight is weight  # copied into, not replaced


def snapshot(model):
    return {name: p.data.clone() for name, p in model.named_parameters()}


def assert_unchanged(model, before):
    after = snapshot(model)
    assert list(after) == list(before)
    for name in before:
        assert torch.equal(after[name], before[name]), name


@pytest.mark.parametrize("problem", ["missing", "unexpected", "shape", "not a tensor"])
def test_load_state_dict_errors_name_the_key_and_change_nothing(problem):
    model = Net()
    before = snapshot(model)
    state = {name: torch.full_like(value, 9.0) for name, value in Net().state_dict().items()}
    if problem == "missing":
        del state["body.2.weight"]
        match = "missing keys: body.2.weight"
    elif problem == "unexpected":
        state["body.1.weight"] = torch.zeros(3)
        match = "unexpected keys: body.1.weight"
    elif problem == "shape":
        state["head.weight"] = torch.zeros(4, 1)
        match = r"head.weight: shape \(4, 1\) in the state dict, \(1, 4\) in the model"
    else:
        state["head.bias"] = [0.0]
        match = "head.bias: expected a tensor, got list"
    with pytest.raises(RuntimeError, match=match) as info:
        model.load_state_dict(state)
    assert "unchanged" in str(info.value)
    assert_unchanged(model, before)  # in particular, the keys before the bad one were not copied


def test_load_state_dict_non_strict_reports_and_loads_the_rest():
    model = Net()
    state = {name: torch.full_like(value, 2.0) for name, value in Net().state_dict().items()}
    del state["head.bias"]
    state["extra"] = torch.zeros(1)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert missing == ["head.bias"] and unexpected == ["extra"]
    assert (model.head.weight.data == 2.0).all()
    result = model.load_state_dict(state, strict=False)  # torch's field names
    assert result.missing_keys == ["head.bias"] and result.unexpected_keys == ["extra"]
    assert tuple(model.load_state_dict(Net().state_dict())) == ([], [])
    with pytest.raises(RuntimeError, match="head.weight: shape"):
        model.load_state_dict({"head.weight": torch.zeros(3)}, strict=False)
    with pytest.raises(TypeError, match="mapping"):
        model.load_state_dict([("head.bias", torch.zeros(1))])


def test_load_state_dict_accepts_tapegrad_tensors():
    model, source = Net(), Net()
    model.load_state_dict({name: tg.Tensor(value) for name, value in source.state_dict().items()})
    assert all(torch.equal(p.data, q.data) for p, q in zip(model.parameters(), source.parameters()))


def test_load_state_dict_is_not_recorded():
    model = Net()
    model.load_state_dict(Net().state_dict())
    assert all(p.is_leaf and p.requires_grad for p in model.parameters())


# --- repr -------------------------------------------------------------------------


def test_repr_is_torchs_tree():
    assert repr(Net()) == repr(TorchNet())
    ours = nn.Sequential(
        nn.Linear(2, 25), nn.ReLU(), nn.Linear(25, 1, bias=False), nn.Tanh(), nn.Sigmoid()
    )
    theirs = torch.nn.Sequential(
        torch.nn.Linear(2, 25),
        torch.nn.ReLU(),
        torch.nn.Linear(25, 1, bias=False),
        torch.nn.Tanh(),
        torch.nn.Sigmoid(),
    )
    assert repr(ours) == repr(theirs)
    assert repr(nn.MSELoss()) == repr(torch.nn.MSELoss()) == "MSELoss()"
    assert repr(nn.MSELoss(reduction="sum")) == "MSELoss(reduction='sum')"


def test_repr_puts_extra_repr_above_the_children():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.ReLU()

        def extra_repr(self):
            return "factor=2"

    class TorchScaled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = torch.nn.ReLU()

        def extra_repr(self):
            return "factor=2"

    TorchScaled.__name__ = "Scaled"
    assert repr(Scaled()) == repr(TorchScaled())
