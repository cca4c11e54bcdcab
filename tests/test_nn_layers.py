"""The layers against torch.nn, with identical weights in float64, and their ops' derivatives.

For every layer: the same layer is built in tapegrad and in torch with the
same arguments, torch's (randomised) parameters and buffers are copied
into ours, and two steps run in train and in eval mode: outputs, input
gradients, parameter gradients (accumulated over the two steps) and
buffers after each step must agree. Each op's first and second derivative
is checked against torch's double backward and against finite
differences (`check_both`), and with `tapegrad.gradgradcheck`.
"""

from __future__ import annotations

import os
import sys

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import tapegrad as tg
import tapegrad.nn.functional as TF
from tapegrad import nn
from tapegrad.errors import DtypeError, ShapeError

from helpers import check_against_torch, check_both, check_second_order, positive, randn, seeds

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.cnn import tapegrad_model, torch_model  # noqa: E402

F64 = torch.float64
TOL = dict(rtol=1e-10, atol=1e-12)
EXAMPLES = settings(max_examples=12, deadline=None)

# name: (build(namespace), input shape). The namespace is tapegrad.nn or torch.nn: the same
# constructor call builds both twins.
LAYERS = {
    "Conv2d": (lambda m: m.Conv2d(3, 4, 3, padding=1, dtype=F64), (2, 3, 6, 5)),
    "Conv2d strided grouped": (
        lambda m: m.Conv2d(
            4,
            6,
            (3, 2),
            stride=(2, 1),
            padding=(1, 0),
            dilation=(1, 2),
            groups=2,
            bias=False,
            dtype=F64,
        ),
        (2, 4, 7, 6),
    ),
    "Conv2d same even kernel": (
        lambda m: m.Conv2d(3, 2, 4, padding="same", dtype=F64),
        (2, 3, 6, 5),
    ),
    "Conv2d valid dilated": (
        lambda m: m.Conv2d(2, 3, 3, padding="valid", dilation=2, dtype=F64),
        (2, 2, 7, 7),
    ),
    "Conv2d unbatched": (lambda m: m.Conv2d(3, 2, 3, padding=1, dtype=F64), (3, 5, 4)),
    "MaxPool2d": (lambda m: m.MaxPool2d(2), (2, 3, 6, 5)),
    "MaxPool2d padded ceil": (
        lambda m: m.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
        (2, 2, 7, 6),
    ),
    "MaxPool2d dilated overlapping": (
        lambda m: m.MaxPool2d((2, 3), stride=1, dilation=(2, 1)),
        (1, 2, 6, 5),
    ),
    "MaxPool2d unbatched": (lambda m: m.MaxPool2d(2), (3, 4, 4)),
    "AvgPool2d": (lambda m: m.AvgPool2d(2), (2, 3, 6, 5)),
    "AvgPool2d padded": (
        lambda m: m.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
        (2, 2, 7, 6),
    ),
    "AvgPool2d divisor ceil": (
        lambda m: m.AvgPool2d(2, divisor_override=3, ceil_mode=True),
        (2, 2, 5, 5),
    ),
    "Flatten": (lambda m: m.Flatten(), (2, 3, 4, 2)),
    "Flatten(0, 2)": (lambda m: m.Flatten(0, 2), (2, 3, 4, 2)),
    "Identity": (lambda m: m.Identity(3, bias=True), (2, 3)),
    "BatchNorm1d": (lambda m: m.BatchNorm1d(3, dtype=F64), (5, 3)),
    "BatchNorm1d (N, C, L) cumulative": (
        lambda m: m.BatchNorm1d(3, momentum=None, dtype=F64),
        (4, 3, 5),
    ),
    "BatchNorm2d": (lambda m: m.BatchNorm2d(3, dtype=F64), (2, 3, 4, 5)),
    "BatchNorm2d not affine": (lambda m: m.BatchNorm2d(3, affine=False, dtype=F64), (2, 3, 4, 5)),
    "BatchNorm2d no running stats": (
        lambda m: m.BatchNorm2d(3, track_running_stats=False, dtype=F64),
        (2, 3, 4, 5),
    ),
    "BatchNorm2d momentum eps no bias": (
        lambda m: m.BatchNorm2d(3, eps=1e-3, momentum=0.3, bias=False, dtype=F64),
        (3, 3, 2, 2),
    ),
    "LayerNorm": (lambda m: m.LayerNorm(5, dtype=F64), (2, 3, 5)),
    "LayerNorm 2-D not affine": (
        lambda m: m.LayerNorm((3, 5), elementwise_affine=False, dtype=F64),
        (2, 3, 5),
    ),
    "LayerNorm no bias unbatched": (lambda m: m.LayerNorm([4], bias=False, dtype=F64), (4,)),
    "LeakyReLU": (lambda m: m.LeakyReLU(), (3, 4)),
    "LeakyReLU 0.2": (lambda m: m.LeakyReLU(0.2), (2, 3, 4)),
    "GELU": (lambda m: m.GELU(), (3, 4)),
    "GELU tanh": (lambda m: m.GELU(approximate="tanh"), (3, 4)),
    "Softmax": (lambda m: m.Softmax(dim=1), (3, 4)),
    "Softmax(0)": (lambda m: m.Softmax(0), (3, 4, 2)),
    "LogSoftmax": (lambda m: m.LogSoftmax(dim=-1), (3, 4)),
    "Dropout": (lambda m: m.Dropout(0.3), (4, 5)),
    "Dropout p=1": (lambda m: m.Dropout(1.0), (2, 3)),
}


