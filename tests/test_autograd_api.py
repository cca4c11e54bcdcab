"""torch.autograd's surface: backward() from several roots, tensor hooks, Functions with several
outputs, mark_non_differentiable and set_materialize_grads, each against torch."""

import pytest
import torch

import tapegrad as tg

from helpers import randn


def pair(values):
    data = torch.as_tensor(values, dtype=torch.float64)
    return tg.Tensor(data.clone(), requires_grad=True), data.clone().requires_grad_()


# --- tapegrad.backward(tensors, grad_tensors) ------------------------------------------------


def test_one_sweep_from_several_roots_equals_torch():
    x, rx = pair([0.5, -1.0, 2.0])
    w, rw = pair([1.5, 0.5, -0.5])
    a, b = (x * w).tanh(), (x.exp() * 2).sum()
    ra, rb = (rx * rw).tanh(), (rx.exp() * 2).sum()
    g = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    tg.backward([a, b], [g, None])
    torch.autograd.backward([ra, rb], [g, None])
    torch.testing.assert_close(x.grad, rx.grad)
    torch.testing.assert_close(w.grad, rw.grad)


def test_roots_on_separate_tapes_and_a_leaf_root():
    x, rx = pair([0.5, 2.0])
    y, ry = pair([3.0, -1.0])
    tg.backward(
        [(x * x).sum(), (y.exp()).sum(), x], [None, None, torch.ones(2, dtype=torch.float64)]
    )
    torch.autograd.backward(
        [(rx * rx).sum(), ry.exp().sum(), rx], [None, None, torch.ones(2, dtype=torch.float64)]
    )
    torch.testing.assert_close(x.grad, rx.grad)
    torch.testing.assert_close(y.grad, ry.grad)


def test_backward_inputs_accumulates_only_into_the_chosen_tensors():
    x, rx = pair([0.5, 2.0])
    w, rw = pair([1.0, -1.0])
    for a, b in ((x, w), (rx, rw)):
        h = a * b
        h.retain_grad()
        (h * h).sum().backward(inputs=[a, h])
    torch.testing.assert_close(x.grad, rx.grad)
    assert w.grad is None and rw.grad is None


def test_several_roots_need_one_gradient_each():
    x = tg.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="2 tensors but 1 gradients"):
        tg.backward([x * 2, x * 3], [None])


# --- hooks ----------------------------------------------------------------------------


def test_a_hook_on_an_op_output_sees_and_replaces_its_gradient_like_torch():
    x, rx = pair([0.5, -1.0])
    seen = {}
    for name, t in (("ours", x), ("torch", rx)):
        h = t * 3
        h.register_hook(lambda g, name=name: seen.__setitem__(name, g.clone()))
        h.register_hook(lambda g: g * 10)  # a replacement, used downstream
        (h * h).sum().backward()
    torch.testing.assert_close(seen["ours"], seen["torch"])
    torch.testing.assert_close(x.grad, rx.grad)


def test_a_hook_on_a_leaf_runs_before_the_gradient_is_added():
    x, rx = pair([0.5, -1.0])
    for t in (x, rx):
        t.register_hook(lambda g: g.clamp(-1, 1))
        (t * 5).sum().backward()
        (t * 5).sum().backward()  # the hook sees each sweep's own gradient
    torch.testing.assert_close(x.grad, rx.grad)
    assert x.grad.tolist() == [2.0, 2.0]


def test_a_removed_hook_is_not_called_and_removing_twice_is_fine():
    x = tg.tensor([1.0], requires_grad=True)
    calls = []
    handle = x.register_hook(lambda g: calls.append(1))
    (x * 2).sum().backward()
    handle.remove()
    handle.remove()
    (x * 2).sum().backward()
    assert calls == [1]


def test_hooks_in_a_create_graph_sweep_are_recorded():
    x, rx = pair([0.5, -1.0])
    for t, grad in ((x, tg.grad), (rx, torch.autograd.grad)):
        h = t * t
        h.register_hook(lambda g: g * t)  # a replacement that depends on t
        (first,) = grad((h * 2).sum(), t, create_graph=True)
        (second,) = grad(first.sum(), t)
        if t is x:
            ours = (first.data, second.data)
        else:
            theirs = (first.detach(), second)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b)


def test_a_hook_that_changes_the_shape_is_refused_and_nothing_changes():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    h.register_hook(lambda g: g.sum())
    with pytest.raises(RuntimeError, match="changed the gradient's shape"):
        h.sum().backward()
    assert x.grad is None


def test_hooks_show_in_print_and_backward_steps():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with tg.Tape() as tape:
        h = x.exp()

        def double(g):
            return g * 2

        h.register_hook(double)
        loss = h.sum()
    assert "[hooks: double]" in str(tape)
    steps = [step for step in tg.backward_steps(loss)]
    exp_step = [s for s in steps if s.node.name == "Exp"][0]
    assert exp_step.hooks == (("double", True),)
    assert "hook      double(dL/dy) replaced it" in exp_step.format()
    torch.testing.assert_close(x.grad, 2 * x.data.exp())


# --- Functions with several outputs ------------------------------------------------------------


class SinCos(tg.Function):
    """y1 = sin(x), y2 = cos(x)

    dL/dx = dL/dy1 cos(x) - dL/dy2 sin(x)
    """

    @staticmethod
    def forward(ctx, x):
        s, c = torch.sin(x), torch.cos(x)
        ctx.save_for_backward(s, c)
        return s, c

    @staticmethod
    def backward(ctx, grad_s, grad_c):
        s, c = ctx.saved_tensors
        return grad_s * c - grad_c * s


