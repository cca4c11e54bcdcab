"""Workload D: memory. It must not grow over a long run, a sweep must free what the tape saved,
and the peak on workload B must not exceed torch.autograd's.

How memory is measured (torch's CPU allocator keeps no statistics, and
tracemalloc does not see it):

- resident set size (RSS) from /proc/self/statm, sampled every 1,000 steps
  of workload A's training loop, together with the number of live tapegrad
  `Node`s and live torch tensors (counted with `gc.get_objects()`);
- after one training step's backward(): the number of nodes on the loss's
  tape still holding saved tensors (must be 0);
- the peak on workload B: each contestant trains in a fresh subprocess
  while a thread samples RSS every millisecond; the peak is the highest
  sample minus the RSS just before training (weights and data are
  allocated before it; what is left is activations, gradients,
  temporaries, momentum buffers and each engine's lazily built state). torch
  releases the GIL in its kernels, so the sampler runs during them. glibc's
  mmap threshold is fixed at 64 KiB there (MALLOC_MMAP_THRESHOLD_), so that a
  freed tensor leaves RSS at once instead of staying in the allocator's heap;
  small allocations still may.
- the most bytes malloc'd at once on workload B (glibc's own count of what it handed
  out, read after every torch call of the run: tensors are allocated by torch calls, so
  the peak is seen exactly; with the same fixed mmap threshold), per contestant, in a
  fresh process: with the first steps (tapegrad.compile's traces) and without them;
- the bytes each engine saves for backward in one step of workload B:
  tapegrad's from its tape's nodes, torch.autograd's through
  `torch.autograd.graph.saved_tensors_hooks` (storage bytes, each storage
  counted once).
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import threading
import time

import torch

import tapegrad as tg

from .contestants import CONTESTANTS, WORKLOAD_A, WORKLOAD_B

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    """This process's resident set size in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def _live(kind) -> int:
    return sum(1 for obj in gc.get_objects() if type(obj) is kind)


