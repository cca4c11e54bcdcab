"""``python -m visualize`` (or ``tapegrad-visualize``): draw the tape of one training step as SVG.

    python -m visualize --out tape.svg --values --grads --group cluster
    python -m visualize --model disk.pt --out tape.svg     # a checkpoint saved with tapegrad.save
    python -m visualize classes --out classes.svg          # the class diagram (visualize.classes)

It builds the disk example's network (2-25-25-25-1; ReLU, ReLU, Tanh, Tanh),
or the one whose weights `--model` holds (layer sizes read from the
weights' shapes), runs one forward and backward pass of the MSE loss on a
small batch of the disk data set inside ``with tg.Tape()``, and writes that
tape.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import torch

import tapegrad as tg
from tapegrad import nn

from . import engine, render
from .classes import PACKAGES, describe, render_classes
from .graph import GROUPS

DISK_SIZES = (2, 25, 25, 25, 1)
DISK_ACTIVATIONS = (nn.ReLU, nn.ReLU, nn.Tanh, nn.Tanh)


def disk_network(sizes=DISK_SIZES, generator: torch.Generator | None = None) -> nn.Sequential:
    """Linear layers of `sizes`, each followed by the disk example's activation.

    The layers sit at even positions of the Sequential ("0.weight", "2.weight", ...),
    as in examples/disk_circle.py, so its checkpoints load here.
    """
    count = len(sizes) - 1
    layers = []
    for i in range(count):
        layers.append(nn.Linear(sizes[i], sizes[i + 1], generator=generator))
        if count == len(DISK_ACTIVATIONS):
            layers.append(DISK_ACTIVATIONS[i]())
        else:  # another depth: the same pattern, ReLU in the first half and Tanh after
            layers.append(nn.ReLU() if i < count // 2 else nn.Tanh())
    return nn.Sequential(*layers)


def sizes_from_state_dict(state: dict, path) -> tuple:
    """(2, 25, 25, 25, 1) from the shapes of '0.weight', '2.weight', ... in a checkpoint."""
    weights = {}
    for key, value in state.items():
        match = re.fullmatch(r"(\d+)\.weight", key)
        if match:
            weights[int(match.group(1))] = value
    positions = sorted(weights)
    if not positions or positions != list(range(0, 2 * len(positions), 2)):
        raise ValueError(
            f"{path}: expected the disk network's weights '0.weight', '2.weight', ... "
            f"(Linear layers at even positions of a Sequential), found keys "
            f"{', '.join(state) or 'none'}"
        )
    sizes = [weights[0].shape[1]]
    for position in positions:
        w = weights[position]
        if w.dim() != 2 or w.shape[1] != sizes[-1]:
            raise ValueError(
                f"{path}: '{position}.weight' has shape {tuple(w.shape)}, but the layer "
                f"before gives {sizes[-1]} features; it must be (out, {sizes[-1]})"
            )
        sizes.append(w.shape[0])
    return tuple(sizes)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m visualize",
        description="Draw the tape of one forward and backward pass of the disk network as SVG.",
        epilog="python -m visualize classes --help: the UML class diagram of tapegrad.nn and "
        "tapegrad.optim instead.",
    )
    parser.add_argument(
        "--model",
        metavar="PATH",
        help="a checkpoint saved with tapegrad.save (default: a fresh network, seeded)",
    )
    parser.add_argument(
        "--out", metavar="PATH", default="tape.svg", help="where to write (default tape.svg)"
    )
    parser.add_argument("--values", action="store_true", help="show value statistics")
    parser.add_argument("--grads", action="store_true", help="show gradient statistics")
    parser.add_argument(
        "--group",
        choices=GROUPS,
        default="cluster",
        help="frame each layer's ops (cluster), one box per layer (collapse), or none",
    )
    parser.add_argument("--batch", type=int, default=8, metavar="N", help="batch size (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the batch")
    parser.add_argument("--rankdir", choices=("TB", "LR"), default="TB", help="layout direction")
    parser.add_argument(
        "--renderer",
        choices=engine.RENDERERS,
        default="auto",
        help="system dot, WebAssembly Graphviz, or auto (dot if on PATH)",
    )
    args = parser.parse_args(argv)
    if args.batch <= 0:
        parser.error(f"--batch must be positive, got {args.batch}")
    return args


def parse_classes_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m visualize classes",
        description="Draw the UML class diagram of tapegrad.nn and tapegrad.optim (and "
        "tapegrad.optim.lr_scheduler when it exists), read from the code as it is now.",
    )
    parser.add_argument(
        "--out", metavar="PATH", default="classes.svg", help="where to write (default classes.svg)"
    )
    parser.add_argument(
        "--rankdir",
        choices=("RL", "BT", "LR", "TB"),
        default="RL",
        help="layout direction (default RL: bases on the left; BT: bases above)",
    )
    parser.add_argument(
        "--renderer",
        choices=engine.RENDERERS,
        default="auto",
        help="system dot, WebAssembly Graphviz, or auto (dot if on PATH)",
    )
    return parser.parse_args(argv)


def classes_main(argv=None) -> int:
    """``python -m visualize classes``: write the class diagram."""
    args = parse_classes_args(argv)
    try:
        path = render_classes(args.out, rankdir=args.rankdir, renderer=args.renderer)
    except RuntimeError as error:
        print(f"python -m visualize classes: {error}", file=sys.stderr)
        return 1
    diagram = describe(PACKAGES)
    print(
        f"wrote the class diagram of {len(diagram.boxes)} classes "
        f"({', '.join(diagram.packages)}) to {path}"
    )
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["classes"]:
        return classes_main(argv[1:])
    args = parse_args(argv)
    generator = torch.Generator().manual_seed(args.seed)
    if args.model:
        try:
            state = tg.load(args.model)
            model = disk_network(sizes_from_state_dict(state, args.model))
            model.load_state_dict(state)
        except (OSError, ValueError, RuntimeError) as error:
            print(f"python -m visualize: {error}", file=sys.stderr)
            return 2
    else:
        model = disk_network(generator=generator)
    dtype = next(model.parameters()).dtype
    x, t = tg.data.generate_disc_set(args.batch, generator, dtype=dtype)
    if model[0].in_features != 2:
        x = tg.Tensor(
            torch.rand(args.batch, model[0].in_features, generator=generator, dtype=dtype)
        )
    if model[-2].out_features != 1:
        t = tg.Tensor(t.data.expand(-1, model[-2].out_features).contiguous())
    loss_fn = nn.MSELoss()  # kept in a variable: the picture names the module that recorded each op
    with tg.Tape() as tape:
        loss = loss_fn(model(x), t)
    loss.backward(keep_grads=True)
    try:
        path = render(
            tape,
            args.out,
            format=Path(args.out).suffix.lstrip(".") or "svg",
            model=model,
            values=args.values,
            grads=args.grads,
            group=args.group,
            rankdir=args.rankdir,
            renderer=args.renderer,
        )
    except RuntimeError as error:
        print(f"python -m visualize: {error}", file=sys.stderr)
        return 1
    print(f"wrote the tape of {len(tape)} nodes (loss {loss.item():.4g}) to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
