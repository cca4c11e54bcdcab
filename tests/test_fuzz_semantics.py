"""Fuzz the faults outside test suites found, against torch: programs that mix every index form,
in-place ops (recorded, and under no_grad), nested and sibling ``with Tape()`` blocks, and
optimizer steps on strided, transposed and complex parameters.

Two generators:

- `test_random_programs_with_blocks_match_torch` builds a program like `test_fuzz.py` (float64,
  every op's output compared with torch's as it is made), adding advanced indices in every
  form, x[index] = v and in-place arithmetic on recorded tensors, inside randomly nested and
  sibling ``with Tape()`` blocks. At the end every leaf's gradient must equal torch's, and
  every block tape must hold exactly the nodes recorded while it was open, in execution order.
- `test_random_training_with_no_grad_updates_matches_torch` trains parameters of random
  layout (contiguous, transposed, a strided view of a larger store; real or complex) with
  random optimizers and hand-written no_grad updates, comparing every parameter and the whole
  store it lives in with torch after every step.

Bounded for CI: TAPEGRAD_FUZZ_EXAMPLES (default 60) examples each.
"""

import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuzz import DTYPE, OPS, Program, shapes

import tapegrad as tg
from tapegrad.tape import _sequence

EXAMPLES = int(os.environ.get("TAPEGRAD_FUZZ_EXAMPLES", "60"))


# --- more ops for the program ----------------------------------------------------------------


def op_advanced_index(p):
    """x[index] for the advanced forms: numpy, lists with repeats, nested lists, tuples, masks."""
    a, ta = p.pick()
    if a.dim() == 0:
        a, ta = a.reshape(1, 1), ta.reshape(1, 1)
    size = a.shape[0]
    picks = p.draw(st.lists(st.integers(-size, size - 1), min_size=1, max_size=4), "picks")
    picks = picks + picks[:1]  # a repeat: its gradients must add
    form = p.draw(
        st.sampled_from(
            [
                "numpy",
                "list",
                "nested list",
                "tuple of lists",
                "mixed",
                "numpy mask",
                "None and ellipsis",
            ]
        ),
        "advanced form",
    )
    if form == "numpy":
        key = np.array(picks)
    elif form == "list":
        key = picks
    elif form == "nested list":  # a 2-D index into dim 0 (as an array: a bare nested
        key = np.array([picks, picks[::-1]])  # list is read as a tuple by torch 2.x, deprecated)
    elif form == "tuple of lists" and a.dim() >= 2:
        columns = [p.draw(st.integers(0, a.shape[1] - 1), "column") for _ in picks]
        key = (picks, columns)
    elif form == "mixed" and a.dim() >= 2:
        key = (slice(None), np.array(picks) % a.shape[1])
    elif form == "numpy mask":
        mask = (torch.rand(a.shape, generator=p.generator) > 0.5).numpy()
        mask.reshape(-1)[0] = True
        key = mask
    else:  # None and ..., around an index into the last dimension
        key = (None, Ellipsis, np.array(picks) % a.shape[-1])
    torch_key = (
        tuple(torch.as_tensor(k) if isinstance(k, np.ndarray) else k for k in key)
        if isinstance(key, tuple)
        else (torch.as_tensor(key) if isinstance(key, np.ndarray) else key)
    )
    p.record(a[key], ta[torch_key], f"index {form}")


def op_setitem(p):
    """y = x * 1; y[index] = v, with v a recorded tensor, a new leaf or a number."""
    a, ta = p.pick()
    if a.dim() == 0:
        a, ta = a.reshape(1), ta.reshape(1)
    size = a.shape[0]
    form = p.draw(st.sampled_from(["int", "slice", "list", "mask"]), "setitem index")
    if form == "int":
        key = p.draw(st.integers(-size, size - 1), "i")
    elif form == "slice":
        key = slice(p.draw(st.integers(0, size - 1), "start"), None)
    elif form == "list":
        key = sorted(
            set(p.draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=3), "rows"))
        )
    else:
        key = torch.rand(a.shape[:1], generator=p.generator) > 0.5
        key[0] = True  # never empty: later ops pick from what this makes
    target_shape = tuple(ta[key].shape)
    kind = p.draw(st.sampled_from(["leaf", "number"]), "value kind")
    ours, theirs = a * 1.0, ta * 1.0
    if kind == "leaf":
        value, tvalue = p.leaf(
            target_shape[1:]
            if target_shape and p.draw(st.booleans(), "broadcast value")
            else target_shape
        )
    else:
        value = tvalue = p.draw(st.floats(-2, 2, allow_nan=False), "number")
    ours[key] = value
    theirs[key] = tvalue
    p.record(ours, theirs, f"setitem {form} = {kind}")


