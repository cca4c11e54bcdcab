"""A physics-informed network: solve u''(x) = -pi^2 sin(pi x) on [0, 1], u(0) = u(1) = 0.

The exact solution is u(x) = sin(pi x). Nobody gives the network a value
of u: it learns u from the equation alone. The loss at n collocation points
x_i is the mean squared residual of the equation,

    L = mean_i (u''(x_i) + pi^2 sin(pi x_i))^2,

and u'' is the second derivative of the network's output with respect to
its input, taken with tapegrad.grad(..., create_graph=True) twice. Each
training step therefore differentiates a derivative of a derivative: the
tape of L holds the network, its first derivative and its second, and
L.backward() sweeps all three to reach the weights.

The boundary conditions are built in: u(x) = x (1 - x) N(x), where N is a
small tanh MLP (1 -> 32 -> 32 -> 32 -> 1), so u(0) = u(1) = 0 for any
weights. Adam, lr 1e-3, 3,000 steps, float64.

    python examples/pinn_poisson.py                 # prints progress, then the max abs error
    python examples/pinn_poisson.py --out figures   # and writes figures/pinn_poisson.png
"""

from __future__ import annotations

import argparse
import math
import os
import time

import torch

import tapegrad as tg
from tapegrad import nn

DTYPE = torch.float64


def make_network(width: int, seed: int) -> nn.Sequential:
    """N(x): 1 -> width -> width -> width -> 1, tanh, Xavier-initialised from `seed`."""
    g = torch.Generator().manual_seed(seed)
    return nn.Sequential(
        nn.Linear(1, width, dtype=DTYPE, generator=g),
        nn.Tanh(),
        nn.Linear(width, width, dtype=DTYPE, generator=g),
        nn.Tanh(),
        nn.Linear(width, width, dtype=DTYPE, generator=g),
        nn.Tanh(),
        nn.Linear(width, 1, dtype=DTYPE, generator=g),
    )


def solution(network, x):
    """u(x) = x (1 - x) N(x): zero at both ends of [0, 1] whatever the weights."""
    return x * (1 - x) * network(x)


def residual_loss(network, x, source):
    """mean (u''(x) - f(x))^2, with u'' from two create_graph sweeps."""
    u = solution(network, x)
    (du,) = tg.grad(
        u.sum(), x, create_graph=True
    )  # du/dx at every point (each u_i has its own x_i)
    (d2u,) = tg.grad(du.sum(), x, create_graph=True)  # d2u/dx2
    return ((d2u - source) ** 2).mean()


def train(
    steps: int = 3000,
    width: int = 32,
    points: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    every: int = 500,
    log=print,
):
    """Train N; return (network, the last loss)."""
    network = make_network(width, seed)
    optimizer = tg.optim.Adam(network.parameters(), lr=lr)
    x = tg.Tensor(torch.linspace(0, 1, points, dtype=DTYPE).reshape(-1, 1), requires_grad=True)
    source = tg.Tensor(-(math.pi**2) * torch.sin(math.pi * x.data))  # f(x) = u''(x)
    loss = None
    for step in range(1, steps + 1):
        loss = residual_loss(network, x, source)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if every and (step % every == 0 or step == 1):
            log(f"step {step:5d}  loss {loss.item():.3e}  max abs error {max_error(network):.3e}")
    return network, loss


def max_error(network, n: int = 1001) -> float:
    """max |u(x) - sin(pi x)| on n evenly spaced points of [0, 1]."""
    x = torch.linspace(0, 1, n, dtype=DTYPE).reshape(-1, 1)
    with tg.no_grad():
        u = solution(network, tg.Tensor(x)).data
    return (u - torch.sin(math.pi * x)).abs().max().item()


def figure(network, path: str) -> None:
    """The prediction against sin(pi x), and the pointwise error."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = torch.linspace(0, 1, 1001, dtype=DTYPE).reshape(-1, 1)
    with tg.no_grad():
        u = solution(network, tg.Tensor(x)).data
    exact = torch.sin(math.pi * x)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 6), sharex=True)
    top.plot(x.squeeze(), exact.squeeze(), color="black", lw=3, alpha=0.3, label="exact sin(pi x)")
    top.plot(x.squeeze(), u.squeeze(), color="tab:blue", lw=1.2, label="network u(x)")
    top.set_ylabel("u")
    top.legend()
    top.set_title("u'' = -pi^2 sin(pi x), u(0) = u(1) = 0")
    bottom.plot(x.squeeze(), (u - exact).squeeze(), color="tab:red")
    bottom.set_xlabel("x")
    bottom.set_ylabel("u(x) - sin(pi x)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--points", type=int, default=128, help="collocation points on [0, 1]")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--every", type=int, default=500, help="steps between progress lines")
    parser.add_argument("--out", default=None, help="folder for pinn_poisson.png")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    network, _ = train(args.steps, args.width, args.points, args.lr, args.seed, args.every)
    print(f"trained {args.steps} steps in {time.perf_counter() - start:.1f} s")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        path = os.path.join(args.out, "pinn_poisson.png")
        figure(network, path)
        print(f"wrote {path}")
    print(f"max abs error {max_error(network):.3e}")


if __name__ == "__main__":
    main()
