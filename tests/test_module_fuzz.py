"""Fuzz: random sequences of assignments, deletions and registrations, against torch.nn.Module.

Hypothesis draws a short program of attribute operations on a few names
(assign a Parameter, a tensor, a Module, a Buffer, None or a number;
delete; register_parameter/register_buffer/add_module). Each operation runs
on a tapegrad module and on a torch module. After every step both must
agree: the same outcome (done, or the same exception type), the same
registries in the same order, the same non-persistent buffers, what each
name reads as, and the same state_dict keys. A refused operation must
change nothing here (torch sometimes changes part of the module before
refusing; the comparison stops there).

The same programs also run over shallow copies (copy.copy), which share
the registries: every copy must read every name as torch's does.

Bounded for CI: TAPEGRAD_FUZZ_EXAMPLES (default 60) examples, no deadline.
"""

import copy
import os

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tapegrad as tg
from tapegrad import nn

EXAMPLES = int(os.environ.get("TAPEGRAD_FUZZ_EXAMPLES", "60"))
LIBS = {"ours": nn, "torch": torch.nn}
NAMES = ["a", "b", "weight", "forward", "x.y"]  # a method name and a dotted name too


def make(kind: str, lib, persistent: bool):
    """A value of `kind` for `lib` (a 'tensor' is a tapegrad Tensor for us, a torch one for
    torch)."""
    if kind == "parameter":
        return lib.Parameter(torch.ones(1))
    if kind == "tensor":
        return tg.tensor([1.0]) if lib is nn else torch.ones(1)
    if kind == "torch tensor":
        return torch.ones(1)
    if kind == "module":
        return lib.ReLU()
    if kind == "buffer":
        return lib.Buffer(torch.ones(1), persistent=persistent)
    return {"none": None, "number": 3}[kind]


def kind_of(value) -> str:
    if isinstance(value, (nn.Parameter, torch.nn.Parameter)):
        return "parameter"
    if isinstance(value, (tg.Tensor, torch.Tensor)):
        return "tensor"
    if isinstance(value, (nn.Module, torch.nn.Module)):
        return type(value).__name__
    if callable(value):
        return "method"
    return repr(value)


def observe(module) -> tuple:
    return (
        list(module._parameters),
        [kind_of(v) for v in module._parameters.values()],
        list(module._buffers),
        [kind_of(v) for v in module._buffers.values()],
        sorted(module._non_persistent_buffers_set),
        list(module._modules),
        [kind_of(v) for v in module._modules.values()],
        [kind_of(getattr(module, name, "missing")) for name in NAMES],
        list(module.state_dict()),
        [n for n, _ in module.named_parameters()],
        [n for n, _ in module.named_buffers()],
        [n for n, _ in module.named_children()],
    )


OPERATIONS = ["setattr", "delattr", "register_parameter", "register_buffer", "add_module"]
KINDS = ["parameter", "tensor", "torch tensor", "module", "buffer", "none", "number"]


def run(operation: str, name: str, kind: str, persistent: bool, module, lib):
    if operation == "setattr":
        setattr(module, name, make(kind, lib, persistent))
    elif operation == "delattr":
        delattr(module, name)
    elif operation == "register_parameter":
        module.register_parameter(name, make(kind, lib, persistent))
    elif operation == "register_buffer":
        module.register_buffer(name, make(kind, lib, persistent), persistent)
    else:
        module.add_module(name, make(kind, lib, persistent))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(OPERATIONS),
            st.sampled_from(NAMES),
            st.sampled_from(KINDS),
            st.booleans(),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_random_attribute_programs_match_torch(program):
    modules = {key: lib.Module() for key, lib in LIBS.items()}
    for step, (operation, name, kind, persistent) in enumerate(program):
        where = f"step {step}: {operation}({name!r}, {kind}, persistent={persistent})"
        if not same_step(
            lambda key, lib: run(operation, name, kind, persistent, modules[key], lib),
            lambda key: [observe(modules[key])],
            where,
        ):
            return


