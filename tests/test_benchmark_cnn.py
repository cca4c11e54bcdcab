"""The CNN benchmark computes the same thing in both contestants (correctness, never time).

tapegrad and torch.autograd start from the same initial weights and train
on the same batches; after a short run their losses and weights must
agree, or the time per epoch in `benchmarks/cnn.py` would compare
different work.
"""

from __future__ import annotations

import dataclasses
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import cnn  # noqa: E402

SHORT = dataclasses.replace(cnn.CNNWorkload(), images=200, epochs=2)


def train_both(workload):
    x, labels = workload.data()
    weights = workload.initial_weights()
    runs = {name: setup(workload, weights, x, labels) for name, setup in cnn.CONTESTANTS.items()}
    start = {name: [p.clone() for p in r.weights()] for name, r in runs.items()}
    losses = {name: r() for name, r in runs.items()}
    return weights, start, losses, {name: r.weights() for name, r in runs.items()}


def test_the_workload_is_the_digits_cnn():
    workload = cnn.CNNWorkload()
    x, labels = workload.data()
    assert x.shape == (1347, 1, 8, 8) and labels.shape == (1347,)
    assert workload.batch_size == 64
    shapes = [tuple(w.shape) for w in workload.initial_weights()]
    assert shapes == [(16, 1, 3, 3), (16,), (32, 16, 3, 3), (32,), (10, 128), (10,)]


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_contestants_start_equal_and_reach_the_same_loss_and_weights(dtype, tolerance):
    workload = dataclasses.replace(SHORT, dtype=dtype)
    weights, start, losses, end = train_both(workload)
    for name in cnn.CONTESTANTS:
        for w0, w in zip(weights, start[name]):
            assert torch.equal(w0, w), name
    assert losses["tapegrad"] == pytest.approx(losses["torch.autograd"], rel=tolerance)
    for ours, theirs in zip(end["tapegrad"], end["torch.autograd"]):
        torch.testing.assert_close(ours, theirs, rtol=tolerance, atol=tolerance)
    assert not torch.allclose(end["tapegrad"][0], weights[0])  # training moved the weights


def test_the_table_prints_both_contestants_the_ratio_and_the_target():
    lines = []
    threads = torch.get_num_threads()
    try:
        ratios = cnn.run(
            dataclasses.replace(SHORT, epochs=1), repeats=1, threads=1, out=lines.append
        )
    finally:
        torch.set_num_threads(threads)
    text = "\n".join(lines)
    assert "tapegrad" in text and "torch.autograd" in text and "ms/epoch" in text
    assert "target <= 1.0" in text
    assert ratios["median"] > 0 and ratios["low"] <= ratios["high"]
