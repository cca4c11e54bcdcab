"""Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict against torch.nn's.

The same edits are made to a tapegrad container and to a torch one; after
each, the two must hold the same layers under the same names.
"""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch

import tapegrad as tg
from tapegrad import nn

LIBS = {"ours": nn, "torch": torch.nn}


def outcome(action):
    try:
        action()
    except Exception as error:  # noqa: BLE001 (the type is what is compared)
        return "error", type(error)
    return "ok", None


def names(pairs) -> list:
    return [name for name, _ in pairs]


def layers(lib):
    """Layer k is Linear(k, 1), so a layer is recognised by its in_features."""
    return {k: lib.Linear(k, 1) for k in range(1, 20)}


def sizes(modules) -> list:
    return [m.in_features for m in modules]


def view(container) -> tuple:
    """What a list-like container of Linears holds, and under which names."""
    return (
        type(container).__name__,
        len(container),
        sizes(container),
        names(container.named_children()),
        names(container.named_parameters()),
    )


# --- ModuleList ----------------------------------------------------------------------

LIST_EDITS = [
    ("append", lambda c, L: c.append(L[3])),
    ("extend", lambda c, L: c.extend([L[4], L[5]])),
    ("insert at 0", lambda c, L: c.insert(0, L[6])),
    ("insert in the middle", lambda c, L: c.insert(2, L[7])),
    ("insert at the end", lambda c, L: c.insert(len(c), L[8])),
    ("set an item", lambda c, L: c.__setitem__(1, L[9])),
    ("set the last item", lambda c, L: c.__setitem__(-1, L[10])),
    ("delete the first", lambda c, L: c.__delitem__(0)),
    ("delete every other", lambda c, L: c.__delitem__(slice(None, None, 2))),
    ("pop", lambda c, L: c.pop(1)),
    ("+=", lambda c, L: c.__iadd__([L[11], L[12], L[11]])),
    ("delete a slice", lambda c, L: c.__delitem__(slice(1, 3))),
    ("append a shared layer", lambda c, L: c.append(L[12])),
]


def test_module_list_edits_match_torch_step_by_step():
    pools = {key: layers(lib) for key, lib in LIBS.items()}
    lists = {key: lib.ModuleList([pools[key][1], pools[key][2]]) for key, lib in LIBS.items()}
    assert view(lists["ours"]) == view(lists["torch"])
    for label, edit in LIST_EDITS:
        for key in LIBS:
            edit(lists[key], pools[key])
        assert view(lists["ours"]) == view(lists["torch"]), label
        ours, theirs = lists["ours"], lists["torch"]
        assert ours[-1].in_features == theirs[-1].in_features
        assert view(ours[1:3]) == view(theirs[1:3]) and view(ours[::-1]) == view(theirs[::-1])
        assert view(ours + [pools["ours"][13]]) == view(theirs + [pools["torch"][13]])
        assert repr(ours) == repr(theirs)
    assert sizes(lists["ours"]) == [7, 12, 11, 12]  # the edits really did something


def test_module_list_repr_compresses_repeats_like_torch():
    for n in (0, 1, 3):
        ours = nn.ModuleList([nn.ReLU() for _ in range(n)] + [nn.Linear(2, 2), nn.ReLU()])
        theirs = torch.nn.ModuleList(
            [torch.nn.ReLU() for _ in range(n)] + [torch.nn.Linear(2, 2), torch.nn.ReLU()]
        )
        assert repr(ours) == repr(theirs)
    assert repr(nn.ModuleList()) == repr(torch.nn.ModuleList()) == "ModuleList()"


LIST_MISTAKES = {
    "index out of range": lambda c, lib: c[5],
    "negative index out of range": lambda c, lib: c[-4],
    "string index": lambda c, lib: c["0"],
    "set a number": lambda c, lib: c.__setitem__(0, 3),
    "set out of range": lambda c, lib: c.__setitem__(7, lib.ReLU()),
    "append a tensor": lambda c, lib: c.append(torch.zeros(1)),
    "extend with a number": lambda c, lib: c.extend(3),
    "delete out of range": lambda c, lib: c.__delitem__(9),
    "build from a number": lambda c, lib: lib.ModuleList(3),
    "call it": lambda c, lib: c(torch.zeros(1)),
}


