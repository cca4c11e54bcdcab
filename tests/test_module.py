"""Module's registration rules, buffers and API, side by side with torch.nn.

Each check builds the same thing with ``tapegrad.nn`` and with ``torch.nn``
(the oracle) and compares names, order and the type of each error.
"""

from __future__ import annotations

import copy
import pickle
import threading

import pytest
import torch

import tapegrad as tg
from tapegrad import nn

LIBS = {"ours": nn, "torch": torch.nn}


def outcome(action):
    """What `action()` did: ('ok', None) or ('error', the exception's type)."""
    try:
        action()
    except Exception as error:  # noqa: BLE001 (the type is what is compared)
        return "error", type(error)
    return "ok", None


def registered(module) -> tuple:
    """Everything registered on `module` itself, by name and identity."""
    return (
        tuple((k, id(v)) for k, v in module._parameters.items()),  # in order
        tuple((k, id(v)) for k, v in module._buffers.items()),
        tuple(sorted(module._non_persistent_buffers_set)),
        tuple((k, id(v)) for k, v in module._modules.items()),
    )


def names(pairs) -> list:
    return [name for name, _ in pairs]


# --- __setattr__: torch's rules, one wrong (or right) assignment at a time ------------------


def with_buffer(lib):
    m = lib.Linear(3, 2)
    m.register_buffer("running", torch.zeros(2))
    m.register_buffer("scratch", torch.zeros(2), persistent=False)
    m.plain = 1.5
    m.inner = lib.ReLU()
    m.outer = lib.Sigmoid()
    return m


def param(lib, *shape):
    return lib.Parameter(torch.ones(*(shape or (1,))))


ASSIGNMENTS = {
    # the bug this guards against: a computed tensor silently dropped 'weight' from parameters()
    "computed tensor to a parameter": lambda lib, m: setattr(m, "weight", m.weight * 2),
    "torch tensor to a parameter": lambda lib, m: setattr(m, "weight", torch.zeros(2, 3)),
    "number to a parameter": lambda lib, m: setattr(m, "bias", 3.0),
    "module to a parameter": lambda lib, m: setattr(m, "bias", lib.ReLU()),
    "None to a parameter": lambda lib, m: setattr(m, "bias", None),
    "new Parameter to a parameter": lambda lib, m: setattr(m, "weight", param(lib)),
    "Parameter to a buffer": lambda lib, m: setattr(m, "running", param(lib, 2)),
    "Parameter to a submodule": lambda lib, m: setattr(m, "inner", param(lib)),
    "Parameter to a plain attribute": lambda lib, m: setattr(m, "plain", param(lib)),
    "Parameter to a method name": lambda lib, m: setattr(m, "forward", param(lib)),
    "number to a submodule": lambda lib, m: setattr(m, "inner", 3),
    "tensor to a submodule": lambda lib, m: setattr(m, "inner", torch.zeros(1)),
    "None to a submodule": lambda lib, m: setattr(m, "inner", None),
    "module to a submodule": lambda lib, m: setattr(m, "inner", lib.Tanh()),
    "module to a buffer": lambda lib, m: setattr(m, "running", lib.Tanh()),
    "module to a plain attribute": lambda lib, m: setattr(m, "plain", lib.Tanh()),
    "tensor to a buffer": lambda lib, m: setattr(m, "running", torch.ones(2)),
    "tensor to a non-persistent buffer": lambda lib, m: setattr(m, "scratch", torch.ones(5)),
    "None to a buffer": lambda lib, m: setattr(m, "running", None),
    "number to a buffer": lambda lib, m: setattr(m, "running", 3.0),
    "list to a buffer": lambda lib, m: setattr(m, "running", [1.0, 2.0]),
    "Buffer to a new name": lambda lib, m: setattr(m, "fresh", lib.Buffer(torch.ones(1))),
    "non-persistent Buffer": lambda lib, m: setattr(
        m, "fresh", lib.Buffer(torch.ones(1), persistent=False)
    ),
    "Buffer to a parameter": lambda lib, m: setattr(m, "bias", lib.Buffer(torch.ones(2))),
    "Buffer to a plain attribute": lambda lib, m: setattr(m, "plain", lib.Buffer(torch.ones(1))),
    "tensor to a new name": lambda lib, m: setattr(m, "fresh", torch.ones(1)),
    "number to a plain attribute": lambda lib, m: setattr(m, "plain", 2.5),
    "del a parameter": lambda lib, m: delattr(m, "weight"),
    "del a buffer": lambda lib, m: delattr(m, "scratch"),
    "del a submodule": lambda lib, m: delattr(m, "inner"),
    "del a plain attribute": lambda lib, m: delattr(m, "plain"),
    "del a missing name": lambda lib, m: delattr(m, "missing"),
}


