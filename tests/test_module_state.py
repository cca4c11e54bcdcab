"""state_dict and load_state_dict with buffers and shared modules, against torch.nn.

torch's state_dict does not deduplicate: a module reachable under two names
appears under both. load_state_dict must accept that, report torch's
missing and unexpected keys, and change nothing when it refuses.
"""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch

import tapegrad as tg
from tapegrad import nn

LIBS = {"ours": nn, "torch": torch.nn}


def data(t):
    return t.data if isinstance(t, tg.Tensor) else t


def shared_net(lib):
    """Shared layers under several names, buffers of every kind, None entries, nested containers."""
    shared = lib.Linear(3, 3)

    class Stats(lib.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("running_mean", torch.zeros(3))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
            self.register_buffer("cache", torch.zeros(4), persistent=False)
            self.register_buffer("unset", None)
            self.register_parameter("gain", None)
            self.scale = lib.Parameter(torch.tensor(1.0))

    class Net(lib.Module):
        def __init__(self):
            super().__init__()
            self.encoder = lib.Sequential(shared, lib.ReLU(), Stats())
            self.decoder = lib.ModuleList([shared, lib.Linear(3, 2)])
            self.heads = lib.ModuleDict({"main": lib.Linear(2, 1), "tied": shared})
            self.stats = self.encoder[2]
            self.extra = lib.ParameterList([torch.ones(2)])
            self.empty = None

    return Net()


def twins():
    ours, theirs = shared_net(nn), shared_net(torch.nn)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def snapshot(model) -> dict:
    return {name: data(t).clone() for name, t in model.state_dict().items()}


def assert_same_values(model, values: dict):
    state = model.state_dict()
    assert list(state) == list(values)
    for name, expected in values.items():
        assert torch.equal(data(state[name]), expected), name


def test_state_dict_keys_match_torch_with_a_shared_module_under_every_name():
    ours, theirs = twins()
    keys = list(ours.state_dict())
    assert keys == list(theirs.state_dict())
    for name in (
        "encoder.0.weight",
        "decoder.0.weight",
        "heads.tied.weight",
        "encoder.2.running_mean",
        "stats.running_mean",
        "stats.num_batches_tracked",
    ):
        assert name in keys
    assert not any(k.endswith(("cache", "unset", "gain")) for k in keys)
    # parameters() and named_parameters() still list the shared layer once, like torch's
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert len(list(ours.parameters())) == len(list(theirs.parameters()))


def test_state_dict_values_are_the_modules_own_storage():
    ours, _ = twins()
    state = ours.state_dict()
    assert state["encoder.0.weight"] is ours.encoder[0].weight.data
    assert state["heads.tied.weight"] is state["decoder.0.weight"]
    assert state["stats.num_batches_tracked"] is ours.stats.num_batches_tracked
    kept = ours.state_dict(keep_vars=True)
    assert kept["heads.tied.bias"] is ours.heads["tied"].bias
    assert isinstance(kept["encoder.0.weight"], nn.Parameter)


def test_state_dict_prefix_and_destination_match_torch():
    ours, theirs = twins()
    assert list(ours.state_dict(prefix="model.")) == list(theirs.state_dict(prefix="model."))
    destination = OrderedDict(first=torch.zeros(1))
    assert ours.state_dict(destination=destination) is destination
    assert list(destination)[0] == "first" and len(destination) == len(ours.state_dict()) + 1


def test_loading_torchs_state_dict_gives_torchs_values_buffers_included():
    ours, theirs = shared_net(nn), shared_net(torch.nn)
    with torch.no_grad():
        for t in theirs.state_dict().values():
            t.copy_(torch.randint(0, 9, t.shape))
    result = ours.load_state_dict(theirs.state_dict())
    assert tuple(result) == ([], []) and repr(result) == "<All keys matched successfully>"
    for name, t in theirs.state_dict().items():
        assert torch.equal(data(ours.state_dict()[name]), t), name
    assert ours.stats.num_batches_tracked.dtype == torch.long


def test_loading_torch_parameters_that_require_grad_brings_no_torch_autograd_in():
    ours, theirs = shared_net(nn), shared_net(torch.nn)
    ours.load_state_dict(theirs.state_dict(keep_vars=True))
    assert not any(
        data(t).requires_grad or data(t).grad_fn is not None for t in ours.state_dict().values()
    )
    ours.register_buffer("tracked", torch.ones(2, requires_grad=True))
    assert not ours.tracked.requires_grad


def test_a_models_own_state_dict_loads_back():
    ours, _ = twins()
    before = snapshot(ours)
    assert tuple(ours.load_state_dict(ours.state_dict())) == ([], [])
    assert_same_values(ours, before)


def test_two_names_of_one_shared_tensor_with_different_values_the_later_wins_as_in_torch():
    ours, theirs = twins()
    results = {}
    for key, model in (("ours", ours), ("torch", theirs)):
        state = {k: data(v).clone() for k, v in model.state_dict().items()}
        state["encoder.0.bias"].fill_(1.0)
        state["decoder.0.bias"].fill_(2.0)
        state["heads.tied.bias"].fill_(3.0)
        model.load_state_dict(state)
        results[key] = data(model.heads["tied"].bias).tolist()
    assert results["ours"] == results["torch"] == [3.0, 3.0, 3.0]


EDITS = {
    "drop one name of the shared layer": lambda s: s.pop("decoder.0.weight"),
    "drop a buffer": lambda s: s.pop("stats.running_mean"),
    "drop every name of a buffer": lambda s: (
        s.pop("stats.running_mean"),
        s.pop("encoder.2.running_mean"),
    ),
    "a key under a layer without parameters": lambda s: s.__setitem__(
        "encoder.1.weight", torch.zeros(1)
    ),
    "a key under a missing child": lambda s: s.__setitem__("heads.other.weight", torch.zeros(1)),
    "a top-level stray key": lambda s: s.__setitem__("bogus", torch.zeros(1)),
    "a non-persistent buffer's key": lambda s: s.__setitem__("stats.cache", torch.zeros(4)),
    "a None buffer's key": lambda s: s.__setitem__("stats.unset", torch.zeros(1)),
    "a None parameter's key": lambda s: s.__setitem__("stats.gain", torch.zeros(1)),
    "a key under a None child": lambda s: s.__setitem__("empty.weight", torch.zeros(1)),
    "a deeper stray key": lambda s: s.__setitem__("encoder.0.weight.extra", torch.zeros(1)),
    "several at once, out of order": lambda s: (
        s.__setitem__("zzz", torch.zeros(1)),
        s.__setitem__("decoder.5.w", torch.zeros(1)),
        s.__setitem__("aaa", torch.zeros(1)),
        s.pop("heads.main.bias"),
        s.pop("encoder.0.bias"),
    ),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_missing_and_unexpected_keys_match_torch(edit):
    ours, theirs = twins()
    results = {}
    for key, model in (("ours", ours), ("torch", theirs)):
        state = OrderedDict((k, data(v).clone() + 1) for k, v in model.state_dict().items())
        EDITS[edit](state)
        with pytest.raises(RuntimeError):
            model.load_state_dict(state)
        results[key] = model.load_state_dict(state, strict=False)
    assert tuple(results["ours"]) == tuple(results["torch"])
    assert results["ours"].missing_keys == results["torch"].missing_keys
    assert any(results["ours"])
    for name, t in theirs.state_dict().items():  # non-strict loads the rest, as torch does
        assert torch.equal(data(ours.state_dict()[name]), t), name


@pytest.mark.parametrize(
    "problem",
    ["missing", "unexpected", "shape", "not a tensor", "shape of a buffer", "missing second name"],
)
def test_a_refused_state_dict_changes_nothing_buffers_included(problem):
    model, _ = twins()
    before = snapshot(model)
    state = {k: data(v).clone() + 5 for k, v in model.state_dict().items()}
    match = {
        "missing": "missing keys: stats.running_mean",
        "unexpected": "unexpected keys: stats.cache",
        "shape": r"decoder.1.weight: shape \(3, 2\) in the state dict, \(2, 3\) in the model",
        "not a tensor": "stats.scale: expected a tensor, got float",
        "shape of a buffer": r"encoder.2.running_mean: shape \(4,\)",
        "missing second name": "missing keys: heads.tied.weight",
    }[problem]
    if problem == "missing":
        del state["stats.running_mean"]
    elif problem == "unexpected":
        state["stats.cache"] = torch.zeros(4)
    elif problem == "shape":
        state["decoder.1.weight"] = torch.zeros(3, 2)
    elif problem == "not a tensor":
        state["stats.scale"] = 2.0
    elif problem == "shape of a buffer":
        state["encoder.2.running_mean"] = torch.zeros(4)
    else:
        del state["heads.tied.weight"]
    with pytest.raises(RuntimeError, match=match) as info:
        model.load_state_dict(state)
    assert "unchanged" in str(info.value)
    assert_same_values(model, before)


def test_shape_errors_are_reported_even_when_not_strict():
    for key, lib in LIBS.items():
        model = shared_net(lib)
        before = snapshot(model)
        state = {k: data(v).clone() + 1 for k, v in model.state_dict().items()}
        state["heads.main.weight"] = torch.zeros(5)
        with pytest.raises(RuntimeError, match="heads.main.weight"):
            model.load_state_dict(state, strict=False)
        if key == "ours":  # torch has copied the other keys by then; we copy nothing
            assert_same_values(model, before)


def test_a_zero_dim_value_loads_from_a_one_element_tensor_as_in_torch():
    for lib in LIBS.values():
        model = shared_net(lib)
        state = {k: data(v).clone() for k, v in model.state_dict().items()}
        state["stats.scale"] = torch.tensor([4.0])
        model.load_state_dict(state)
        assert data(model.stats.scale).item() == 4.0 and model.stats.scale.dim() == 0


def test_load_state_dict_refuses_what_is_not_a_state_dict():
    model = shared_net(nn)
    with pytest.raises(TypeError, match="mapping"):
        model.load_state_dict([("stats.scale", torch.zeros(()))])
    with pytest.raises(TypeError):
        shared_net(torch.nn).load_state_dict([("stats.scale", torch.zeros(()))])
    with pytest.raises(TypeError, match="dotted names, got 3"):
        model.load_state_dict({3: torch.zeros(1)})


def test_tapegrad_save_and_load_keep_buffers_and_every_name(tmp_path):
    model, _ = twins()
    path = tmp_path / "net.pt"
    tg.save(model, path)
    state = tg.load(path)
    assert list(state) == list(model.state_dict())
    fresh = shared_net(nn)
    assert tuple(fresh.load_state_dict(state)) == ([], [])
    assert_same_values(fresh, snapshot(model))


def _with_extra_state(lib, get: bool = True, set_: bool = True):
    """A layer keeping a step counter beside its tensors, through torch's extra-state hooks."""
    attributes: dict = {}
    if get:
        attributes["get_extra_state"] = lambda self: {"steps": self.steps}
    if set_:

        def set_extra_state(self, state):
            if not isinstance(state, dict):
                raise ValueError(f"extra state must be a dict, got {state!r}")
            self.steps = state["steps"]

        attributes["set_extra_state"] = set_extra_state
    kind = type("Counted", (lib.Linear,), attributes)
    model = lib.Sequential(kind(2, 1), lib.Tanh())
    model[0].steps = 7
    return model


def _extra_state_story(lib) -> list:
    seen = []
    model = _with_extra_state(lib)
    state = model.state_dict()
    seen.append(("keys", list(state), state["0._extra_state"]))
    other = _with_extra_state(lib)
    other[0].steps = 0
    seen.append(("loaded", tuple(other.load_state_dict(state)), other[0].steps))
    seen.append(
        (
            "missing",
            tuple(
                other.load_state_dict(
                    {k: v for k, v in state.items() if k != "0._extra_state"}, strict=False
                )
            ),
        )
    )
    before = other[0].weight.data.clone()
    bad = dict(state, **{"0._extra_state": 3, "0.weight": state["0.weight"] + 1})
    with pytest.raises(ValueError):
        other.load_state_dict(bad)
    if lib is nn:  # torch has copied the weight by then; tapegrad puts it back
        assert torch.equal(other[0].weight.data, before)
    only_get = _with_extra_state(lib, set_=False)
    seen.append(
        ("no set_extra_state: unexpected", tuple(only_get.load_state_dict(state, strict=False)))
    )
    with pytest.raises(RuntimeError):
        only_get.load_state_dict(state)
    plain = lib.Linear(2, 1)
    with pytest.raises(RuntimeError):
        plain.get_extra_state()
    return seen


def test_extra_state_is_saved_and_loaded_as_torch():
    assert _extra_state_story(nn) == _extra_state_story(torch.nn)


def _migration_story(lib) -> list:
    """set_extra_state that fixes up its module's freshly loaded tensors (an old format)."""

    class Migrating(lib.Module):
        def __init__(self):
            super().__init__()
            self.w = lib.Parameter(torch.zeros(2))
            self.after = lib.Linear(1, 1)  # loaded after this module's own tensors

        def get_extra_state(self):
            return {"version": 2}

        def set_extra_state(self, state):
            self.seen = self.w.data.tolist()
            if state["version"] < 2:
                self.w.data.neg_()

    model = Migrating()
    state = {"w": torch.tensor([1.0, 2.0]), "_extra_state": {"version": 1}}
    state.update({f"after.{k}": v + 1 for k, v in model.after.state_dict().items()})
    model.load_state_dict(state)
    return [model.seen, model.w.data.tolist()]


def test_set_extra_state_runs_after_its_modules_tensors_are_loaded_as_torch():
    assert _migration_story(nn) == _migration_story(torch.nn) == [[1.0, 2.0], [-1.0, -2.0]]


def _set_extra_state_changes_the_model(lib) -> list:
    """set_extra_state that converts its module, rebuilds a child, replaces a sibling's
    parameter: what it leaves is then loaded, as torch walks (a module, then its children)."""

    class Precise(lib.Module):
        def __init__(self):
            super().__init__()
            self.body = lib.Linear(2, 2)
            self.precision = "float32"

        def get_extra_state(self):
            return self.precision

        def set_extra_state(self, precision):
            self.precision = precision
            self.to(getattr(torch, precision))
            self.body = lib.Linear(2, 2).to(getattr(torch, precision))  # a fresh child

    class Meddling(lib.Module):
        def __init__(self):
            super().__init__()
            self.w = lib.Parameter(torch.zeros(2))

        def get_extra_state(self):
            return 0

        def set_extra_state(self, state):
            root.later.w = lib.Parameter(torch.full((2,), 9.0))

    root = lib.Module()
    root.net, root.meddling, root.later = Precise(), Meddling(), lib.Module()
    root.later.w = lib.Parameter(torch.zeros(2))
    state = {
        "net.body.weight": torch.full((2, 2), 0.5, dtype=torch.float64),
        "net.body.bias": torch.zeros(2, dtype=torch.float64),
        "net._extra_state": "float64",
        "meddling.w": torch.ones(2),
        "meddling._extra_state": 0,
        "later.w": torch.full((2,), 5.0),
    }
    root.load_state_dict(state)
    values = [root.net.body.weight, root.meddling.w, root.later.w]
    return [(t.dtype, t.data.tolist()) for t in values]


def test_set_extra_state_may_change_the_model_before_the_rest_loads_as_torch():
    ours = _set_extra_state_changes_the_model(nn)
    assert ours == _set_extra_state_changes_the_model(torch.nn)
    assert ours[0] == (torch.float64, [[0.5, 0.5], [0.5, 0.5]]) and ours[2][1] == [5.0, 5.0]


def test_a_checkpoint_of_another_size_is_refused_before_set_extra_state_could_resize():
    # torch calls set_extra_state as it walks, so one that rebuilds a child to the saved size
    # makes the checkpoint fit; tapegrad checks first, unchanged on refusal, and says so.
    class Resizable(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.n, self.layer = n, nn.Linear(1, n)

        def get_extra_state(self):
            return self.n

        def set_extra_state(self, n):
            if n != self.n:
                self.n, self.layer = n, nn.Linear(1, n)

    small = Resizable(3)
    before = small.layer.weight.data.clone()
    with pytest.raises(RuntimeError, match="must be rebuilt before loading"):
        small.load_state_dict(Resizable(4).state_dict())
    assert small.n == 3 and torch.equal(small.layer.weight.data, before)
