"""Devices end to end: parameters, tensors and gradients stay where the model is.

On any machine: the `meta` device (tensors with a shape and no values) runs
every op's forward and derivative. A derivative that makes a tensor on the
default device (``torch.zeros(shape)`` instead of ``grad.new_zeros(shape)``)
fails there exactly as it would on a GPU: torch refuses to mix meta and CPU
tensors, and a gradient that comes back on the CPU is caught below. Values
are checked on CUDA (`tests/test_cuda.py` for the core ops; here the layers,
optimizers, examples and data-parallel training), skipped without a GPU.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import tapegrad as tg
from tapegrad import nn, optim

ROOT = Path(__file__).resolve().parent.parent
META = torch.device("meta")


def _leaf(*shape, device=META):
    return tg.Tensor(torch.empty(*shape, device=device), requires_grad=True)


# Each: (function of the leaves, leaf shapes). Every built-in op, forward and derivative.
EXPRESSIONS = {
    "add sub broadcast": (lambda a, b: (a + b) - (2.0 - b), [(3, 1), (2, 1, 4)]),
    "mul div neg": (lambda a, b: -(a * b) / (b + 3.0), [(4, 1), (1, 5)]),
    "pow": (lambda a: a**2 + a**3 + a**0, [(3,)]),
    "matmul 2d batched 1d": (
        lambda a, b, v: ((a @ b) @ v).sum() + (v @ v),
        [(2, 3, 4), (4, 4), (4,)],
    ),
    "sum mean": (lambda a: a.sum((0, 2), keepdim=True) * a.mean(1, keepdim=True), [(2, 3, 4)]),
    "exp log": (lambda a: a.exp().log(), [(3, 2)]),
    "relu tanh sigmoid": (lambda a: a.relu() + a.tanh() * a.sigmoid(), [(3, 2)]),
    "reshape transpose T": (lambda a: a.reshape(4, 3).transpose(0, 1).T, [(3, 4)]),
    "basic index": (lambda a: a[1:, None, ..., ::2], [(3, 4)]),
    "integer index": (lambda a: a[torch.tensor([0, 0, 2], device=META)], [(3, 4)]),
    "to dtype": (lambda a: a.to(torch.float64).exp(), [(3,)]),
}


@pytest.mark.parametrize("name", EXPRESSIONS)
def test_every_derivative_stays_on_the_device(name):
    fn, shapes = EXPRESSIONS[name]
    leaves = [_leaf(*shape) for shape in shapes]
    out = fn(*leaves)
    assert out.device == META
    out.backward(torch.empty(out.shape, dtype=out.dtype, device=META))
    for position, leaf in enumerate(leaves):
        assert leaf.grad is not None, position
        assert leaf.grad.device == META, f"leaf {position}: gradient on {leaf.grad.device}"
        assert leaf.grad.shape == leaf.shape and leaf.grad.dtype == leaf.dtype


def test_a_scalar_loss_seeds_its_sweep_on_the_device():
    x = _leaf(5)
    (x * x).sum().backward()  # the seed dL/dL = 1 is made like the loss
    assert x.grad.device == META


@pytest.mark.parametrize("loss_class", [nn.MSELoss, nn.BCELoss])
def test_layers_and_losses_on_the_device(loss_class):
    model = nn.Sequential(
        nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 1), nn.Sigmoid()
    )
    model.to(META)
    for name, p in model.named_parameters():
        assert p.device == META, name
    x = tg.Tensor(torch.empty(5, 2, device=META))
    t = tg.Tensor(torch.empty(5, 1, device=META))
    loss_class()(model(x), t).backward()
    for name, p in model.named_parameters():
        assert p.grad.device == META and p.grad.shape == p.shape, name


def test_module_to_moves_parameters_and_their_gradients():
    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    nn.MSELoss()(model(torch.rand(4, 2)), torch.rand(4, 1)).backward()
    params = list(model.parameters())
    model.to(torch.device("cpu"), torch.float64)
    for name, p in model.named_parameters():
        assert p.data.device.type == "cpu" and p.grad.dtype == torch.float64, name
    assert model.to(META) is model  # (no way back: meta has no values)
    assert list(model.parameters()) == params  # the same Parameter objects, moved
    for name, p in model.named_parameters():
        assert p.device == META and p.grad.device == META, name


def test_adam_keeps_its_state_on_the_parameters_device():
    model = nn.Linear(3, 2, device=META)
    model(tg.Tensor(torch.empty(4, 3, device=META))).sum().backward()
    optimizer = optim.Adam(model.parameters())
    optimizer.step()
    for state in optimizer.state.values():
        assert state["exp_avg"].device == META and state["exp_avg_sq"].device == META


# --- on a GPU ---------------------------------------------------------------------------


@pytest.mark.cuda
def test_module_to_cuda_and_back():
    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    before = {name: p.data.clone() for name, p in model.named_parameters()}
    model.to("cuda")
    out = model(tg.tensor(torch.rand(4, 2), device="cuda"))
    nn.MSELoss()(out, torch.zeros(4, 1, device="cuda")).backward()
    for name, p in model.named_parameters():
        assert p.device.type == "cuda" and p.grad.device.type == "cuda", name
    model.to("cpu")
    for name, p in model.named_parameters():
        assert p.device.type == "cpu" and p.grad.device.type == "cpu", name
        assert torch.equal(p.data, before[name])


@pytest.mark.cuda
def test_sgd_momentum_buffers_live_on_the_gpu():
    model = nn.Linear(3, 2).to("cuda")
    model(tg.tensor(torch.rand(4, 3), device="cuda")).sum().backward()
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    optimizer.step()
    optimizer.step()
    assert all(state["momentum_buffer"].device.type == "cuda" for state in optimizer.state.values())


@pytest.mark.cuda
def test_checkpoint_of_a_gpu_model_loads_on_the_cpu(tmp_path):
    model = nn.Linear(3, 2).to("cuda")
    tg.save(model, tmp_path / "m.pt")
    state = tg.load(tmp_path / "m.pt", map_location="cpu")
    cpu_model = nn.Linear(3, 2)
    cpu_model.load_state_dict(state)
    assert torch.equal(cpu_model.weight.data, model.weight.data.cpu())


@pytest.mark.cuda
def test_the_disk_example_trains_on_the_gpu():
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "disk_circle.py"),
            "--device",
            "cuda",
            "--epochs",
            "20",
            "--train-size",
            "300",
            "--test-size",
            "300",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    final = [line for line in result.stdout.splitlines() if line.startswith("train error")]
    assert len(final) == 1, result.stdout


@pytest.mark.cuda
def test_the_data_parallel_example_runs_on_the_gpu_with_nccl():
    """A world of one on cuda:0 (nccl needs one GPU per process; two ranks need two GPUs)."""
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "disk_circle_ddp.py"),
            "--device",
            "cuda",
            "--epochs",
            "3",
            "--train-size",
            "300",
            "--test-size",
            "300",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "backend nccl, device cuda:0" in result.stdout