def twins(name):
    """The layer in tapegrad and in torch, torch's parameters randomised, all copied into ours."""
    build, shape = LAYERS[name]
    ours, theirs = build(nn), build(torch.nn)
    g = torch.Generator().manual_seed(len(name))
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))
        for _, b in theirs.named_buffers():
            if b.is_floating_point():
                b.copy_(torch.rand(b.shape, generator=g, dtype=b.dtype) + 0.5)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    for (_, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        p.data.copy_(q.detach())
    for key, b in theirs.named_buffers():
        getattr(ours, key).copy_(b)
    return ours, theirs, shape


def buffers_of(module) -> dict:
    # (Module.named_buffers arrives with the Module API's buffers; until then only layers with
    # buffers have it)
    named = getattr(module, "named_buffers", lambda: ())()
    return {k: v.data if isinstance(v, tg.Tensor) else v for k, v in named}


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("name", LAYERS)
def test_layer_matches_torch(name, mode):
    ours, theirs, shape = twins(name)
    if mode == "eval":
        ours.eval()
        theirs.eval()
    assert buffers_of(ours).keys() == dict(theirs.named_buffers()).keys()
    for step in range(2):  # two steps: running statistics move twice, gradients accumulate
        x = randn(shape, step)
        x_ours, x_ref = tg.Tensor(x.clone(), requires_grad=True), x.clone().requires_grad_()
        torch.manual_seed(step)  # the same dropout mask in both
        out = ours(x_ours)
        torch.manual_seed(step)
        expected = theirs(x_ref)
        torch.testing.assert_close(out.data, expected.detach(), **TOL)
        weights = randn(expected.shape, 10 + step)
        out.backward(weights)
        expected.backward(weights)
        torch.testing.assert_close(x_ours.grad, x_ref.grad, **TOL)
        for (key, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
            torch.testing.assert_close(p.grad, q.grad, **TOL, msg=key)
        for key, b in theirs.named_buffers():
            torch.testing.assert_close(buffers_of(ours)[key], b, **TOL, msg=key)


@pytest.mark.parametrize("name", LAYERS)
def test_repr_is_torchs(name):
    ours, theirs, _ = twins(name)
    assert repr(ours) == repr(theirs)


def test_layers_record_one_node_each():
    x = tg.Tensor(randn((2, 3, 6, 6), 0), requires_grad=True)
    layers = [
        nn.Conv2d(3, 3, 3, padding=1, dtype=F64),
        nn.MaxPool2d(2),
        nn.AvgPool2d(2),
        nn.BatchNorm2d(3, dtype=F64),
        nn.LayerNorm(6, dtype=F64),
        nn.LeakyReLU(),
        nn.GELU(),
        nn.Dropout(0.5),
        nn.Softmax(1),
        nn.LogSoftmax(1),
    ]
    for layer in layers:
        with tg.Tape() as tape:
            layer(x)
        assert len(tape) == 1, layer
        assert tape[0].module is layer
    with tg.Tape() as tape:
        nn.Flatten()(x)
    assert [node.name for node in tape.nodes] == ["Reshape"]
    assert nn.Identity()(x) is x


# --- each op's derivatives: first and second order against torch, and finite differences -----


def _pick(ours, theirs):
    return lambda *args: (ours if any(isinstance(a, tg.Tensor) for a in args) else theirs)(*args)


FUNCTIONAL = {
    "conv2d": (
        lambda x, w, b: TF.conv2d(x, w, b, padding=1),
        lambda x, w, b: F.conv2d(x, w, b, padding=1),
        [(2, 3, 4, 5), (2, 3, 3, 3), (2,)],
    ),
    "conv2d strided dilated grouped": (
        lambda x, w: TF.conv2d(x, w, None, (2, 1), (1, 2), (2, 1), 2),
        lambda x, w: F.conv2d(x, w, None, (2, 1), (1, 2), (2, 1), 2),
        [(1, 4, 6, 5), (2, 2, 2, 3)],
    ),
    "conv2d same even": (
        lambda x, w: TF.conv2d(x, w, padding="same", dilation=(1, 3)),
        lambda x, w: F.conv2d(x, w, padding="same", dilation=(1, 3)),
        [(1, 2, 5, 6), (2, 2, 2, 2)],
    ),
    "conv2d unbatched": (
        lambda x, w: TF.conv2d(x, w, stride=2),
        lambda x, w: F.conv2d(x, w, stride=2),
        [(2, 5, 5), (3, 2, 2, 2)],
    ),
    "max_pool2d": (lambda x: TF.max_pool2d(x, 2), lambda x: F.max_pool2d(x, 2), [(2, 2, 4, 5)]),
    "max_pool2d overlapping": (
        lambda x: TF.max_pool2d(x, 3, 1, 1, ceil_mode=True),
        lambda x: F.max_pool2d(x, 3, 1, 1, ceil_mode=True),
        [(1, 2, 4, 4)],
    ),
    "max_pool2d return_indices": (
        lambda x: TF.max_pool2d(x, 2, return_indices=True)[0],
        lambda x: F.max_pool2d(x, 2, return_indices=True)[0],
        [(2, 2, 4, 4)],
    ),
    "avg_pool2d": (
        lambda x: TF.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
        lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
        [(2, 2, 5, 4)],
    ),
    "batch_norm training": (
        lambda x, w, b: TF.batch_norm(
            x, torch.zeros(3, dtype=F64), torch.ones(3, dtype=F64), w, b, True
        ),
        lambda x, w, b: F.batch_norm(
            x, torch.zeros(3, dtype=F64), torch.ones(3, dtype=F64), w, b, True
        ),
        [(3, 3, 2, 2), (3,), (3,)],
    ),
    "batch_norm training 2-D, no statistics": (
        lambda x, w, b: TF.batch_norm(x, None, None, w, b, True),
        lambda x, w, b: F.batch_norm(x, None, None, w, b, True),
        [(4, 3), (3,), (3,)],
    ),
    "batch_norm eval": (
        lambda x, w, b: TF.batch_norm(
            x, torch.arange(3.0, dtype=F64), torch.full((3,), 2.0, dtype=F64), w, b
        ),
        lambda x, w, b: F.batch_norm(
            x, torch.arange(3.0, dtype=F64), torch.full((3,), 2.0, dtype=F64), w, b
        ),
        [(2, 3, 4), (3,), (3,)],
    ),
    "batch_norm training, no affine": (
        lambda x: TF.batch_norm(x, None, None, training=True),
        lambda x: F.batch_norm(x, None, None, training=True),
        [(2, 3, 2, 2)],
    ),
    "layer_norm": (
        lambda x, w, b: TF.layer_norm(x, (4,), w, b),
        lambda x, w, b: F.layer_norm(x, (4,), w, b),
        [(3, 4), (4,), (4,)],
    ),
    "layer_norm 2 dims": (
        lambda x, w: TF.layer_norm(x, (2, 3), w),
        lambda x, w: F.layer_norm(x, (2, 3), w),
        [(2, 2, 3), (2, 3)],
    ),
    "layer_norm no affine": (
        lambda x: TF.layer_norm(x, [3]),
        lambda x: F.layer_norm(x, [3]),
        [(2, 3)],
    ),
    "leaky_relu": (lambda x: TF.leaky_relu(x, 0.2), lambda x: F.leaky_relu(x, 0.2), [(3, 4)]),
    "gelu": (lambda x: TF.gelu(x), lambda x: F.gelu(x), [(3, 4)]),
    "gelu tanh": (
        lambda x: TF.gelu(x, approximate="tanh"),
        lambda x: F.gelu(x, approximate="tanh"),
        [(3, 4)],
    ),
    "softmax": (lambda x: TF.softmax(x, 1), lambda x: F.softmax(x, 1), [(3, 4)]),
    "log_softmax": (lambda x: TF.log_softmax(x, 0), lambda x: F.log_softmax(x, 0), [(3, 4)]),
    "embedding": (
        lambda w: TF.embedding(torch.tensor([[0, 2, 2], [4, 0, 1]]), w),
        lambda w: F.embedding(torch.tensor([[0, 2, 2], [4, 0, 1]]), w),
        [(5, 3)],
    ),
    "dropout": (
        lambda x: TF.dropout(x, 0.4, generator=torch.Generator().manual_seed(3)),
        lambda x: (
            x
            * (
                torch.empty_like(x).bernoulli_(0.6, generator=torch.Generator().manual_seed(3))
                / 0.6
            )
        ),
        [(4, 5)],
    ),
}


@pytest.mark.parametrize("name", FUNCTIONAL)
def test_op_derivatives_first_and_second_order(name):
    ours, theirs, shapes_ = FUNCTIONAL[name]
    values = [randn(shape, i) * (1.5 if i == 0 else 1.0) for i, shape in enumerate(shapes_)]
    check_both(_pick(ours, theirs), *values)
    if len(values) > 1:  # each input alone needing a gradient
        for i in range(len(values)):
            requires = [j == i for j in range(len(values))]
            check_against_torch(_pick(ours, theirs), *values, requires=requires)
            check_second_order(_pick(ours, theirs), *values, requires=requires)


def _leaf(shape, seed, **kw):
    return tg.Tensor(randn(shape, seed, **kw), requires_grad=True)


GRADGRAD = {
    "Conv2dFunction": (
        lambda x, w, b: nn.Conv2dFunction.apply(x, w, b, (2, 1), (1, 0), (1, 2), 1),
        [(1, 2, 5, 5), (2, 2, 2, 2), (2,)],
    ),
    "Conv2dInputGrad": (
        lambda g, w: nn.Conv2dInputGrad.apply(g, w, (1, 2, 5, 3), (2, 2), (1, 1), (1, 1), 1),
        [(1, 3, 3, 2), (3, 2, 2, 2)],
    ),
    "Conv2dWeightGrad": (
        lambda x, g: nn.Conv2dWeightGrad.apply(x, g, (2, 1, 3, 2), (1, 1), (1, 0), (1, 1), 2),
        [(1, 2, 4, 4), (1, 2, 4, 3)],
    ),
    "MaxPool2dFunction": (lambda x: nn.MaxPool2dFunction.apply(x, (2, 2), (1, 1)), [(1, 2, 3, 3)]),
    "MaxPool2dScatter": (
        lambda g: nn.MaxPool2dScatter.apply(g, torch.tensor([[[[0, 2], [5, 5]]]]), (1, 1, 3, 3)),
        [(1, 1, 2, 2)],
    ),
    "MaxPool2dGather": (
        lambda x: nn.MaxPool2dGather.apply(x, torch.tensor([[[[0, 8], [4, 4]]]])),
        [(1, 1, 3, 3)],
    ),
    "AvgPool2dFunction": (
        lambda x: nn.AvgPool2dFunction.apply(x, (2, 2), (1, 1), (1, 1)),
        [(1, 2, 3, 3)],
    ),
    "AvgPool2dBackward": (
        lambda g: nn.AvgPool2dBackward.apply(
            g, (1, 2, 3, 3), ((2, 2), (1, 1), (0, 0), False, True, None)
        ),
        [(1, 2, 2, 2)],
    ),
    "BatchNormFunction training": (
        lambda x, w, b: nn.BatchNormFunction.apply(x, w, b, None, None),
        [(3, 2, 2), (2,), (2,)],
    ),
    "BatchNormFunction eval": (
        lambda x, w, b: nn.BatchNormFunction.apply(
            x, w, b, torch.ones(2, dtype=F64), torch.full((2,), 3.0, dtype=F64), False
        ),
        [(3, 2, 2), (2,), (2,)],
    ),
    "LayerNormFunction": (
        lambda x, w, b: nn.LayerNormFunction.apply(x, w, b, (3,)),
        [(2, 3), (3,), (3,)],
    ),
    "EmbeddingFunction": (
        lambda w: nn.EmbeddingFunction.apply(w, torch.tensor([3, 0, 3])),
        [(4, 2)],
    ),
    "EmbeddingBackward": (
        lambda g: nn.EmbeddingBackward.apply(g, torch.tensor([3, 0, 3]), 4, 0, True),
        [(3, 2)],
    ),
    "DropoutFunction": (
        lambda x: nn.DropoutFunction.apply(x, torch.tensor([0.0, 2.0, 2.0], dtype=F64)),
        [(2, 3)],
    ),
    "LeakyReLUFunction": (lambda x: nn.LeakyReLUFunction.apply(x, 0.1), [(2, 3)]),
    "GELUFunction": (lambda x: nn.GELUFunction.apply(x, "none"), [(2, 3)]),
    "GELUFunction tanh": (lambda x: nn.GELUFunction.apply(x, "tanh"), [(2, 3)]),
    "GELUBackward": (lambda g, x: nn.GELUBackward.apply(g, x, "tanh"), [(2, 3), (2, 3)]),
    "LeakyReLUBackward": (
        lambda g: nn.LeakyReLUBackward.apply(g, torch.tensor([-1.0, 2.0], dtype=F64), 0.3),
        [(2,)],
    ),
}


@pytest.mark.parametrize("name", GRADGRAD)
def test_gradgradcheck(name):
    fn, shapes_ = GRADGRAD[name]
    leaves = [_leaf(shape, i, away_from_zero=0.1) for i, shape in enumerate(shapes_)]
    assert tg.gradcheck(fn, *leaves)
    assert tg.gradgradcheck(fn, *leaves)


def test_third_order_of_a_convolution_against_torch():
    """Conv2dInputGrad and Conv2dWeightGrad differentiate each other: the third derivative too."""
    x, w = randn((1, 2, 4, 4), 0), randn((3, 2, 2, 2), 1)
    results = []
    for make, grad, conv in (
        (lambda v: tg.Tensor(v.clone(), requires_grad=True), tg.grad, TF.conv2d),
        (lambda v: v.clone().requires_grad_(), torch.autograd.grad, F.conv2d),
    ):
        a, b = make(x), make(w)
        y = conv(a, b, None, 1, 1).tanh().sum()
        ga, gb = grad(y, [a, b], create_graph=True)
        h = (ga * ga).sum() + (gb * gb * gb).sum()
        ha, hb = grad(h, [a, b], create_graph=True)
        results.append(
            [
                t.data if isinstance(t, tg.Tensor) else t.detach()
                for t in grad((ha * hb.sum()).sum() + (hb * hb).sum(), [a, b])
            ]
        )
    for ours, theirs in zip(*results):
        torch.testing.assert_close(ours, theirs, **TOL)


@st.composite
def conv_cases(draw):
    groups = draw(st.sampled_from([1, 2]))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(2))
    reach = [dilation[i] * (kernel[i] - 1) + 1 for i in range(2)]
    size = [max(1, reach[i] - 2 * padding[i]) + draw(st.integers(0, 2)) for i in range(2)]
    return dict(
        shape=(draw(st.integers(1, 2)), c_in, *size),
        weight=(c_out, c_in // groups, *kernel),
        bias=draw(st.booleans()),
        args=dict(stride=stride, padding=padding, dilation=dilation, groups=groups),
    )


@EXAMPLES
@given(case=conv_cases(), seed=seeds)
def test_conv2d_of_any_size_matches_torch(case, seed):
    values = [randn(case["shape"], seed), randn(case["weight"], seed + 1)]
    if case["bias"]:
        values.append(randn(case["weight"][:1], seed + 2))
    args = case["args"]
    check_both(_pick(lambda *v: TF.conv2d(*v, **args), lambda *v: F.conv2d(*v, **args)), *values)


@EXAMPLES
@given(
    kernel=st.integers(1, 3),
    stride=st.integers(1, 3),
    padding=st.integers(0, 1),
    extra=st.tuples(st.integers(0, 3), st.integers(0, 3)),
    ceil=st.booleans(),
    seed=seeds,
    average=st.booleans(),
)
def test_pooling_of_any_size_matches_torch(kernel, stride, padding, extra, ceil, seed, average):
    padding = min(padding, kernel // 2)
    x = randn((2, 2, kernel + extra[0], kernel + extra[1]), seed)
    if average:
        fn = _pick(
            lambda t: TF.avg_pool2d(t, kernel, stride, padding, ceil),
            lambda t: F.avg_pool2d(t, kernel, stride, padding, ceil),
        )
    else:
        fn = _pick(
            lambda t: TF.max_pool2d(t, kernel, stride, padding, ceil_mode=ceil),
            lambda t: F.max_pool2d(t, kernel, stride, padding, ceil_mode=ceil),
        )
    check_both(fn, x)


@EXAMPLES
@given(
    shape=st.tuples(st.integers(2, 4), st.integers(1, 3), st.integers(1, 3)),
    seed=seeds,
    training=st.booleans(),
)
def test_batch_norm_of_any_size_matches_torch(shape, seed, training):
    c = shape[1]
    mean, var = randn((c,), seed + 1), positive((c,), seed + 2)

    def fn(x, w, b):
        bn = TF.batch_norm if isinstance(x, tg.Tensor) else F.batch_norm
        return bn(x, mean.clone(), var.clone(), w, b, training)

    check_both(fn, randn(shape, seed), randn((c,), seed + 3), randn((c,), seed + 4))


def test_max_pool_ties_follow_torch():
    """Equal values in a window: the gradient goes where torch's kernel sends it (the first max)."""
    x = torch.tensor([[[[1.0, 1.0, 0.0], [1.0, 1.0, 2.0], [2.0, 0.0, 2.0]]]], dtype=F64)
    check_against_torch(_pick(lambda t: TF.max_pool2d(t, 2, 1), lambda t: F.max_pool2d(t, 2, 1)), x)
    check_second_order(_pick(lambda t: TF.max_pool2d(t, 2, 1), lambda t: F.max_pool2d(t, 2, 1)), x)


def test_leaky_relu_at_zero_follows_torch():
    x = torch.tensor([-1.0, 0.0, 1.0], dtype=F64)
    check_against_torch(_pick(lambda t: TF.leaky_relu(t, 0.3), lambda t: F.leaky_relu(t, 0.3)), x)


def test_float32_layers_match_torch():
    x = torch.randn(2, 3, 6, 6)
    for name in ("Conv2d", "MaxPool2d", "BatchNorm2d", "GELU"):
        build, _ = LAYERS[name]
        ours, theirs = build(nn), build(torch.nn)
        ours.float()
        theirs.float()
        for p, q in zip(ours.parameters(), theirs.parameters()):
            p.data.copy_(q.detach())
        x_ours, x_ref = tg.Tensor(x.clone(), requires_grad=True), x.clone().requires_grad_()
        ours(x_ours).sum().backward()
        theirs(x_ref).sum().backward()
        torch.testing.assert_close(x_ours.grad, x_ref.grad, rtol=1e-5, atol=1e-6)


# --- BatchNorm: running statistics, buffers, modes ------------------------------------------


def test_batch_norm_buffers_are_torchs_in_state_dict():
    ours, theirs = nn.BatchNorm2d(3, dtype=F64), torch.nn.BatchNorm2d(3, dtype=F64)
    assert (
        list(ours.state_dict())
        == list(theirs.state_dict())
        == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    )
    for _ in range(3):
        x = torch.randn(4, 3, 2, 2, dtype=F64)
        ours(tg.Tensor(x))
        theirs(x)
    for key, value in theirs.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[key], value, **TOL)
    assert int(ours.num_batches_tracked) == 3
    assert ours.num_batches_tracked.dtype == torch.int64
    # torch's state dict loads into a fresh layer, which then computes what torch computes in eval
    fresh = nn.BatchNorm2d(3, dtype=F64)
    fresh.load_state_dict(theirs.state_dict())
    fresh.eval()
    theirs.eval()
    x = torch.randn(2, 3, 2, 2, dtype=F64)
    torch.testing.assert_close(fresh(tg.Tensor(x)).data, theirs(x).detach(), **TOL)
    assert list(nn.BatchNorm2d(3, track_running_stats=False).state_dict()) == ["weight", "bias"]


def test_running_variance_is_unbiased_and_momentum_none_is_the_cumulative_average():
    layer = nn.BatchNorm1d(2, momentum=None, dtype=F64)
    batches = [torch.randn(5, 2, dtype=F64) for _ in range(3)]
    for x in batches:
        layer(tg.Tensor(x))
    torch.testing.assert_close(
        layer.running_mean, torch.stack([x.mean(0) for x in batches]).mean(0)
    )
    # the cumulative average starts from the initial running_var (ones) with weight 0
    torch.testing.assert_close(
        layer.running_var, torch.stack([x.var(0, unbiased=True) for x in batches]).mean(0)
    )


def test_eval_uses_the_running_statistics_and_updates_nothing():
    layer = nn.BatchNorm2d(2, eps=0.01, dtype=F64)
    layer.running_mean.copy_(torch.tensor([1.0, -1.0]))
    layer.running_var.copy_(torch.tensor([4.0, 0.25]))
    layer.weight.data.copy_(torch.tensor([2.0, 3.0]))
    layer.eval()
    x = torch.randn(3, 2, 2, 2, dtype=F64)
    y = layer(tg.Tensor(x)).data
    shape = (1, 2, 1, 1)
    expected = (
        (x - layer.running_mean.reshape(shape))
        / (layer.running_var.reshape(shape) + 0.01).sqrt()
        * layer.weight.data.reshape(shape)
    )
    torch.testing.assert_close(y, expected, **TOL)
    assert int(layer.num_batches_tracked) == 0
    torch.testing.assert_close(layer.running_mean, torch.tensor([1.0, -1.0], dtype=F64))


def test_batch_norm_follows_the_model_to_another_dtype():
    layer = nn.BatchNorm2d(2).double()
    assert layer.running_mean.dtype == F64 and layer.weight.dtype == F64
    assert layer.num_batches_tracked.dtype == torch.int64
    layer(tg.Tensor(torch.randn(2, 2, 2, 2, dtype=F64)))


# --- Dropout -------------------------------------------------------------------------------


def test_dropout_drops_what_torch_drops_and_scales_the_rest():
    for dtype in (torch.float32, F64):
        x = torch.randn(50, 40, dtype=dtype)
        torch.manual_seed(7)
        ours = nn.Dropout(0.3)(tg.Tensor(x))
        torch.manual_seed(7)
        theirs = torch.nn.Dropout(0.3)(x)
        assert torch.equal(ours.data, theirs)
    kept = (ours.data != 0).double().mean()
    assert 0.6 < kept < 0.8
    torch.testing.assert_close(ours.data[ours.data != 0], x[ours.data != 0] / 0.7)


def test_dropout_generator_and_eval():
    x = tg.Tensor(torch.randn(10, 10, dtype=F64), requires_grad=True)
    state = torch.get_rng_state()
    a = nn.Dropout(0.5, generator=torch.Generator().manual_seed(1))(x)
    b = nn.Dropout(0.5, generator=torch.Generator().manual_seed(1))(x)
    assert torch.equal(a.data, b.data)
    assert torch.equal(torch.get_rng_state(), state)  # the global generator untouched
    a.sum().backward()
    torch.testing.assert_close(x.grad, (a.data != 0).double() * 2)
    layer = nn.Dropout(0.5).eval()
    assert layer(x) is x
    assert nn.Dropout(0.0)(x) is x
    assert torch.equal(nn.Dropout(1.0)(x).data, torch.zeros(10, 10, dtype=F64))


# --- Embedding -------------------------------------------------------------------------------


def test_embedding_matches_torch_with_repeated_ids_and_padding():
    ids = torch.tensor([[1, 3, 3, 0], [3, 4, 1, 1]])
    for kwargs in (
        {},
        {"padding_idx": 3},
        {"padding_idx": -1},
        {"scale_grad_by_freq": True},
        {"max_norm": 1.0},
        {"max_norm": 0.5, "norm_type": 1.0},
    ):
        torch.manual_seed(0)
        theirs = torch.nn.Embedding(5, 3, dtype=F64, **kwargs)
        ours = nn.Embedding(5, 3, dtype=F64, **kwargs)
        if "padding_idx" in kwargs:
            assert torch.equal(ours.weight.data[kwargs["padding_idx"]], torch.zeros(3, dtype=F64))
        ours.weight.data.copy_(theirs.weight.detach())
        out, expected = ours(ids), theirs(ids)
        torch.testing.assert_close(out.data, expected.detach(), **TOL)
        weights = randn(expected.shape, 1)
        out.backward(weights)
        expected.backward(weights)
        torch.testing.assert_close(ours.weight.grad, theirs.weight.grad, **TOL, msg=str(kwargs))
        torch.testing.assert_close(ours.weight.data, theirs.weight.detach(), **TOL)  # max_norm
        assert repr(ours) == repr(theirs)


def test_embedding_second_derivative_with_scale_grad_by_freq():
    """torch's double backward forgets the 1/count scale (its own gradgradcheck fails); ours
    doesn't."""
    ids = torch.tensor([0, 2, 2, 1])
    w = randn((3, 2), 0)

    def fn(t):
        return (TF.embedding if isinstance(t, tg.Tensor) else F.embedding)(
            ids, t, scale_grad_by_freq=True
        )

    assert tg.gradgradcheck(fn, tg.Tensor(w.clone(), requires_grad=True))
    with pytest.raises(Exception, match="Jacobian mismatch"):
        torch.autograd.gradgradcheck(fn, (w.clone().requires_grad_(),))


def test_embedding_from_pretrained_and_freeze():
    table = randn((4, 2), 0)
    frozen = nn.Embedding.from_pretrained(table)
    assert not frozen.weight.requires_grad
    assert torch.equal(frozen(torch.tensor([2])).data, table[2:3])
    trainable = nn.Embedding.from_pretrained(table, freeze=False, padding_idx=1)
    trainable(torch.tensor([1, 2, 1])).sum().backward()
    torch.testing.assert_close(
        trainable.weight.grad, torch.tensor([[0, 0], [0, 0], [1, 1], [0, 0]], dtype=F64)
    )


# --- the digits CNN as a whole ------------------------------------------------------------------


def test_digits_cnn_gradients_match_torch():
    ours, theirs = tapegrad_model(F64), torch_model(F64)
    for p, q in zip(ours.parameters(), theirs.parameters()):
        p.data.copy_(q.detach())
    x = torch.randn(6, 1, 8, 8, dtype=F64)
    labels = torch.tensor([0, 3, 9, 3, 1, 7])
    loss = nn.CrossEntropyLoss()(ours(tg.Tensor(x)), labels)
    expected = torch.nn.CrossEntropyLoss()(theirs(x), labels)
    loss.backward()
    expected.backward()
    torch.testing.assert_close(loss.data, expected.detach(), **TOL)
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        torch.testing.assert_close(p.grad, q.grad, **TOL, msg=name)


def test_layers_run_on_the_meta_device_first_and_second_order():
    """A derivative that made a tensor on the default device would fail here (see
    test_device.py)."""
    meta = torch.device("meta")
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding="same", device=meta),
        nn.BatchNorm2d(2, device=meta),
        nn.GELU(),
        nn.MaxPool2d(2),
        nn.AvgPool2d(2, padding=1),
        nn.LeakyReLU(),
        nn.Flatten(),
        nn.LayerNorm(8, device=meta),
        nn.Dropout(0.5),
    )
    x = tg.Tensor(torch.empty(3, 1, 6, 6, device=meta), requires_grad=True)
    scores = model(x)
    loss = nn.CrossEntropyLoss(label_smoothing=0.1)(
        scores, torch.zeros(3, dtype=torch.long, device=meta)
    )
    (g,) = tg.grad(loss, [x], create_graph=True)
    (g * g).sum().backward()
    assert x.grad.device == meta
    assert all(p.grad.device == meta for p in model.parameters())
    table = nn.Embedding(4, 2, device=meta)
    out = table(torch.zeros(3, dtype=torch.long, device=meta))
    (g,) = tg.grad(out.sum(), [table.weight], create_graph=True)
    assert g.device == meta


