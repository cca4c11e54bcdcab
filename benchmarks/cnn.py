"""Workload E: the digits CNN, time per training epoch, tapegrad against torch.autograd.

    python benchmarks/cnn.py                    # 3 epochs per run, median of 7 warm runs, 1 thread
    python benchmarks/cnn.py --repeats 11 --epochs 5 --threads 2
    python -m benchmarks --workloads E          # the same, in the suite (part of its default set)

The network of the handwritten-digits example, `examples/digits.py` (8x8 grey
images, 10 classes; `tests/test_digits.py` checks that the two are the same):

    Conv2d(1, 16, 3, padding=1)  ReLU  MaxPool2d(2)      1x8x8  -> 16x4x4
    Conv2d(16, 32, 3, padding=1) ReLU  MaxPool2d(2)      16x4x4 -> 32x2x2
    Flatten  Linear(128, 10)                             -> 10 scores
    cross-entropy, Adam(lr=1e-3), batches of 64, 1,347 training images

The images and labels are random values of that shape (the time of a step
does not depend on them). Both contestants start from the same initial
weights and see the same batches in the same order, so they compute the
same thing (`tests/test_benchmark_cnn.py` checks it); the runs alternate
(`timing.alternate`) and the table gives medians of the warm runs, the
best run, and the spread of the ratio over the repeats.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    import os

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "benchmarks"

import torch  # noqa: E402

import tapegrad as tg  # noqa: E402
from benchmarks.timing import alternate  # noqa: E402

TARGET = 1.0  # tapegrad's time per epoch <= TARGET x torch.autograd's


@dataclass
class CNNWorkload:
    images: int = 1347
    batch_size: int = 64
    epochs: int = 3
    lr: float = 1e-3
    seed: int = 0
    dtype: torch.dtype = torch.float32

    def data(self):
        """(images (N, 1, 8, 8), labels (N,)) as torch tensors."""
        g = torch.Generator().manual_seed(self.seed)
        x = torch.randn(self.images, 1, 8, 8, generator=g).to(self.dtype)
        labels = torch.randint(0, 10, (self.images,), generator=g)
        return x, labels

    def initial_weights(self):
        """[conv1 W, b, conv2 W, b, linear W, b], drawn once; both contestants copy them."""
        g = torch.Generator().manual_seed(self.seed + 1)
        model = tapegrad_model(self.dtype, g)
        return [p.data.clone() for p in model.parameters()]


def tapegrad_model(dtype=torch.float32, generator=None):
    nn = tg.nn
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, dtype=dtype, generator=generator),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, dtype=dtype, generator=generator),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 2 * 2, 10, dtype=dtype, generator=generator),
    )


def torch_model(dtype=torch.float32):
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, dtype=dtype),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, dtype=dtype),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 2 * 2, 10, dtype=dtype),
    )


def tapegrad_setup(w: CNNWorkload, weights, x, labels):
    model = tapegrad_model(w.dtype)
    params = list(model.parameters())
    for p, value in zip(params, weights):
        p.data.copy_(value)
    optimizer = tg.optim.Adam(params, lr=w.lr)
    loss_fn = tg.nn.CrossEntropyLoss()
    batches = [
        (tg.Tensor(x[i : i + w.batch_size]), labels[i : i + w.batch_size])
        for i in range(0, len(x), w.batch_size)
    ]
    epochs = w.epochs

    def train() -> float:
        for _ in range(epochs):
            total = 0.0
            for xb, tb in batches:
                loss = loss_fn(model(xb), tb)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.data
        return float(total) / len(batches)

    train.weights = lambda: [p.data for p in params]
    return train


def autograd_setup(w: CNNWorkload, weights, x, labels):
    model = torch_model(w.dtype)
    params = list(model.parameters())
    with torch.no_grad():
        for p, value in zip(params, weights):
            p.copy_(value)
    optimizer = torch.optim.Adam(params, lr=w.lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    batches = [
        (x[i : i + w.batch_size], labels[i : i + w.batch_size])
        for i in range(0, len(x), w.batch_size)
    ]
    epochs = w.epochs

    def train() -> float:
        for _ in range(epochs):
            total = 0.0
            for xb, tb in batches:
                loss = loss_fn(model(xb), tb)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.detach()
        return float(total) / len(batches)

    train.weights = lambda: [p.detach() for p in params]
    return train


CONTESTANTS = {"tapegrad": tapegrad_setup, "torch.autograd": autograd_setup}


def run(workload: CNNWorkload, repeats: int, threads: int, out=print) -> dict:
    """Time both contestants; print the table; return the ratios (tapegrad / torch.autograd)."""
    torch.set_num_threads(threads)
    x, labels = workload.data()
    weights = workload.initial_weights()
    setups = {
        name: (lambda s=setup: s(workload, weights, x, labels))
        for name, setup in CONTESTANTS.items()
    }
    timings = alternate({name: setups[name] for name in ("torch.autograd", "tapegrad")}, repeats)
    ours, theirs = timings["tapegrad"], timings["torch.autograd"]
    per_run = sorted(a / b for a, b in zip(ours.warm, theirs.warm))  # the ratio per round
    epochs = workload.epochs
    out(
        f"\nworkload E: digits CNN (conv 1-16-32, max-pool, linear 128-10, cross-entropy, Adam), "
        f"batch {workload.batch_size}, {workload.images} images of 1x8x8, {epochs} epochs per run; "
        f"torch threads = {threads}; median of {repeats} warm runs"
    )
    out(
        f"  {'contestant':<16}{'cold s':>9}{'ms/epoch':>10}{'best ms/epoch':>15}"
        f"{'cpu ms/epoch':>14}{'final loss':>12}"
    )
    for r in (ours, theirs):
        out(
            f"  {r.name:<16}{r.cold:>9.3f}{1e3 * r.median / epochs:>10.1f}"
            f"{1e3 * r.best / epochs:>15.1f}{1e3 * r.median_cpu / epochs:>14.1f}{r.result:>12.5f}"
        )
    ratios = dict(
        median=ours.median / theirs.median,
        best=ours.best / theirs.best,
        cpu=ours.median_cpu / theirs.median_cpu,
        low=per_run[0],
        high=per_run[-1],
    )
    verdict = "met" if ratios["median"] <= TARGET else "NOT met"
    out(
        f"  tapegrad / torch.autograd per epoch: median {ratios['median']:.2f}, best runs "
        f"{ratios['best']:.2f}, cpu {ratios['cpu']:.2f}; round by round {ratios['low']:.2f} .. "
        f"{ratios['high']:.2f}. target <= {TARGET}: {verdict}"
    )
    return ratios


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    run(CNNWorkload(epochs=args.epochs), args.repeats, args.threads)


if __name__ == "__main__":
    main()