@pytest.mark.parametrize("mistake", list(LIST_MISTAKES))
def test_module_list_mistakes_raise_torchs_errors_and_change_nothing(mistake):
    results = {}
    for key, lib in LIBS.items():
        c = lib.ModuleList([lib.ReLU(), lib.Tanh(), lib.ReLU()])
        before = [id(m) for m in c]
        results[key] = outcome(lambda: LIST_MISTAKES[mistake](c, lib))
        assert [id(m) for m in c] == before
    assert results["ours"] == results["torch"] and results["ours"][0] == "error"


def test_module_list_refuses_a_non_module_anywhere_without_adding_the_others():
    c = nn.ModuleList([nn.ReLU()])
    with pytest.raises(TypeError, match="item 1 is a int"):
        c.extend([nn.Tanh(), 3])
    with pytest.raises(TypeError, match="item 1"):
        nn.ModuleList([nn.Tanh(), "relu"])
    with pytest.raises(TypeError, match="takes a Module"):
        c.insert(0, torch.zeros(1))  # torch would insert it silently
    assert len(c) == 1 and names(c.named_children()) == ["0"]


def test_module_list_insert_takes_negative_indices_like_a_list():
    pool = layers(nn)
    reference = [1, 2, 3]
    c = nn.ModuleList([pool[k] for k in reference])
    for index, k in ((-1, 4), (-10, 5), (10, 6), (1, 7), (-2, 8)):
        c.insert(index, pool[k])
        reference.insert(index, k)
        assert sizes(c) == reference
        assert names(c.named_children()) == [str(i) for i in range(len(reference))]


# --- Sequential ------------------------------------------------------------------------

SEQUENTIAL_EDITS = [
    ("append", lambda s, L: s.append(L[3])),
    ("insert at 0", lambda s, L: s.insert(0, L[4])),
    ("insert before the last", lambda s, L: s.insert(-1, L[5])),
    ("insert at the end", lambda s, L: s.insert(len(s), L[6])),
    ("extend", lambda s, L: s.extend([L[7], L[8]])),
    ("extend with a Sequential", lambda s, L: s.extend(type(s)(L[9]))),
    ("set an item", lambda s, L: s.__setitem__(2, L[10])),
    ("delete one", lambda s, L: s.__delitem__(1)),
    ("delete a slice", lambda s, L: s.__delitem__(slice(0, 4, 2))),
    ("pop the last", lambda s, L: s.pop(-1)),
    ("+=", lambda s, L: s.__iadd__(type(s)(L[11], L[12]))),
]


def test_sequential_edits_match_torch_step_by_step():
    pools = {key: layers(lib) for key, lib in LIBS.items()}
    seqs = {key: lib.Sequential(pools[key][1], pools[key][2]) for key, lib in LIBS.items()}
    for label, edit in SEQUENTIAL_EDITS:
        for key in LIBS:
            edit(seqs[key], pools[key])
        ours, theirs = seqs["ours"], seqs["torch"]
        assert view(ours) == view(theirs), label
        assert view(ours[1:]) == view(theirs[1:]) and view(ours[::2]) == view(theirs[::2])
        assert view(ours + ours[:1]) == view(theirs + theirs[:1])
        assert view(ours * 2) == view(theirs * 2) and view(2 * ours[:1]) == view(2 * theirs[:1])
        assert repr(ours) == repr(theirs)
    assert sizes(seqs["ours"]) == [10, 3, 6, 7, 8, 11, 12]


def test_sequential_from_an_ordered_dict_keeps_the_names_and_slices_keep_them_too():
    built = {
        key: lib.Sequential(
            OrderedDict([("fc1", lib.Linear(2, 3)), ("act", lib.ReLU()), ("fc2", lib.Linear(3, 1))])
        )
        for key, lib in LIBS.items()
    }
    ours, theirs = built["ours"], built["torch"]
    assert (
        names(ours.named_parameters())
        == names(theirs.named_parameters())
        == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    )
    assert ours.fc1 is ours[0] and ours.act is ours[1]
    assert names(ours[1:].named_children()) == names(theirs[1:].named_children()) == ["act", "fc2"]
    assert repr(ours) == repr(theirs)
    ours.load_state_dict(theirs.state_dict())
    x = torch.rand(4, 2)
    torch.testing.assert_close(ours(x).data, theirs(x).detach())
    del ours[0]
    del theirs[0]  # torch renumbers the names that are left
    assert names(ours.named_children()) == names(theirs.named_children()) == ["0", "1"]