@pytest.mark.parametrize("case", list(ASSIGNMENTS))
def test_each_assignment_does_what_torch_does(case):
    results = {}
    for key, lib in LIBS.items():
        m = with_buffer(lib)
        before = registered(m)
        result = outcome(lambda: ASSIGNMENTS[case](lib, m))
        if result[0] == "error":
            assert registered(m) == before, f"{key}: a refused assignment changed the module"
        results[key] = (
            result,
            names(m.named_parameters()),
            names(m.named_buffers()),
            names(m.named_children()),
            list(m.state_dict()),
            list(m._parameters),
            list(m._buffers),
            list(m._modules),
            sorted(m._non_persistent_buffers_set),
        )
    assert results["ours"] == results["torch"]


def test_a_computed_tensor_assigned_to_a_parameter_is_refused_with_the_fix():
    l1, l2 = nn.Linear(3, 3), nn.Linear(3, 3)
    weight = l2.weight
    with pytest.raises(
        TypeError,
        match=r"cannot assign 'tapegrad.Tensor' as parameter 'weight' "
        r"of Linear \(tapegrad.nn.Parameter or None expected\)"
        r".*nn.Parameter\(value\)",
    ):
        l2.weight = l1.weight * 2
    assert l2.weight is weight and list(l2.parameters())[0] is weight
    l2.weight = nn.Parameter(l1.weight * 2)  # the fix: a new leaf parameter
    assert l2.weight is not weight and l2.weight.is_leaf
    torch.testing.assert_close(l2.weight.data, l1.weight.data * 2)
    assert list(l2.parameters())[0] is l2.weight


def test_none_keeps_a_parameter_name_registered():
    layer = nn.Linear(2, 2)
    layer.bias = None
    assert layer.bias is None and "bias" in layer._parameters
    assert names(layer.named_parameters()) == ["weight"] and list(layer.state_dict()) == ["weight"]
    layer.bias = nn.Parameter(torch.zeros(2))  # the slot takes a Parameter again
    assert names(layer.named_parameters()) == ["weight", "bias"]


class Early(nn.Module):
    """Assigns `value` before calling super().__init__()."""

    def __init__(self, value):
        self.thing = value
        super().__init__()


class TorchEarly(torch.nn.Module):
    def __init__(self, value):
        self.thing = value
        super().__init__()


@pytest.mark.parametrize("kind", ["parameter", "module", "buffer", "plain"])
def test_assigning_before_init_fails_as_in_torch(kind):
    values = {
        "parameter": param,
        "module": lambda lib: lib.ReLU(),
        "buffer": lambda lib: lib.Buffer(torch.zeros(1)),
        "plain": lambda lib: 3,
    }
    ours = outcome(lambda: Early(values[kind](nn)))
    theirs = outcome(lambda: TorchEarly(values[kind](torch.nn)))
    assert ours == theirs
    if kind == "plain":
        assert ours == ("ok", None)
    else:
        assert ours == ("error", AttributeError)
        with pytest.raises(
            AttributeError,
            match=r"before Module.__init__\(\).*super\(\)."
            r"__init__\(\) first in Early.__init__",
        ):
            Early(values[kind](nn))


def test_register_calls_before_init_say_so():
    for method, args in (
        ("register_parameter", ("w", None)),
        ("register_buffer", ("b", None)),
        ("add_module", ("m", None)),
    ):
        blank = nn.Module.__new__(nn.Module)
        with pytest.raises(AttributeError, match="super"):
            getattr(blank, method)(*args)


