"""The contestants of the training benchmarks, built from the same initial weights.

Each contestant trains the same network (Linear layers with the given
activations, a Tanh-free or Tanh output as configured, MSE loss, SGD with
momentum) on the same mini-batches, and returns its mean loss over the last
epoch, so a test can check that all of them computed the same thing:

- `tapegrad`: tapegrad.nn + tapegrad.optim.SGD, written as a user would.
- `tapegrad.compile`: the same training step, compiled by `tapegrad.compile`.
- `autograd`: torch.nn.Sequential + torch.optim.SGD + loss.backward().
- `floor`: the training step as straight-line raw torch with autograd off:
  `linear` per layer, aten's fused derivative kernels, `mm`/`sum` for the
  weight and bias gradients, torch's fused SGD kernel for the update. Every
  kernel the job needs and nothing else: the limit an engine approaches.
- `torch.compile` (an anchor, in `ANCHORS`: minutes to compile on a CPU): the
  torch.autograd step compiled by `torch.compile`.

The floor calls the kernels through the same entry points as tapegrad
(`tapegrad._kernels`, `torch.ops.aten.X.default`, `F.linear`), so the ratio
between them measures engine overhead, not dispatch paths.

`setup()` (untimed) copies the initial weights into a fresh model and
optimizer and runs the workload's first `warmup` steps (0 unless the
workload says otherwise: `python -m benchmarks` times with 2, so that the
compiled step's two traces, and torch.compile's compilation, are not in the
timed runs; every contestant skips the same steps). The `train()` it returns
runs the remaining steps and is what gets timed.
"""

from __future__ import annotations

import dataclasses
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
    widths: tuple  # (in, hidden..., out), e.g. (2, 25, 25, 25, 1)
    activations: tuple  # one per Linear, "relu" or "tanh"
    points: int
    batch_size: int
    epochs: int
    lr: float = 0.1
    momentum: float = 0.9
    seed: int = 0
    dtype: torch.dtype = torch.float32
    warmup: int = 0  # steps run by setup(), untimed (see the module docstring)
    device: str = "cpu"  # where the data and the models live (benchmarks/gpu.py: cuda)

    def data(self):
        """(inputs, targets) as raw torch tensors: the disk data set of the course."""
        g = torch.Generator().manual_seed(self.seed)
        x, t = tg.data.generate_disc_set(self.points, generator=g, dtype=self.dtype)
        return x.data.to(self.device), t.data.to(self.device)

    def initial_weights(self):
        """[(W, b), ...] drawn once; every contestant starts from copies of these."""
        g = torch.Generator().manual_seed(self.seed + 1)
        model = _tapegrad_model(dataclasses.replace(self, device="cpu"), g)
        return [
            (m.weight.data.clone(), m.bias.data.clone())
            for m in model
            if isinstance(m, tg.nn.Linear)
        ]


# The course task, and a compute-bound one.
WORKLOAD_A = Workload(
    "A",
    (2, 25, 25, 25, 1),
    ("relu", "relu", "tanh", "tanh"),
    points=1000,
    batch_size=100,
    epochs=100,
)
WORKLOAD_B = Workload(
    "B",
    (2, 512, 512, 512, 1),
    ("relu", "relu", "tanh", "tanh"),
    points=10000,
    batch_size=1000,
    epochs=3,
    lr=0.01,
)


def _tapegrad_model(w: Workload, generator=None):
    layers = []
    for i, act in enumerate(w.activations):
        layers.append(
            tg.nn.Linear(
                w.widths[i], w.widths[i + 1], generator=generator, dtype=w.dtype, device=w.device
            )
        )
        layers.append(tg.nn.ReLU() if act == "relu" else tg.nn.Tanh())
    return tg.nn.Sequential(*layers)


# --- the loop every contestant shares ------------------------------------------------


