"""Fuzz: random graphs of every op, random shapes, float64; every leaf gradient equals torch's.

Hypothesis draws a small program: leaves of random shapes, then a few
steps, each applying a random op (binary with broadcasting, unary,
reduction, reshape, transpose, matmul, indexing, Linear, losses) to what
was computed so far. Each step runs twice, once on tapegrad tensors and
once on torch tensors with torch autograd on (the reference, used only in
tests). The loss weights every intermediate result (so fan-out and unused
branches are exercised), and every leaf's gradient must match.

Bounded for CI: TAPEGRAD_FUZZ_EXAMPLES (default 60) examples, no deadline.
"""

import os

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tapegrad as tg
from tapegrad import nn

EXAMPLES = int(os.environ.get("TAPEGRAD_FUZZ_EXAMPLES", "60"))
DTYPE = torch.float64


class Program:
    """The pair of computations (tapegrad, torch) built step by step, and their leaves."""

    def __init__(self, data):
        self.data = data
        self.generator = torch.Generator().manual_seed(
            data.draw(st.integers(0, 2**31 - 1), label="seed")
        )
        self.leaves = []  # (tapegrad leaf, torch leaf, name)
        self.pool = []  # (tapegrad tensor, torch tensor): everything computed so far
        self.outputs = []  # the op outputs, which the loss weights

    # --- drawing ---------------------------------------------------------------
    def draw(self, strategy, label):
        return self.data.draw(strategy, label=label)

    def values(self, shape, low=-2.0, high=2.0):
        return torch.rand(shape, generator=self.generator, dtype=DTYPE) * (high - low) + low

    def leaf(self, shape, requires_grad=None, low=-2.0, high=2.0):
        """A new input: a leaf that needs a gradient, or (sometimes) a constant tensor."""
        if requires_grad is None:
            requires_grad = self.draw(st.booleans(), "leaf requires grad") or not self.leaves
        values = self.values(shape, low, high)
        ours = tg.tensor(values.clone(), requires_grad=requires_grad)
        theirs = values.clone().requires_grad_(requires_grad)
        if requires_grad:
            self.leaves.append((ours, theirs, f"leaf {len(self.leaves)} {tuple(shape)}"))
        self.pool.append((ours, theirs))
        return ours, theirs

    def pick(self):
        return self.pool[self.draw(st.integers(0, len(self.pool) - 1), "operand")]

    def record(self, ours, theirs, what):
        assert isinstance(ours, tg.Tensor), what
        assert ours.shape == theirs.shape, (
            f"{what}: shape {tuple(ours.shape)} vs {tuple(theirs.shape)}"
        )
        assert torch.allclose(ours.data, theirs.detach(), rtol=1e-10, atol=1e-12, equal_nan=True), (
            what
        )
        self.pool.append((ours, theirs))
        self.outputs.append((ours, theirs, what))


def shapes(min_dims=0, max_dims=3):
    return st.lists(st.integers(1, 4), min_size=min_dims, max_size=max_dims).map(tuple)


def broadcast_partner(p, shape):
    """A shape that broadcasts with `shape`: a suffix, some sizes set to 1, maybe a new lead dim."""
    keep = p.draw(st.integers(0, len(shape)), "suffix length")
    partner = [
        size if not p.draw(st.booleans(), "squash to 1") else 1
        for size in shape[len(shape) - keep :]
    ]
    if len(shape) < 3 and p.draw(st.booleans(), "extra leading dim"):
        partner = [p.draw(st.integers(1, 3), "lead size")] + ([1] * (len(shape) - keep)) + partner
    return tuple(partner)


# --- the ops, each run on both sides -----------------------------------------------


def positive(ours, theirs):
    """x^2 + 0.5 > 0: a safe input for log, division and fractional powers."""
    return ours * ours + 0.5, theirs * theirs + 0.5


def op_binary(p):
    a, ta = p.pick()
    which = p.draw(st.sampled_from(["add", "sub", "mul", "div"]), "binary op")
    kind = p.draw(
        st.sampled_from(["tensor", "pool", "scalar-right", "scalar-left"]), "operand kind"
    )
    if kind == "scalar-right" or kind == "scalar-left":
        c = p.draw(st.floats(-3, 3, allow_nan=False).filter(lambda v: abs(v) > 0.1), "scalar")
        if which == "div" and kind == "scalar-left":
            a, ta = positive(a, ta)
        if kind == "scalar-right":
            ours_l, ours_r, theirs_l, theirs_r = a, c, ta, c
        else:
            ours_l, ours_r, theirs_l, theirs_r = c, a, c, ta
    else:
        if kind == "pool":
            b, tb = p.pick()
            try:
                torch.broadcast_shapes(a.shape, b.shape)
            except RuntimeError:
                b, tb = p.leaf(broadcast_partner(p, tuple(a.shape)))
        else:
            b, tb = p.leaf(broadcast_partner(p, tuple(a.shape)))
        if p.draw(st.booleans(), "swap sides"):
            a, ta, b, tb = b, tb, a, ta
        if which == "div":
            b, tb = positive(b, tb)
        ours_l, ours_r, theirs_l, theirs_r = a, b, ta, tb
    fn = {
        "add": lambda x, y: x + y,
        "sub": lambda x, y: x - y,
        "mul": lambda x, y: x * y,
        "div": lambda x, y: x / y,
    }[which]
    p.record(fn(ours_l, ours_r), fn(theirs_l, theirs_r), f"{which} ({kind})")


