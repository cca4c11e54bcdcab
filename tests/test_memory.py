"""A tape lives exactly as long as the tensors that need it, and reference counting alone frees it.

Memory is measured by what Python allocates (`tracemalloc`: nodes, tensors,
tapes and their lists are Python objects) and by counting live `Node`s;
never by time.
"""

import gc
import tracemalloc
import weakref

import pytest
import torch

import tapegrad as tg
from tapegrad import nn

PASSES = 10_000
# A single ever-growing tape would hold 3 nodes per pass (Linear, ReLU, Linear),
# each several hundred bytes with its tuples: megabytes over 10,000 passes.
# Steady state allocates nothing per pass; allow some slack for interpreter caches.
GROWTH_BOUND = 200_000  # bytes


@pytest.fixture
def model_and_input():
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16, generator=g), nn.ReLU(), nn.Linear(16, 1, generator=g))
    x = tg.tensor(torch.randn(8, 2, generator=g))  # an evaluation batch: needs no grad
    return model, x


def live_nodes() -> int:
    return sum(1 for obj in gc.get_objects() if type(obj) is tg.Node)


@pytest.fixture
def no_cycle_collector():
    """Run with the cycle collector off: only reference counting frees anything."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def run_passes(model, x, keep_output: bool, passes: int):
    """`passes` forward passes without backward; returns weakrefs to every 1000th pass's tape."""
    tapes = []
    out = None
    for i in range(passes):
        if keep_output:
            out = model(x)  # the previous output (and its tape) is dropped here
        else:
            model(x)
        if i % 1000 == 0:
            tapes.append(weakref.ref(model._last_output.tape if out is None else out.tape))
    return tapes, out


@pytest.mark.parametrize("keep_output", [False, True], ids=["discarded", "kept-in-a-variable"])
def test_forward_passes_without_backward_do_not_grow_memory(
    model_and_input, no_cycle_collector, keep_output
):
    model, x = model_and_input
    run_passes(model, x, keep_output, 200)  # warm up caches before measuring
    nodes_before = live_nodes()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tapes, out = run_passes(model, x, keep_output, PASSES)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < GROWTH_BOUND, f"grew by {after - before} bytes over {PASSES} passes"
    assert live_nodes() <= nodes_before + 3  # one pass's tape at most, never PASSES of them
    # every earlier pass's tape is gone, freed by reference counting (the collector is off)
    assert all(ref() is None for ref in tapes[:-1])
    latest = model._last_output.tape
    assert len(latest) == 3
    if keep_output:
        assert out.tape is latest  # the kept output holds its own pass's tape, no more


def test_a_growing_tape_would_be_detected(model_and_input):
    """The measure above can fail: keeping every output keeps every tape, and it sees that."""
    model, x = model_and_input
    outputs = []
    nodes_before = live_nodes()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(2000):
            outputs.append(model(x))
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before > GROWTH_BOUND
    assert live_nodes() >= nodes_before + 3 * 2000 - 3


def test_training_steps_free_each_tape_by_reference_counting(model_and_input, no_cycle_collector):
    model, x = model_and_input
    target = tg.tensor(torch.zeros(8, 1))
    loss_fn = nn.MSELoss()
    optimizer = tg.optim.SGD(model.parameters(), lr=0.01)
    tapes = []
    for _ in range(50):
        optimizer.zero_grad()
        loss = loss_fn(model(x), target)
        tapes.append(weakref.ref(loss.tape))
        loss.backward()
        optimizer.step()
    # each step's tape went when the next step replaced it; the latest one stays, held by
    # every module's latest output (kept for the course API's model.backward())
    assert all(ref() is None for ref in tapes[:-1])
    assert tapes[-1]() is loss.tape


def test_no_reference_cycles_between_nodes_tensors_and_tapes():
    """Build, sweep and drop computations; the cycle collector must find none of ours."""
    gc.collect()
    flags = gc.get_debug()
    gc.set_debug(gc.DEBUG_SAVEALL)  # keep whatever the collector finds in gc.garbage
    try:
        x = tg.tensor(torch.randn(4, 3), requires_grad=True)
        w = tg.tensor(torch.randn(3, 2), requires_grad=True)
        with tg.Tape() as tape:  # an explicit tape (keeps values)
            y = (x @ w).tanh().sum()
        y.backward(keep_grads=True)
        a = (x * 2).exp()  # two implicit tapes, merged by the last op
        b = (w.sum(0) * 3).sigmoid()
        z = (a[:, :2] @ b.reshape(2, 1)).mean()
        z.backward(retain_graph=True)
        h = x * 3
        h.retain_grad()
        (h * h).sum().backward()
        refs = [weakref.ref(t) for t in (tape, z.tape, h.tape, y, z, a, b, h)]
        del x, w, tape, y, a, b, z, h
        gc.collect()
        ours = [obj for obj in gc.garbage if isinstance(obj, (tg.Node, tg.Tensor, tg.Tape))]
        assert ours == [], f"{len(ours)} of our objects were only freed by the cycle collector"
        assert all(ref() is None for ref in refs)
    finally:
        gc.set_debug(flags)
        gc.garbage.clear()


def test_a_dropped_computation_is_freed_at_once(no_cycle_collector):
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).exp().sum()
    tape = weakref.ref(y.tape)
    node = y.node
    del node
    y.backward()
    del y
    assert tape() is None
    y = (x * x).sum()  # and without a backward, too
    tape = weakref.ref(y.tape)
    del y
    assert tape() is None


def test_a_deep_tape_is_freed_at_once(no_cycle_collector):
    x = tg.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(50_000):
        y = y + 1.0
    tape = weakref.ref(y.tape)
    del y
    assert tape() is None


def test_a_dropped_model_frees_its_last_tape_by_reference_counting(no_cycle_collector):
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
    out = model(tg.tensor(torch.randn(3, 2)))
    tape = weakref.ref(out.tape)
    del out, model
    assert tape() is None