def _loop(w: Workload, step, batch):
    """Run the first `w.warmup` steps now; return train(), which runs the rest.

    step(xb, tb) -> the loss as a torch tensor; batch(start) -> (xb, tb). train()
    returns the mean loss of the last epoch (as float: one sync at the end).
    """
    n, size = w.points, w.batch_size
    per_epoch = -(-n // size)
    schedule = [
        (epoch == w.epochs - 1, start) for epoch in range(w.epochs) for start in range(0, n, size)
    ]
    warm = 0.0
    for last, start in schedule[: w.warmup]:
        loss = step(*batch(start))
        if last:
            warm = warm + loss
    rest = schedule[w.warmup :]

    def train() -> float:
        total = warm
        for last, start in rest:
            loss = step(*batch(start))
            if last:
                total += loss  # a torch scalar: no sync, no .item() per step
        return float(total) / per_epoch

    return train


def _slices(x, t, size, wrap=None):
    if wrap is None:
        return lambda start: (x[start : start + size], t[start : start + size])
    return lambda start: (wrap(x[start : start + size]), wrap(t[start : start + size]))


# --- tapegrad ------------------------------------------------------------------


def _tapegrad_parts(w: Workload, weights):
    model = _tapegrad_model(w)
    linears = [m for m in model if isinstance(m, tg.nn.Linear)]
    for layer, (W, b) in zip(linears, weights):
        layer.weight.data.copy_(W)
        layer.bias.data.copy_(b)
    optimizer = tg.optim.SGD(model.parameters(), lr=w.lr, momentum=w.momentum)
    loss_fn = tg.nn.MSELoss()

    def train_step(xb, tb):
        loss = loss_fn(model(xb), tb)  # the forward records this step's tape
        optimizer.zero_grad()
        loss.backward()  # the sweep
        optimizer.step()
        return loss.data

    return model, linears, train_step


def tapegrad_setup(w: Workload, weights, x, t):
    model, linears, train_step = _tapegrad_parts(w, weights)
    train = _loop(w, train_step, _slices(x, t, w.batch_size, tg.Tensor._wrap))
    train.weights = lambda: [(linear.weight.data, linear.bias.data) for linear in linears]
    train.model = model
    return train


def compiled_setup(w: Workload, weights, x, t, cuda_graph: bool = False):
    """The tapegrad step as above, through tapegrad.compile (traced on its first calls)."""
    model, linears, train_step = _tapegrad_parts(w, weights)
    step = tg.compile(train_step, cuda_graph=cuda_graph)
    train = _loop(w, step, _slices(x, t, w.batch_size, tg.Tensor._wrap))
    train.weights = lambda: [(linear.weight.data, linear.bias.data) for linear in linears]
    train.model = model
    train.step = step
    return train


# --- torch.autograd -----------------------------------------------------------


def _autograd_parts(w: Workload, weights):
    layers = []
    for i, act in enumerate(w.activations):
        layers.append(torch.nn.Linear(w.widths[i], w.widths[i + 1], dtype=w.dtype, device=w.device))
        layers.append(torch.nn.ReLU() if act == "relu" else torch.nn.Tanh())
    model = torch.nn.Sequential(*layers)
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for layer, (W, b) in zip(linears, weights):
            layer.weight.copy_(W)
            layer.bias.copy_(b)
    optimizer = torch.optim.SGD(model.parameters(), lr=w.lr, momentum=w.momentum)
    loss_fn = torch.nn.MSELoss()

    def train_step(xb, tb):
        loss = loss_fn(model(xb), tb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.detach()

    return model, linears, train_step


def autograd_setup(w: Workload, weights, x, t):
    model, linears, train_step = _autograd_parts(w, weights)
    train = _loop(w, train_step, _slices(x, t, w.batch_size))
    train.weights = lambda: [(linear.weight.detach(), linear.bias.detach()) for linear in linears]
    return train


def torch_compile_setup(w: Workload, weights, x, t):
    """The torch.autograd step compiled by torch.compile (inductor). Its compilation happens in
    the first calls: with w.warmup >= 2 it is in setup(), and `train.setup_seconds` says how
    long."""
    import time

    model, linears, train_step = _autograd_parts(w, weights)
    compiled = torch.compile(train_step)
    start = time.perf_counter()
    train = _loop(w, compiled, _slices(x, t, w.batch_size))
    train.setup_seconds = time.perf_counter() - start
    train.weights = lambda: [(linear.weight.detach(), linear.bias.detach()) for linear in linears]
    return train


# --- the floor ------------------------------------------------------------------

_mse_loss = torch.ops.aten.mse_loss.default
_relu = torch.relu
_tanh = torch.tanh


def floor_setup(w: Workload, weights, x, t):
    params = [p.to(w.device, copy=True) for pair in weights for p in pair]  # W1, b1, W2, ...
    buffers = [torch.empty_like(p) for p in params]
    relu = [act == "relu" for act in w.activations]
    depth = len(relu)
    lr, momentum = w.lr, w.momentum
    ones = torch.ones((), dtype=w.dtype, device=w.device)
    mean = 1  # aten's reduction code
    first = True

    @torch.no_grad()
    def train_step(xb, tb):
        nonlocal first
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
            g = _kernels.threshold_backward(g, h, 0) if relu[i] else _kernels.tanh_backward(g, h)
            grads[2 * i] = g.t().mm(saved[i])
            grads[2 * i + 1] = g.sum(0)
            if i:
                g = g.mm(params[2 * i])
                h = saved[i]
        # update: one fused kernel for all parameters
        torch._fused_sgd_(
            params,
            grads,
            buffers,
            weight_decay=0.0,
            momentum=momentum,
            lr=lr,
            dampening=0.0,
            nesterov=False,
            maximize=False,
            is_first_step=first,
        )
        first = False
        return loss

    train = _loop(w, train_step, _slices(x, t, w.batch_size))
    train.weights = lambda: [(params[2 * i], params[2 * i + 1]) for i in range(depth)]
    return train


CONTESTANTS = {
    "tapegrad": tapegrad_setup,
    "tapegrad.compile": compiled_setup,
    "torch.autograd": autograd_setup,
    "floor": floor_setup,
}
ANCHORS = {"torch.compile": torch_compile_setup}
