"""Workload C: a chain of N elementwise ops; record and sweep time per node must stay flat in N.

    y = x;  repeat N times: y = tanh(y);  then y.sum().backward()

The tape is a plain list and the sweep a plain loop, so each node should
cost the same whether the tape holds a thousand nodes or two hundred
thousand. torch.autograd runs the same chain as a reference.
"""

from __future__ import annotations

import time

import torch

import tapegrad as tg

SIZES = (1_000, 10_000, 100_000, 200_000)
WIDTH = 16  # elements per tensor: small, so the per-node overhead is what is timed


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
    del loss, y  # free the tape outside the timed region
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
    """[{n, record_us, sweep_us, per_node_us, autograd_per_node_us}, ...]: time per node.

    Per node means total time over total nodes (the mean, not the median):
    Python's cyclic garbage collector runs a full collection each time the
    number of surviving objects grows by a quarter, and that cost is spread
    over every node recorded. A median over short chains would leave out the
    run that paid for it, and make short chains look cheaper than they are.
    Short chains are repeated more (up to 20 times), so every size is timed
    over a comparable number of nodes.
    """
    rows = []
    _tapegrad_chain(1000)  # warm up both
    _autograd_chain(1000)
    for n in sizes:
        count = max(repeats, min(20, 200_000 // n))
        record = sweep = theirs = 0.0
        for _ in range(count):
            r, s, _ = _tapegrad_chain(n)
            record, sweep = record + r, sweep + s
            r, s, _ = _autograd_chain(n)
            theirs += r + s
        scale = 1e6 / (n * count)
        rows.append(
            dict(
                n=n,
                record_us=record * scale,
                sweep_us=sweep * scale,
                per_node_us=(record + sweep) * scale,
                autograd_per_node_us=theirs * scale,
            )
        )
    return rows
