"""The benchmark suite computes the same thing in every contestant (correctness, never time).

tapegrad, torch.autograd and the raw-torch floor start from the same initial
weights and train on the same batches; after a short run their losses and
weights must agree, or the timings in benchmarks/RESULTS.md would compare
different work.
"""

from __future__ import annotations

import dataclasses
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import chain, memory, run, timing  # noqa: E402
from benchmarks.contestants import CONTESTANTS, WORKLOAD_A, WORKLOAD_B  # noqa: E402

SHORT_A = dataclasses.replace(WORKLOAD_A, epochs=3)
# Workload B's network shape and learning rate, shrunk so that it runs in a moment.
SHORT_B = dataclasses.replace(
    WORKLOAD_B, widths=(2, 64, 64, 64, 1), points=300, batch_size=100, epochs=2
)


def train_all(workload):
    x, t = workload.data()
    weights = workload.initial_weights()
    runs = {name: setup(workload, weights, x, t) for name, setup in CONTESTANTS.items()}
    start = {
        name: [tuple(p.clone() for p in pair) for pair in r.weights()] for name, r in runs.items()
    }
    losses = {name: r() for name, r in runs.items()}
    end = {name: r.weights() for name, r in runs.items()}
    return weights, start, losses, end


@pytest.mark.parametrize("workload", [SHORT_A, SHORT_B], ids=["A", "B"])
def test_contestants_start_equal_and_reach_the_same_loss_and_weights(workload):
    weights, start, losses, end = train_all(workload)
    for name in CONTESTANTS:
        for (w0, b0), (w, b) in zip(weights, start[name]):
            assert torch.equal(w0, w) and torch.equal(b0, b), name
    reference = losses["floor"]
    assert reference < 0.5  # it trained on something (targets are 0/1, tanh output)
    for name in ("tapegrad", "torch.autograd"):
        assert losses[name] == pytest.approx(reference, rel=1e-4), name
        for (w_ref, b_ref), (w, b) in zip(end["floor"], end[name]):
            torch.testing.assert_close(w, w_ref, rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(b, b_ref, rtol=1e-4, atol=1e-5)
    # and training moved the weights (a run that did nothing would also "agree")
    assert not torch.allclose(end["floor"][0][0], weights[0][0])


def test_contestants_agree_to_float64_precision():
    workload = dataclasses.replace(WORKLOAD_A, epochs=2, dtype=torch.float64)
    _, _, losses, end = train_all(workload)
    for name in ("tapegrad", "torch.autograd"):
        assert losses[name] == pytest.approx(losses["floor"], rel=1e-12), name
        for (w_ref, _), (w, _) in zip(end["floor"], end[name]):
            torch.testing.assert_close(w, w_ref, rtol=1e-12, atol=1e-12)


def test_chain_gradient_matches_torch_autograd():
    _, _, ours = chain._tapegrad_chain(50)
    _, _, theirs = chain._autograd_chain(50)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-7)
    assert ours.abs().sum() > 0


def test_a_sweep_releases_every_saved_tensor_of_the_tape():
    held = memory.held_after_sweep()
    assert held["nodes"] == 9  # 4 Linear + 4 activations + MSE
    assert held["holding_before"] == held["nodes"]
    assert held["holding_after"] == 0
    assert held["grads_left"] == 0


def test_alternate_rotates_the_order_and_keeps_the_cold_run_apart():
    calls = []

    def setup(name):
        def make():
            return lambda: calls.append(name) or name

        return make

    result = timing.alternate({"a": setup("a"), "b": setup("b"), "c": setup("c")}, repeats=3)
    assert calls == ["a", "b", "c", "b", "c", "a", "c", "a", "b", "a", "b", "c"]
    for name, record in result.items():
        assert record.result == name and len(record.warm) == 3 and record.cold >= 0


def test_training_table_prints_every_contestant_and_the_targets():
    lines = []
    tiny = dataclasses.replace(WORKLOAD_A, epochs=1)
    threads = torch.get_num_threads()
    try:
        ratios = run.training(tiny, repeats=1, threads=1, out=lines.append)
    finally:
        torch.set_num_threads(threads)
    text = "\n".join(lines)
    for name in CONTESTANTS:
        assert name in text
    assert "target tapegrad <= 0.5 x torch.autograd" in text
    assert "target tapegrad.compile <= 1.1 x floor" in text
    assert "tapegrad.compile traced in setup: first call" in text
    for name in ("tapegrad", "tapegrad.compile"):
        assert ratios[name]["floor"] > 0 and ratios[name]["autograd"] > 0


def test_a_warm_up_in_setup_leaves_the_same_training():
    """`python -m benchmarks` times all steps but the first two (the compiled step's traces):
    every contestant runs those two in setup, and trains exactly as without them."""
    base = dataclasses.replace(WORKLOAD_A, epochs=2)
    x, t = base.data()
    weights = base.initial_weights()
    reference = CONTESTANTS["floor"](base, weights, x, t)
    expected = reference()
    for name, setup in CONTESTANTS.items():
        train = setup(dataclasses.replace(base, warmup=2), weights, x, t)
        assert train() == pytest.approx(expected, rel=1e-5), name
    compiled = CONTESTANTS["tapegrad.compile"](dataclasses.replace(base, warmup=2), weights, x, t)
    assert compiled.step.stats["traces"] == 2  # in setup, not in the timed train()
    compiled()
    assert compiled.step.stats["traces"] == 2


def test_the_pinn_workload_trains_the_same_network_in_both_contestants():
    from benchmarks import pinn

    ours, theirs = pinn.tapegrad_setup(5), pinn.autograd_setup(5)
    assert ours() == pytest.approx(theirs(), rel=1e-10)


def test_the_suite_runs_workload_e_the_digits_cnn_by_default(capsys):
    """`python -m benchmarks` runs E: its table, target line (correctness: test_benchmark_cnn)."""
    assert "E" in run.WORKLOADS.split(",")
    threads = torch.get_num_threads()
    try:
        run.main(["--workloads", "E", "--quick", "--threads", "1", "--repeats", "1"])
    finally:
        torch.set_num_threads(threads)
    text = capsys.readouterr().out
    assert "workload E: digits CNN" in text and "1 epochs per run" in text
    assert "tapegrad / torch.autograd per epoch" in text and "target <= 1.0" in text
    assert "workload A" not in text


def test_workloads_are_named_with_commas_or_spaces_and_unknown_ones_refused():
    """`--workloads A,B` and `--workloads A B` (the issues' spelling) choose the same set."""
    assert run._workloads(["A,B"]) == run._workloads(["A", "B"]) == run._workloads(["a", " b,"])
    with pytest.raises(SystemExit):
        run.main(["--workloads", "A", "Q"])