def growth(steps: int = 10_000, every: int = 1_000, compiled: bool = False) -> dict:
    """Train workload A's network for `steps` steps; sample RSS, live nodes and live tensors.

    compiled: run the steps through tapegrad.compile (its variants are made in the first
    two steps, before the first sample).
    """
    w = WORKLOAD_A
    x, t = w.data()
    model = CONTESTANTS["tapegrad"](w, w.initial_weights(), x, t).model
    loss_fn = tg.nn.MSELoss()
    optimizer = tg.optim.SGD(model.parameters(), lr=w.lr, momentum=w.momentum)
    inputs, targets = tg.Tensor(x), tg.Tensor(t)

    def train_step(xb, tb):
        loss = loss_fn(model(xb), tb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    run = tg.compile(train_step) if compiled else train_step
    samples = []
    step = 0
    while step < steps:
        for xb, tb in tg.data.batches(inputs, targets, w.batch_size):
            run(xb, tb)
            step += 1
            if step % every == 0:
                gc.collect()
                samples.append(
                    dict(step=step, rss=rss(), nodes=_live(tg.Node), tensors=_live(torch.Tensor))
                )
            if step == steps:
                break
    first, last = samples[0], samples[-1]
    return dict(
        samples=samples,
        rss_growth=last["rss"] - first["rss"],
        node_growth=last["nodes"] - first["nodes"],
        tensor_growth=last["tensors"] - first["tensors"],
    )


def held_after_sweep() -> dict:
    """One training step of workload A: how many of the tape's nodes still hold saved tensors."""
    w = WORKLOAD_A
    x, t = w.data()
    model = CONTESTANTS["tapegrad"](w, w.initial_weights(), x, t).model
    loss = tg.nn.MSELoss()(model(tg.Tensor(x[: w.batch_size])), tg.Tensor(t[: w.batch_size]))
    tape = loss.tape
    holding_before = sum(1 for node in tape if any(s is not None for s in node._saved))
    loss.backward()
    holding_after = sum(1 for node in tape if not node.released)
    gathering = sum(1 for node in tape if node._gathered is not None)
    return dict(
        nodes=len(tape),
        holding_before=holding_before,
        holding_after=holding_after,
        grads_left=gathering,
    )


def _storage_bytes(tensors) -> int:
    seen, total = set(), 0
    for t in tensors:
        if isinstance(t, torch.Tensor):
            storage = t.untyped_storage()
            if storage.data_ptr() not in seen:
                seen.add(storage.data_ptr())
                total += storage.nbytes()
    return total


def saved_bytes() -> dict:
    """Bytes saved for backward by one training step of workload B, per engine."""
    w = WORKLOAD_B
    x, t = w.data()
    xb, tb = x[: w.batch_size], t[: w.batch_size]
    weights = w.initial_weights()
    model = CONTESTANTS["tapegrad"](w, weights, x, t).model
    loss = tg.nn.MSELoss()(model(tg.Tensor(xb)), tg.Tensor(tb))
    ours = _storage_bytes(s for node in loss.tape for s in node._saved)
    del loss

    packed = []
    layers = []
    for i, act in enumerate(w.activations):
        layers += [
            torch.nn.Linear(w.widths[i], w.widths[i + 1]),
            torch.nn.ReLU() if act == "relu" else torch.nn.Tanh(),
        ]
    reference = torch.nn.Sequential(*layers)
    with torch.autograd.graph.saved_tensors_hooks(lambda t: packed.append(t) or t, lambda t: t):
        torch.nn.functional.mse_loss(reference(xb), tb)  # the hooks pack what it saves
    theirs = _storage_bytes(packed)
    return dict(tapegrad=ours, autograd=theirs)


# --- peak RSS on workload B, one fresh process per contestant --------------------


def _peak_in_this_process(name: str, steps: int, warmup: int = 0) -> dict:
    torch.set_num_threads(1)
    w = WORKLOAD_B
    x, t = w.data()
    epochs = -(-(steps + warmup) * w.batch_size // w.points)
    import dataclasses

    w = dataclasses.replace(w, epochs=epochs, warmup=warmup)
    train = CONTESTANTS[name](w, w.initial_weights(), x, t)
    # No warm-up step before the baseline: memory that a first step frees stays in the
    # allocator's free lists and would hide the peak of the steps after it.
    gc.collect()
    base = rss()
    peak = [base]
    running = [True]

    def sample():
        while running[0]:
            peak[0] = max(peak[0], rss())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    train()
    running[0] = False
    sampler.join()
    return dict(name=name, base=base, peak=peak[0], increase=peak[0] - base)


# --- peak allocated bytes on workload B: exact, from the allocator, after every torch call ---


def _malloc_in_use():
    """Bytes glibc's malloc has handed out and not taken back (heap in use + own mappings)."""
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [
            (n, ctypes.c_size_t)
            for n in (
                "arena",
                "ordblks",
                "smblks",
                "hblks",
                "hblkhd",
                "usmblks",
                "fsmblks",
                "uordblks",
                "fordblks",
                "keepcost",
            )
        ]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2

    def in_use() -> int:
        info = libc.mallinfo2()
        return info.uordblks + info.hblkhd

    return in_use


def _allocated_peak_in_this_process(name: str, steps: int, warmup: int = 0) -> dict:
    """The most bytes malloc'd at once during `steps` steps of B, read after every torch call.

    Tensors are allocated by torch calls, so the peak of live tensor memory is seen right
    after one: sampling there (with a TorchFunctionMode, which is not torch autograd)
    catches it exactly, without the timing luck of an RSS sampler.
    """
    from torch.overrides import TorchFunctionMode

    in_use = _malloc_in_use()
    torch.set_num_threads(1)
    w = WORKLOAD_B
    x, t = w.data()
    epochs = -(-(steps + warmup) * w.batch_size // w.points)
    import dataclasses

    w = dataclasses.replace(w, epochs=epochs, warmup=warmup)
    train = CONTESTANTS[name](w, w.initial_weights(), x, t)
    gc.collect()
    base = in_use()

    class Peak(TorchFunctionMode):
        top = base

        def __torch_function__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            now = in_use()
            if now > Peak.top:
                Peak.top = now
            return out

    with Peak():
        train()
    return dict(name=name, base=base, peak=Peak.top, increase=Peak.top - base)


def allocated_peak(
    names=("tapegrad", "tapegrad.compile", "torch.autograd", "floor"),
    steps: int = 10,
    warmup: int = 0,
) -> dict:
    """{name: the most bytes malloc'd at once during `steps` steps of B}, each in a fresh
    process."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = {}
    for name in names:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.memory",
                "--allocated",
                name,
                str(steps),
                str(warmup),
            ],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            env=_MALLOC_ENV,
        )
        out[name] = json.loads(result.stdout.strip().splitlines()[-1])["increase"]
    return out


# glibc serves allocations above its mmap threshold with their own mappings, returned to the
# system when freed; but it raises that threshold as the program frees large blocks, and then
# keeps freed tensors in its heap, so RSS would remember old peaks. A fixed threshold keeps
# every tensor above 64 KiB in its own mapping: RSS then follows live tensor memory.
_MALLOC_ENV = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")


def peak(
    names=("tapegrad", "tapegrad.compile", "torch.autograd", "floor"),
    steps: int = 10,
    warmup: int = 0,
) -> dict:
    """{name: peak RSS increase in bytes during `steps` steps of workload B}, each in a fresh
    process.

    warmup: steps run before the baseline is taken (then the optimizer state exists, and the
    compiled step has made its variants: the peak is that of a step, not of a first step).
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = {}
    for name in names:
        result = subprocess.run(
            [sys.executable, "-m", "benchmarks.memory", "--peak", name, str(steps), str(warmup)],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            env=_MALLOC_ENV,
        )
        out[name] = json.loads(result.stdout.strip().splitlines()[-1])["increase"]
    return out


if __name__ == "__main__":
    if len(sys.argv) in (4, 5) and sys.argv[1] in ("--peak", "--allocated"):
        measure = (
            _peak_in_this_process if sys.argv[1] == "--peak" else _allocated_peak_in_this_process
        )
        print(
            json.dumps(
                measure(
                    sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) == 5 else 0
                )
            )
        )
    else:
        sys.exit("usage: python -m benchmarks.memory --peak|--allocated NAME STEPS [WARMUP]")
