"""tapegrad.compile on a CUDA device, with and without CUDA graphs.

Marked `cuda`: conftest skips them where torch sees no CUDA device. The last test
without the mark checks that cuda_graph=True says what it needs on a machine without one.

    python -m pytest tests/test_compile_cuda.py -m cuda -q     # on a GPU machine
"""

from __future__ import annotations

import pytest
import torch

import tapegrad as tg
from tapegrad import nn, optim
from tapegrad.compile import CompileError

DEVICE = "cuda"


def twin(kind="sgd", dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(
        nn.Linear(2, 25, generator=g),
        nn.ReLU(),
        nn.Linear(25, 25, generator=g),
        nn.ReLU(),
        nn.Linear(25, 25, generator=g),
        nn.Tanh(),
        nn.Linear(25, 1, generator=g),
        nn.Tanh(),
    ).to(DEVICE if torch.cuda.is_available() else "cpu", dtype)
    optimizer = (
        optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        if kind == "sgd"
        else optim.Adam(model.parameters(), lr=0.01)
    )
    loss_fn = nn.MSELoss()

    def train_step(x, t):
        loss = loss_fn(model(x), t)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    return model, train_step


def batches(dtype=torch.float32, device=DEVICE):
    x, t = tg.data.generate_disc_set(130, generator=torch.Generator().manual_seed(1), dtype=dtype)
    return [
        (tg.Tensor(xb.data.to(device)), tg.Tensor(tb.data.to(device)))
        for xb, tb in tg.data.batches(x, t, 20)
    ]


@pytest.mark.cuda
@pytest.mark.parametrize("cuda_graph", [False, True], ids=["replay", "cuda-graph"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_compiled_equals_eager_on_the_device(cuda_graph, dtype):
    (m1, eager), (m2, plain) = twin(dtype=dtype), twin(dtype=dtype)
    step = tg.compile(plain, cuda_graph=cuda_graph)
    data = batches(dtype)
    for i in range(30):
        x, t = data[i % len(data)]
        expected, got = eager(x, t), step(x, t)
        assert torch.equal(expected.data, got.data), i
        for p, q in zip(m1.parameters(), m2.parameters()):
            assert torch.equal(p.data, q.data) and torch.equal(p.grad, q.grad), i
            assert p.data.is_cuda and q.grad.is_cuda
            assert p.data._version == q.data._version, i
    assert step.stats["traces"] == 3


@pytest.mark.cuda
def test_a_graphed_step_bumps_version_counters_like_eager():
    model, plain = twin()
    step = tg.compile(plain, cuda_graph=True)
    data = batches()
    for x, t in data[:4]:
        step(x, t)  # traced, warmed up, captured, replayed
    old = nn.MSELoss()(model(data[0][0]), data[0][1])
    step(*data[1])
    with pytest.raises(RuntimeError, match="modified in place"):
        old.backward()


@pytest.mark.cuda
def test_cuda_graph_refuses_a_step_that_calls_python_by_name():
    _, plain = twin("adam")
    with pytest.raises(CompileError, match="Adam.step"):
        tg.compile(plain, cuda_graph=True)(*batches()[0])


def test_cuda_graph_needs_a_cuda_device():
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    _, plain = twin()
    with pytest.raises(CompileError, match="no CUDA device"):
        tg.compile(plain, cuda_graph=True)  # said at once, before any step runs


@pytest.mark.cuda
def test_inputs_on_another_device_retrace():
    model, plain = twin()
    step = tg.compile(plain)
    data = batches()
    for x, t in data[:3]:
        step(x, t)
    x, t = batches(device="cpu")[0]
    with pytest.raises(RuntimeError):  # eager's error: CPU data, CUDA weights
        step(x, t)
    assert "cpu" in step.last_miss
