"""Ops that declare `fresh_grads` really return new gradients, each its own.

The sweep trusts the flag: a leaf takes such a gradient as it is, without the
copy that guards against sharing. So the flag is checked here, op by op, on
the op's own derivative: no returned gradient shares memory with dL/dy, with
a saved tensor of the op, or with another returned gradient.
"""

import pytest
import torch

import tapegrad as tg
from tapegrad import nn, ops


def _memory(t):
    return t.untyped_storage().data_ptr()


def leaf(*shape):
    return tg.tensor(torch.rand(*shape, dtype=torch.float64) + 0.5, requires_grad=True)


CASES = {
    "Mul": lambda: ops.Mul.apply(leaf(3, 4), leaf(4)),
    "Mul by a number": lambda: ops.Mul.apply(leaf(3, 4), 2.0),
    "Div": lambda: ops.Div.apply(leaf(3, 4), leaf(3, 1)),
    "Neg": lambda: ops.Neg.apply(leaf(3, 4)),
    "Pow 2": lambda: ops.Pow.apply(leaf(3, 4), 2),
    "Pow 0": lambda: ops.Pow.apply(leaf(3, 4), 0),
    "Pow 1.5": lambda: ops.Pow.apply(leaf(3, 4), 1.5),
    "MatMul": lambda: ops.MatMul.apply(leaf(2, 3, 4), leaf(4, 5)),
    "MatMul 1-D": lambda: ops.MatMul.apply(leaf(4), leaf(4)),
    "Exp": lambda: ops.Exp.apply(leaf(3, 4)),
    "Log": lambda: ops.Log.apply(leaf(3, 4)),
    "ReLU": lambda: ops.ReLU.apply(leaf(3, 4) - 1.0),
    "Tanh": lambda: ops.Tanh.apply(leaf(3, 4)),
    "Sigmoid": lambda: ops.Sigmoid.apply(leaf(3, 4)),
    "GetItem": lambda: ops.GetItem.apply(leaf(5, 4), torch.tensor([0, 0, 3])),
    "GetItem slice": lambda: ops.GetItem.apply(leaf(5, 4), (slice(1, 3),)),
    "LinearFunction": lambda: nn.LinearFunction.apply(leaf(6, 3), leaf(2, 3), leaf(2)),
    "LinearFunction 3-D": lambda: nn.LinearFunction.apply(leaf(2, 6, 3), leaf(2, 3), leaf(2)),
    "MSEFunction": lambda: nn.MSEFunction.apply(leaf(5, 1), leaf(5, 1), "mean"),
    "BCEFunction": lambda: nn.BCEFunction.apply(leaf(5, 1) * 0.5, leaf(5, 1) * 0.5, "sum"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_fresh_op_returns_gradients_of_its_own(case):
    out = CASES[case]()
    node = out.node
    assert node.op.fresh_grads, f"{node.op.__name__} is expected to declare fresh_grads"
    grad_output = torch.rand(out.shape, dtype=out.dtype)
    saved = [t for t in node.saved_tensors if isinstance(t, torch.Tensor)]
    grads = node.op.backward(node, grad_output)
    grads = grads if isinstance(grads, tuple) else (grads,)
    returned = [g for g in grads if g is not None]
    assert returned
    taken = {_memory(grad_output)} | {_memory(t) for t in saved}
    for g in returned:
        assert _memory(g) not in taken, f"{node.op.__name__} returned a gradient sharing memory"
        taken.add(_memory(g))


@pytest.mark.parametrize(
    "op", [ops.Add, ops.Sub, ops.Reshape, ops.Transpose, ops.Sum, ops.Mean, ops.To, tg.Function]
)
def test_ops_that_may_pass_a_gradient_through_do_not_claim_fresh_grads(op):
    assert not op.fresh_grads


def test_leaves_fed_by_a_pass_through_op_still_get_their_own_grad():
    a, b = leaf(3), leaf(3)
    (a + b).sum().backward()  # Add hands the same dL/dy to both
    assert _memory(a.grad) != _memory(b.grad)
    a.grad.mul_(0)
    assert torch.all(b.grad == 1)


def test_an_op_that_saved_nothing_reads_an_empty_saved_tensors():
    class Double(tg.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            assert ctx.saved_tensors == ()
            return grad * 2

    x = leaf(3)
    Double.apply(x).sum().backward()
    assert torch.equal(x.grad, torch.full((3,), 2.0, dtype=torch.float64))


def _twin_functions():
    """The same op as a tapegrad Function and a torch.autograd.Function: a dot product whose
    backward returns the saved inputs themselves when the incoming gradient is 1."""

    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return (b, a) if float(g) == 1 else (g * b, g * a)

    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return (a * b).sum()

    ours = type(
        "Dot", (tg.Function,), dict(forward=staticmethod(forward), backward=staticmethod(backward))
    )
    theirs = type(
        "Dot",
        (torch.autograd.Function,),
        dict(forward=staticmethod(forward), backward=staticmethod(backward)),
    )
    return ours, theirs


def test_a_user_functions_gradient_held_elsewhere_is_copied_into_grad_like_torch():
    """The backward hands back a saved input (another leaf's data): torch's AccumulateGrad
    copies a gradient whose tensor something else holds, so .grad is a tensor of its own,
    and an optimizer's step on one parameter does not move the other's gradient."""
    ours, theirs = _twin_functions()
    torch.manual_seed(0)
    a0, b0 = torch.randn(3), torch.randn(3)
    P = [tg.Tensor(a0.clone(), requires_grad=True), tg.Tensor(b0.clone(), requires_grad=True)]
    Q = [torch.nn.Parameter(a0.clone()), torch.nn.Parameter(b0.clone())]
    opt = tg.optim.SGD(P, lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(Q, lr=0.1, momentum=0.9, foreach=False)
    for _ in range(3):
        opt.zero_grad()
        topt.zero_grad()
        ours.apply(P[0], P[1]).backward()
        theirs.apply(Q[0], Q[1]).backward()
        for p, other in ((P[0], P[1]), (P[1], P[0])):
            assert p.grad.data_ptr() != other.data.data_ptr()
        opt.step()
        topt.step()
        for p, q in zip(P, Q):
            torch.testing.assert_close(p.data, q.detach(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("returned", ["the buffer", "a detached alias of the buffer"])
def test_a_hooks_gradient_is_kept_or_copied_as_torch_does(returned):
    """torch keeps a hook's tensor as .grad when nothing else holds it (a detached alias:
    then it shares the buffer's memory) and copies it otherwise (the buffer itself)."""
    torch.manual_seed(0)
    w0, x0 = torch.randn(3), torch.randn(3)
    p, q = tg.Tensor(w0.clone(), requires_grad=True), torch.nn.Parameter(w0.clone())
    held = {"ours": torch.randn(3)}
    held["theirs"] = held["ours"].clone()

    def hook(name):
        if returned == "the buffer":
            return lambda g: held[name]
        return lambda g: held[name].detach()

    y, ty = p + tg.Tensor(x0), q + x0
    y.register_hook(hook("ours"))
    ty.register_hook(hook("theirs"))
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    assert (p.grad.data_ptr() == held["ours"].data_ptr()) == (
        q.grad.data_ptr() == held["theirs"].data_ptr()
    )
    assert torch.equal(p.grad, q.grad)


def test_a_seed_the_caller_holds_is_copied_into_grad_like_torch():
    p, q = tg.Tensor(torch.zeros(3), requires_grad=True), torch.zeros(3, requires_grad=True)
    g, tgr = torch.ones(3), torch.ones(3)
    (p + 0).backward(g)
    (q + 0).backward(tgr)
    assert (p.grad.data_ptr() == g.data_ptr()) == (q.grad.data_ptr() == tgr.data_ptr())
    p.grad.mul_(2)
    assert torch.equal(g, torch.ones(3))


@pytest.mark.parametrize("program", ["two leaves of one add", "the caller's seed, reshaped"])
def test_after_create_graph_each_grad_is_a_tensor_of_its_own_like_torch(program):
    """torch copies every gradient into .grad under create_graph; here a later plain
    backward adds into x.grad in place, which must not reach y.grad or the caller's seed."""
    import warnings

    results = {}
    for m in (torch, tg):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        y = m.tensor([3.0, 4.0], requires_grad=True)
        seed = m.tensor([1.0, 1.0], requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's note on create_graph=True's cycle
            if program == "two leaves of one add":
                (x + y).backward(m.ones(2), create_graph=True)
            else:
                x.reshape(2).backward(seed, create_graph=True)
        (x * 5).sum().backward()
        other = y.grad if program == "two leaves of one add" else seed
        results[m.__name__] = (x.grad.data.tolist(), other.data.tolist())
    assert results["tapegrad"] == results["torch"]


@pytest.mark.parametrize("write", ["copy_", "x[:, 0] = v", "x[:] = v"])
def test_a_written_values_gradient_is_a_tensor_of_its_own_like_torch(write):
    """dL/dv of copy_ and of x[index] = v is dL/dy, or a view of it: .grad takes a copy,
    contiguous, that a hook's kept tensor does not share and in-place edits can change."""
    for m in (torch, tg):
        v = m.tensor([1.0, 2.0], requires_grad=True)
        x = m.zeros(2, 2) if write == "x[:, 0] = v" else m.zeros(2)
        if write == "copy_":
            x.copy_(v)
        elif write == "x[:, 0] = v":
            x[:, 0] = v
        else:
            x[:] = v
        kept = []
        x.register_hook(lambda g: kept.append(g * 3) or kept[-1])
        x.sum().backward()
        assert v.grad.data_ptr() != kept[0].data_ptr(), m.__name__
        assert v.grad.is_contiguous()
        v.grad.mul_(0.5)
        assert v.grad.tolist() == [1.5, 1.5], m.__name__