# --- fresh gradients ------------------------------------------------------------------------


def _fresh_cases():
    def leaf(*shape):
        return tg.Tensor(torch.rand(*shape, dtype=F64) + 0.5, requires_grad=True)

    idx = torch.tensor([[[[0, 3], [1, 1]]]])
    return {
        "Conv2dFunction": lambda: nn.Conv2dFunction.apply(
            leaf(1, 2, 4, 4), leaf(3, 2, 2, 2), leaf(3)
        ),
        "Conv2dFunction input only": lambda: nn.Conv2dFunction.apply(
            leaf(1, 2, 4, 4), torch.rand(3, 2, 2, 2, dtype=F64), None
        ),
        "Conv2dInputGrad": lambda: nn.Conv2dInputGrad.apply(
            leaf(1, 3, 3, 3), leaf(3, 2, 2, 2), (1, 2, 4, 4)
        ),
        "Conv2dWeightGrad": lambda: nn.Conv2dWeightGrad.apply(
            leaf(1, 2, 4, 4), leaf(1, 3, 3, 3), (3, 2, 2, 2)
        ),
        "MaxPool2dFunction": lambda: nn.MaxPool2dFunction.apply(leaf(1, 1, 4, 4), (2, 2), (2, 2)),
        "MaxPool2dScatter": lambda: nn.MaxPool2dScatter.apply(leaf(1, 1, 2, 2), idx, (1, 1, 2, 2)),
        "MaxPool2dGather": lambda: nn.MaxPool2dGather.apply(leaf(1, 1, 2, 2), idx),
        "AvgPool2dFunction": lambda: nn.AvgPool2dFunction.apply(leaf(1, 1, 4, 4), (2, 2), (2, 2)),
        "AvgPool2dBackward": lambda: nn.AvgPool2dBackward.apply(
            leaf(1, 1, 2, 2), (1, 1, 4, 4), ((2, 2), (2, 2), (0, 0), False, True, None)
        ),
        "BatchNormFunction": lambda: nn.BatchNormFunction.apply(
            leaf(3, 2), leaf(2), leaf(2), None, None
        ),
        "LayerNormFunction": lambda: nn.LayerNormFunction.apply(leaf(3, 2), leaf(2), leaf(2), (2,)),
        "EmbeddingFunction": lambda: nn.EmbeddingFunction.apply(leaf(4, 2), torch.tensor([1, 1])),
        "EmbeddingBackward": lambda: nn.EmbeddingBackward.apply(
            leaf(2, 2), torch.tensor([1, 1]), 4
        ),
        "DropoutFunction": lambda: nn.DropoutFunction.apply(leaf(3), torch.ones(3, dtype=F64)),
        "LeakyReLUFunction": lambda: nn.LeakyReLUFunction.apply(leaf(3) - 1.0),
        "LeakyReLUBackward": lambda: nn.LeakyReLUBackward.apply(
            leaf(3), torch.rand(3, dtype=F64), 0.1
        ),
        "GELUFunction": lambda: nn.GELUFunction.apply(leaf(3)),
        "GELUBackward": lambda: nn.GELUBackward.apply(leaf(3), leaf(3), "none"),
    }