def test_sequential_times_repeats_the_same_layers():
    layer = nn.Linear(2, 2)
    s = nn.Sequential(layer, nn.ReLU())
    s *= 3
    assert len(s) == 6 and s[4] is layer
    assert names(s.named_parameters()) == ["0.weight", "0.bias"]


SEQUENTIAL_MISTAKES = {
    "index out of range": lambda s, lib: s[3],
    "set a number": lambda s, lib: s.__setitem__(0, 3),
    "insert out of range": lambda s, lib: s.insert(5, lib.ReLU()),
    "add a list": lambda s, lib: s + [lib.ReLU()],
    "iadd a list": lambda s, lib: s.__iadd__([lib.ReLU()]),
    "times zero": lambda s, lib: s * 0,
    "times a float": lambda s, lib: s * 1.5,
    "build from a number": lambda s, lib: lib.Sequential(lib.ReLU(), 3),
    "append a number": lambda s, lib: s.append(3),
}


@pytest.mark.parametrize("mistake", list(SEQUENTIAL_MISTAKES))
def test_sequential_mistakes_raise_torchs_errors_and_change_nothing(mistake):
    results = {}
    for key, lib in LIBS.items():
        s = lib.Sequential(lib.ReLU(), lib.Tanh())
        before = [id(m) for m in s]
        results[key] = outcome(lambda: SEQUENTIAL_MISTAKES[mistake](s, lib))
        assert [id(m) for m in s] == before
    assert results["ours"] == results["torch"] and results["ours"][0] == "error"


def test_sequential_insert_of_a_non_module_is_a_type_error():
    # torch raises AssertionError here; an assert is for internal invariants, so: TypeError.
    s = nn.Sequential(nn.ReLU())
    with pytest.raises(TypeError, match="takes a Module, got int"):
        s.insert(0, 3)
    with pytest.raises(TypeError, match="item 1"):
        s.extend([nn.Tanh(), 3])
    assert len(s) == 1


def test_an_edited_sequential_still_runs_and_names_the_failing_layer():
    s = nn.Sequential(nn.Linear(2, 3), nn.Tanh())
    s.insert(1, nn.ReLU())
    s.append(nn.Linear(3, 1))
    x = torch.rand(5, 2)
    torch.testing.assert_close(s(x).data, s[3](s[2](s[1](s[0](x)))).data)
    s.insert(0, nn.Linear(4, 2))
    with pytest.raises(ValueError) as info:
        s(x)
    assert "in layer 0 of Sequential" in "\n".join(info.value.__notes__)


def test_sequential_runs_each_layer_as_calling_it_would():
    """Sequential runs a hook-free layer's forward without calling the layer; what the call
    does must still happen: hooks (registered at any time, and kept by deepcopy), a
    __call__ of the layer's class, each node recorded as its layer's, the module
    restored after an error. Checked against torch.nn.Sequential's calls."""
    import copy

    seen = {"ours": [], "torch": []}

    def build(lib, key):
        class Shout(lib.ReLU):
            def __call__(self, *args, **kwargs):
                seen[key].append("shout")
                return super().__call__(*args, **kwargs)

        return lib.Sequential(lib.Linear(2, 3), Shout(), lib.Linear(3, 1), lib.Tanh())

    x = torch.rand(4, 2)
    models = {"ours": build(nn, "ours"), "torch": build(torch.nn, "torch")}
    for i in (0, 2):  # the same weights
        models["ours"][i].weight.data.copy_(models["torch"][i].weight.detach())
        models["ours"][i].bias.data.copy_(models["torch"][i].bias.detach())
    for key, model in models.items():
        log = seen[key]
        model[0].register_forward_pre_hook(lambda m, args, log=log: log.append("pre"))
        model[3].register_forward_hook(lambda m, args, out, log=log: out * 2)
    outputs = {}
    for key, model in models.items():
        outputs[key] = model(x)
        copied = copy.deepcopy(model)  # the copy's layers keep their hooks
        torch.testing.assert_close(copied(x).data, outputs[key].data)
    assert seen["ours"] == seen["torch"] == ["pre", "shout", "pre", "shout"]
    torch.testing.assert_close(outputs["ours"].data, outputs["torch"].data)

    model = models["ours"]
    tape = outputs["ours"].tape
    # (the forward hook's `out * 2` is recorded inside the Tanh's call: the Tanh's too)
    assert [node.module for node in tape] == [model[0], model[1], model[2], model[3], model[3]]

    with pytest.raises(ValueError):
        model(torch.rand(4, 5))  # layer 0 refuses: the next op outside records no module
    w = tg.tensor([1.0], requires_grad=True)
    assert (w * 2).tape[-1].module is None


