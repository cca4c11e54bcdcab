"""Anomaly mode: the first NaN or infinity, in the forward or in the sweep, stops with its node.

``with tapegrad.detect_anomaly():`` checks each op's output as it is
recorded, and each gradient as the sweep makes it. The error names the
node (op and tape index) and the line of user code that recorded it.
"""

import inspect
import math
import threading

import pytest
import torch

import tapegrad as tg
from tapegrad.tape import _state


def here(offset: int = 0) -> str:
    """'this_file.py:<line>' of the caller's line (+ offset), as anomaly errors print it."""
    frame = inspect.currentframe().f_back
    return f"{frame.f_code.co_filename}:{frame.f_lineno + offset}"


class Sqrt(tg.Function):
    """y = sqrt(x)      dL/dx = dL/dy / (2 y)      (infinite at x = 0, though y is finite)"""

    @staticmethod
    def forward(ctx, x):
        y = torch.sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad / (2 * y)


# --- forward -------------------------------------------------------------------


@pytest.mark.parametrize("value", [0.0, -1.0])  # log gives -inf, then nan
def test_forward_nan_or_inf_names_node_op_and_user_line(value):
    x = tg.tensor([1.0, value], requires_grad=True)
    with tg.detect_anomaly(), tg.Tape() as tape:
        h = x * 2
        with pytest.raises(RuntimeError) as info:
            where = here(1)
            h.log()
    message = str(info.value)
    assert message.startswith("anomaly: Log (tape index 1) produced a NaN or infinity")
    assert "shape (2,)" in message
    assert (
        f"recorded at {where} in test_forward_nan_or_inf_names_node_op_and_user_line: h.log()"
    ) in message
    assert len(tape) == 1  # the refused node was not appended


def test_forward_overflow_to_inf():
    x = tg.tensor([100.0], requires_grad=True)
    with tg.detect_anomaly(), pytest.raises(RuntimeError, match=r"anomaly: Exp \(tape index 0\)"):
        x.exp()


def test_forward_anomaly_in_an_op_that_is_not_recorded():
    with tg.detect_anomaly(), pytest.raises(RuntimeError) as info:
        where = here(1)
        tg.tensor([0.0]).log()
    message = str(info.value)
    assert message.startswith("anomaly: Log (not recorded) produced a NaN or infinity")
    assert f"recorded at {where}" in message


def test_without_anomaly_mode_nan_passes_silently():
    # The control: this is what anomaly mode is for.
    y = tg.tensor([0.0], requires_grad=True).log()
    assert math.isinf(y.item())


# --- sweep -----------------------------------------------------------------------


def test_nan_appearing_only_in_the_sweep_names_the_node():
    x = tg.tensor([0.0, 4.0], requires_grad=True)
    x.grad = torch.tensor([1.0, 1.0])
    with tg.detect_anomaly():
        h = x * 1.0
        where = here(1)
        loss = (Sqrt.apply(h) * 3).sum()  # the forward is finite: sqrt(0) = 0
        with pytest.raises(RuntimeError) as info:
            loss.backward()
    message = str(info.value)
    assert message.startswith(
        "anomaly: the derivative of Sqrt (tape index 1) produced a NaN or "
        "infinity in the gradient of input 0"
    )
    assert f"recorded at {where} in test_nan_appearing_only_in_the_sweep_names_the_node" in message
    assert torch.equal(x.grad, torch.tensor([1.0, 1.0]))  # rolled back


def test_sweep_anomaly_undoes_gradients_accumulated_before_it():
    x = tg.tensor([0.0, 1.0], requires_grad=True)
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    w.grad = torch.full((2,), 10.0)
    with tg.detect_anomaly():
        y = (Sqrt.apply(x) + w).sum()  # the sweep reaches w (Add) before Sqrt
        with pytest.raises(RuntimeError, match=r"derivative of Sqrt \(tape index 0\)"):
            y.backward()
    assert torch.equal(w.grad, torch.full((2,), 10.0)) and x.grad is None


def test_without_anomaly_mode_the_sweep_returns_inf():
    # The control for the test above: the same graph gives an infinite gradient silently.
    x = tg.tensor([0.0, 4.0], requires_grad=True)
    (Sqrt.apply(x * 1.0) * 3).sum().backward()
    assert math.isinf(x.grad[0].item()) and x.grad[1].item() == pytest.approx(0.75)


def test_sweep_anomaly_in_a_built_in_op():
    # d(x^0.5)/dx = 0.5 x^-0.5 is infinite at 0, though x^0.5 is 0 there.
    x = tg.tensor([0.0, 1.0], requires_grad=True)
    with tg.detect_anomaly():
        loss = (x**0.5).sum()
        with pytest.raises(RuntimeError, match=r"derivative of Pow \(tape index 0\)"):
            loss.backward()
    assert x.grad is None


def test_sweep_anomaly_for_a_tape_recorded_outside_anomaly_mode():
    x = tg.tensor([0.0], requires_grad=True)
    loss = Sqrt.apply(x).sum()
    with tg.detect_anomaly(), pytest.raises(RuntimeError) as info:
        loss.backward()
    assert "derivative of Sqrt (tape index 0)" in str(info.value)
    assert "recorded at <recorded outside detect_anomaly>" in str(info.value)


def test_bad_seed_gradient_is_caught():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    with (
        tg.detect_anomaly(),
        pytest.raises(
            RuntimeError,
            match=r"anomaly: the gradient passed to "
            r"backward\(grad=\.\.\.\)",
        ),
    ):
        y.backward(torch.tensor([1.0, math.nan]))
    assert x.grad is None


def test_finite_run_is_unchanged_by_anomaly_mode():
    g = torch.Generator().manual_seed(0)
    model = tg.nn.Sequential(
        tg.nn.Linear(2, 5, generator=g), tg.nn.Tanh(), tg.nn.Linear(5, 1, generator=g)
    )
    x = tg.tensor(torch.randn(6, 2, generator=g))
    t = tg.tensor(torch.randn(6, 1, generator=g))
    tg.nn.MSELoss()(model(x), t).backward()
    plain = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    with tg.detect_anomaly():
        tg.nn.MSELoss()(model(x), t).backward()
    assert all(torch.equal(a, p.grad) for a, p in zip(plain, model.parameters()))


# --- the switch itself -------------------------------------------------------------


def test_anomaly_mode_is_restored_after_an_error_and_nests():
    assert _state.anomaly is False
    with pytest.raises(RuntimeError):
        with tg.detect_anomaly():
            tg.tensor([0.0], requires_grad=True).log()
    assert _state.anomaly is False
    with tg.detect_anomaly():
        with tg.detect_anomaly():
            pass
        assert _state.anomaly is True
    assert _state.anomaly is False


def test_decorator_form():
    @tg.detect_anomaly()
    def f(x):
        return x.log()

    with pytest.raises(RuntimeError, match=r"anomaly: Log"):
        f(tg.tensor([0.0], requires_grad=True))
    assert _state.anomaly is False


def test_anomaly_mode_is_per_thread():
    seen = {}

    def other():
        seen["anomaly"] = _state.anomaly
        seen["value"] = tg.tensor([0.0], requires_grad=True).log().item()  # no error here

    with tg.detect_anomaly():
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert seen == {"anomaly": False, "value": -math.inf}
