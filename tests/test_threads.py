"""Long runs and threads: the default (implicit) tape is never shared by mistake.

- Evaluation without ``no_grad`` for 10,000 passes: each pass's tape dies
  with its output, so nothing accumulates.
- Two threads training two models at once: recording state is per thread,
  each computation has its own tape, and each thread's result equals, bit
  for bit, the same training run alone.
"""

import gc
import threading
import weakref

import torch

import tapegrad as tg
from tapegrad import nn, optim

TIMEOUT = 60  # seconds a barrier waits before the test fails instead of hanging


def make_model(seed):
    g = torch.Generator().manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 8, generator=g), nn.Tanh(), nn.Linear(8, 1, generator=g))


def make_data(seed, n=32):
    g = torch.Generator().manual_seed(100 + seed)
    return tg.tensor(torch.randn(n, 2, generator=g)), tg.tensor(torch.randn(n, 1, generator=g))


def live_nodes():
    gc.collect()  # garbage of earlier tests (e.g. kept tracebacks) must not count
    return sum(1 for obj in gc.get_objects() if type(obj) is tg.Node)


# --- long runs ---------------------------------------------------------------------


def test_ten_thousand_evaluations_without_no_grad_hold_one_tape_at_most():
    model = make_model(0)
    loss_fn = nn.MSELoss()
    x, t = make_data(0)
    tapes = []  # a weak reference to every 500th pass's tape
    losses = []
    nodes_early = None
    for step in range(10_000):
        out = model(x)  # records: x needs no grad, the weights do
        loss = loss_fn(out, t)
        correct = ((out > 0) == (t > 0)).data.float().mean()  # comparisons record nothing
        losses.append(loss.item())
        if step % 500 == 0:
            tapes.append(weakref.ref(loss.tape))
        if step == 100:
            nodes_early = live_nodes()
    assert 0.0 <= correct.item() <= 1.0
    alive = [ref for ref in tapes if ref() is not None]
    assert len(alive) <= 1  # only the latest, still held by `loss`
    assert live_nodes() == nodes_early  # no node outlives its pass
    assert len(loss.tape) == 4  # Linear, Tanh, Linear, MSE: one pass, not 10,000
    assert len(set(losses)) == 1  # and every pass computed the same thing


def test_a_kept_running_total_does_grow_the_tape():
    # The control for the test above, and the one real way to grow a tape:
    # summing recorded losses into a tensor keeps every pass's graph (as in torch).
    # `total += loss.item()` (or .detach()) does not.
    model = make_model(0)
    x, t = make_data(0)
    total = 0
    for _ in range(20):
        total = total + nn.MSELoss()(model(x), t)
    assert len(total.tape) == 20 * (4 + 1)  # each pass, and its Add into the total


# --- threads -------------------------------------------------------------------------


def train(seed, steps=25, barrier=None, report=None):
    """Train one model with SGD; return its losses and final parameters.

    With a barrier, wait on it between forward and backward of every step,
    so that two threads' tapes are alive at the same time and their ops
    interleave.
    """
    model = make_model(seed)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.MSELoss()
    x, t = make_data(seed)
    losses = []
    own = {id(m) for m in model.modules()} | {id(loss_fn)}
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(model(x), t)
        if barrier is not None:
            barrier.wait(TIMEOUT)
        if report is not None:  # what is on this step's tape: only this thread's nodes
            report.append((len(loss.tape), all(id(node.module) in own for node in loss.tape)))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, [p.data.clone() for p in model.parameters()]