def test_sequential_honours_hooks_and_calls_however_they_were_made():
    """What a layer's call would do also when it was set up behind the registration API:
    a hook put straight into the hook table, a class swapped on the instance. Called
    directly (seq.forward(x)), every layer keeps its output for the course API's backward."""
    seen = []

    class Shout(nn.ReLU):
        def __call__(self, *args, **kwargs):
            seen.append("shout")
            return super().__call__(*args, **kwargs)

    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1), nn.Tanh())
    model[3]._forward_hooks[12345] = lambda m, args, out: seen.append("table")
    model[1].__class__ = Shout
    model(torch.rand(4, 2))
    assert seen == ["shout", "table"]

    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    model.forward(tg.Tensor(torch.rand(4, 2)))
    assert all(layer._last_output is not None for layer in model)
    model[2].backward(torch.ones(4, 1))  # the course API, on the last layer's own output
    assert model[2].weight.grad is not None

    for lib in (nn, torch.nn):  # a None layer: torch's TypeError, and tapegrad names the layer
        holey = lib.Sequential(lib.Linear(2, 3), lib.ReLU())
        holey.add_module("2", None)
        with pytest.raises(TypeError, match="not callable"):
            holey(torch.rand(4, 2) if lib is torch.nn else tg.Tensor(torch.rand(4, 2)))


# --- ModuleDict ------------------------------------------------------------------------

DICT_EDITS = [
    ("set a new key", lambda d, L: d.__setitem__("c", L[3])),
    ("replace a key (keeps its place)", lambda d, L: d.__setitem__("a", L[4])),
    ("update with a list of pairs", lambda d, L: d.update([("e", L[5]), ("d", L[6])])),
    ("update with an OrderedDict", lambda d, L: d.update(OrderedDict([("z", L[7]), ("b", L[8])]))),
    ("delete", lambda d, L: d.__delitem__("c")),
    ("pop", lambda d, L: d.pop("e")),
    ("update with a dict", lambda d, L: d.update({"y": L[9], "x": L[10]})),
]


def dict_view(d) -> tuple:
    return (
        len(d),
        list(d),
        list(d.keys()),
        sizes(d.values()),
        [(k, m.in_features) for k, m in d.items()],
        names(d.named_parameters()),
        "a" in d,
        "q" in d,
    )


def test_module_dict_edits_match_torch_step_by_step():
    pools = {key: layers(lib) for key, lib in LIBS.items()}
    dicts = {
        key: lib.ModuleDict({"b": pools[key][1], "a": pools[key][2]}) for key, lib in LIBS.items()
    }
    for label, edit in DICT_EDITS:
        for key in LIBS:
            edit(dicts[key], pools[key])
        assert dict_view(dicts["ours"]) == dict_view(dicts["torch"]), label
        assert repr(dicts["ours"]) == repr(dicts["torch"])
    ours = dicts["ours"]
    assert list(ours) == ["b", "a", "d", "z", "y", "x"] and ours["z"].in_features == 7
    assert ours.z is ours["z"]
    ours.clear()
    assert len(ours) == 0 and list(ours.parameters()) == [] and not hasattr(ours, "z")


DICT_MISTAKES = {
    "missing key": lambda d, lib: d["nope"],
    "delete a missing key": lambda d, lib: d.__delitem__("nope"),
    "update with a number": lambda d, lib: d.update(3),
    "update with a triple": lambda d, lib: d.update([("k", lib.ReLU(), 1)]),
    "update with a non-pair": lambda d, lib: d.update([3]),
    "a dotted key": lambda d, lib: d.__setitem__("a.b", lib.ReLU()),
    "a key that is a method name": lambda d, lib: d.__setitem__("keys", lib.ReLU()),
    "a tensor value": lambda d, lib: d.__setitem__("k", torch.zeros(1)),
    "update with a tensor value": lambda d, lib: d.update({"k": torch.zeros(1)}),
    "call it": lambda d, lib: d(torch.zeros(1)),
}