@pytest.mark.parametrize("use", ["both", "first", "second"])
def test_a_function_with_two_outputs_matches_torch(use):
    values = randn((3,), 0)
    x, rx = tg.Tensor(values.clone(), requires_grad=True), values.clone().requires_grad_()
    s, c = SinCos.apply(x)
    rs, rc = rx.sin(), rx.cos()
    loss = {
        "both": lambda a, b: (a * 2 + b * b).sum(),
        "first": lambda a, b: a.sum(),
        "second": lambda a, b: (b * b).sum(),
    }[use]
    loss(s, c).backward()
    loss(rs, rc).backward()
    torch.testing.assert_close(x.grad, rx.grad)


def test_a_function_with_two_outputs_differentiates_twice():
    values = randn((3,), 1)
    x, rx = tg.Tensor(values.clone(), requires_grad=True), values.clone().requires_grad_()
    s, c = SinCos.apply(x)
    (first,) = tg.grad((s * c).sum(), x, create_graph=True)
    (second,) = tg.grad(first.sum(), x)
    (rfirst,) = torch.autograd.grad((rx.sin() * rx.cos()).sum(), rx, create_graph=True)
    (rsecond,) = torch.autograd.grad(rfirst.sum(), rx)
    torch.testing.assert_close(first.data, rfirst.detach())
    torch.testing.assert_close(second.data, rsecond)


def test_non_differentiable_outputs_and_materialize_grads():
    calls = []

    class SortValues(tg.Function):
        @staticmethod
        def forward(ctx, x):
            values, order = torch.sort(x)
            ctx.mark_non_differentiable(order)
            ctx.save_for_backward(order)
            ctx.set_materialize_grads(False)
            return values, order

        @staticmethod
        def backward(ctx, grad_values, grad_order):
            calls.append(grad_order)
            (order,) = ctx.saved_tensors
            out = torch.zeros_like(grad_values)
            out[order] = grad_values
            return out

    x = tg.tensor([3.0, 1.0, 2.0], requires_grad=True)
    values, order = SortValues.apply(x)
    assert values.requires_grad and not order.requires_grad and order.dtype == torch.int64
    (values * tg.tensor([1.0, 10.0, 100.0])).sum().backward()
    assert x.grad.tolist() == [100.0, 1.0, 10.0] and calls == [None]


def test_unused_outputs_get_zeros_by_default():
    seen = []

    class Pair(tg.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, g2, g3):
            seen.append((g2.tolist(), g3.tolist()))
            return g2 * 2 + g3 * 3

    x = tg.tensor([1.0, 1.0], requires_grad=True)
    a, b = Pair.apply(x)
    a.sum().backward()
    assert seen == [([1.0, 1.0], [0.0, 0.0])] and x.grad.tolist() == [2.0, 2.0]


def test_trailing_none_gradients_and_defaulted_arguments_are_accepted_like_torch():
    class Scale(tg.Function):
        @staticmethod
        def forward(ctx, x, scale=2.0):
            ctx.scale = scale
            return x * scale

        @staticmethod
        def backward(ctx, grad):
            return grad * ctx.scale, None, None  # one more None than inputs

    x = tg.tensor([1.0, 2.0], requires_grad=True)
    Scale.apply(x).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_mark_dirty_and_tensors_inside_lists_get_clear_errors():
    class Dirty(tg.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, grad):
            return grad

    class Listed(tg.Function):
        @staticmethod
        def forward(ctx, pair_of_tensors):
            return pair_of_tensors[0] * 2

        @staticmethod
        def backward(ctx, grad):
            return None

    x = tg.tensor([1.0], requires_grad=True)
    with pytest.raises(NotImplementedError, match="mark_dirty"):
        Dirty.apply(x)
    with pytest.raises(TypeError, match="inside a list or tuple argument"):
        Listed.apply([x, x])


def test_backward_inputs_leaves_a_root_leaf_that_is_not_an_input_alone_like_torch():
    """A leaf passed as a root but not among inputs= takes no gradient; the chosen ones do."""
    results = []
    for lib in (torch, tg):
        a = lib.tensor([1.0, 2.0], requires_grad=True)
        w = lib.tensor(3.0, requires_grad=True)
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        b = lib.tensor([1.0, 1.0], requires_grad=True)
        m = x * 2
        if lib is torch:
            m.retain_grad()
            backward = torch.autograd.backward
        else:
            backward = tg.backward
        backward([a, w * w], [torch.ones(2), None], inputs=[w])
        backward([m * b, b], [torch.ones(2), torch.ones(2)], inputs=[m, x])
        results.append([None if t.grad is None else t.grad.clone() for t in (a, w, x, b, m)])
    for theirs, ours in zip(*results):
        assert (theirs is None) == (ours is None)
        if theirs is not None:
            assert torch.equal(theirs, ours)


@pytest.mark.parametrize("on", ["leaf", "intermediate"])
def test_a_hook_that_changes_the_gradients_dtype_is_refused_like_torch(on):
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    (x if on == "leaf" else y).register_hook(lambda g: g.double())
    with pytest.raises(RuntimeError, match="changed the gradient's type from torch.float32"):
        y.sum().backward()
    assert x.grad is None