@pytest.mark.parametrize("case", sorted(_fresh_cases()))
def test_a_fresh_op_returns_gradients_of_its_own(case):
    out = _fresh_cases()[case]()
    node = out.node
    assert node.op.fresh_grads
    grad_output = torch.rand(out.shape, dtype=out.dtype)
    saved = [t for t in node.saved_tensors if isinstance(t, torch.Tensor)]
    grads = node.op.backward(node, grad_output)
    grads = grads if isinstance(grads, tuple) else (grads,)
    returned = [g for g in grads if g is not None]
    assert returned
    taken = {t.untyped_storage().data_ptr() for t in saved + [grad_output]}
    for g in returned:
        assert g.untyped_storage().data_ptr() not in taken
        taken.add(g.untyped_storage().data_ptr())


# --- bad input: clear errors of torch's exception types ---------------------------------------


def _x(*shape, dtype=torch.float32):
    return tg.Tensor(torch.randn(*shape, dtype=dtype))


ERRORS = [
    # (what, exception type (torch raises the first base for these), regex of our message)
    (
        lambda: nn.Conv2d(1, 4, 3)(_x(2, 3, 8, 8)),
        ShapeError,
        r"Conv2d\(1, 4.*expected input with 1 channel \(dimension 1\).*got 3 channels"
        r".*\(2, 3, 8, 8\).*in_channels",
    ),
    (
        lambda: nn.Conv2d(3, 4, 9)(_x(2, 3, 8, 8)),
        ShapeError,
        r"kernel \(9 pixels of height.*larger than the padded input \(8 pixels.*smaller kernel",
    ),
    (lambda: nn.Conv2d(3, 4, 3)(_x(3, 8)), ShapeError, r"expected a 4-D input.*got shape \(3, 8\)"),
    (
        lambda: nn.Conv2d(3, 4, 3)(_x(1, 3, 8, 8, dtype=F64)),
        DtypeError,
        r"input is torch.float64 but the weight is torch.float32.*model.double",
    ),
    (
        lambda: TF.conv2d(_x(1, 2, 5, 5), torch.randn(4, 1, 3, 3), groups=3),
        ShapeError,
        r"conv2d: expected input with 3 channels",
    ),
    (
        lambda: nn.Conv2d(3, 3, 3, stride=2, padding="same"),
        ValueError,
        r"not supported for strided",
    ),
    (lambda: nn.Conv2d(3, 4, 3, groups=2), ValueError, r"in_channels must be divisible by groups"),
    (lambda: nn.Conv2d(3, 4, 3, padding="full"), ValueError, r"'valid' or 'same'"),
    (lambda: nn.Conv2d(3, 4, 3, padding_mode="reflect"), NotImplementedError, r"only 'zeros'"),
    (lambda: nn.Conv2d(3, 4, 0), ValueError, r"kernel_size must be an int >= 1"),
    (
        lambda: nn.MaxPool2d(9)(_x(2, 3, 8, 8)),
        ShapeError,
        r"MaxPool2d\(kernel_size=9.*window \(9 pixels.*larger than the padded input",
    ),
    (lambda: nn.MaxPool2d(2, padding=2)(_x(2, 3, 8, 8)), ShapeError, r"at most half the kernel"),
    (lambda: nn.AvgPool2d(9)(_x(2, 3, 8, 8)), ShapeError, r"AvgPool2d.*larger than the padded"),
    (lambda: nn.MaxPool2d(2)(_x(8, 8)), ShapeError, r"expected a 4-D input"),
    (
        lambda: nn.BatchNorm2d(4)(_x(2, 3, 8, 8)),
        ShapeError,
        r"BatchNorm2d\(4.*expected input with 4 channels.*\(2, 3, 8, 8\).*num_features",
    ),
    (lambda: nn.BatchNorm2d(3)(_x(3, 8, 8)), ShapeError, r"expected a 4-D \(N, C, H, W\) input"),
    (lambda: nn.BatchNorm1d(3)(_x(2, 3, 8, 8)), ShapeError, r"2-D .* or 3-D .*use BatchNorm2d"),
    (lambda: nn.BatchNorm1d(3)(_x(1, 3)), ValueError, r"more than 1 value per channel"),
    (lambda: nn.LayerNorm(4)(_x(2, 3)), ShapeError, r"normalized_shape=\[4\].*\(\*, 4\).*\(2, 3\)"),
    (
        lambda: nn.Embedding(5, 2)(torch.tensor([1, 5])),
        IndexError,
        r"Embedding\(5, 2\): id 5 is out of range.*\[0, 4\].*num_embeddings",
    ),
    (lambda: nn.Embedding(5, 2)(torch.tensor([-1])), IndexError, r"id -1 is out of range"),
    (lambda: nn.Embedding(5, 2)(torch.tensor([1.0])), DtypeError, r"integer tensor.*ids.long\(\)"),
    (lambda: nn.Embedding(5, 2, sparse=True), NotImplementedError, r"sparse=False"),
    (lambda: nn.Embedding(5, 2, padding_idx=5), ValueError, r"padding_idx must be within"),
    (lambda: nn.Dropout(1.5), ValueError, r"between 0 and 1"),
    (lambda: TF.dropout(_x(2), -0.1), ValueError, r"between 0 and 1"),
    (lambda: nn.GELU("exact"), RuntimeError, r"approximate must be 'none' or 'tanh'"),
    (lambda: TF.gelu(_x(2), "exact"), ValueError, r"approximate must be"),
    (lambda: nn.Flatten(3, 1)(_x(2, 3, 4, 5)), ShapeError, r"start_dim \(3\) comes after end_dim"),
    (lambda: nn.Flatten(1, 7)(_x(2, 3, 4, 5)), IndexError, r"out of range"),
    (lambda: TF.avg_pool2d(_x(1, 1, 4, 4), 2, divisor_override=0), ValueError, r"non-zero"),
]