REGISTRATIONS = {
    "parameter: a tensor": lambda lib, m: m.register_parameter("p", torch.zeros(1)),
    "parameter: a dotted name": lambda lib, m: m.register_parameter("a.b", param(lib)),
    "parameter: an empty name": lambda lib, m: m.register_parameter("", param(lib)),
    "parameter: a number as name": lambda lib, m: m.register_parameter(3, param(lib)),
    "parameter: name of a buffer": lambda lib, m: m.register_parameter("running", None),
    "parameter: name of a plain attribute": lambda lib, m: m.register_parameter("plain", None),
    "parameter: re-register": lambda lib, m: m.register_parameter("weight", None),
    "buffer: a number": lambda lib, m: m.register_buffer("b", 3),
    "buffer: a dotted name": lambda lib, m: m.register_buffer("a.b", torch.zeros(1)),
    "buffer: name of a parameter": lambda lib, m: m.register_buffer("weight", torch.zeros(1)),
    "buffer: name of a method": lambda lib, m: m.register_buffer("forward", torch.zeros(1)),
    "buffer: re-register non-persistent": lambda lib, m: m.register_buffer(
        "running", torch.ones(2), persistent=False
    ),
    "buffer: a Parameter": lambda lib, m: m.register_buffer("b", param(lib)),
    "module: a tensor": lambda lib, m: m.add_module("x", torch.zeros(1)),
    "module: None": lambda lib, m: m.add_module("x", None),
    "module: name of a parameter": lambda lib, m: m.add_module("weight", lib.ReLU()),
    "module: dotted name": lambda lib, m: m.add_module("a.b", lib.ReLU()),
    "module: empty name": lambda lib, m: m.add_module("", lib.ReLU()),
    "module: re-add": lambda lib, m: m.add_module("inner", lib.Tanh()),
    "register_module alias": lambda lib, m: m.register_module("extra", lib.Tanh()),
}


@pytest.mark.parametrize("case", list(REGISTRATIONS))
def test_register_methods_check_what_torch_checks(case):
    results = {}
    for key, lib in LIBS.items():
        m = with_buffer(lib)
        before = registered(m)
        result = outcome(lambda: REGISTRATIONS[case](lib, m))
        if result[0] == "error":
            assert registered(m) == before
        results[key] = (
            result,
            list(m._parameters),
            list(m._buffers),
            sorted(m._non_persistent_buffers_set),
            list(m._modules),
        )
    assert results["ours"] == results["torch"]


def test_a_class_attribute_cannot_become_a_parameter():
    def make(lib):
        class Scaled(lib.Module):
            scale = 1.0

            def __init__(self):
                super().__init__()
                self.scale = param(lib)

        return Scaled

    assert outcome(make(nn)) == outcome(make(torch.nn)) == ("error", KeyError)


def test_getattr_and_dir():
    for lib in LIBS.values():
        m = with_buffer(lib)
        assert m.running is m._buffers["running"] and m.inner is m._modules["inner"]
    with pytest.raises(AttributeError, match="'Linear' object has no attribute 'missing'"):
        _ = nn.Linear(1, 1).missing
    listing = dir(with_buffer(nn))
    for name in ("weight", "bias", "running", "inner", "plain", "forward", "state_dict"):
        assert name in listing
    assert "0" not in dir(nn.Sequential(nn.ReLU()))


def test_registered_values_are_plain_attributes_that_stay_in_step():
    """The fast lookup (registered values mirrored in __dict__) agrees with the registries."""
    m = with_buffer(nn)

    def in_step():
        for registry in (m._parameters, m._buffers, m._modules):
            for name, value in registry.items():
                assert m.__dict__[name] is value, name
        assert getattr(m, "weight", None) is m._parameters.get("weight")

    in_step()
    m.bias = None
    m.running = torch.ones(2)
    m.inner = nn.Tanh()
    m.plain = nn.Parameter(torch.ones(1))
    m.double()
    in_step()
    del m.weight, m.running, m.inner
    in_step()
    assert not hasattr(m, "weight") and not hasattr(m, "running") and not hasattr(m, "inner")
    # The mirror is the only lookup: a __getattr__ on Module would make every attribute
    # read on every module slower (CPython cannot specialise it), for registry edits
    # that the module docstring rules out.
    assert "__getattr__" not in vars(nn.Module)


def test_a_name_only_the_metaclass_has_is_free_for_registered_values():
    """`mro` is an attribute of every class (type's method) but not of its instances."""
    for lib in LIBS.values():
        m = lib.Module()
        m.add_module("mro", lib.Linear(2, 2))
        assert m.mro is m._modules["mro"]
        m2 = lib.Module()
        m2.mro = lib.Parameter(torch.ones(1))
        assert m2.mro is m2._parameters["mro"]


