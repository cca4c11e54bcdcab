"""User-defined ops: `tapegrad.Function` written the torch way, and `gradcheck` judging them."""

import re

import pytest
import torch

import tapegrad as tg

from helpers import check_against_torch, randn


class MulAdd(tg.Function):
    """y = a * b * scale + c

    dL/da = dL/dy * b * scale,  dL/db = dL/dy * a * scale,  dL/dc = dL/dy
    """

    calls = []  # what each backward saw, for the tests

    @staticmethod
    def forward(ctx, a, b, c, scale):
        ctx.save_for_backward(a, b)
        ctx.scale = scale
        return a * b * scale + c

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b, need_c, need_scale = ctx.needs_input_grad
        MulAdd.calls.append(ctx.needs_input_grad)
        return (
            grad * b * ctx.scale if need_a else None,
            grad * a * ctx.scale if need_b else None,
            grad if need_c else None,
            None,
        )


class Square(tg.Function):
    """y = x^2      dL/dx = dL/dy * 2x"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 2 * x


class WrongSquare(Square):
    """y = x^2, with the derivative deliberately wrong by a factor 2 (x instead of 2x)."""

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * x


def test_user_op_matches_torch_with_several_inputs():
    def fn(a, b, c):
        if isinstance(a, tg.Tensor):
            return MulAdd.apply(a, b, c, 0.5)
        return a * b * 0.5 + c

    values = randn((2, 3), 0), randn((2, 3), 1), randn((2, 3), 2)
    check_against_torch(fn, *values)
    check_against_torch(fn, *values, requires=[True, False, True])
    check_against_torch(fn, *values, requires=[False, True, False])


def test_needs_input_grad_says_which_inputs_get_a_gradient():
    MulAdd.calls.clear()
    a, c = tg.tensor([1.0, 2.0], requires_grad=True), tg.tensor([3.0, 4.0], requires_grad=True)
    b = tg.tensor([5.0, 6.0])  # needs no gradient
    MulAdd.apply(a, b, c, 2.0).sum().backward()
    assert MulAdd.calls == [(True, False, True, False)]
    assert a.grad.tolist() == [10.0, 12.0] and c.grad.tolist() == [1.0, 1.0] and b.grad is None


def test_needs_input_grad_sees_op_outputs_as_needing_a_gradient():
    MulAdd.calls.clear()
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3  # not a leaf, but on the tape
    MulAdd.apply(h, torch.ones(2), tg.tensor([0.0, 0.0]), 1.0).sum().backward()
    assert MulAdd.calls == [(True, False, False, False)]
    assert x.grad.tolist() == [3.0, 3.0]


def test_a_none_gradient_leaves_the_input_untouched():
    class FirstOnly(tg.Function):
        """y = a + b, but only a's gradient is returned (b's is None on purpose)."""

        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, grad):
            return grad, None

    a, b = tg.tensor([1.0], requires_grad=True), tg.tensor([2.0], requires_grad=True)
    FirstOnly.apply(a, b).sum().backward()
    assert a.grad.tolist() == [1.0] and b.grad is None


def test_user_op_records_and_sweeps_like_a_built_in():
    x = tg.tensor([1.0, -2.0], requires_grad=True)
    with tg.Tape() as tape:
        y = Square.apply(x)
        loss = (y * 3).sum()
    assert [node.name for node in tape] == ["Square", "Mul", "Sum"]
    node = tape[0]
    assert y.node is node and y.tape is tape and node.op is Square
    assert node.inputs == (x,) and node.needs_input_grad == (True,) and node.index == 0
    assert tuple(node.shape) == (2,) and node.dtype == torch.float32
    assert "Square" in str(tape)
    loss.backward()
    assert x.grad.tolist() == [6.0, -12.0]
    assert node.released  # its saved tensors went with the sweep
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        _ = node.saved_tensors


def test_user_op_in_a_larger_expression_matches_torch():
    def fn(x, w):
        if isinstance(x, tg.Tensor):
            h = Square.apply(x @ w)
        else:
            h = (x @ w) ** 2
        return (h.tanh() * x.sum()).mean()

    check_against_torch(fn, randn((4, 3), 0), randn((3, 2), 1))


def test_user_op_records_nothing_when_no_input_needs_a_gradient():
    with tg.Tape() as tape:
        y = Square.apply(tg.tensor([3.0]))
    assert len(tape) == 0 and not y.requires_grad and y.tolist() == [9.0]


def test_user_op_under_no_grad_records_nothing():
    x = tg.tensor([3.0], requires_grad=True)
    with tg.no_grad():
        y = Square.apply(x)
    assert not y.requires_grad and y.tape is None


def test_gradcheck_passes_on_a_correct_op():
    x = tg.tensor(randn((3, 2), 0), requires_grad=True)
    assert tg.gradcheck(Square.apply, x) is True
    a, b, c = (tg.tensor(randn((2, 2), i), requires_grad=True) for i in range(3))
    assert tg.gradcheck(lambda a, b, c: MulAdd.apply(a, b, c, -1.5), a, b, c) is True


def test_gradcheck_fails_on_a_wrong_derivative_and_says_where():
    x = tg.tensor([[1.5, -2.0], [0.5, 3.0]], requires_grad=True)
    with pytest.raises(tg.GradcheckError) as failure:
        tg.gradcheck(WrongSquare.apply, x)
    message = str(failure.value)
    assert "input 0" in message and "index (0, 0)" in message
    # WrongSquare's derivative is x where the true one is 2x: analytic = numerical / 2
    analytic, numerical = (
        float(v)
        for v in re.search(r"gradient is (\S+), finite differences give (\S+?) ", message).groups()
    )
    assert analytic == pytest.approx(numerical / 2, rel=1e-6)
    assert isinstance(failure.value, RuntimeError)  # GradcheckError is a RuntimeError


def test_gradcheck_names_the_input_that_is_wrong():
    class WrongSecond(tg.Function):
        """y = a * b, with b's derivative wrong (a + 1 instead of a)."""

        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, grad):
            a, b = ctx.saved_tensors
            return grad * b, grad * (a + 1)

    a, b = tg.tensor([1.0, 2.0], requires_grad=True), tg.tensor([3.0, 4.0], requires_grad=True)
    with pytest.raises(tg.GradcheckError, match=r"input 1 at index \(0,\)"):
        tg.gradcheck(WrongSecond.apply, a, b)


def test_gradcheck_leaves_the_callers_inputs_alone():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    tg.gradcheck(Square.apply, x)
    assert x.grad is None and x.dtype == torch.float32 and x.tolist() == [1.0, 2.0]


@pytest.mark.parametrize("name", ["inputs", "index", "seq", "shape", "dtype", "module", "value"])
def test_reserved_ctx_names_are_refused(name):
    class Clobber(tg.Function):
        @staticmethod
        def forward(ctx, x):
            setattr(ctx, name, "mine")
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad * 2

    x = tg.tensor([1.0], requires_grad=True)
    with tg.Tape() as tape:
        with pytest.raises((AttributeError, RuntimeError), match=rf"ctx\.{name}\b.*ctx\.my_{name}"):
            Clobber.apply(x)
    assert len(tape) == 0  # refused before anything was recorded


def test_function_is_applied_not_instantiated():
    with pytest.raises(TypeError, match=r"Square\.apply"):
        Square()
