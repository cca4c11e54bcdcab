"""Fuzz tapegrad.compile against eager: random networks, optimizers, batch sizes and programs.

Each example trains two twins from the same seed, one eagerly and one compiled, and
compares everything bit for bit after every step: the compiler must never be wrong, and
hypothesis looks for a case where it is.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tapegrad as tg
from tapegrad import nn, optim

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


@st.composite
def setups(draw):
    return dict(
        widths=[2] + draw(st.lists(st.integers(1, 8), min_size=1, max_size=3)) + [1],
        activations=draw(st.lists(st.sampled_from(sorted(ACTIVATIONS)), min_size=4, max_size=4)),
        loss=draw(st.sampled_from(["mse", "mse-sum", "bce"])),
        optimizer=draw(st.sampled_from(["sgd", "momentum", "nesterov", "adam", "adam-decay"])),
        dtype=draw(st.sampled_from([torch.float32, torch.float64])),
        points=draw(st.integers(3, 40)),
        batch=draw(st.integers(1, 16)),
        seed=draw(st.integers(0, 2**16)),
    )


def build(s):
    g = torch.Generator().manual_seed(s["seed"])
    layers = []
    widths = s["widths"]
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1], generator=g, dtype=s["dtype"]))
        last = i == len(widths) - 2
        act = "sigmoid" if last and s["loss"] == "bce" else s["activations"][i]
        layers.append(ACTIVATIONS[act]())
    model = nn.Sequential(*layers)
    loss_fn = {"mse": nn.MSELoss(), "mse-sum": nn.MSELoss(reduction="sum"), "bce": nn.BCELoss()}[
        s["loss"]
    ]
    params = model.parameters()
    optimizer = {
        "sgd": lambda: optim.SGD(params, lr=0.1),
        "momentum": lambda: optim.SGD(params, lr=0.05, momentum=0.9, dampening=0.1),
        "nesterov": lambda: optim.SGD(
            params, lr=0.05, momentum=0.5, nesterov=True, weight_decay=0.01
        ),
        "adam": lambda: optim.Adam(params, lr=0.01),
        "adam-decay": lambda: optim.Adam(params, lr=0.01, betas=(0.8, 0.9), weight_decay=0.1),
    }[s["optimizer"]]()

    def train_step(x, t):
        loss = loss_fn(model(x), t)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    return model, optimizer, train_step


def assert_twins(m1, o1, m2, o2, where):
    for p, q in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(p.data, q.data), where
        assert torch.equal(p.grad, q.grad), where
        assert p.data._version == q.data._version, where
    s1, s2 = o1.state_dict()["state"], o2.state_dict()["state"]
    assert s1.keys() == s2.keys()
    for key in s1:
        for name, value in s1[key].items():
            other = s2[key][name]
            assert (
                torch.equal(value, other) if isinstance(value, torch.Tensor) else value == other
            ), (where, name)


@SETTINGS
@given(setups())
def test_random_networks_train_bit_for_bit(s):
    m1, o1, eager = build(s)
    m2, o2, plain = build(s)
    step = tg.compile(plain)
    x, t = tg.data.generate_disc_set(
        s["points"], generator=torch.Generator().manual_seed(7), dtype=s["dtype"]
    )
    batches = list(tg.data.batches(x, t, s["batch"]))
    for i in range(8):
        xb, tb = batches[i % len(batches)]
        a, b = eager(xb, tb), step(xb, tb)
        assert torch.equal(a.data, b.data), (i, s)
        assert_twins(m1, o1, m2, o2, (i, s))


PROGRAMS = {
    # ops on leaf tensors: matmul, broadcasting, reductions, indexing, reshape, pow, exp, log
    "expression": lambda w, b, x: ((x @ w + b).tanh() * 0.5 + x[:, :1] ** 2).sum(),
    "broadcast": lambda w, b, x: (
        ((x.reshape(-1, 1, 2) * w.t()[:1]).exp().mean(1) - b[:2]).pow(2).mean()
    ),
    "log-sigmoid": lambda w, b, x: (x @ w + b).sigmoid().log().neg().sum(0).mean(),
    "indexing": lambda w, b, x: ((x[::2] @ w)[:, 1:] * b[1:]).relu().sum() / 3,
}


@pytest.mark.parametrize("program", list(PROGRAMS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_programs_of_tapegrad_ops_with_a_hand_written_update(program, dtype):
    f = PROGRAMS[program]

    def make():
        g = torch.Generator().manual_seed(3)
        w = tg.Tensor(torch.randn(2, 3, generator=g, dtype=dtype), requires_grad=True)
        b = tg.Tensor(torch.randn(3, generator=g, dtype=dtype), requires_grad=True)

        def train_step(x):
            loss = f(w, b, x)
            w.grad = b.grad = None
            loss.backward()
            with tg.no_grad():  # a hand-written update, in place
                w.data.sub_(0.1 * w.grad)
                b.data.add_(b.grad, alpha=-0.1)
            return loss

        return (w, b), train_step

    (p1, eager), (p2, plain) = make(), make()
    step = tg.compile(plain)
    g = torch.Generator().manual_seed(5)
    for i in range(6):
        x = tg.Tensor(torch.rand(6, 2, generator=g, dtype=dtype))
        a, b = eager(x), step(x)
        assert torch.equal(a.data, b.data), (program, i)
        for u, v in zip(p1, p2):
            assert torch.equal(u.data, v.data) and torch.equal(u.grad, v.grad), (program, i)
            assert u.data._version == v.data._version, (program, i)
    assert step.stats["compiled_calls"] >= 4, step.stats
