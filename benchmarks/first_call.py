"""The first calls of `tapegrad.compile` on the disk network, in a fresh process.

    python -m benchmarks.first_call        # prints one JSON line

A fresh process pays what a user's first call pays: the trace (the eager step,
recorded), code and guard generation, and the compiler's one-time set-up (its
table of torch function names). The model and data are built and one eager
step is run first (torch's own lazy start-up is not the compiler's). Times are
wall clock; the machine's load shows in their spread.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def measure() -> dict:
    import torch

    import tapegrad as tg
    from benchmarks.contestants import WORKLOAD_A, _tapegrad_parts

    torch.set_num_threads(1)
    w = WORKLOAD_A
    x, t = w.data()
    batches = [
        (tg.Tensor(x[i : i + w.batch_size]), tg.Tensor(t[i : i + w.batch_size]))
        for i in range(0, 500, w.batch_size)
    ]
    # torch's own first calls, on a twin model
    _, _, warm = _tapegrad_parts(w, w.initial_weights())
    warm(*batches[0])
    start = time.perf_counter()
    warm(*batches[1])
    eager = time.perf_counter() - start

    _, _, train_step = _tapegrad_parts(w, w.initial_weights())
    step = tg.compile(train_step)
    times = []
    for xb, tb in batches[:4]:
        start = time.perf_counter()
        step(xb, tb)
        times.append(time.perf_counter() - start)
    assert step.stats["traces"] == 2, step.stats
    return dict(
        first_ms=1000 * times[0],
        second_ms=1000 * times[1],
        compiled_ms=1000 * min(times[2:]),
        eager_ms=1000 * eager,
    )


def measure_in_subprocess() -> dict:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.first_call"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(json.dumps(measure()))