def op_inplace(p):
    """y = x * 1; y += / -= / *= / /= something, recorded like torch."""
    a, ta = p.pick()
    ours, theirs = a * 1.0, ta * 1.0
    which = p.draw(st.sampled_from(["+=", "-=", "*=", "/="]), "in-place op")
    if p.draw(st.booleans(), "scalar operand"):
        b = tb = p.draw(st.floats(0.5, 2, allow_nan=False), "scalar")
    else:
        b, tb = p.leaf(
            tuple(a.shape)[p.draw(st.integers(0, a.dim()), "suffix start") :],
            low=0.5 if which == "/=" else -2.0,
        )
    namespace = {"y": ours, "b": b}
    exec(f"y {which} b", namespace)
    torch_namespace = {"y": theirs, "b": tb}
    exec(f"y {which} b", torch_namespace)
    p.record(namespace["y"], torch_namespace["y"], f"in place {which}")


MORE_OPS = OPS + [op_advanced_index, op_setitem, op_inplace]


def _recorded_nodes(p) -> list:
    """Every node on the tapes of the program's tensors, in execution order."""
    seen = {}
    for ours, _ in p.pool:
        tape = ours.tape
        if tape is not None:
            for node in tape:
                seen[id(node)] = node
    return sorted(seen.values(), key=lambda node: node.seq)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_programs_with_blocks_match_torch(data):
    p = Program(data)
    for _ in range(p.draw(st.integers(1, 3), "number of leaves")):
        p.leaf(p.draw(shapes(), "leaf shape"), requires_grad=True)
    open_blocks = []  # (tape, mark at enter)
    blocks = []  # (tape, mark at enter, mark at exit)
    try:
        for _ in range(p.draw(st.integers(1, 10), "number of steps")):
            action = p.draw(st.sampled_from(["op", "op", "op", "open", "close"]), "action")
            if action == "open" and len(open_blocks) < 3:
                tape = tg.Tape()
                tape.__enter__()
                open_blocks.append((tape, next(_sequence)))
            elif action == "close" and open_blocks:
                tape, start = open_blocks.pop()
                tape.__exit__(None, None, None)
                blocks.append((tape, start, next(_sequence)))
            else:
                p.draw(st.sampled_from(MORE_OPS), "op")(p)
    finally:  # (hypothesis may stop an example mid-draw: never leave a block open)
        while open_blocks:
            tape, start = open_blocks.pop()
            tape.__exit__(None, None, None)
            blocks.append((tape, start, next(_sequence)))

    # every block tape holds exactly what was recorded inside it, in execution order
    recorded = _recorded_nodes(p)
    for tape, start, stop in blocks:
        expected = [node for node in recorded if start < node.seq < stop]
        got = list(tape)
        assert [id(n) for n in got if start < n.seq < stop] == [id(n) for n in expected]
        assert all(start < n.seq < stop for n in got[: len(expected)])
        # after its block, a block tape that was still its computation's tape grew with it
        # (rule 4 of tapegrad.tape): those nodes come after, in the order they ran
        extra = got[len(expected) :]
        assert all(n.seq > stop for n in extra)
        assert [n.seq for n in extra] == sorted(n.seq for n in extra)

    loss = theirs_loss = None
    for ours, theirs, _what in p.outputs:
        weight = p.values(tuple(theirs.shape))
        term, theirs_term = (ours * tg.tensor(weight)).sum(), (theirs * weight).sum()
        loss = term if loss is None else loss + term
        theirs_loss = theirs_term if theirs_loss is None else theirs_loss + theirs_term
    if loss is None or not loss.requires_grad:
        return
    loss.backward()
    theirs_loss.backward()
    for ours, theirs, name in p.leaves:
        expected, got = theirs.grad, ours.grad
        if expected is None or got is None:
            other = got if expected is None else expected
            assert other is None or not other.any(), f"{name}: one side has no gradient"
            continue
        assert torch.allclose(got, expected, rtol=1e-7, atol=1e-9), (
            f"{name}: gradient differs from torch by {(got - expected).abs().max().item():.3g}\n"
            f"program: {[what for _, _, what in p.outputs]}"
        )


# --- training with optimizers and hand-written updates -----------------------------------------


def _parameter(data, layout, dtype, shape):
    """A parameter's values (and the store they live in) in the drawn layout, twice."""
    g = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31 - 1), label="values"))
    base = torch.randn(shape + (2,), generator=g, dtype=torch.float64)
    if dtype == torch.complex128:
        base = torch.complex(base, torch.randn(base.shape, generator=g, dtype=torch.float64))
    stores, views = [], []
    for _ in range(2):
        store = base.clone()
        if layout == "strided":
            view = store[..., 0]
        elif layout == "transposed" and len(shape) == 2:
            store = store[..., 0].t().contiguous()  # (m, n) in memory, viewed as (n, m)
            view = store.t()
        else:
            store = store[..., 0].contiguous()
            view = store
        stores.append(store)
        views.append(view)
    return stores, views


