"""The course experiment: teach a small network which points of the unit square lie in a disk.

    python examples/disk_circle.py --out figures          # one run, figures in figures/
    python examples/disk_circle.py --runs 10              # ten seeds: mean and std of test error
    python examples/disk_circle.py --compile              # the training step compiled: same
                                                          # results, generated code, less Python

The data: points uniform in [0, 1]^2, labelled 1 inside the disk centred at
(0.5, 0.5) of radius 1/sqrt(2 pi) (area 1/2, so the classes are balanced)
and 0 outside. The network: 2 inputs, three hidden layers of 25 units (ReLU,
ReLU, Tanh) and one Tanh output, trained with the mean squared error and SGD
with momentum 0.9 (learning rate 0.05) on mini-batches of 100 for 100 epochs,
on inputs standardised with the training set's mean and std. A point is
called "inside" when the output is above 0.5, halfway between the two targets.

Measured with `--runs 10` (seeds 0-9): mean test error 1.89%, std 0.93%
(the course reports 2-5%). One run takes about a second on one CPU core.

Everything below is tapegrad: each forward call appends nodes to a tape, and
`loss.backward()` runs the hand-written derivatives over it in reverse. With
`--compile`, `tapegrad.compile` records the first steps and replays the rest as
generated straight-line code calling the same kernels in the same order: the
printed losses and errors are the same, to the last digit. With `--out`, the
generated code is written to disk_circle_step.py (the tape as a program).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch

import tapegrad as tg
from tapegrad import nn, optim
from tapegrad.data import RADIUS, batches, generate_disc_set

THRESHOLD = 0.5  # halfway between the targets 0 (outside) and 1 (inside)


def build_model(hidden: int = 25, generator: torch.Generator | None = None) -> nn.Sequential:
    """2 -> hidden -> hidden -> hidden -> 1, with the course's activations."""
    return nn.Sequential(
        nn.Linear(2, hidden, generator=generator),
        nn.ReLU(),
        nn.Linear(hidden, hidden, generator=generator),
        nn.ReLU(),
        nn.Linear(hidden, hidden, generator=generator),
        nn.Tanh(),
        nn.Linear(hidden, 1, generator=generator),
        nn.Tanh(),
    )


@tg.no_grad()
def error_rate(model: nn.Module, inputs: tg.Tensor, targets: tg.Tensor) -> float:
    """The fraction of points put on the wrong side of the boundary (nothing is recorded)."""
    inside = model(inputs).data > THRESHOLD
    return (inside != (targets.data > THRESHOLD)).float().mean().item()


def train(model, train_x, train_t, *, epochs, lr, batch_size, generator, log=print, compile=False):
    """Mini-batch SGD with momentum; one progress line per epoch. Returns the training step.

    compile: run the step through tapegrad.compile (the same results, bit for bit).
    """
    loss_fn = nn.MSELoss()
    optimizer = optim.SGD(model.parameters(), lr=lr, momentum=0.9)

    def train_step(x, t):
        loss = loss_fn(model(x), t)  # the forward pass records this step's tape...
        optimizer.zero_grad()
        loss.backward()  # ...and the sweep walks it back, filling p.grad
        optimizer.step()  # in place, never recorded
        return loss

    # Compiled, the first calls run as above while being recorded; the later ones run the
    # generated code (step.code): the same kernels, no tape, no Python per op.
    step = tg.compile(train_step) if compile else train_step
    for epoch in range(1, epochs + 1):
        total, seen = 0.0, 0
        for x, t in batches(train_x, train_t, batch_size, shuffle=True, generator=generator):
            loss = step(x, t)
            total += loss.item() * len(x)  # read outside the step: a compiled step has no `if`s
            seen += len(x)
        if log is not None:
            log(
                f"epoch {epoch:3d}/{epochs}  loss {total / seen:.4f}  "
                f"train error {100 * error_rate(model, train_x, train_t):5.2f}%"
            )
    return step


