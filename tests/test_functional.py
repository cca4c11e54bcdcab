"""tapegrad.nn.functional: torch.nn.functional's names, arguments and values.

Each function is compared with torch's on the same float64 inputs (value
and gradients); the layers' own tests cover the options in depth.
"""

from __future__ import annotations

import inspect

import pytest
import torch
import torch.nn.functional as F

import tapegrad as tg
import tapegrad.nn.functional as TF

from helpers import check_against_torch, check_both, randn

F64 = torch.float64

NAMES = [
    "relu",
    "tanh",
    "sigmoid",
    "linear",
    "mse_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "nll_loss",
    "conv2d",
    "max_pool2d",
    "avg_pool2d",
    "dropout",
    "batch_norm",
    "layer_norm",
    "embedding",
    "leaky_relu",
    "gelu",
    "softmax",
    "log_softmax",
]


def test_every_name_is_there_and_torch_has_it_too():
    assert sorted(TF.__all__) == sorted(NAMES)
    for name in NAMES:
        assert callable(getattr(TF, name)), name
        assert hasattr(F, name), name
    assert tg.nn.functional is TF


def _parameters(fn):
    try:
        return list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return None  # a torch builtin without a Python signature


@pytest.mark.parametrize("name", NAMES)
def test_arguments_are_torchs(name):
    """The same parameter names in the same order (tapegrad may add a keyword at the end)."""
    theirs = _parameters(getattr(F, name))
    ours = _parameters(getattr(TF, name))
    if theirs is None or theirs == ["args", "kwargs"]:
        pytest.skip(f"torch.nn.functional.{name} has no Python signature to compare")
    assert ours[: len(theirs)] == theirs
    assert ours[len(theirs) :] in ([], ["generator"])


def _pair(name):
    ours, theirs = getattr(TF, name), getattr(F, name)
    return lambda *a, **k: (ours if any(isinstance(v, tg.Tensor) for v in a) else theirs)(*a, **k)


CASES = {
    "relu": (lambda f, x: f(x), [(3, 4)]),
    "tanh": (lambda f, x: f(x), [(3, 4)]),
    "sigmoid": (lambda f, x: f(x), [(3, 4)]),
    "linear": (lambda f, x, w, b: f(x, w, b), [(3, 4), (2, 4), (2,)]),
    "mse_loss": (lambda f, x, t: f(x, t), [(3, 4), (3, 4)]),
    "binary_cross_entropy": (
        lambda f, x: f(x.sigmoid(), torch.full((3, 4), 0.3, dtype=F64)),
        [(3, 4)],
    ),
    "binary_cross_entropy_with_logits": (lambda f, x, t: f(x, t.sigmoid()), [(3, 4), (3, 4)]),
    "cross_entropy": (lambda f, x: f(x, torch.tensor([0, 3, 1])), [(3, 4)]),
    "nll_loss": (lambda f, x: f(x, torch.tensor([0, 3, 1])), [(3, 4)]),
    "conv2d": (lambda f, x, w, b: f(x, w, b, 1, 1), [(1, 2, 4, 4), (3, 2, 3, 3), (3,)]),
    "max_pool2d": (lambda f, x: f(x, 2), [(1, 2, 4, 4)]),
    "avg_pool2d": (lambda f, x: f(x, 2, 1), [(1, 2, 4, 4)]),
    "dropout": (lambda f, x: f(x, 0.5, training=False), [(3, 4)]),
    "batch_norm": (lambda f, x, w, b: f(x, None, None, w, b, training=True), [(4, 3), (3,), (3,)]),
    "layer_norm": (lambda f, x, w, b: f(x, (4,), w, b), [(3, 4), (4,), (4,)]),
    "embedding": (lambda f, w: f(torch.tensor([[1, 0], [2, 2]]), w), [(3, 4)]),
    "leaky_relu": (lambda f, x: f(x, 0.1), [(3, 4)]),
    "gelu": (lambda f, x: f(x, approximate="tanh"), [(3, 4)]),
    "softmax": (lambda f, x: f(x, dim=0), [(3, 4)]),
    "log_softmax": (lambda f, x: f(x, dim=1), [(3, 4)]),
}


@pytest.mark.parametrize("name", NAMES)
def test_each_function_computes_what_torchs_computes(name):
    call, shapes = CASES[name]
    fn = _pair(name)
    check_both(lambda *values: call(fn, *values), *[randn(s, i) for i, s in enumerate(shapes)])


def test_dropout_in_training_uses_torchs_random_numbers():
    x = randn((6, 5), 0)
    torch.manual_seed(3)
    ours = TF.dropout(tg.Tensor(x), 0.4)
    torch.manual_seed(3)
    assert torch.equal(ours.data, F.dropout(x, 0.4))


def test_implicit_softmax_dimension_follows_torch_with_its_warning():
    for shape in [(3,), (3, 4), (2, 3, 4), (2, 2, 3, 4)]:
        x = randn(shape, 0)
        with pytest.warns(UserWarning, match="Implicit dimension"):
            ours = TF.softmax(tg.Tensor(x))
        with pytest.warns(UserWarning):
            theirs = F.softmax(x)
        torch.testing.assert_close(ours.data, theirs)
        with pytest.warns(UserWarning):
            torch.testing.assert_close(tg.nn.LogSoftmax()(tg.Tensor(x)).data, F.log_softmax(x))


def test_functions_take_plain_torch_tensors_too():
    x = randn((1, 2, 4, 4), 0)
    out = TF.max_pool2d(TF.conv2d(x, randn((3, 2, 3, 3), 1), padding="same"), 2)
    assert isinstance(out, tg.Tensor) and not out.requires_grad
    check_against_torch(
        lambda t: _pair("max_pool2d")(
            _pair("conv2d")(t, randn((3, 2, 3, 3), 1), padding="same"), 2
        ),
        x,
    )