def test_a_new_class_decides_again_which_registered_names_it_shadows():
    for lib in LIBS.values():

        class Shadows(lib.Module):
            head = None

        class Plain(lib.Module):
            pass

        class Method(lib.Module):
            def head(self):
                return "method"

        m = Shadows()
        m.head = lib.Linear(2, 2)
        assert m.head is None  # the class attribute wins, as in torch
        m.__class__ = Plain
        assert m.head is m._modules["head"]
        m.__class__ = Method
        assert m.head() == "method"
        m.__class__ = Plain
        assert m.head is m._modules["head"]


# --- buffers -------------------------------------------------------------------------


def norm_like(lib):
    """A BatchNorm-shaped module: float running statistics and an integer counter."""

    class Norm(lib.Module):
        def __init__(self):
            super().__init__()
            self.weight = lib.Parameter(torch.ones(3))
            self.register_buffer("running_mean", torch.zeros(3))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
            self.register_buffer("cache", torch.zeros(2), persistent=False)
            self.register_buffer("unset", None)

    return Norm()


def twin_norms():
    return {
        key: lib.Sequential(norm_like(lib), lib.Linear(3, 3), norm_like(lib))
        for key, lib in LIBS.items()
    }


def test_buffers_names_and_state_dict_keys_match_torch():
    models = twin_norms()
    ours, theirs = models["ours"], models["torch"]
    assert (
        names(ours.named_buffers())
        == names(theirs.named_buffers())
        == [
            "0.running_mean",
            "0.num_batches_tracked",
            "0.cache",
            "2.running_mean",
            "2.num_batches_tracked",
            "2.cache",
        ]
    )
    assert names(ours.named_buffers(prefix="net", recurse=False)) == []
    assert names(ours[0].named_buffers(prefix="n")) == names(theirs[0].named_buffers(prefix="n"))
    assert list(ours.state_dict()) == list(theirs.state_dict())  # no 'cache', no 'unset'
    assert "0.cache" not in ours.state_dict() and "0.unset" not in ours.state_dict()
    assert [b.shape for b in ours.buffers()] == [b.shape for b in theirs.buffers()]
    ours.state_dict()["0.running_mean"].fill_(2.0)  # the state dict shares storage
    assert (ours[0].running_mean == 2.0).all()


@pytest.mark.parametrize("convert", ["double", "float-after-double", "to-dtype", "to-tensor"])
def test_to_converts_floating_buffers_and_keeps_integer_ones_as_torch(convert):
    models = twin_norms()
    for model in models.values():
        if convert == "double":
            model.double()
        elif convert == "float-after-double":
            model.double().float()
        elif convert == "to-dtype":
            model.to(torch.float64)
        else:
            model.to(torch.zeros(1, dtype=torch.float64))
    dtypes = {
        key: [(n, b.dtype) for n, b in m.named_buffers()]
        + [(n, p.dtype) for n, p in m.named_parameters()]
        for key, m in models.items()
    }
    assert dtypes["ours"] == dtypes["torch"]
    assert models["ours"][0].num_batches_tracked.dtype == torch.long


def test_to_keeps_parameters_and_tapegrad_buffers_the_same_objects():
    model = norm_like(nn)
    model.register_buffer("tracked", tg.tensor([1.0, 2.0]))
    weight, tracked = model.weight, model.tracked
    model.double()
    assert model.weight is weight and model.tracked is tracked
    assert tracked.dtype == torch.float64 and model.running_mean.dtype == torch.float64
    assert model.state_dict()["tracked"] is tracked.data


def test_to_is_all_or_nothing():
    model = nn.Sequential(nn.Linear(2, 2), norm_like(nn))
    before = {n: (t.dtype, t) for n, t in model.state_dict().items()}
    calls = []

    def fails_on_the_fourth(t):
        calls.append(t)
        if len(calls) == 4:
            raise RuntimeError("out of memory")
        return t.double()

    with pytest.raises(RuntimeError, match="out of memory"):
        model._apply(fails_on_the_fourth)
    after = model.state_dict()
    assert all(after[n] is t and t.dtype == dtype for n, (dtype, t) in before.items())