def op_unary(p):
    a, ta = p.pick()
    which = p.draw(
        st.sampled_from(["neg", "exp", "log", "relu", "tanh", "sigmoid", "pow", "to"]), "unary op"
    )
    if which == "exp" and ta.detach().abs().max() > 5:
        which = "tanh"  # keep values finite
    if which == "log":
        a, ta = positive(a, ta)
        p.record(a.log(), ta.log(), "log")
    elif which == "pow":
        exponent = p.draw(st.sampled_from([2, 3, 0, 1, -1, 0.5, 1.5, -0.5]), "exponent")
        if exponent != int(exponent) or exponent < 0:
            a, ta = positive(a, ta)
        p.record(a**exponent, ta**exponent, f"pow {exponent}")
    elif which == "to":  # through float32 and back: both sides round the same way
        p.record(a.float().double(), ta.float().double(), "to")
    else:
        p.record(
            getattr(a, which if which != "neg" else "__neg__")(),
            getattr(ta, which if which != "neg" else "__neg__")(),
            which,
        )


def op_reduce(p):
    a, ta = p.pick()
    which = p.draw(st.sampled_from(["sum", "mean"]), "reduction")
    ndim = a.dim()
    if ndim == 0 or p.draw(st.booleans(), "over everything"):
        p.record(getattr(a, which)(), getattr(ta, which)(), f"{which}()")
        return
    dims = p.draw(
        st.lists(
            st.integers(-ndim, ndim - 1), min_size=1, max_size=ndim, unique_by=lambda d: d % ndim
        ),
        "dims",
    )
    dim = dims[0] if len(dims) == 1 and p.draw(st.booleans(), "int dim") else tuple(dims)
    keepdim = p.draw(st.booleans(), "keepdim")
    p.record(
        getattr(a, which)(dim, keepdim),
        getattr(ta, which)(dim, keepdim=keepdim),
        f"{which}({dim}, keepdim={keepdim})",
    )


def op_reshape(p):
    a, ta = p.pick()
    n = a.numel()
    options = [(n,), (-1,), (1, n), (n, 1), tuple(reversed(a.shape))]
    if n == 1:
        options.append(())
    shape = p.draw(st.sampled_from(options), "new shape")
    p.record(a.reshape(shape), ta.reshape(shape), f"reshape {shape}")


def op_transpose(p):
    a, ta = p.pick()
    if a.dim() < 2:
        p.record(a.T, ta, "T (the tensor itself below 2-D)")
        return
    if a.dim() == 2 and p.draw(st.booleans(), "use .T"):
        p.record(a.T, ta.T, "T")
        return
    d0 = p.draw(st.integers(-a.dim(), a.dim() - 1), "dim0")
    d1 = p.draw(st.integers(-a.dim(), a.dim() - 1), "dim1")
    p.record(a.transpose(d0, d1), ta.transpose(d0, d1), f"transpose({d0}, {d1})")


def op_matmul(p):
    a, ta = p.pick()
    if a.dim() == 0:
        a, ta = a.reshape(1), ta.reshape(1)
    n = a.shape[-1]
    form = p.draw(st.sampled_from(["vector", "matrix", "batched", "vector-left"]), "matmul form")
    if form == "vector-left" and a.dim() >= 2:
        b, tb = p.leaf((a.shape[-2],))
        p.record(b @ a, tb @ ta, "vector @ x")
        return
    if form == "vector" or form == "vector-left":
        b, tb = p.leaf((n,))
    elif form == "matrix":
        b, tb = p.leaf((n, p.draw(st.integers(1, 3), "k")))
    else:
        batch = a.shape[0] if a.dim() == 3 else p.draw(st.integers(1, 3), "batch")
        b, tb = p.leaf((batch, n, p.draw(st.integers(1, 3), "k")))
    if p.draw(st.booleans(), "swap") and b.dim() >= 2 and a.dim() >= 2:
        # (k, n) @ (..., n, m)^T style: use the transposes so shapes still agree
        p.record(
            b.transpose(-1, -2) @ a.transpose(-1, -2),
            tb.transpose(-1, -2) @ ta.transpose(-1, -2),
            f"{form}^T @ x^T",
        )
        return
    p.record(a @ b, ta @ tb, f"x @ {form}")