@pytest.mark.parametrize("mistake", list(DICT_MISTAKES))
def test_module_dict_mistakes_raise_torchs_errors_and_change_nothing(mistake):
    results = {}
    for key, lib in LIBS.items():
        d = lib.ModuleDict({"act": lib.ReLU()})
        before = list(d.items())
        results[key] = outcome(lambda: DICT_MISTAKES[mistake](d, lib))
        assert list(d.items()) == before
    assert results["ours"] == results["torch"] and results["ours"][0] == "error"


def test_module_dict_update_checks_every_pair_before_adding_any():
    d = nn.ModuleDict()
    with pytest.raises(TypeError, match="'y' is a int"):
        d.update({"x": nn.ReLU(), "y": 3})  # torch would have added 'x'
    with pytest.raises(KeyError, match="attribute 'train' already exists"):
        d.update([("x", nn.ReLU()), ("train", nn.ReLU())])
    assert len(d) == 0 and not hasattr(d, "x")


# --- ParameterList and ParameterDict --------------------------------------------------------


def values(params) -> list:
    """(is it a Parameter, its values) for each item."""
    return [(isinstance(p, (nn.Parameter, torch.nn.Parameter)), p.data.tolist()) for p in params]


def test_parameter_list_matches_torch():
    built = {}
    for key, lib in LIBS.items():
        pl = lib.ParameterList([torch.ones(2), lib.Parameter(torch.zeros(1))])
        pl.append(torch.full((2, 3), 2.0))
        pl.extend([torch.full((1,), 3.0), torch.full((4,), 4.0)])
        pl += [torch.full((2,), 5.0)]
        pl[0] = torch.full((3,), 6.0)
        built[key] = pl
    ours, theirs = built["ours"], built["torch"]
    assert values(ours) == values(theirs)
    assert all(isinstance(p, nn.Parameter) for p in ours)
    assert (
        names(ours.named_parameters())
        == names(theirs.named_parameters())
        == ["0", "1", "2", "3", "4", "5"]
    )
    assert values(ours[1:4]) == values(theirs[1:4]) and values(ours[::-2]) == values(theirs[::-2])
    assert type(ours[1:4]) is nn.ParameterList
    assert ours[-1].data.tolist() == theirs[-1].tolist()
    assert len(ours) == len(theirs) == 6
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_parameter_list_wraps_tapegrad_tensors_as_leaf_parameters():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2  # recorded: not a leaf
    pl = nn.ParameterList([y])
    assert isinstance(pl[0], nn.Parameter) and pl[0].is_leaf and pl[0].requires_grad
    assert pl[0].data.tolist() == [2.0, 4.0]


PARAMETER_LIST_MISTAKES = {
    "index out of range": lambda pl, lib: pl[2],
    "extend with a tensor": lambda pl, lib: pl.extend(torch.zeros(3)),
    "extend with a number": lambda pl, lib: pl.extend(3),
    "set out of range": lambda pl, lib: pl.__setitem__(5, torch.zeros(1)),
    "call it": lambda pl, lib: pl(torch.zeros(1)),
}


@pytest.mark.parametrize("mistake", list(PARAMETER_LIST_MISTAKES))
def test_parameter_list_mistakes_raise_torchs_errors(mistake):
    results = {}
    for key, lib in LIBS.items():
        pl = lib.ParameterList([torch.zeros(1), torch.ones(1)])
        results[key] = outcome(lambda: PARAMETER_LIST_MISTAKES[mistake](pl, lib))
        assert len(pl) == 2 and len(list(pl.parameters())) == 2
    assert results["ours"] == results["torch"] and results["ours"][0] == "error"


def test_parameter_list_extend_converts_everything_before_adding_anything():
    pl = nn.ParameterList([torch.zeros(1)])
    with pytest.raises(TypeError, match="floating-point"):
        pl.extend([torch.ones(1), torch.tensor([1, 2])])  # an integer tensor cannot be trained
    assert len(pl) == 1 and names(pl.named_parameters()) == ["0"]


