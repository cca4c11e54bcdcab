"""The three contestants of the training benchmarks, built from the same initial weights.

Each contestant trains the same network (Linear layers with the given
activations, a Tanh-free or Tanh output as configured, MSE loss, SGD with
momentum) on the same mini-batches, and returns its mean loss over the last
epoch, so a test can check that all three computed the same thing:

- `tapegrad`: tapegrad.nn + tapegrad.optim.SGD, written as a user would.
- `autograd`: torch.nn.Sequential + torch.optim.SGD + loss.backward().
- `floor`: the training step as straight-line raw torch with autograd off:
  `linear` per layer, aten's fused derivative kernels, `mm`/`sum` for the
  weight and bias gradients, torch's fused SGD kernel for the update. Every
  kernel the job needs and nothing else: the limit an engine approaches.

The floor calls the kernels through the same entry points as tapegrad
(`tapegrad._kernels`, `torch.ops.aten.X.default`, `F.linear`), so the ratio
between them measures engine overhead, not dispatch paths.

`setup()` (untimed) copies the initial weights into a fresh model and
optimizer; the `train()` it returns is what gets timed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

import tapegrad as tg
from tapegrad import _kernels

ACTIVATIONS = ("relu", "tanh")


@dataclass
class Workload:
    """A training job: the network, the data and the optimizer settings."""

    name: str
    widths: tuple            # (in, hidden..., out), e.g. (2, 25, 25, 25, 1)
    activations: tuple       # one per Linear, "relu" or "tanh"
    points: int
    batch_size: int
    epochs: int
    lr: float = 0.1
    momentum: float = 0.9
    seed: int = 0
    dtype: torch.dtype = torch.float32

    def data(self):
        """(inputs, targets) as raw torch tensors: the disk data set of the course."""
        g = torch.Generator().manual_seed(self.seed)
        x, t = tg.data.generate_disc_set(self.points, generator=g, dtype=self.dtype)
        return x.data, t.data

    def initial_weights(self):
        """[(W, b), ...] drawn once; every contestant starts from copies of these."""
        g = torch.Generator().manual_seed(self.seed + 1)
        model = _tapegrad_model(self, g)
        return [(m.weight.data.clone(), m.bias.data.clone())
                for m in model if isinstance(m, tg.nn.Linear)]


# The course task, and a compute-bound one.
WORKLOAD_A = Workload("A", (2, 25, 25, 25, 1), ("relu", "relu", "tanh", "tanh"),
                      points=1000, batch_size=100, epochs=100)
WORKLOAD_B = Workload("B", (2, 512, 512, 512, 1), ("relu", "relu", "tanh", "tanh"),
                      points=10000, batch_size=1000, epochs=3, lr=0.01)


def _tapegrad_model(w: Workload, generator=None):
    layers = []
    for i, act in enumerate(w.activations):
        layers.append(tg.nn.Linear(w.widths[i], w.widths[i + 1], generator=generator,
                                   dtype=w.dtype))
        layers.append(tg.nn.ReLU() if act == "relu" else tg.nn.Tanh())
    return tg.nn.Sequential(*layers)


# --- tapegrad ------------------------------------------------------------------

def tapegrad_setup(w: Workload, weights, x, t):
    model = _tapegrad_model(w)
    linears = [m for m in model if isinstance(m, tg.nn.Linear)]
    for layer, (W, b) in zip(linears, weights):
        layer.weight.data.copy_(W)
        layer.bias.data.copy_(b)
    optimizer = tg.optim.SGD(model.parameters(), lr=w.lr, momentum=w.momentum)
    loss_fn = tg.nn.MSELoss()
    inputs, targets = tg.Tensor(x), tg.Tensor(t)
    batch_size, epochs = w.batch_size, w.epochs

    def train() -> float:
        for _ in range(epochs):
            total = 0.0
            for xb, tb in tg.data.batches(inputs, targets, batch_size):
                loss = loss_fn(model(xb), tb)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.data          # a torch scalar: no sync, no .item() per step
        return float(total) / -(-len(x) // batch_size)

    train.weights = lambda: [(l.weight.data, l.bias.data) for l in linears]
    train.model = model
    return train


# --- torch.autograd -----------------------------------------------------------

def autograd_setup(w: Workload, weights, x, t):
    layers = []
    for i, act in enumerate(w.activations):
        layers.append(torch.nn.Linear(w.widths[i], w.widths[i + 1], dtype=w.dtype))
        layers.append(torch.nn.ReLU() if act == "relu" else torch.nn.Tanh())
    model = torch.nn.Sequential(*layers)
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for layer, (W, b) in zip(linears, weights):
            layer.weight.copy_(W)
            layer.bias.copy_(b)
    optimizer = torch.optim.SGD(model.parameters(), lr=w.lr, momentum=w.momentum)
    loss_fn = torch.nn.MSELoss()
    batch_size, epochs, n = w.batch_size, w.epochs, len(x)

    def train() -> float:
        for _ in range(epochs):
            total = 0.0
            for start in range(0, n, batch_size):
                xb, tb = x[start:start + batch_size], t[start:start + batch_size]
                loss = loss_fn(model(xb), tb)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.detach()
        return float(total) / -(-n // batch_size)

    train.weights = lambda: [(l.weight.detach(), l.bias.detach()) for l in linears]
    return train


# --- the floor ------------------------------------------------------------------

_mse_loss = torch.ops.aten.mse_loss.default
_relu = torch.relu
_tanh = torch.tanh


def floor_setup(w: Workload, weights, x, t):
    params = [p.clone() for pair in weights for p in pair]           # W1, b1, W2, b2, ...
    buffers = [torch.empty_like(p) for p in params]
    relu = [act == "relu" for act in w.activations]
    depth = len(relu)
    batch_size, epochs, n = w.batch_size, w.epochs, len(x)
    lr, momentum = w.lr, w.momentum
    ones = torch.ones((), dtype=w.dtype)
    mean = 1                                                         # aten's reduction code

    def train() -> float:
        first = True
        with torch.no_grad():
            for _ in range(epochs):
                total = 0.0
                for start in range(0, n, batch_size):
                    xb, tb = x[start:start + batch_size], t[start:start + batch_size]
                    # forward: keep each layer's input and each activation's output
                    h = xb
                    saved = []
                    for i in range(depth):
                        saved.append(h)
                        z = F.linear(h, params[2 * i], params[2 * i + 1])
                        h = _relu(z) if relu[i] else _tanh(z)
                    loss = _mse_loss(h, tb, mean)
                    # backward
                    g = _kernels.mse_loss_backward(ones, h, tb, mean)
                    grads = [None] * (2 * depth)
                    for i in range(depth - 1, -1, -1):
                        g = (_kernels.threshold_backward(g, h, 0) if relu[i]
                             else _kernels.tanh_backward(g, h))
                        grads[2 * i] = g.t().mm(saved[i])
                        grads[2 * i + 1] = g.sum(0)
                        if i:
                            g = g.mm(params[2 * i])
                            h = saved[i]
                    # update: one fused kernel for all parameters
                    torch._fused_sgd_(params, grads, buffers, weight_decay=0.0,
                                      momentum=momentum, lr=lr, dampening=0.0, nesterov=False,
                                      maximize=False, is_first_step=first)
                    first = False
                    total += loss
        return float(total) / -(-n // batch_size)

    train.weights = lambda: [(params[2 * i], params[2 * i + 1]) for i in range(depth)]
    return train


CONTESTANTS = {"tapegrad": tapegrad_setup, "torch.autograd": autograd_setup, "floor": floor_setup}
