"""Forward hooks and pre-hooks: when they run, what they receive, what their return values do.

Every behaviour is compared with torch.nn's on the same structure.
"""

from __future__ import annotations

import gc
import weakref

import pytest
import torch

import tapegrad as tg
from tapegrad import nn

LIBS = {"ours": nn, "torch": torch.nn}


def value(x):
    """Numbers out of a tapegrad or torch tensor, for comparing the two libraries."""
    return (x.data if isinstance(x, tg.Tensor) else x).detach().tolist()


def scaled(lib):
    class Scale(lib.Module):
        """y = x * factor + shift, with a keyword argument."""

        def forward(self, x, factor=1.0, shift=0.0):
            return x * factor + shift

    return Scale()


def test_call_order_in_a_nested_model_matches_torch():
    logs = {}
    for key, lib in LIBS.items():
        log = []
        inner = lib.Sequential(lib.ReLU(), lib.Tanh())
        model = lib.Sequential(lib.Linear(2, 2), inner, lib.Sigmoid())
        named = {id(m): n or "model" for n, m in model.named_modules()}

        def pre(tag):
            return lambda module, args: log.append(f"pre{tag} {named[id(module)]}")

        def post(tag):
            return lambda module, args, out: log.append(f"post{tag} {named[id(module)]}")

        for module in model.modules():
            module.register_forward_pre_hook(pre(1))
            module.register_forward_hook(post(1))
            module.register_forward_pre_hook(pre(2))
            module.register_forward_hook(post(2))
        inner.register_forward_pre_hook(pre(0), prepend=True)
        inner.register_forward_hook(post(0), prepend=True)
        model(torch.rand(3, 2))
        logs[key] = log
    assert logs["ours"] == logs["torch"]
    assert logs["ours"][:4] == ["pre1 model", "pre2 model", "pre1 0", "pre2 0"]
    assert "pre0 1" in logs["ours"] and logs["ours"][-1] == "post2 model"


@pytest.mark.parametrize("returns", ["None", "a single value", "a tuple", "a longer tuple"])
def test_a_pre_hook_may_replace_the_inputs(returns):
    outputs = {}
    for key, lib in LIBS.items():
        seen = []

        def hook(module, args):
            seen.append(len(args))
            x = args[0]
            return {
                "None": None,
                "a single value": x + 1,
                "a tuple": (x * 3,),
                "a longer tuple": (x, 2.0, 5.0),
            }[returns]

        module = scaled(lib)
        module.register_forward_pre_hook(hook)
        arguments = []
        module.register_forward_hook(lambda m, args, out: arguments.append(len(args)))
        outputs[key] = (value(module(torch.ones(2))), seen, arguments)
    assert outputs["ours"] == outputs["torch"]


def test_pre_hooks_with_kwargs_replace_args_and_kwargs():
    outputs = {}
    for key, lib in LIBS.items():
        seen = []

        def hook(module, args, kwargs):
            seen.append(sorted(kwargs))
            return (args[0] * 2,), {**kwargs, "shift": 10.0}

        module = scaled(lib)
        module.register_forward_pre_hook(hook, with_kwargs=True)
        outputs[key] = (value(module(torch.ones(2), factor=3.0)), seen)
    assert outputs["ours"] == outputs["torch"] == ([16.0, 16.0], [["factor"]])


def test_a_pre_hook_with_kwargs_must_return_a_pair():
    for lib in LIBS.values():
        module = scaled(lib)
        module.register_forward_pre_hook(lambda m, args, kwargs: args, with_kwargs=True)
        with pytest.raises(RuntimeError, match="forward pre-hook must return None or a tuple"):
            module(torch.ones(1))


def test_forward_hooks_replace_the_output_one_after_the_other():
    outputs = {}
    for key, lib in LIBS.items():
        seen = []
        module = scaled(lib)
        module.register_forward_hook(lambda m, args, out: out * 2)
        module.register_forward_hook(lambda m, args, out: seen.append(value(out)))  # None: kept
        module.register_forward_hook(lambda m, args, out: out + 1)
        module.register_forward_hook(
            lambda m, args, kwargs, out: out * kwargs["factor"], with_kwargs=True
        )
        module.register_forward_hook(lambda m, args, out: out - 100, prepend=True)
        outputs[key] = (value(module(torch.ones(2), factor=3.0)), seen)
    # 1 * 3 = 3, then -100 (prepended), * 2, seen, + 1, * factor 3
    assert outputs["ours"] == outputs["torch"] == ([-579.0, -579.0], [[-194.0, -194.0]])


