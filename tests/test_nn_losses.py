"""CrossEntropyLoss, NLLLoss and BCEWithLogitsLoss against torch.nn, in float64.

Every option torch has (class weights, ignore_index, label smoothing,
class-probability targets, pos_weight, the three reductions, inputs with
extra dimensions) on the same inputs: loss, gradients of the input (and
of a probability target), second derivatives against torch's double
backward, central differences, and gradgradcheck. Then stability, the
course API, and the errors.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import tapegrad as tg
import tapegrad.nn.functional as TF
from tapegrad import nn
from tapegrad.errors import DtypeError, ShapeError

from helpers import check_against_torch, check_both, check_second_order, randn, seeds

F64 = torch.float64
TOL = dict(rtol=1e-10, atol=1e-12)
REDUCTIONS = ["mean", "sum", "none"]
EXAMPLES = settings(max_examples=15, deadline=None)

# input shapes: (C,), (N, C) and (N, C, d1, ...), the classes in dimension 1 (0 for (C,))
SHAPES = [(4,), (5, 3), (3, 4, 5), (2, 3, 2, 2), (2, 3, 2, 1, 2)]


def classes_of(shape):
    return shape[0] if len(shape) == 1 else shape[1]


def class_targets(shape, seed, ignore=None):
    g = torch.Generator().manual_seed(seed)
    target_shape = () if len(shape) == 1 else shape[:1] + shape[2:]
    t = torch.randint(0, classes_of(shape), target_shape, generator=g)
    if ignore is not None and t.numel() > 1:
        t.view(-1)[0] = ignore
    return t


def probabilities(shape, seed):
    g = torch.Generator().manual_seed(seed)
    p = torch.rand(shape, generator=g, dtype=F64) + 0.1
    return p / p.sum(0 if len(shape) == 1 else 1, keepdim=True)


def class_weights(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(classes_of(shape), generator=g, dtype=F64) + 0.5


def pick(ours, theirs):
    return lambda *a, **k: (ours if isinstance(a[0], tg.Tensor) else theirs)(*a, **k)


cross_entropy = pick(TF.cross_entropy, F.cross_entropy)
nll_loss = pick(TF.nll_loss, F.nll_loss)
bce_with_logits = pick(TF.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits)

CE_OPTIONS = {
    "plain": {},
    "weight": {"weight": True},
    "ignore_index": {"ignore_index": -100, "ignored": -100},
    "ignore_index 1": {"ignore_index": 1},
    "label_smoothing": {"label_smoothing": 0.2},
    "everything": {"weight": True, "label_smoothing": 0.3, "ignore_index": -100, "ignored": -100},
}


def ce_arguments(shape, option):
    settings_ = dict(CE_OPTIONS[option])
    ignored = settings_.pop("ignored", None)
    kwargs = dict(settings_)
    if kwargs.pop("weight", False):
        kwargs["weight"] = class_weights(shape, 3)
    target = class_targets(shape, 2, ignored)
    if option == "ignore_index 1":
        target = torch.where(target == 1, 0, target)
        if target.numel() > 1:
            target.view(-1)[-1] = 1
    return target, kwargs


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("option", CE_OPTIONS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_cross_entropy_with_class_indices_matches_torch(shape, option, reduction):
    target, kwargs = ce_arguments(shape, option)
    fn = lambda x: cross_entropy(x, target, reduction=reduction, **kwargs)  # noqa: E731
    check_both(fn, randn(shape, 1) * 2)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("option", ["plain", "weight", "label_smoothing", "weight smoothing"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_cross_entropy_with_class_probabilities_matches_torch(shape, option, reduction):
    kwargs = {}
    if "weight" in option:
        kwargs["weight"] = class_weights(shape, 3)
    if "smoothing" in option:
        kwargs["label_smoothing"] = 0.15
    fn = lambda x, p: cross_entropy(x, p, reduction=reduction, **kwargs)  # noqa: E731
    check_both(fn, randn(shape, 1) * 2, probabilities(shape, 2))  # dL/d(target) checked too


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("option", ["plain", "weight", "ignore_index", "ignore_index 1"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_nll_loss_matches_torch(shape, option, reduction):
    target, kwargs = ce_arguments(shape, option)
    fn = lambda x: nll_loss(x, target, reduction=reduction, **kwargs)  # noqa: E731
    check_both(fn, randn(shape, 1))


@st.composite
def ce_case(draw):
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, 4))) + tuple(
        draw(st.lists(st.integers(1, 3), max_size=2))
    )
    return shape, draw(st.sampled_from(list(CE_OPTIONS))), draw(st.sampled_from(REDUCTIONS))


@EXAMPLES
@given(case=ce_case(), seed=seeds)
def test_cross_entropy_of_any_size_matches_torch(case, seed):
    shape, option, reduction = case
    target, kwargs = ce_arguments(shape, option)
    fn = lambda x: cross_entropy(x, target, reduction=reduction, **kwargs)  # noqa: E731
    check_against_torch(fn, randn(shape, seed) * 2)
    check_second_order(fn, randn(shape, seed) * 2)


BCE_OPTIONS = {
    "plain": {},
    "weight": {"weight": (3,)},
    "weight broadcast": {"weight": (5, 1)},
    "pos_weight": {"pos_weight": (3,)},
    "both": {"weight": (3,), "pos_weight": (3,)},
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("option", BCE_OPTIONS)
def test_bce_with_logits_matches_torch(option, reduction):
    kwargs = {
        key: torch.rand(shape, dtype=F64) * 2 + 0.1 for key, shape in BCE_OPTIONS[option].items()
    }
    fn = lambda x, t: bce_with_logits(x, t, reduction=reduction, **kwargs)  # noqa: E731
    check_both(fn, randn((5, 3), 1) * 3, torch.rand(5, 3, dtype=F64))  # dL/dt checked too


@pytest.mark.parametrize("module", ["CrossEntropyLoss", "NLLLoss", "BCEWithLogitsLoss"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_loss_modules_match_torch_modules(module, reduction):
    x = randn((6, 4), 0) * 2
    kwargs = dict(reduction=reduction)
    if module == "BCEWithLogitsLoss":
        target = torch.rand(6, 4, dtype=F64)
        kwargs["pos_weight"] = torch.rand(4, dtype=F64) + 0.5
    else:
        target = torch.tensor([0, 3, 1, -100, 2, 3])
        kwargs["weight"] = class_weights((6, 4), 1)
    if module == "CrossEntropyLoss":
        kwargs["label_smoothing"] = 0.1
    ours, theirs = getattr(nn, module)(**kwargs), getattr(torch.nn, module)(**kwargs)
    if module == "NLLLoss":
        x = torch.log_softmax(x, 1)
    x_ours, x_ref = tg.Tensor(x.clone(), requires_grad=True), x.clone().requires_grad_()
    loss, expected = ours(x_ours, target), theirs(x_ref, target)
    torch.testing.assert_close(loss.data, expected.detach(), **TOL)
    weights = randn(expected.shape, 1)
    loss.backward(weights)
    expected.backward(weights)
    torch.testing.assert_close(x_ours.grad, x_ref.grad, **TOL)
    assert list(ours.state_dict()) == list(theirs.state_dict())  # the weights are buffers
    # the course API: dL/d(input) of the latest call
    ours(tg.Tensor(x), target)
    x_ref.grad = None
    theirs(x_ref, target).backward(torch.ones(expected.shape, dtype=F64))
    torch.testing.assert_close(
        ours.backward(torch.ones(expected.shape, dtype=F64)), x_ref.grad, **TOL
    )


def test_cross_entropy_is_log_softmax_then_nll_on_the_tape():
    x = tg.Tensor(randn((3, 4), 0), requires_grad=True)
    with tg.Tape() as tape:
        nn.CrossEntropyLoss()(x, torch.tensor([0, 1, 3]))
    assert [node.name for node in tape.nodes] == ["LogSoftmax", "NLLLossFunction"]
    with tg.Tape() as tape:
        nn.BCEWithLogitsLoss()(x, torch.rand(3, 4, dtype=F64))
    assert [node.name for node in tape.nodes] == ["BCEWithLogitsFunction"]


GRADGRAD = {
    "NLLLossFunction mean": (
        lambda x: nn.NLLLossFunction.apply(
            x, torch.tensor([0, 2, 2]), torch.tensor([1.0, 2.0, 0.5], dtype=F64), "mean", 0
        ),
        (3, 3),
    ),
    "NLLLossFunction 4-D none": (
        lambda x: nn.NLLLossFunction.apply(x, torch.tensor([[[0, 1]]]), None, "none"),
        (1, 2, 1, 2),
    ),
    "NLLLossBackward": (
        lambda g: nn.NLLLossBackward.apply(
            g,
            torch.zeros(3, 2, dtype=F64),
            torch.tensor([0, 1, 1]),
            None,
            "none",
            -100,
            torch.tensor(3.0, dtype=F64),
        ),
        (3,),
    ),
    "BCEWithLogitsFunction": (
        lambda x: nn.BCEWithLogitsFunction.apply(
            x,
            torch.tensor([[0.0, 0.3, 1.0], [0.9, 0.5, 0.2]], dtype=F64),
            None,
            torch.tensor([0.5, 2.0, 1.0], dtype=F64),
            "mean",
        ),
        (2, 3),
    ),
    "cross_entropy smoothing weight": (
        lambda x: TF.cross_entropy(
            x,
            torch.tensor([0, 2, 1]),
            weight=torch.tensor([1.0, 2.0, 0.5], dtype=F64),
            label_smoothing=0.2,
        ),
        (3, 3),
    ),
}


@pytest.mark.parametrize("name", GRADGRAD)
def test_gradgradcheck(name):
    fn, shape = GRADGRAD[name]
    x = tg.Tensor(randn(shape, 0), requires_grad=True)
    assert tg.gradcheck(fn, x)
    assert tg.gradgradcheck(fn, x)


def test_bce_with_logits_target_gradient_gradgradcheck():
    x = tg.Tensor(randn((2, 3), 0) * 2, requires_grad=True)
    t = tg.Tensor(torch.rand(2, 3, dtype=F64), requires_grad=True)
    pos = torch.tensor([0.5, 2.0, 1.0], dtype=F64)
    assert tg.gradgradcheck(
        lambda a, b: TF.binary_cross_entropy_with_logits(a, b, pos_weight=pos), x, t
    )


# --- stability and edge values ---------------------------------------------------------------


def test_large_logits_stay_finite_and_equal_torch():
    x = torch.tensor([[1000.0, -1000.0, 0.0], [-800.0, 900.0, 5.0]], dtype=F64)
    target = torch.tensor([1, 0])
    out = check_against_torch(lambda t: cross_entropy(t, target), x)
    assert torch.isfinite(out.data) and out.data > 1000
    logits = torch.tensor([[200.0, -200.0], [-150.0, 40.0]], dtype=F64)
    labels = torch.tensor([[0.0, 1.0], [1.0, 0.5]], dtype=F64)
    for pos_weight in (None, torch.tensor([2.0, 0.5], dtype=F64)):
        out = check_against_torch(
            lambda a, b: bce_with_logits(a, b, pos_weight=pos_weight, reduction="none"),
            logits,
            labels,
        )
        assert torch.isfinite(out.data).all()
        check_second_order(
            lambda a, b: bce_with_logits(a, b, pos_weight=pos_weight), logits, labels
        )


def test_every_sample_ignored_gives_nan_like_torch():
    x = randn((2, 3), 0)
    target = torch.tensor([-100, -100])
    for fn in (cross_entropy, nll_loss):
        ours = fn(tg.Tensor(x), target)
        assert torch.isnan(ours.data) and torch.isnan(fn(x, target))
        assert fn(tg.Tensor(x), target, reduction="sum").data == 0


def test_legacy_size_average_and_reduce_follow_torch():
    x, target = randn((3, 4), 0), torch.tensor([0, 1, 3])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for size_average, reduce in ((False, None), (None, False), (True, True)):
            ours = TF.cross_entropy(tg.Tensor(x), target, size_average=size_average, reduce=reduce)
            theirs = F.cross_entropy(x, target, size_average=size_average, reduce=reduce)
            torch.testing.assert_close(ours.data, theirs)
            assert (
                nn.NLLLoss(size_average=size_average, reduce=reduce).reduction
                == torch.nn.NLLLoss(size_average=size_average, reduce=reduce).reduction
            )
    with pytest.warns(UserWarning, match="deprecated"):
        TF.nll_loss(tg.Tensor(x), target, reduce=False)


def test_repr():
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss()"
    assert (
        repr(nn.CrossEntropyLoss(reduction="sum", ignore_index=0, label_smoothing=0.1))
        == "CrossEntropyLoss(reduction='sum', ignore_index=0, label_smoothing=0.1)"
    )
    assert repr(nn.NLLLoss(ignore_index=3)) == "NLLLoss(ignore_index=3)"
    assert repr(nn.BCEWithLogitsLoss(reduction="none")) == "BCEWithLogitsLoss(reduction='none')"


# --- the existing losses as functions -----------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_and_bce_functions_match_torch_with_weights(reduction):
    p, t = torch.rand(4, 3, dtype=F64) * 0.8 + 0.1, torch.rand(4, 3, dtype=F64)
    w = torch.rand(4, 3, dtype=F64) + 0.5
    check_both(lambda a, b: pick(TF.mse_loss, F.mse_loss)(a, b, reduction=reduction), p, t)
    check_both(
        lambda a, b: pick(TF.mse_loss, F.mse_loss)(a, b, reduction=reduction, weight=w), p, t
    )
    check_both(
        lambda a: pick(TF.binary_cross_entropy, F.binary_cross_entropy)(a, t, reduction=reduction),
        p,
    )
    check_both(
        lambda a: pick(TF.binary_cross_entropy, F.binary_cross_entropy)(
            a, t, weight=w[0], reduction=reduction
        ),
        p,
    )


# --- bad input: clear errors of torch's exception types -----------------------------------------


def _x(*shape):
    return tg.Tensor(torch.randn(*shape, dtype=F64))


ERRORS = [
    (
        lambda: nn.CrossEntropyLoss()(_x(3, 4), torch.tensor([0, 1, 4])),
        IndexError,
        r"CrossEntropyLoss\(\): target 4 is out of bounds.*4 classes.*\[0, 3\], "
        r"or equal ignore_index \(-100\)",
    ),
    (lambda: nn.NLLLoss()(_x(3, 4), torch.tensor([0, -1, 2])), IndexError, r"target -1 is out of"),
    (
        lambda: TF.cross_entropy(_x(2, 3, 4, 4), torch.full((2, 4, 4), 7)),
        IndexError,
        r"cross_entropy: target 7 is out of bounds: the input has 3 classes",
    ),
    (
        lambda: nn.CrossEntropyLoss()(_x(3, 4), torch.tensor([0.0, 1.0, 2.0])),
        DtypeError,
        r"int64 \(torch.long\), got torch.float32.*target.long\(\)",
    ),
    (
        lambda: nn.CrossEntropyLoss()(_x(3, 4), torch.tensor([0, 1])),
        ShapeError,
        r"input of shape \(3, 4\).*needs a target of shape \(3,\).*got \(2,\)",
    ),
    (
        lambda: nn.CrossEntropyLoss()(_x(2, 3, 4, 4), torch.zeros(2, 4, 5, dtype=torch.long)),
        ShapeError,
        r"needs a target of shape \(2, 4, 4\)",
    ),
    (
        lambda: nn.CrossEntropyLoss(weight=torch.ones(3))(_x(3, 4), torch.tensor([0, 1, 2])),
        ShapeError,
        r"weight must have one entry per class, shape \(4,\), got \(3,\)",
    ),
    (
        lambda: nn.CrossEntropyLoss()(_x(3, 4), torch.zeros(3, 4, dtype=torch.long)),
        DtypeError,
        r"class probabilities and must be floating point",
    ),
    (
        lambda: nn.CrossEntropyLoss(ignore_index=1)(_x(3, 4), torch.rand(3, 4, dtype=F64)),
        RuntimeError,
        r"ignore_index is not supported",
    ),
    (lambda: nn.CrossEntropyLoss(label_smoothing=1.5), RuntimeError, r"between 0.0 and 1.0"),
    (
        lambda: TF.cross_entropy(_x(3, 4), torch.tensor([0, 1, 2]), label_smoothing=-0.1),
        ValueError,
        r"label_smoothing",
    ),
    (lambda: nn.NLLLoss()(_x(()), torch.tensor(0)), ShapeError, r"got a 0-d tensor"),
    (lambda: nn.CrossEntropyLoss(reduction="avg"), ValueError, r"'mean', 'sum', 'none'"),
    (
        lambda: nn.BCEWithLogitsLoss()(_x(3, 1), torch.rand(3, dtype=F64)),
        ValueError,
        r"prediction has shape \(3, 1\) but target has shape \(3,\)",
    ),
    (
        lambda: nn.BCEWithLogitsLoss(pos_weight=torch.ones(5, dtype=F64))(
            _x(3, 4), torch.rand(3, 4, dtype=F64)
        ),
        ShapeError,
        r"pos_weight of shape \(5,\) does not broadcast.*\(3, 4\)",
    ),
    (
        lambda: nn.CrossEntropyLoss(weight=tg.Tensor(torch.ones(4), requires_grad=True)),
        RuntimeError,
        r"derivative for 'weight' is not implemented.*detach",
    ),
    (lambda: TF.mse_loss(_x(3, 1), torch.rand(3, dtype=F64)), ValueError, r"must match"),
    (lambda: TF.mse_loss(_x(3, 1), _x(3, 1), weight=torch.ones(3)), ValueError, r"same size"),
]


@pytest.mark.parametrize("index", range(len(ERRORS)))
def test_bad_input_gets_a_clear_error_of_torchs_type(index):
    make, kind, pattern = ERRORS[index]
    with pytest.raises(kind, match=pattern):
        make()
