"""The disk experiment of `disk_circle.py`, trained data-parallel over several processes.

    torchrun --nproc-per-node 2 examples/disk_circle_ddp.py             # 2 processes, gloo, CPU
    torchrun --nproc-per-node 2 examples/disk_circle_ddp.py --device cuda   # one GPU each, nccl
    python examples/disk_circle_ddp.py                                    # a world of one

Same data, network, seed and flags as the single-process example, and the same
*global* batch: every process draws the same shuffled batch of --batch-size
points, keeps its shard of it (`tapegrad.distributed.shard`), records and
sweeps its own tape on that shard, and then `sync_gradients()` averages the
parameter gradients over the processes (bucketed all_reduce), weighted by
each shard's size. So each SGD step is the step one process would take on
the whole batch, up to float rounding. Only rank 0 prints.
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import sys
import time

import torch
import torch.distributed as dist

# The single-process example sits next to this file: same model, same error measure, same defaults.
from disk_circle import build_model, error_rate
from disk_circle import parse_args as single_process_args

import tapegrad as tg
from tapegrad import nn, optim
from tapegrad.data import batches, generate_disc_set
from tapegrad.distributed import DistributedDataParallel, shard


def start_process_group(device_kind: str, backend: str | None) -> torch.device:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, MASTER_ADDR/PORT in the
    environment), or make a world of one when started with plain `python`. Returns this rank's
    device."""
    if "RANK" not in os.environ:
        with socket.socket() as s:  # a free port for a one-process rendezvous
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        os.environ.update(
            RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
        )
    if device_kind == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    dist.init_process_group(backend or ("nccl" if device_kind == "cuda" else "gloo"))
    return device


def train(model, ddp, inputs, targets, *, epochs, lr, batch_size, generator, log):
    """Mini-batch SGD with momentum on this rank's shard of every global batch."""
    loss_fn = nn.MSELoss()
    optimizer = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    for epoch in range(1, epochs + 1):
        total, seen = 0.0, 0
        for x, t in batches(inputs, targets, batch_size, shuffle=True, generator=generator):
            x, t = shard(x, t)  # the same global batch everywhere; keep our rows
            optimizer.zero_grad()
            if len(x):  # a batch smaller than the world leaves some idle
                loss = loss_fn(ddp(x), t)  # this rank's tape...
                loss.backward()  # ...and its own sweep: p.grad = this shard's gradient
                total += loss.item() * len(x)
                seen += len(x)
            ddp.sync_gradients(
                num_samples=len(x)
            )  # p.grad = the whole batch's gradient, everywhere
            optimizer.step()  # the same step on every rank: replicas stay equal
        # The epoch's mean loss over all ranks' points: one small collective per epoch.
        sums = torch.tensor([total, seen], dtype=torch.float64, device=inputs.device)
        dist.all_reduce(sums)
        if log is not None:
            log(
                f"epoch {epoch:3d}/{epochs}  loss {(sums[0] / sums[1]).item():.4f}  "
                f"train error {100 * error_rate(model, inputs, targets):5.2f}%"
            )
    return model


def run(args) -> dict:
    device = start_process_group(args.device.split(":")[0], args.backend)
    rank, world_size = dist.get_rank(), dist.get_world_size()
    log = print if rank == 0 and not args.quiet else None
    if device.type == "cpu":
        # Small tensors and one process per core: torch's intra-op threads would only compete.
        torch.set_num_threads(1)
    try:
        start = time.perf_counter()
        # Exactly the single-process run's draws from one seeded generator, on every rank:
        # the same data, the same initial weights, the same shuffles.
        generator = torch.Generator().manual_seed(args.seed)
        train_x, train_t = generate_disc_set(args.train_size, generator)
        test_x, test_t = generate_disc_set(args.test_size, generator)
        train_x, train_t, test_x, test_t = (
            d.data.to(device) for d in (train_x, train_t, test_x, test_t)
        )
        mean, std = train_x.mean(0), train_x.std(0)  # standardised as in disk_circle.py
        model = build_model(args.hidden, generator).to(device)
        ddp = DistributedDataParallel(model)  # rank 0's weights, broadcast to all
        inputs, targets = tg.Tensor((train_x - mean) / std), tg.Tensor(train_t)
        if rank == 0:
            print(
                f"{world_size} process(es), backend {dist.get_backend()}, device {device}, "
                f"global batch {args.batch_size}"
            )
        train(
            model,
            ddp,
            inputs,
            targets,
            epochs=args.epochs,
            lr=args.lr,
            batch_size=args.batch_size,
            generator=generator,
            log=log,
        )
        train_error = error_rate(model, inputs, targets)
        test_error = error_rate(model, tg.Tensor((test_x - mean) / std), tg.Tensor(test_t))
        seconds = time.perf_counter() - start
        if rank == 0:
            print(
                f"train error {100 * train_error:.2f}%  test error {100 * test_error:.2f}%  "
                f"({seconds:.1f} s)"
            )
        return {"train_error": train_error, "test_error": test_error}
    finally:
        dist.destroy_process_group()


def parse_args(argv=None):
    defaults = single_process_args([])
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument(
        "--lr", type=float, default=defaults.lr, help="SGD learning rate (momentum 0.9)"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=defaults.batch_size,
        help="the global batch, split across the processes",
    )
    parser.add_argument(
        "--hidden", type=int, default=defaults.hidden, help="units in each hidden layer"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--train-size", type=int, default=defaults.train_size)
    parser.add_argument("--test-size", type=int, default=defaults.test_size)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda (one GPU per process)")
    parser.add_argument(
        "--backend",
        default=None,
        help="torch.distributed backend (default: gloo on cpu, nccl on cuda)",
    )
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    args = parser.parse_args(argv)
    for name in ("epochs", "batch_size", "hidden", "train_size", "test_size"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if not (args.lr > 0 and math.isfinite(args.lr)):
        parser.error("--lr must be a positive number")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here; run with --device cpu")
    return args


if __name__ == "__main__":
    run(parse_args())
    sys.exit(0)