class Trained:
    """What one run leaves behind: the model, how it reads raw points, the test set and the
    errors."""

    def __init__(self, model, mean, std, test_x, test_t, train_error, test_error):
        self.model, self.mean, self.std = model, mean, std
        self.test_x, self.test_t = test_x, test_t  # raw points in the unit square
        self.train_error, self.test_error = train_error, test_error

    def prepare(self, points: torch.Tensor) -> tg.Tensor:
        """Raw points -> the standardised inputs the network was trained on."""
        return tg.Tensor((points - self.mean) / self.std)

    @tg.no_grad()
    def output(self, points: torch.Tensor) -> torch.Tensor:
        return self.model(self.prepare(points)).data


def run(seed: int, args, log=print) -> Trained:
    """One experiment from one seed: data, initialisation and shuffling all come from it."""
    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(seed)
    train_x, train_t = generate_disc_set(args.train_size, generator)
    test_x, test_t = generate_disc_set(args.test_size, generator)
    train_x, train_t, test_x, test_t = (
        d.data.to(device) for d in (train_x, train_t, test_x, test_t)
    )

    # Standardise the inputs with the training set's statistics. The biases start at zero, so
    # without this every first-layer unit would start with its boundary through the corner
    # (0, 0) of the square, far from the disk; centred inputs put them through its middle.
    mean, std = train_x.mean(0), train_x.std(0)
    model = build_model(args.hidden, generator).to(device)
    trained = Trained(model, mean, std, test_x, test_t, None, None)
    inputs, targets = trained.prepare(train_x), tg.Tensor(train_t)
    trained.step = train(
        model,
        inputs,
        targets,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        generator=generator,
        log=log,
        compile=args.compile,
    )
    trained.train_error = error_rate(model, inputs, targets)
    trained.test_error = error_rate(model, trained.prepare(test_x), tg.Tensor(test_t))
    return trained


# --- figures -------------------------------------------------------------------


