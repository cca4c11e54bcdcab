"""Workload C: a chain of N elementwise ops; record and sweep time per node must stay flat in N.

    y = x;  repeat N times: y = tanh(y);  then y.sum().backward()

The tape is a plain list and the sweep a plain loop, so each node should
cost the same whether the tape holds a thousand nodes or two hundred
thousand. torch.autograd runs the same chain as a reference.
"""

from __future__ import annotations

import statistics
import time

import torch

import tapegrad as tg

SIZES = (1_000, 10_000, 100_000, 200_000)
WIDTH = 16          # elements per tensor: small, so the per-node overhead is what is timed


def _tapegrad_chain(n: int) -> tuple:
    x = tg.tensor(torch.linspace(-1.0, 1.0, WIDTH), requires_grad=True)
    start = time.perf_counter()
    y = x
    for _ in range(n):
        y = y.tanh()
    loss = y.sum()
    recorded = time.perf_counter()
    loss.backward()
    swept = time.perf_counter()
    del loss, y                     # free the tape outside the timed region
    return recorded - start, swept - recorded, x.grad


def _autograd_chain(n: int) -> tuple:
    x = torch.linspace(-1.0, 1.0, WIDTH).requires_grad_()
    start = time.perf_counter()
    y = x
    for _ in range(n):
        y = y.tanh()
    loss = y.sum()
    recorded = time.perf_counter()
    loss.backward()
    swept = time.perf_counter()
    del loss, y
    return recorded - start, swept - recorded, x.grad


def run(sizes=SIZES, repeats: int = 3) -> list:
    """[{n, record_us, sweep_us, per_node_us, autograd_per_node_us}, ...]: medians per node.

    Short chains are repeated more (up to 20 times), so that every size
    gets a comparable amount of time and an occasional garbage collection
    or scheduler hiccup does not decide a median.
    """
    rows = []
    _tapegrad_chain(1000)               # warm up both
    _autograd_chain(1000)
    for n in sizes:
        ours, theirs = [], []
        for _ in range(max(repeats, min(20, 200_000 // n))):
            ours.append(_tapegrad_chain(n)[:2])
            theirs.append(sum(_autograd_chain(n)[:2]))
        record = statistics.median(r for r, _ in ours) / n * 1e6
        sweep = statistics.median(s for _, s in ours) / n * 1e6
        total = statistics.median(r + s for r, s in ours) / n * 1e6
        rows.append(dict(n=n, record_us=record, sweep_us=sweep, per_node_us=total,
                         autograd_per_node_us=statistics.median(theirs) / n * 1e6))
    return rows
