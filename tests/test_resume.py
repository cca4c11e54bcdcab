"""Training resumed from a checkpoint ends bit for bit where uninterrupted training ends.

A small network (Linear, Tanh, Linear; MSE) trains for N steps on batches
drawn from torch's global generator, with SGD + momentum, with Adam + StepLR
and with AdamW + CosineAnnealingLR:

- in this process, N steps without a break;
- in a fresh process, K steps, then ``tapegrad.save`` of the model, the
  optimizer, the scheduler, the step and the generator's state;
- in a second fresh process, ``tapegrad.load``, rebuild everything, load
  the state dicts, and continue to step N.

The final weights must be equal (`torch.equal`). This file is also the
worker the test runs: ``python tests/test_resume.py first|second DIR``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import torch

import tapegrad as tg
from tapegrad import nn, optim
from tapegrad.optim import lr_scheduler

ROOT = Path(__file__).resolve().parent.parent

N, K = 30, 13
KINDS = ["sgd-momentum", "adam-steplr", "adamw-cosine"]


@contextlib.contextmanager
def one_thread():
    """The same kernels, in the same order, in every process."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def build(kind, seed):
    """The model, optimizer and scheduler as a run builds them at its start."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
    if kind == "sgd-momentum":
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
        return model, opt, None
    if kind == "adam-steplr":
        opt = optim.Adam(model.parameters(), lr=0.02)
        return model, opt, lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
    opt = optim.AdamW(model.parameters(), lr=0.02, amsgrad=True)
    return model, opt, lr_scheduler.CosineAnnealingLR(opt, T_max=12, eta_min=1e-3)


def train(model, opt, sched, start, stop):
    loss_fn = nn.MSELoss()
    for _ in range(start, stop):
        x = torch.randn(16, 3)  # the global generator: its state is saved
        t = torch.sin(x).sum(1, keepdim=True)
        opt.zero_grad()
        loss_fn(model(x), t).backward()
        opt.step()
        if sched is not None:
            sched.step()


def uninterrupted(kind):
    with one_thread():
        model, opt, sched = build(kind, seed=0)
        train(model, opt, sched, 0, N)
    return model


def first_part(kind, path):
    model, opt, sched = build(kind, seed=0)
    train(model, opt, sched, 0, K)
    tg.save(
        {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": None if sched is None else sched.state_dict(),
            "step": K,
            "rng": torch.get_rng_state(),
        },
        path,
    )


def second_part(kind, path, out):
    checkpoint = tg.load(path)
    model, opt, sched = build(kind, seed=1)  # other initial weights: the checkpoint's count
    model.load_state_dict(checkpoint["model"])
    opt.load_state_dict(checkpoint["optimizer"])
    if sched is not None:
        sched.load_state_dict(checkpoint["scheduler"])
    torch.set_rng_state(checkpoint["rng"])
    train(model, opt, sched, checkpoint["step"], N)
    tg.save(model, out)


def run_worker(part, directory):
    env = dict(os.environ, PYTHONPATH=str(ROOT))  # this tree's tapegrad, not an installed one
    result = subprocess.run(
        [sys.executable, __file__, part, str(directory)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr


def test_training_resumed_in_fresh_processes_equals_uninterrupted_training(tmp_path):
    run_worker("first", tmp_path)
    assert sorted(os.listdir(tmp_path)) == sorted(f"{kind}.ckpt" for kind in KINDS)
    run_worker("second", tmp_path)
    for kind in KINDS:
        expected = uninterrupted(kind).state_dict()
        resumed = tg.load(tmp_path / f"{kind}.final")
        assert list(resumed) == list(expected)
        for name, value in expected.items():
            assert torch.equal(resumed[name], value), f"{kind}: {name}"


def test_the_optimizer_state_in_the_checkpoint_matters(tmp_path):
    """The control: resumed without the optimizer's state, Adam does not end where it should."""
    with one_thread():
        model, opt, sched = build("adam-steplr", seed=0)
        train(model, opt, sched, 0, K)
        saved, rng = model.state_dict(), torch.get_rng_state()
        resumed, fresh_opt, fresh_sched = build("adam-steplr", seed=1)
        resumed.load_state_dict(saved)
        torch.set_rng_state(rng)
        train(resumed, fresh_opt, fresh_sched, K, N)
    expected = uninterrupted("adam-steplr")
    assert not torch.equal(resumed[0].weight.data, expected[0].weight.data)


if __name__ == "__main__":
    assert Path(tg.__file__).resolve().parent.parent == ROOT, f"imported {tg.__file__}"
    part, directory = sys.argv[1], Path(sys.argv[2])
    with one_thread():
        for kind in KINDS:
            if part == "first":
                first_part(kind, directory / f"{kind}.ckpt")
            else:
                second_part(kind, directory / f"{kind}.ckpt", directory / f"{kind}.final")