def op_index(p):
    a, ta = p.pick()
    if a.dim() == 0:
        a, ta = a.reshape(1, 1), ta.reshape(1, 1)
    size = a.shape[0]
    form = p.draw(st.sampled_from(["int", "slice", "ellipsis", "int tensor", "mask"]), "index")
    if form == "int":
        key = p.draw(st.integers(-size, size - 1), "i")
    elif form == "slice":
        start = p.draw(st.integers(0, size - 1), "start")
        key = slice(start, None, p.draw(st.integers(1, 2), "step"))
    elif form == "ellipsis":
        key = (Ellipsis, p.draw(st.integers(0, a.shape[-1] - 1), "j"))
    elif form == "int tensor":  # with a repeat: its gradients must add up
        picks = p.draw(st.lists(st.integers(-size, size - 1), min_size=1, max_size=4), "picks")
        key = torch.tensor(picks + picks[:1])
    else:
        mask = torch.rand(a.shape, generator=p.generator) > 0.5
        mask.view(-1)[0] = True
        key = mask
    p.record(a[key], ta[key], f"index {form}")


def op_linear(p):
    a, ta = p.pick()
    if a.dim() == 0:
        a, ta = a.reshape(1), ta.reshape(1)
    out_features = p.draw(st.integers(1, 3), "out features")
    bias = p.draw(st.booleans(), "bias")
    layer = nn.Linear(a.shape[-1], out_features, bias=bias, dtype=DTYPE, generator=p.generator)
    names = ["weight"] + (["bias"] if bias else [])
    twins = []
    for name in names:
        param = getattr(layer, name)
        twin = param.data.clone().requires_grad_(True)
        p.leaves.append((param, twin, f"Linear.{name}"))
        twins.append(twin)
    p.record(layer(a), torch.nn.functional.linear(ta, *twins), "Linear")


def op_loss(p):
    a, ta = p.pick()
    reduction = p.draw(st.sampled_from(["mean", "sum", "none"]), "reduction")
    if p.draw(st.booleans(), "BCE"):
        probability, tprobability = a.sigmoid(), ta.sigmoid()
        target = p.values(tuple(a.shape), 0.0, 1.0)
        p.record(
            nn.BCELoss(reduction=reduction)(probability, tg.tensor(target)),
            torch.nn.functional.binary_cross_entropy(tprobability, target, reduction=reduction),
            f"BCELoss {reduction}",
        )
    else:
        b, tb = p.leaf(tuple(a.shape))
        p.record(
            nn.MSELoss(reduction=reduction)(a, b),
            torch.nn.functional.mse_loss(ta, tb, reduction=reduction),
            f"MSELoss {reduction}",
        )


OPS = [
    op_binary,
    op_unary,
    op_reduce,
    op_reshape,
    op_transpose,
    op_matmul,
    op_index,
    op_linear,
    op_loss,
]


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_graphs_match_torch_autograd(data):
    p = Program(data)
    for _ in range(p.draw(st.integers(1, 3), "number of leaves")):
        p.leaf(p.draw(shapes(), "leaf shape"), requires_grad=True)
    for _ in range(p.draw(st.integers(1, 8), "number of steps")):
        op = p.draw(st.sampled_from(OPS), "op")
        op(p)
    # L = sum over every op output of <output, a fixed random weight>: every branch counts.
    loss = theirs_loss = None
    for ours, theirs, _what in p.outputs:
        weight = p.values(tuple(theirs.shape))
        term, theirs_term = (ours * tg.tensor(weight)).sum(), (theirs * weight).sum()
        loss = term if loss is None else loss + term
        theirs_loss = theirs_term if theirs_loss is None else theirs_loss + theirs_term
    if not loss.requires_grad:
        return  # nothing recorded (every leaf drawn was a constant)
    loss.backward()
    theirs_loss.backward()
    for ours, theirs, name in p.leaves:
        expected, got = theirs.grad, ours.grad
        if expected is None or got is None:
            other = got if expected is None else expected
            assert other is None or not other.any(), f"{name}: one side has no gradient"
            continue
        assert got.shape == expected.shape, name
        assert torch.allclose(got, expected, rtol=1e-7, atol=1e-9), (
            f"{name}: gradient differs from torch autograd by "
            f"{(got - expected).abs().max().item():.3g}\n"
            f"program: {[what for _, _, what in p.outputs]}"
        )


def test_the_fuzz_comparison_can_fail():
    # The control: a wrong derivative is caught by the same comparison.
    class WrongExp(tg.Function):
        @staticmethod
        def forward(ctx, x):
            y = torch.exp(x)
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad):
            (y,) = ctx.saved_tensors
            return grad * y * 1.001

    x = tg.tensor(torch.ones(3, dtype=DTYPE), requires_grad=True)
    t = torch.ones(3, dtype=DTYPE, requires_grad=True)
    WrongExp.apply(x).sum().backward()
    t.exp().sum().backward()
    assert not torch.allclose(x.grad, t.grad, rtol=1e-7, atol=1e-9)


if __name__ == "__main__":
    pytest.main([__file__, "-q"])
