"""Data-parallel training against one process, on workload B: ``python benchmarks/ddp.py``.

    from benchmarks import ddp
    ddp.run(epochs=3, repeats=3)    # {'1 process s': ..., '2 processes s': ..., 'ratio ...': ...}

Both contestants train workload B (2-512-512-512-1, global batch 1,000,
10,000 points) from the same initial weights on the same batches:

- `1 process`: tapegrad as a user writes it (`contestants.tapegrad_setup`);
- `2 processes`: `tapegrad.distributed.DistributedDataParallel`, each rank on
  half of every batch, gradients averaged by bucketed all_reduce over gloo.

The processes are started once (torch.multiprocessing.spawn; start-up is
not timed) and the contestants alternate inside them: in each round rank 0
trains alone while rank 1 waits at a barrier (waiting costs no CPU), then
both ranks train data-parallel. A run is timed on rank 0 from a barrier to
a barrier, so it includes the slower rank. Medians of the warm runs; the
cold first run is reported apart, and so is the time rank 0 spends in
`sync_gradients` (the all_reduce, plus any wait for the slower rank).
Each process uses `threads` torch threads, so with 2 processes the machine
needs 2 x threads cores for a fair race: on fewer, expect little or no
speed-up.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "benchmarks"

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

import tapegrad as tg  # noqa: E402
from benchmarks.contestants import WORKLOAD_B, tapegrad_setup  # noqa: E402
from tapegrad.distributed import DistributedDataParallel, shard  # noqa: E402


def ddp_setup(workload, weights, x, t, rank: int, world_size: int, bucket_cap_mb: float = 25):
    """The tapegrad contestant's training, data-parallel: this rank's half of every batch."""
    model = tapegrad_setup(workload, weights, x, t).model  # same layers, same weights
    ddp = DistributedDataParallel(model, bucket_cap_mb=bucket_cap_mb)
    optimizer = tg.optim.SGD(model.parameters(), lr=workload.lr, momentum=workload.momentum)
    loss_fn = tg.nn.MSELoss()
    inputs, targets = tg.Tensor(x), tg.Tensor(t)
    batch_size, epochs = workload.batch_size, workload.epochs

    def train() -> float:
        syncing = 0.0
        for _ in range(epochs):
            total = torch.zeros((), dtype=x.dtype)
            for xb, tb in tg.data.batches(inputs, targets, batch_size):
                xb, tb = shard(xb, tb, rank=rank, world_size=world_size)
                loss = loss_fn(ddp(xb), tb)
                optimizer.zero_grad()
                loss.backward()
                start = time.perf_counter()
                ddp.sync_gradients()  # includes waiting for the slower rank
                syncing += time.perf_counter() - start
                optimizer.step()
                total += loss.data
        train.sync_seconds = syncing
        dist.all_reduce(total)  # the ranks' mean losses, averaged: the global batch's
        return float(total) / world_size / -(-len(x) // batch_size)

    train.sync_seconds = 0.0
    return train


def _timed(run) -> tuple[float, float]:
    dist.barrier()
    start = time.perf_counter()
    result = run()
    dist.barrier()
    return time.perf_counter() - start, result


def _worker(rank, world_size, store, out_path, workload, repeats, threads):
    torch.set_num_threads(threads)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world_size)
    try:
        x, t = workload.data()
        weights = workload.initial_weights()
        times = {"1 process": [], f"{world_size} processes": [], "sync": []}
        losses = {}
        for _round in range(repeats + 1):  # round 0: the cold runs
            # one process: rank 0 alone, the others wait at the closing barrier
            single = tapegrad_setup(workload, weights, x, t) if rank == 0 else (lambda: None)
            seconds, loss = _timed(single)
            times["1 process"].append(seconds)
            losses["1 process"] = loss
            parallel = ddp_setup(workload, weights, x, t, rank, world_size)
            seconds, loss = _timed(parallel)
            times[f"{world_size} processes"].append(seconds)
            times["sync"].append(parallel.sync_seconds)
            losses[f"{world_size} processes"] = loss
        if rank == 0:
            with open(out_path, "w") as f:
                json.dump({"times": times, "losses": losses}, f)
    finally:
        dist.destroy_process_group()


def run(
    epochs: int | None = None,
    repeats: int = 3,
    threads: int = 1,
    workload=WORKLOAD_B,
    world_size: int = 2,
) -> dict:
    """Time `world_size`-process training against one process; return timings, the ratio and losses.

    epochs: overrides the workload's (3 for B). threads: torch threads per process.
    """
    if epochs is not None:
        workload = dataclasses.replace(workload, epochs=epochs)
    if workload.batch_size % world_size:
        raise ValueError(
            f"benchmarks.ddp: batch {workload.batch_size} does not split evenly over "
            f"{world_size} processes; pick a batch size divisible by it"
        )
    with tempfile.TemporaryDirectory() as tmp:
        out_path = os.path.join(tmp, "result.json")
        mp.spawn(
            _worker,
            args=(world_size, os.path.join(tmp, "store"), out_path, workload, repeats, threads),
            nprocs=world_size,
            join=True,
        )
        with open(out_path) as f:
            measured = json.load(f)
    times, losses = measured["times"], measured["losses"]
    one, many = "1 process", f"{world_size} processes"
    single, parallel = statistics.median(times[one][1:]), statistics.median(times[many][1:])
    return {
        "workload": (
            f"{workload.name}: {'-'.join(map(str, workload.widths))}, batch "
            f"{workload.batch_size} ({workload.batch_size // world_size} per process), "
            f"{workload.epochs} epochs of {workload.points} points, gloo, "
            f"{threads} torch thread(s) per process, median of {repeats} warm runs"
        ),
        f"{one} s": single,
        f"{many} s": parallel,
        f"ratio {many} / {one}": parallel / single,
        "of which sync_gradients s (rank 0)": statistics.median(times["sync"][1:]),
        f"{one} cold s": times[one][0],
        f"{many} cold s": times[many][0],
        f"{one} final loss": losses[one],
        f"{many} final loss": losses[many],
    }


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--points", type=int, default=None, help="override the data set size")
    args = parser.parse_args()
    chosen = (
        WORKLOAD_B if args.points is None else dataclasses.replace(WORKLOAD_B, points=args.points)
    )
    for key, value in run(args.epochs, args.repeats, args.threads, chosen).items():
        print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")
