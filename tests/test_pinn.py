"""The physics-informed network example: a short run end to end, and its steps against torch's."""

from __future__ import annotations

import importlib.util
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import tapegrad as tg

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "pinn_poisson.py"
PROGRESS = re.compile(r"^step +(\d+)  loss (\S+)  max abs error (\S+)$")


@pytest.fixture(scope="module")
def pinn():
    spec = importlib.util.spec_from_file_location("pinn_poisson", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_short_run_from_the_command_line(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--steps", "400", "--every", "100", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    progress = [PROGRESS.match(line) for line in lines if line.startswith("step")]
    assert [int(m.group(1)) for m in progress] == [1, 100, 200, 300, 400]
    losses = [float(m.group(2)) for m in progress]
    assert losses[-1] < losses[0] / 100  # it learns
    final = float(lines[-1].removeprefix("max abs error "))
    assert lines[-1].startswith("max abs error ") and final < float(progress[0].group(3))
    assert (tmp_path / "pinn_poisson.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_its_steps_equal_torch_autograd_from_the_same_weights(pinn):
    """Ten Adam steps in tapegrad and in torch.autograd (the reference) agree to rounding."""
    network = pinn.make_network(8, 3)
    optimizer = tg.optim.Adam(network.parameters(), lr=1e-2)
    layers = []
    for m in network:
        if isinstance(m, tg.nn.Linear):
            layer = torch.nn.Linear(m.in_features, m.out_features, dtype=torch.float64)
            with torch.no_grad():
                layer.weight.copy_(m.weight.data)
                layer.bias.copy_(m.bias.data)
            layers.append(layer)
    reference = torch.optim.Adam([p for layer in layers for p in layer.parameters()], lr=1e-2)
    points = torch.linspace(0, 1, 16, dtype=torch.float64).reshape(-1, 1)
    x = tg.Tensor(points.clone(), requires_grad=True)
    source = tg.Tensor(-(math.pi**2) * torch.sin(math.pi * points))
    rx = points.clone().requires_grad_()

    def u(v):
        h = v
        for layer in layers[:-1]:
            h = torch.tanh(layer(h))
        return v * (1 - v) * layers[-1](h)

    for _ in range(10):
        loss = pinn.residual_loss(network, x, source)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        (du,) = torch.autograd.grad(u(rx).sum(), rx, create_graph=True)
        (d2u,) = torch.autograd.grad(du.sum(), rx, create_graph=True)
        rloss = ((d2u - source.data) ** 2).mean()
        reference.zero_grad()
        rloss.backward()
        reference.step()
        torch.testing.assert_close(loss.data, rloss.detach(), rtol=1e-10, atol=1e-12)
    ours = [p.data for p in network.parameters()]
    theirs = [p.detach() for layer in layers for p in layer.parameters()]
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_the_full_run_reaches_the_target(pinn):  # (3,000 steps: 7 s alone, 2026-12-01)
    network, _ = pinn.train(every=0)
    assert pinn.max_error(network) <= 1e-3