@pytest.mark.parametrize("index", range(len(ERRORS)))
def test_bad_input_gets_a_clear_error_of_torchs_type(index):
    make, kind, pattern = ERRORS[index]
    with pytest.raises(kind, match=pattern):
        make()


def test_a_failing_layer_inside_sequential_is_named():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(3, 2, 3))
    with pytest.raises(ShapeError) as info:
        model(_x(1, 1, 8, 8))
    assert "in layer 2 of Sequential" in "".join(getattr(info.value, "__notes__", []))


# --- teaching tools on a small CNN tape -----------------------------------------------------------


def cnn_tape():
    """Every op of the new layers and losses on one tape; their derivative ops recorded by
    create_graph."""
    g = torch.Generator().manual_seed(0)
    images = tg.Tensor(torch.randn(3, 1, 6, 6, generator=g, dtype=F64), requires_grad=True)
    conv = nn.Conv2d(1, 2, 3, padding=1, dtype=F64, generator=g)
    norm = nn.BatchNorm2d(2, dtype=F64)
    dense = nn.Linear(18, 4, dtype=F64, generator=g)
    layer_norm = nn.LayerNorm(4, dtype=F64)
    # (no padding_idx: its row's zero gradient is a choice, not the derivative check_tape checks)
    table = nn.Embedding(5, 4, dtype=F64, generator=g)
    labels = torch.tensor([1, 3, 0])
    with tg.Tape() as tape:
        h = nn.GELU()(norm(conv(images)))  # Conv2d, BatchNorm, GELU
        h = nn.MaxPool2d(2)(h) + nn.AvgPool2d(3, stride=2, padding=1)(h)  # both poolings
        h = nn.LeakyReLU(0.1)(nn.Flatten()(h))  # Reshape, LeakyReLU
        h = nn.Dropout(0.25, generator=torch.Generator().manual_seed(1))(dense(h))
        h = layer_norm(h) + table(torch.tensor([2, 0, 2]))  # LayerNorm, Embedding
        picked, _ = TF.max_pool2d(images, 2, return_indices=True)  # MaxPool2dGather
        ce = nn.CrossEntropyLoss(reduction="none")(h, labels)
        loss = (
            (ce * ce).sum()  # LogSoftmax, NLLLoss (squared: dL/dce needs a grad)
            + nn.BCEWithLogitsLoss()(h, torch.full((3, 4), 0.25, dtype=F64))
            + nn.Softmax(1)(h).sum() * 0.1
            + h.logsumexp(1).sum() * 0.1
            + picked.sum() * 0.01
        )
        # the derivative ops, recorded by a create_graph sweep
        grads = tg.grad(loss, [images, conv.weight, table.weight], create_graph=True)
        loss = loss + sum((d * d).sum() for d in grads)
    return tape, loss, (conv, norm, dense, layer_norm, table)  # nodes hold layers weakly