def test_buffers_are_not_parameters_and_optimizers_skip_them():
    model = norm_like(nn)
    assert names(model.named_parameters()) == ["weight"]
    optimizer = tg.optim.SGD(model.parameters(), lr=0.1)
    assert len(optimizer.param_groups[0]["params"]) == 1


def test_to_refuses_integer_dtypes():
    for lib in LIBS.values():
        with pytest.raises(TypeError):
            norm_like(lib).to(torch.int32)


# --- traversal: named_modules, children, apply, get_* ------------------------------------


def tree(lib):
    shared = lib.Linear(2, 2)

    class Tree(lib.Module):
        def __init__(self):
            super().__init__()
            self.a = lib.Sequential(shared, lib.ReLU(), lib.Sequential(lib.Tanh(), shared))
            self.b = shared
            self.c = lib.Linear(2, 1)
            self.empty = None
            self.register_module("d", None)

    return Tree()


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"prefix": "net"},
        {"remove_duplicate": False},
        {"prefix": "x", "remove_duplicate": False},
    ],
)
def test_named_modules_matches_torch(kwargs):
    ours, theirs = tree(nn), tree(torch.nn)
    assert names(ours.named_modules(**kwargs)) == names(theirs.named_modules(**kwargs))
    assert [
        type(m).__name__
        for m in ours.modules(**{k: v for k, v in kwargs.items() if k == "remove_duplicate"})
    ] == [
        type(m).__name__
        for m in theirs.modules(**{k: v for k, v in kwargs.items() if k == "remove_duplicate"})
    ]


def test_named_modules_memo_skips_the_modules_in_it():
    ours, theirs = tree(nn), tree(torch.nn)
    memo_ours, memo_theirs = {ours.a}, {theirs.a}
    assert (
        names(ours.named_modules(memo_ours))
        == names(theirs.named_modules(memo_theirs))
        == ["", "b", "c"]
    )
    assert len(memo_ours) == len(memo_theirs)


def test_children_skip_none_and_duplicates():
    ours, theirs = tree(nn), tree(torch.nn)
    assert names(ours.named_children()) == names(theirs.named_children()) == ["a", "b", "c"]
    assert len(list(ours.children())) == 3
    assert "(d): None" in repr(ours) and repr(ours) == repr(theirs)


def test_named_parameters_with_and_without_duplicates():
    ours, theirs = tree(nn), tree(torch.nn)
    for kwargs in ({}, {"remove_duplicate": False}, {"prefix": "p"}, {"recurse": False}):
        assert names(ours.named_parameters(**kwargs)) == names(theirs.named_parameters(**kwargs))
    assert len(list(ours.parameters())) == 4  # shared weight and bias once, c's two


def test_apply_visits_children_first_and_returns_self():
    visits = {}
    for key, lib in LIBS.items():
        model = tree(lib)
        found = dict((id(m), n) for n, m in model.named_modules())
        seen = []
        assert model.apply(lambda m: seen.append(found[id(m)])) is model
        visits[key] = seen
    assert visits["ours"] == visits["torch"]
    assert visits["ours"][-1] == "" and visits["ours"][0] == "a.0"


def test_apply_can_initialise_weights():
    def init(m):
        if isinstance(m, nn.Linear):
            m.weight.data.fill_(0.5)

    model = tree(nn).apply(init)
    assert all((p.data == 0.5).all() for n, p in model.named_parameters() if n.endswith("weight"))


def test_get_submodule_parameter_and_buffer():
    for lib in LIBS.values():
        model = lib.Sequential(norm_like(lib), lib.Sequential(lib.Linear(3, 3)))
        assert model.get_submodule("") is model
        assert model.get_submodule("1.0") is model[1][0]
        assert model.get_parameter("1.0.weight") is model[1][0].weight
        assert model.get_parameter("0.weight") is model[0].weight
        assert model.get_buffer("0.running_mean") is model[0].running_mean
    ours, theirs = (lib.Sequential(norm_like(lib)) for lib in LIBS.values())
    for bad in (
        lambda m: m.get_submodule("1"),
        lambda m: m.get_submodule("0.weight"),
        lambda m: m.get_parameter("0.running_mean"),
        lambda m: m.get_parameter("0.nope"),
        lambda m: m.get_buffer("0.weight"),
        lambda m: m.get_buffer("2.x"),
    ):
        assert (
            outcome(lambda: bad(ours)) == outcome(lambda: bad(theirs)) == ("error", AttributeError)
        )