def plot_classes(trained: Trained, path_stem: Path) -> list[Path]:
    """True classes and the model's predictions side by side, with the learned boundary."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no window
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Circle

    # The model's output on a fine grid of the square: its 0.5 level set is the learned boundary.
    steps = 201
    axis = torch.linspace(0, 1, steps)
    gx, gy = torch.meshgrid(axis, axis, indexing="xy")
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1).to(trained.test_x)
    out = trained.output(grid).reshape(steps, steps).cpu()
    points = trained.test_x.cpu()
    predicted = (trained.output(trained.test_x) > THRESHOLD).reshape(-1).cpu()
    truth = (trained.test_t > THRESHOLD).reshape(-1).cpu()
    wrong = predicted != truth

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5.9), constrained_layout=True)
    colours = {True: "tab:orange", False: "tab:blue"}
    titles = (
        "true classes (test set)",
        f"model's predictions: {int(wrong.sum())} of {len(wrong)} wrong "
        f"({100 * wrong.float().mean():.1f}%)",
    )
    for ax, labels, title in zip((left, right), (truth, predicted), titles):
        for cls, name in ((True, "inside"), (False, "outside")):
            mask = labels == cls
            ax.scatter(points[mask, 0], points[mask, 1], s=9, c=colours[cls], label=name)
        ax.add_patch(Circle((0.5, 0.5), RADIUS, fill=False, ls="--", lw=1.2, color="black"))
        ax.set(xlim=(0, 1), ylim=(0, 1), aspect="equal", title=title, xlabel="x1", ylabel="x2")
    # Shade each side of the learned boundary, draw the boundary, and ring the mistakes.
    right.contourf(
        gx, gy, out, levels=[-2, THRESHOLD, 2], colors=["tab:blue", "tab:orange"], alpha=0.12
    )
    right.contour(gx, gy, out, levels=[THRESHOLD], colors="crimson", linewidths=2)
    right.scatter(
        points[wrong, 0],
        points[wrong, 1],
        s=40,
        facecolors="none",
        edgecolors="black",
        lw=1,
        label="misclassified",
    )
    handles, labels = right.get_legend_handles_labels()
    handles += [Line2D([], [], color="black", ls="--"), Line2D([], [], color="crimson", lw=2)]
    labels += ["true boundary", "learned boundary (output = 0.5)"]
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=9)
    written = []
    for suffix in (".png", ".svg"):
        path = path_stem.with_suffix(suffix)
        fig.savefig(path, dpi=120)
        written.append(path)
    plt.close(fig)
    return written


def draw_tape(trained: Trained, out_dir: Path) -> list[Path]:
    """The trained network's tape on a few points: as SVG, and as a page that steps through
    backprop."""
    import visualize

    model, loss_fn = trained.model, nn.MSELoss()
    x, t = trained.prepare(trained.test_x[:4]), tg.Tensor(trained.test_t[:4])
    # One forward on an explicit tape (which keeps every value), then a sweep that keeps every
    # node's gradient, so the picture shows both.
    with tg.Tape() as tape:
        loss = loss_fn(model(x), t)
    loss.backward(keep_grads=True)
    picture = visualize.render(
        tape,
        out_dir / "disk_circle_tape.svg",
        format="svg",
        model=model,
        values=True,
        grads=True,
        group="cluster",
    )
    with tg.Tape():
        loss = loss_fn(model(x), t)  # a fresh forward: the page runs the sweep itself
    page = out_dir / "disk_circle_backprop.html"
    visualize.write_backprop_html(loss, page, model=model)
    model.zero_grad()
    return [Path(picture), page]


# --- command line ------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--lr", type=float, default=0.05, help="SGD learning rate (momentum 0.9)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=25, help="units in each hidden layer")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first run")
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="independent runs with seeds seed, seed+1, ...: report mean and std of the test error",
    )
    parser.add_argument("--train-size", type=int, default=1000)
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument(
        "--out", type=Path, default=None, help="directory for the figures (of the first run)"
    )
    parser.add_argument("--device", default="cpu", help="cpu, or cuda")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    parser.add_argument(
        "--compile",
        action="store_true",
        help="compile the training step with tapegrad.compile (same results)",
    )
    args = parser.parse_args(argv)
    for name in ("epochs", "batch_size", "hidden", "runs", "train_size", "test_size"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.train_size < 2:
        parser.error("--train-size must be at least 2 (the inputs are standardised by its std)")
    if not (args.lr > 0 and math.isfinite(args.lr)):
        parser.error("--lr must be a positive number")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here; run with --device cpu")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.device == "cpu":
        # Tensors of at most 100 x 25 are too small for torch's intra-op threads to pay off; on a
        # busy machine the threads cost several times the work (measured: 6 s instead of 1 s).
        torch.set_num_threads(1)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    test_errors = []
    for run_index in range(args.runs):
        seed = args.seed + run_index
        if args.runs > 1:
            print(f"--- run {run_index + 1}/{args.runs} (seed {seed})")
        start = time.perf_counter()
        trained = run(seed, args, log=None if args.quiet else print)
        seconds = time.perf_counter() - start
        print(
            f"train error {100 * trained.train_error:.2f}%  "
            f"test error {100 * trained.test_error:.2f}%  ({seconds:.1f} s)"
        )
        test_errors.append(trained.test_error)
        if args.out is not None and run_index == 0:
            written = plot_classes(trained, args.out / "disk_circle")
            written += draw_tape(trained, args.out)
            if args.compile:  # the step as the program the compiler wrote
                code = args.out / "disk_circle_step.py"
                code.write_text(trained.step.code)
                written.append(code)
            for path in written:
                print(f"wrote {path}")
    if args.runs > 1:
        mean = statistics.mean(test_errors)
        std = statistics.stdev(test_errors)
        print(f"test error over {args.runs} runs: mean {100 * mean:.2f}%  std {100 * std:.2f}%")
    return {"test_errors": test_errors}


if __name__ == "__main__":
    main()
    sys.exit(0)