def test_parameter_dict_matches_torch():
    built = {}
    for key, lib in LIBS.items():
        pd = lib.ParameterDict({"b": torch.ones(2), "a": lib.Parameter(torch.zeros(1))})
        pd["c"] = torch.full((2, 2), 2.0)
        pd.update(OrderedDict([("z", torch.full((1,), 3.0)), ("b", torch.full((2,), 4.0))]))
        pd.update([("y", torch.full((3,), 5.0))])
        pd.setdefault("x", torch.full((1,), 6.0))
        pd.setdefault("a", torch.full((1,), 7.0))
        del pd["c"]
        built[key] = pd
    ours, theirs = built["ours"], built["torch"]
    assert list(ours) == list(theirs) == ["a", "b", "z", "y", "x"]  # a plain dict: sorted
    assert values(ours.values()) == values(theirs.values())
    assert [k for k, _ in ours.items()] == list(ours.keys()) == list(theirs.keys())
    assert names(ours.named_parameters()) == names(theirs.named_parameters())
    assert repr(ours) == repr(theirs)
    assert "z" in ours and "c" not in ours and ours.get("c", 1) == 1 and ours.get("a") is ours.a
    assert list(reversed(ours)) == list(reversed(theirs))
    merged = {
        key: built[key] | lib.ParameterDict({"w": torch.ones(1)}) for key, lib in LIBS.items()
    }
    assert list(merged["ours"]) == list(merged["torch"]) and merged["ours"]["a"] is ours["a"]
    assert [k for k, _ in (ours.popitem(), theirs.popitem())] == ["x", "x"]
    assert ours.pop("z").data.tolist() == theirs.pop("z").tolist()
    assert list(ours.copy()) == list(theirs.copy())
    ours.clear()
    assert len(ours) == 0 and list(ours.parameters()) == []


PARAMETER_DICT_MISTAKES = {
    "missing key": lambda pd, lib: pd["nope"],
    "a number key": lambda pd, lib: pd.__setitem__(3, torch.zeros(1)),
    "a dotted key": lambda pd, lib: pd.__setitem__("a.b", torch.zeros(1)),
    "update with a number": lambda pd, lib: pd.update(3),
    "delete a missing key": lambda pd, lib: pd.__delitem__("nope"),
    "call it": lambda pd, lib: pd(torch.zeros(1)),
}


@pytest.mark.parametrize("mistake", list(PARAMETER_DICT_MISTAKES))
def test_parameter_dict_mistakes_raise_torchs_errors(mistake):
    results = {}
    for key, lib in LIBS.items():
        pd = lib.ParameterDict({"w": torch.zeros(1)})
        results[key] = outcome(lambda: PARAMETER_DICT_MISTAKES[mistake](pd, lib))
        assert names(pd.named_parameters()) == ["w"]
        if key == "ours":  # torch keeps a refused key in its list of keys
            assert list(pd) == ["w"]
    assert results["ours"] == results["torch"] and results["ours"][0] == "error"


# --- a network built from containers trains like torch's ------------------------------------


def container_net(lib):
    shared = lib.Linear(4, 4)

    class Net(lib.Module):
        def __init__(self):
            super().__init__()
            self.stem = lib.Linear(3, 4)
            self.blocks = lib.ModuleList(
                [
                    lib.Sequential(shared, lib.Tanh()),
                    lib.Sequential(lib.Linear(4, 4), lib.ReLU()),
                    shared,
                ]
            )
            self.heads = lib.ModuleDict({"mean": lib.Linear(4, 2), "scale": lib.Linear(4, 2)})
            self.gates = lib.ParameterList([torch.full((4,), 0.5), torch.full((4,), 2.0)])
            self.bias = lib.ParameterDict({"out": torch.zeros(2)})

        def forward(self, x):
            x = self.stem(x)
            for block, gate in zip(self.blocks, self.gates):
                x = block(x) * gate
            x = self.blocks[2](x)
            return self.heads["mean"](x) * self.heads["scale"](x).sigmoid() + self.bias["out"]

    return Net()


def test_a_network_of_containers_has_torchs_names_and_gradients():
    ours, theirs = container_net(nn).double(), container_net(torch.nn).double()
    assert names(ours.named_parameters()) == names(theirs.named_parameters())
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert "blocks.2.weight" in ours.state_dict() and "blocks.0.0.weight" in ours.state_dict()
    ours.load_state_dict(theirs.state_dict())
    x = torch.rand(5, 3, dtype=torch.float64)
    target = torch.rand(5, 2, dtype=torch.float64)
    nn.MSELoss()(ours(x), target).backward()
    torch.nn.MSELoss()(theirs(x), target).backward()
    reference = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, reference[name].grad, rtol=1e-12, atol=1e-14, msg=name)
    optimizer = tg.optim.SGD(ours.parameters(), lr=0.1)
    assert len(optimizer.param_groups[0]["params"]) == len(reference)