NEW_OPS = {
    "Conv2dFunction",
    "BatchNormFunction",
    "GELUFunction",
    "MaxPool2dFunction",
    "AvgPool2dFunction",
    "LeakyReLUFunction",
    "DropoutFunction",
    "LayerNormFunction",
    "EmbeddingFunction",
    "MaxPool2dGather",
    "LogSoftmax",
    "NLLLossFunction",
    "BCEWithLogitsFunction",
    "Softmax",
    "LogSumExp",
    # derivative ops
    "Conv2dInputGrad",
    "Conv2dWeightGrad",
    "GELUBackward",
    "MaxPool2dScatter",
    "AvgPool2dBackward",
    "LeakyReLUBackward",
    "EmbeddingBackward",
    "LogSoftmaxBackward",
    "NLLLossBackward",
    "SoftmaxBackward",
}


def test_check_tape_passes_on_a_cnn_tape_with_every_new_op():
    tape, loss, _ = cnn_tape()
    report = tg.check_tape(loss)
    assert report, str(report)
    assert NEW_OPS <= {row.name for row in report.rows}, NEW_OPS - {row.name for row in report.rows}
    assert all(row.checked > 0 for row in report.rows)


def test_print_and_backward_steps_show_every_new_op():
    tape, loss, layers = cnn_tape()
    text = str(tape)
    for name in NEW_OPS:
        assert f"= {name}(" in text, name
    assert "Conv2d.weight" in text and "Embedding.weight" in text  # parameters named by layer
    steps = list(tg.backward_steps(loss))
    seen = {step.node.name: step for step in steps}
    assert NEW_OPS <= set(seen)
    for name in NEW_OPS:
        assert seen[name].rule.startswith("dL/d"), name
    assert "transposed convolution" in seen["Conv2dFunction"].rule
    assert "correlation" in seen["Conv2dFunction"].format()