def test_a_module_that_contains_itself():
    loops = {}
    for key, lib in LIBS.items():
        loop = loops[key] = lib.Sequential(lib.Linear(1, 1))
        loop.add_module("again", loop)
        assert names(loop.named_modules()) == ["", "0"]
        assert names(loop.named_parameters()) == ["0.weight", "0.bias"]
        with pytest.raises(RuntimeError):  # torch: RecursionError, a RuntimeError
            loop.state_dict()
    with pytest.raises(RuntimeError, match="'again' is one of its own ancestors"):
        list(loops["ours"].named_modules(remove_duplicate=False))


# --- modes and gradients ---------------------------------------------------------------


def test_requires_grad_freezes_and_unfreezes():
    for lib in LIBS.values():
        model = tree(lib)
        assert model.requires_grad_(False) is model
        assert not any(p.requires_grad for p in model.parameters())
        model.c.requires_grad_()
        assert [n for n, p in model.named_parameters() if p.requires_grad] == ["c.weight", "c.bias"]
    model = tree(nn).requires_grad_(False)
    model.c.requires_grad_(True)
    nn.MSELoss()(model.c(model.b(torch.rand(3, 2))), torch.rand(3, 1)).backward()
    assert model.c.weight.grad is not None and model.b.weight.grad is None


def test_requires_grad_on_an_integer_parameter_changes_nothing():
    model = nn.Module()
    model.w = nn.Parameter(torch.zeros(2))
    model.count = nn.Parameter(torch.tensor([1, 2]), requires_grad=False)
    model.w.requires_grad_(False)
    with pytest.raises(TypeError, match="'count' is torch.int64"):
        model.requires_grad_(True)
    assert not model.w.requires_grad


def test_train_and_eval_call_each_childs_train():
    calls = {}
    for key, lib in LIBS.items():
        log = []

        class Logged(lib.Module):
            def train(self, mode=True):
                log.append(mode)
                return super().train(mode)

        model = lib.Sequential(Logged(), lib.Sequential(Logged()))
        model.eval()
        model.train()
        calls[key] = (log, [m.training for m in model.modules()])
        with pytest.raises(ValueError):
            model.train("yes")
    assert calls["ours"] == calls["torch"] == ([False, False, True, True], [True] * 4)


# --- copies ---------------------------------------------------------------------------


def test_deepcopy_gives_an_independent_model_whose_tape_names_the_copy():
    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    model(torch.rand(4, 2))  # the original keeps its latest output
    clone = copy.deepcopy(model)
    assert clone._last_output is None
    for (n1, p1), (n2, p2) in zip(model.named_parameters(), clone.named_parameters()):
        assert n1 == n2 and p1 is not p2 and torch.equal(p1.data, p2.data)
    clone[0].weight.data.fill_(1.0)
    assert not (model[0].weight.data == 1.0).all()
    with tg.Tape() as tape:
        clone(torch.rand(4, 2))
    assert tape[0].module is clone[0] and tape[0].inputs[1] is clone[0].weight
    assert clone[0].weight is clone._modules["0"]._parameters["weight"]


def test_pickle_round_trip():
    model = nn.Sequential(nn.Linear(3, 1))
    model.register_buffer("running", torch.arange(3.0))
    model.register_forward_hook(print)
    again = pickle.loads(pickle.dumps(model))
    assert again.running is again._buffers["running"] and len(again._forward_hooks) == 1
    assert list(again.state_dict()) == list(model.state_dict())
    assert all(
        torch.equal(a, b) for a, b in zip(again.state_dict().values(), model.state_dict().values())
    )
    with tg.Tape() as tape:
        again[0](torch.rand(2, 3))
    assert tape[0].module is again[0]