def same_step(act, look, where: str) -> bool:
    """Run act(key, lib) on tapegrad's modules and on torch's, then compare: the same
    outcome (done, or the same exception type), and the same observations (look(key): one
    per module). A refusal must change nothing of ours. Returns False where torch changed
    something before refusing: the two part ways there, and the program stops."""
    outcomes, before = {}, {}
    for key, lib in LIBS.items():
        before[key] = look(key)
        try:
            act(key, lib)
            outcomes[key] = None
        except Exception as error:  # noqa: BLE001 (the type is what is compared)
            outcomes[key] = type(error)
    assert outcomes["ours"] == outcomes["torch"], where
    if outcomes["ours"] is not None:
        assert look("ours") == before["ours"], f"{where}: refused, yet changed"
        if look("torch") != before["torch"]:
            return False
    assert look("ours") == look("torch"), where
    return True


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from([*OPERATIONS, "copy"]),
            st.integers(0, 3),
            st.sampled_from(NAMES),
            st.sampled_from(KINDS),
            st.booleans(),
        ),
        min_size=1,
        max_size=14,
    )
)
def test_random_programs_over_shallow_copies_match_torch(program):
    # copy.copy shares the registries (as torch's); each name must read, on every copy,
    # what it reads in torch: the registered value, or a copy's own plain attribute.
    modules = {key: [lib.Module()] for key, lib in LIBS.items()}
    for step, (operation, target, name, kind, persistent) in enumerate(program):

        def act(key, lib):
            family = modules[key]
            module = family[target % len(family)]
            if operation == "copy":
                family.append(copy.copy(module))
            else:
                run(operation, name, kind, persistent, module, lib)

        where = f"step {step}: {operation}({name!r}, {kind}) on copy {target}"
        if not same_step(act, lambda key: [observe(m) for m in modules[key]], where):
            return


# --- ModuleList and Sequential edits --------------------------------------------------------


def edit(container, operation: str, index: int, layer, other_layer):
    size = len(container)
    if operation == "append":
        container.append(layer)
    elif operation == "extend":
        container.extend([layer, other_layer])
    elif operation == "insert":
        container.insert(min(abs(index), size), layer)  # torch's insert is right for 0..len only
    elif operation == "set":
        container[index] = layer
    elif operation == "delete":
        del container[index]
    elif operation == "delete slice":
        del container[index // 2 : index : 2]
    elif operation == "pop":
        container.pop(index)
    else:
        container[index]  # just read


def contents(container) -> tuple:
    return (
        [m.in_features for m in container],
        [n for n, _ in container.named_children()],
        [n for n, _ in container.named_parameters()],
        list(container.state_dict()),
    )


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["ModuleList", "Sequential"]),
    st.lists(
        st.tuples(
            st.sampled_from(
                ["append", "extend", "insert", "set", "delete", "delete slice", "pop", "read"]
            ),
            st.integers(-5, 5),
            st.integers(1, 6),
            st.integers(1, 6),
        ),
        min_size=1,
        max_size=10,
    ),
)
def test_random_list_edits_match_torch(kind, program):
    pools = {key: {k: lib.Linear(k, 1) for k in range(1, 7)} for key, lib in LIBS.items()}
    containers = {
        key: getattr(lib, kind)(pools[key][1], pools[key][2])
        if kind == "Sequential"
        else lib.ModuleList([pools[key][1], pools[key][2]])
        for key, lib in LIBS.items()
    }
    for step, (operation, index, k, other) in enumerate(program):
        outcomes = {}
        for key in LIBS:
            try:
                edit(containers[key], operation, index, pools[key][k], pools[key][other])
                outcomes[key] = None
            except Exception as error:  # noqa: BLE001 (the type is what is compared)
                outcomes[key] = type(error)
        where = f"step {step}: {operation}, index {index}"
        assert outcomes["ours"] == outcomes["torch"], where
        assert contents(containers["ours"]) == contents(containers["torch"]), where