def run_in_threads(*targets):
    results, errors = [None] * len(targets), []

    def runner(index, target):
        try:
            results[index] = target()
        except BaseException as error:  # surfaced in the main thread below
            errors.append(error)

    threads = [threading.Thread(target=runner, args=(i, f)) for i, f in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    if errors:
        raise errors[0]
    return results


def test_two_threads_training_two_models_match_single_threaded_runs_exactly():
    alone = [train(1), train(2)]
    barrier = threading.Barrier(2)
    reports = [[], []]
    together = run_in_threads(
        lambda: train(1, barrier=barrier, report=reports[0]),
        lambda: train(2, barrier=barrier, report=reports[1]),
    )
    for (losses_a, params_a), (losses_t, params_t) in zip(alone, together):
        assert losses_a == losses_t
        assert all(torch.equal(a, b) for a, b in zip(params_a, params_t))
    for report in reports:
        assert report == [(4, True)] * 25
    assert alone[0][0] != alone[1][0]  # two different runs, so mixing them would show


def test_an_explicit_tape_records_only_its_own_threads_ops():
    entered, other_done = threading.Event(), threading.Event()
    out = {}

    def recorder():
        x = tg.tensor([1.0, 2.0], requires_grad=True)
        with tg.Tape() as tape:
            entered.set()
            assert other_done.wait(TIMEOUT)
            y = (x * x).sum()
        y.backward()
        out["tape"], out["x"] = tape, x

    def other():
        assert entered.wait(TIMEOUT)
        z = tg.tensor([3.0], requires_grad=True)
        w = (z.exp() * 2).sum()  # runs while the other thread is inside its Tape()
        out["other_tape"] = w.tape
        w.backward()
        out["z"] = z
        other_done.set()

    run_in_threads(recorder, other)
    assert [node.name for node in out["tape"]] == ["Mul", "Sum"]
    assert [node.name for node in out["other_tape"]] == ["Exp", "Mul", "Sum"]
    assert torch.equal(out["x"].grad, torch.tensor([2.0, 4.0]))
    assert torch.allclose(out["z"].grad, 2 * torch.exp(torch.tensor([3.0])))


def test_no_grad_in_one_thread_does_not_stop_recording_in_another():
    inside, other_done = threading.Event(), threading.Event()
    out = {}

    def quiet():
        with tg.no_grad():
            inside.set()
            assert other_done.wait(TIMEOUT)
            out["quiet"] = (tg.tensor([1.0], requires_grad=True) * 2).requires_grad

    def loud():
        assert inside.wait(TIMEOUT)
        out["loud"] = (tg.tensor([1.0], requires_grad=True) * 2).requires_grad
        other_done.set()

    run_in_threads(quiet, loud)
    assert out == {"quiet": False, "loud": True}


class Meet(tg.Function):
    """y = x, whose derivative waits until the other thread's sweep is at the same point."""

    barrier = None

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        Meet.barrier.wait(TIMEOUT)
        return grad


def test_two_sweeps_at_once_on_two_threads_are_not_nested_sweeps():
    Meet.barrier = threading.Barrier(2)

    def sweep(value):
        x = tg.tensor([value], requires_grad=True)
        (Meet.apply(x) * x).sum().backward()  # d(x^2)/dx = 2x
        return x.grad.item()

    assert run_in_threads(lambda: sweep(1.0), lambda: sweep(3.0)) == [2.0, 6.0]


def test_threads_report_errors_of_their_own():
    # A stale tape on one thread is caught there and does not disturb the other.
    barrier = threading.Barrier(2)

    def stale():
        model = make_model(3)
        opt = optim.SGD(model.parameters(), lr=0.1)
        x, t = make_data(3)
        nn.MSELoss()(model(x), t).backward()
        loss = nn.MSELoss()(model(x), t)
        opt.step()
        barrier.wait(TIMEOUT)
        try:
            loss.backward()
        except RuntimeError as error:
            return str(error)
        return "no error"

    def clean():
        barrier.wait(TIMEOUT)
        return train(4, steps=3)

    message, (losses, params) = run_in_threads(stale, clean)
    assert "LinearFunction (tape index 2)" in message and "modified in place" in message
    reference_losses, reference_params = train(4, steps=3)
    assert losses == reference_losses
    assert all(torch.equal(a, b) for a, b in zip(params, reference_params))