OPTIMIZERS = {
    "sgd": (
        tg.optim.SGD,
        torch.optim.SGD,
        st.fixed_dictionaries(
            {
                "lr": st.sampled_from([0.01, 0.1]),
                "momentum": st.sampled_from([0.0, 0.9, 1.0, 1.5]),
                "weight_decay": st.sampled_from([0.0, 0.01]),
                "maximize": st.booleans(),
            }
        ),
    ),
    "nesterov": (
        tg.optim.SGD,
        torch.optim.SGD,
        st.fixed_dictionaries(
            {"lr": st.just(0.05), "momentum": st.just(0.9), "nesterov": st.just(True)}
        ),
    ),
    "adam": (
        tg.optim.Adam,
        torch.optim.Adam,
        st.fixed_dictionaries(
            {
                "lr": st.sampled_from([0.01, 0.1]),
                "weight_decay": st.sampled_from([0.0, 0.01]),
                "amsgrad": st.booleans(),
                "maximize": st.booleans(),
            }
        ),
    ),
    "adamw": (
        tg.optim.AdamW,
        torch.optim.AdamW,
        st.fixed_dictionaries(
            {"lr": st.sampled_from([0.01, 0.1]), "weight_decay": st.sampled_from([0.0, 0.05])}
        ),
    ),
}


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_training_with_no_grad_updates_matches_torch(data):
    n_params = data.draw(st.integers(1, 3), label="parameters")
    ours, theirs, our_stores, their_stores = [], [], [], []
    for _ in range(n_params):
        shape = data.draw(st.sampled_from([(3,), (2, 3), (3, 2), ()]), label="shape")
        layout = data.draw(st.sampled_from(["contiguous", "transposed", "strided"]), label="layout")
        dtype = data.draw(st.sampled_from([torch.float64, torch.complex128]), label="dtype")
        stores, views = _parameter(data, layout, dtype, shape)
        ours.append(tg.Tensor(views[0], requires_grad=True))
        theirs.append(views[1].requires_grad_(True))
        our_stores.append(stores[0])
        their_stores.append(stores[1])
    name = data.draw(st.sampled_from(sorted(OPTIMIZERS)), label="optimizer")
    ours_class, theirs_class, options = OPTIMIZERS[name]
    options = data.draw(options, label="options")
    opt, reference = ours_class(ours, **options), theirs_class(theirs, **options)
    g = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31 - 1), label="inputs"))
    for _ in range(data.draw(st.integers(1, 6), label="steps")):
        opt.zero_grad()
        reference.zero_grad()
        # gradients: through a recorded program for real parameters, set by hand for complex
        # ones (recording ops on complex tensors is refused: see tapegrad.function)
        for p, q in zip(ours, theirs):
            if p.dtype.is_complex:
                grad = torch.complex(
                    torch.randn(q.shape, generator=g, dtype=torch.float64),
                    torch.randn(q.shape, generator=g, dtype=torch.float64),
                )
                p.grad, q.grad = grad.clone(), grad.clone()
            else:
                weight = torch.randn(q.shape, generator=g, dtype=torch.float64)
                ((p * p).tanh() * tg.tensor(weight)).sum().backward()
                ((q * q).tanh() * weight).sum().backward()
                torch.testing.assert_close(p.grad, q.grad, rtol=1e-12, atol=1e-12)
        opt.step()
        reference.step()
        # a hand-written update, as tutorials write them
        update = data.draw(
            st.sampled_from(["none", "sub", "mul_", "setitem", "clamp_"]), label="no_grad update"
        )
        with tg.no_grad():
            for p in ours:
                _update(p, update)
        with torch.no_grad():
            for q in theirs:
                _update(q, update)
        for p, q, store, their_store in zip(ours, theirs, our_stores, their_stores):
            torch.testing.assert_close(p.data, q.detach(), rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(
                store, their_store, rtol=1e-12, atol=1e-12
            )  # nothing outside


def _update(p, update):
    if update == "sub":
        p -= 0.01 * p.grad
    elif update == "mul_":
        p.mul_(0.99)
    elif update == "setitem" and p.dim() > 0:
        p[0] = 0.5
    elif update == "clamp_" and not p.dtype.is_complex:
        p.clamp_(-1.5, 1.5)


def test_the_store_comparison_catches_a_write_outside_the_parameter():
    # the control: what the fused SGD kernel did to strided views, the comparison above catches
    store, theirs = torch.zeros(3, 2, dtype=DTYPE), torch.zeros(3, 2, dtype=DTYPE)
    p, q = store[..., 0], theirs[..., 0]
    p -= 0.5
    q -= 0.5
    store[..., 1] -= 0.5  # outside the parameter
    torch.testing.assert_close(p, q)
    with pytest.raises(AssertionError):
        torch.testing.assert_close(store, theirs)


def test_no_block_is_left_open_after_the_fuzz():
    assert tg.tape._state.blocks == ()