def _shallow_copy_story(lib) -> list:
    """What a user sees after changing a copy.copy of a layer, as data to compare."""
    seen = []
    layer = lib.Linear(2, 2)
    other = copy.copy(layer)  # torch: the registries are shared, plain attributes are not
    other.weight = lib.Parameter(torch.full((2, 2), 3.0))
    x = torch.ones(1, 2)
    out = layer(x if lib is torch.nn else tg.tensor(x))
    bias = float(layer.bias.data[0])
    seen.append(("forward uses the new weight", round(out.data.tolist()[0][0] - bias, 4)))
    seen.append(("parameters", [tuple(p.shape) for p in layer.parameters()]))
    seen.append(("same object", layer.weight is other.weight))
    del other.bias
    seen.append(("bias gone from both", hasattr(layer, "bias"), names(layer.named_parameters())))
    layer.register_buffer("running", torch.ones(1))
    seen.append(("buffer on both", float(other.running), names(other.named_buffers())))
    other.train(False)
    other.note = 1
    seen.append(("plain attributes are its own", layer.training, hasattr(layer, "note")))
    layer.inner = lib.ReLU()
    other.inner = None
    seen.append(("submodule set to None on both", layer.inner, list(layer._modules)))
    third = copy.copy(other)  # a copy of a copy shares them too
    third.weight = None
    seen.append(("copy of a copy", layer.weight, names(layer.named_parameters())))
    return seen


def test_copy_copy_shares_parameters_buffers_and_submodules_as_torch():
    # Each registered value is also a plain attribute (the module docstring): all copies'
    # attributes follow a change made through any one of them, or the original's forward
    # would use a weight its parameters() no longer holds, silently.
    assert _shallow_copy_story(nn) == _shallow_copy_story(torch.nn)


def test_copy_copy_of_a_deepcopy_is_not_tied_to_the_original():
    layer = nn.Linear(2, 2)
    copy.copy(layer)
    clone = copy.deepcopy(layer)
    clone.weight = nn.Parameter(torch.zeros(2, 2))
    assert layer.weight is layer._parameters["weight"] is not clone.weight
    assert not torch.equal(layer.weight.data, clone.weight.data)


def test_pickled_model_keeps_no_gradients_as_torch():
    ours, theirs = nn.Linear(2, 1), torch.nn.Linear(2, 1)
    ours(tg.ones(3, 2)).sum().backward()
    theirs(torch.ones(3, 2)).sum().backward()
    for model in (ours, theirs):
        again = pickle.loads(pickle.dumps(model))
        clone = copy.deepcopy(model)
        assert [p.grad for p in again.parameters()] == [None, None]
        assert [p.grad for p in clone.parameters()] == [None, None]
        assert all(p.requires_grad for p in again.parameters())


def _copied_pair_story(lib, how) -> list:
    """A layer and its shallow copy, copied together (deepcopy or pickle): still tied."""
    layer = lib.Linear(2, 2)
    pair = how([layer, copy.copy(layer)])
    first, second = pair
    first.weight = lib.Parameter(torch.full((2, 2), 2.0))
    x = torch.ones(1, 2)
    outs = [m(x if lib is torch.nn else tg.tensor(x)).data for m in pair]
    return [
        second.weight is first.weight,
        torch.equal(outs[0], outs[1]),
        layer.weight is first.weight,
    ]


@pytest.mark.parametrize(
    "how", [copy.deepcopy, lambda obj: pickle.loads(pickle.dumps(obj))], ids=["deepcopy", "pickle"]
)
def test_a_layer_and_its_shallow_copy_stay_tied_through_deepcopy_and_pickle(how):
    assert _copied_pair_story(nn, how) == _copied_pair_story(torch.nn, how) == [True, True, False]


def _plain_attribute_story(lib) -> list:
    layer = lib.Linear(2, 2)
    other = copy.copy(layer)
    layer.foo = 5  # a plain attribute of the original only
    other.register_buffer("foo", torch.ones(1))  # registered through the copy
    seen = [layer.foo, float(other.foo), names(layer.named_buffers())]
    del other.foo
    seen += [layer.foo, hasattr(other, "foo"), names(layer.named_buffers())]
    layer._peers = ["a user's attribute"]  # any name a user picks is the user's
    third = copy.copy(layer)
    third.extra = lib.Parameter(torch.ones(1))
    seen += [layer._peers, names(layer.named_parameters())]
    return seen


def test_a_plain_attribute_of_one_copy_wins_over_what_another_registers_as_torch():
    assert _plain_attribute_story(nn) == _plain_attribute_story(torch.nn)


