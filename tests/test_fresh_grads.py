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
