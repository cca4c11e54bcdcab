"""Workload P: the physics-informed network of examples/pinn_poisson.py, tapegrad vs torch.autograd.

Both train the same network (u(x) = x (1 - x) N(x), N a 1-32-32-32-1 tanh
MLP, float64) from the same initial weights on the same 128 points with
Adam, for the same number of steps; each step takes u'' with two
create_graph sweeps and sweeps the loss back through both to the weights.
The ratio of the median times is tapegrad's cost of the derivative of a
derivative, against torch's.
"""

from __future__ import annotations

import math
import os
import sys

import torch

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tapegrad as tg  # noqa: E402
from benchmarks.timing import alternate  # noqa: E402

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
sys.path.insert(0, EXAMPLES)
import pinn_poisson  # noqa: E402

DTYPE = torch.float64
POINTS = 128


def tapegrad_setup(steps: int, seed: int = 0):
    network = pinn_poisson.make_network(32, seed)
    optimizer = tg.optim.Adam(network.parameters(), lr=1e-3)
    x = tg.Tensor(torch.linspace(0, 1, POINTS, dtype=DTYPE).reshape(-1, 1), requires_grad=True)
    source = tg.Tensor(-(math.pi**2) * torch.sin(math.pi * x.data))

    def train() -> float:
        for _ in range(steps):
            loss = pinn_poisson.residual_loss(network, x, source)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return loss.item()

    train.network = network
    return train


def autograd_setup(steps: int, seed: int = 0):
    reference = pinn_poisson.make_network(32, seed)  # the same initial weights
    layers = []
    for m in reference:
        if isinstance(m, tg.nn.Linear):
            layer = torch.nn.Linear(m.in_features, m.out_features, dtype=DTYPE)
            with torch.no_grad():
                layer.weight.copy_(m.weight.data)
                layer.bias.copy_(m.bias.data)
            layers.append(layer)
    params = [p for layer in layers for p in layer.parameters()]
    optimizer = torch.optim.Adam(params, lr=1e-3)
    x = torch.linspace(0, 1, POINTS, dtype=DTYPE).reshape(-1, 1).requires_grad_()
    source = -(math.pi**2) * torch.sin(math.pi * x.detach())

    def u(x):
        h = x
        for layer in layers[:-1]:
            h = torch.tanh(layer(h))
        return x * (1 - x) * layers[-1](h)

    def train() -> float:
        for _ in range(steps):
            out = u(x)
            (du,) = torch.autograd.grad(out.sum(), x, create_graph=True)
            (d2u,) = torch.autograd.grad(du.sum(), x, create_graph=True)
            loss = ((d2u - source) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return loss.item()

    return train


def run(steps: int = 200, repeats: int = 5, threads: int = 1) -> dict:
    torch.set_num_threads(threads)
    timings = alternate(
        {
            "torch.autograd": lambda: autograd_setup(steps),
            "tapegrad": lambda: tapegrad_setup(steps),
        },
        repeats,
    )
    ours, theirs = timings["tapegrad"], timings["torch.autograd"]
    return dict(
        steps=steps,
        repeats=repeats,
        tapegrad_s=ours.median,
        autograd_s=theirs.median,
        ratio=ours.median / theirs.median,
        best_ratio=ours.best / theirs.best,
        tapegrad_loss=ours.result,
        autograd_loss=theirs.result,
    )


if __name__ == "__main__":
    result = run()
    print(
        f"workload P: PINN, {result['steps']} steps, median of {result['repeats']}: tapegrad "
        f"{result['tapegrad_s']:.3f} s, torch.autograd {result['autograd_s']:.3f} s, ratio "
        f"{result['ratio']:.2f} (best runs {result['best_ratio']:.2f}); final losses "
        f"{result['tapegrad_loss']:.6e} / {result['autograd_loss']:.6e}"
    )