def test_remove_and_the_handle_as_a_context_manager():
    counts = {}
    for key, lib in LIBS.items():
        calls = []
        module = lib.ReLU()
        first = module.register_forward_hook(lambda m, a, o: calls.append("first"))
        module.register_forward_pre_hook(lambda m, a: calls.append("pre"))
        module(torch.ones(1))
        first.remove()
        first.remove()  # a second remove does nothing
        module(torch.ones(1))
        with module.register_forward_hook(lambda m, a, o: calls.append("inside")):
            module(torch.ones(1))
        module(torch.ones(1))
        counts[key] = calls
    assert counts["ours"] == counts["torch"] == ["pre", "first", "pre", "pre", "inside", "pre"]


def test_a_hook_that_removes_another_during_the_call():
    logs = {}
    for key, lib in LIBS.items():
        log = []
        module = lib.ReLU()
        handles = {}
        handles["a"] = module.register_forward_hook(
            lambda m, a, o: (log.append("a"), handles["b"].remove())
        )
        handles["b"] = module.register_forward_hook(lambda m, a, o: log.append("b"))
        module(torch.ones(1))
        module(torch.ones(1))
        logs[key] = log
    assert logs["ours"] == logs["torch"]


def test_always_call_hooks_run_when_forward_fails():
    logs = {}
    for key, lib in LIBS.items():
        log = []

        class Failing(lib.Module):
            def forward(self, x):
                raise ValueError("bad input")

        module = Failing()
        module.register_forward_hook(lambda m, a, o: log.append(("plain", o)))
        module.register_forward_hook(lambda m, a, o: log.append(("always", o)), always_call=True)

        def broken(m, a, o):
            raise KeyError("inside the hook")

        module.register_forward_hook(broken, always_call=True)
        with pytest.warns(UserWarning, match="always_call=True"):
            with pytest.raises(ValueError, match="bad input"):
                module(torch.ones(1))
        logs[key] = log
    assert logs["ours"] == logs["torch"] == [("always", None)]


def test_hooks_must_be_callable():
    with pytest.raises(TypeError, match="callable"):
        nn.ReLU().register_forward_hook(3)
    with pytest.raises(TypeError, match="callable"):
        nn.ReLU().register_forward_pre_hook("hook")


def test_ops_in_hooks_are_recorded_as_the_modules_and_gradients_flow_through():
    layer = nn.Linear(2, 1)
    model = nn.Sequential(layer, nn.Tanh())
    layer.register_forward_pre_hook(lambda m, args: args[0] * 2)
    layer.register_forward_hook(lambda m, args, out: out + 1)
    x = tg.tensor(torch.rand(3, 2), requires_grad=True)
    with tg.Tape() as tape:
        out = model(x)
    assert [node.module for node in tape] == [layer, layer, layer, model[1]]  # *2, Linear, +1
    out.sum().backward()

    theirs = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.Tanh())
    theirs[0].weight.data.copy_(layer.weight.data)
    theirs[0].bias.data.copy_(layer.bias.data)
    theirs[0].register_forward_pre_hook(lambda m, args: args[0] * 2)
    theirs[0].register_forward_hook(lambda m, args, out: out + 1)
    x_ref = x.data.clone().requires_grad_(True)
    theirs(x_ref).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad)
    torch.testing.assert_close(layer.weight.grad, theirs[0].weight.grad)
    torch.testing.assert_close(layer.bias.grad, theirs[0].bias.grad)


def test_the_course_api_sees_the_hooked_output():
    model = nn.Sequential(nn.Linear(2, 1))
    model.register_forward_hook(lambda m, args, out: out * 3)
    out = model(torch.ones(4, 2))
    assert model._last_output is out and model[0]._last_output is None
    model.backward(torch.ones(4, 1))
    expected = model[0].weight.grad.clone()
    model.zero_grad()
    (model[0](torch.ones(4, 2)) * 3).sum().backward()
    torch.testing.assert_close(model[0].weight.grad, expected)


def test_a_forgotten_handle_keeps_no_module_alive():
    module = nn.ReLU()
    handle = module.register_forward_hook(lambda m, a, o: None)
    alive = weakref.ref(module)
    del module
    gc.collect()
    assert alive() is None
    handle.remove()  # harmless once the module is gone
