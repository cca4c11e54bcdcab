"""The training benchmarks on a CUDA device, with tapegrad.compile's CUDA graphs: one short run.

    python -m benchmarks.gpu                   # workloads A and B, about a minute on one GPU
    python -m benchmarks.gpu --workloads A --repeats 5

Contestants as in contestants.py, every tensor on the device, plus
`tapegrad.compile+graph` (``tapegrad.compile(fn, cuda_graph=True)``). Each setup
runs the first 4 steps untimed (two traces, the warm run and the capture of the
graph); every contestant skips the same steps. The loss is read once per run (one
synchronisation), so a timed run is the device's time plus what the Python
launching it costs, whichever is longer. Prints one table per workload; the
ratios of the medians go in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import sys

import torch

if __package__ in (None, ""):
    import os

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "benchmarks"

from benchmarks.contestants import CONTESTANTS, WORKLOAD_A, WORKLOAD_B, compiled_setup  # noqa: E402
from benchmarks.timing import alternate  # noqa: E402

WARMUP = 4


def table(workload, repeats: int, out) -> dict:
    w = dataclasses.replace(workload, device="cuda", warmup=WARMUP)
    x, t = w.data()
    weights = w.initial_weights()
    setups = {name: (lambda s=setup: s(w, weights, x, t)) for name, setup in CONTESTANTS.items()}
    setups["tapegrad.compile+graph"] = lambda: compiled_setup(w, weights, x, t, cuda_graph=True)
    order = ["floor", "torch.autograd", "tapegrad", "tapegrad.compile", "tapegrad.compile+graph"]
    timings = alternate({name: setups[name] for name in order}, repeats)
    floor, autograd, eager = (timings[n] for n in ("floor", "torch.autograd", "tapegrad"))
    out(
        f"\nworkload {w.name} on {torch.cuda.get_device_name()}: "
        f"{'-'.join(map(str, w.widths))}, batch {w.batch_size}, {w.epochs} epochs of {w.points} "
        f"points; median of {repeats} warm runs, each all steps but the first {WARMUP}"
    )
    out(
        f"  {'contestant':<24}{'warm s':>9}{'x floor':>9}{'x autograd':>12}{'x tapegrad':>12}"
        f"{'best x tapegrad':>17}{'final loss':>12}"
    )
    ratios = {}
    for name in reversed(order):
        r = timings[name]
        ratios[name] = dict(
            floor=r.median / floor.median,
            autograd=r.median / autograd.median,
            eager=r.median / eager.median,
        )
        out(
            f"  {name:<24}{r.median:>9.3f}{r.median / floor.median:>9.2f}"
            f"{r.median / autograd.median:>12.2f}{r.median / eager.median:>12.2f}"
            f"{r.best / eager.best:>17.2f}{r.result:>12.5f}"
        )
    return ratios


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gpu",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--workloads", default="A,B")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        sys.exit("benchmarks.gpu: torch sees no CUDA device")
    out = print
    out(
        f"tapegrad GPU benchmarks, {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} "
        f"UTC; torch {torch.__version__}, CUDA {torch.version.cuda}"
    )
    out(f"command: python -m benchmarks.gpu {' '.join(sys.argv[1:] if argv is None else argv)}")
    workloads = {"A": WORKLOAD_A, "B": WORKLOAD_B}
    for name in args.workloads.upper().split(","):
        table(workloads[name.strip()], args.repeats, out)


if __name__ == "__main__":
    main()