def test_every_new_op_states_its_maths_for_the_teaching_tools():
    from tapegrad.steps import derivative_rule, forward_rule

    layer_ops = [getattr(nn, name) for name in nn.__all__]
    softmax_ops = [
        tg.ops.Softmax,
        tg.ops.SoftmaxBackward,
        tg.ops.LogSoftmax,
        tg.ops.LogSoftmaxBackward,
        tg.ops.LogSumExp,
    ]
    for op in layer_ops + softmax_ops:
        if isinstance(op, type) and issubclass(op, tg.Function):
            assert forward_rule(op), op.__name__  # 'y = ...' first, no dL/d in it
            assert derivative_rule(op).startswith("dL/d"), op.__name__


def test_the_cnn_tape_draws_with_a_box_per_node_and_layer_groups():
    import visualize

    g = torch.Generator().manual_seed(0)
    model = tapegrad_model(F64, generator=g)
    with tg.Tape() as tape:
        loss = nn.CrossEntropyLoss()(
            model(tg.Tensor(torch.randn(2, 1, 8, 8, dtype=F64))), torch.tensor([1, 4])
        )
    dot = visualize.to_dot(tape, model=model, group="cluster")
    source = dot.source
    for name in (
        "Conv2dFunction",
        "MaxPool2dFunction",
        "ReLU",
        "Reshape",
        "LinearFunction",
        "LogSoftmax",
        "NLLLossFunction",
    ):
        assert name in source, name
    assert source.count("Conv2dFunction") >= 2 and "0.weight" in source
    assert len(tape) == 10 and loss.requires_grad  # 8 layers (Flatten: a Reshape), 2 for the loss