def test_a_called_loss_and_a_model_holding_one_deepcopy_as_torch():
    for lib in (nn, torch.nn):
        model = lib.Module()
        model.net, model.criterion = lib.Linear(2, 1), lib.MSELoss()
        x = torch.ones(3, 2) if lib is torch.nn else tg.ones(3, 2)
        model.criterion(model.net(x), x[:, :1])
        best = copy.deepcopy(model)  # the usual snapshot of the best model so far
        assert best.criterion is not model.criterion
        again = pickle.loads(pickle.dumps(model.criterion))
        assert getattr(again, "_last_inputs", None) is None


def test_to_converts_a_model_holding_a_layer_and_its_shallow_copy_as_torch():
    dtypes = {}
    for lib in (nn, torch.nn):
        norm = lib.BatchNorm1d(2)
        model = lib.Sequential(lib.Linear(2, 2), norm, copy.copy(norm), lib.Linear(2, 2))
        model.double()
        dtypes[lib] = [t.dtype for t in model.state_dict().values() if t.is_floating_point()]
    assert dtypes[nn] == dtypes[torch.nn] and set(dtypes[nn]) == {torch.float64}


def test_shallow_copies_made_in_several_threads_all_follow_the_original():
    layer = nn.Linear(1, 1)
    copies: list = []

    def make():
        copies.extend(copy.copy(layer) for _ in range(300))

    threads = [threading.Thread(target=make) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    layer.weight = nn.Parameter(torch.full((1, 1), 9.0))
    assert sum(c.weight is not layer.weight for c in copies) == 0


def _parameter_as_a_buffer_story(lib, order) -> list:
    layer, holder = lib.Linear(2, 2), lib.Module()
    holder.register_buffer("w", layer.weight)  # one tensor: a parameter here, a buffer there
    model = lib.Sequential(*((holder, layer) if order else (layer, holder)))
    model.double()
    return [tuple(layer.weight.shape), layer.weight.dtype, layer.bias.dtype, layer.weight.grad]


@pytest.mark.parametrize("order", [0, 1])
def test_to_converts_a_parameter_that_is_also_a_buffer_as_torch(order):
    assert _parameter_as_a_buffer_story(nn, order) == _parameter_as_a_buffer_story(torch.nn, order)


class _KeepsALock:
    """A module state idiom: __getstate__ from a copy of __dict__, without the lock."""

    def __getstate__(self):
        state = self.__dict__.copy()
        del state["lock"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.lock = threading.Lock()


class LockedTapegrad(_KeepsALock, nn.Linear):
    pass


class LockedTorch(_KeepsALock, torch.nn.Linear):
    pass


@pytest.mark.parametrize("kind", [LockedTapegrad, LockedTorch])
def test_a_module_with_its_own_getstate_and_setstate_copies_as_torch(kind):
    layer = kind(2, 1)
    layer.lock = threading.Lock()
    x = tg.ones(3, 2) if kind is LockedTapegrad else torch.ones(3, 2)
    layer(x)  # keeps its latest output (tapegrad): not copied
    again = pickle.loads(pickle.dumps(layer))
    clone = copy.deepcopy(layer)
    shallow = copy.copy(layer)
    layer.weight = type(layer.weight)(torch.zeros(1, 2))
    assert shallow.weight is layer.weight and shallow.lock is not layer.lock
    assert again.weight is not layer.weight and clone.weight is not layer.weight
    if kind is LockedTapegrad:
        with tg.Tape() as tape:
            clone(x)
        assert tape[0].module is clone  # its weak reference is its own


def _shadowing_story(lib) -> list:
    """A copy's own plain attribute that is the very object registered (None) through
    another copy, or that meets a class change: it wins, as in torch."""

    def read(module, name):
        value = getattr(module, name, "missing")
        return value if value is None or isinstance(value, str) else type(value).__name__

    layer = lib.Module()
    other = copy.copy(layer)
    other.head = None  # the copy's plain attribute
    layer.add_module("head", None)  # registered through the original: also None
    seen = [read(other, "head"), read(layer, "head")]
    layer.head = lib.Linear(1, 1)
    seen += [read(other, "head"), read(layer, "head")]
    del layer.head
    seen += [read(other, "head"), read(layer, "head")]
    other.x = 5
    layer.register_buffer("x", torch.ones(1))
    other.__class__ = type("Renamed", (lib.Module,), {})
    seen += [read(other, "x"), read(layer, "x")]
    return seen


def test_a_copy_plain_attribute_that_is_the_registered_object_still_wins_as_torch():
    assert _shadowing_story(nn) == _shadowing_story(torch.nn)
