"""Anomaly mode: stop at the first NaN or infinity, naming the node and the line that recorded it.

    with tapegrad.detect_anomaly():
        loss = model(x)        # every op's output is checked as it is recorded
        loss.backward()        # every gradient is checked as the sweep makes it

Off by default: the checks read every value back, which costs time.
"""

from __future__ import annotations

import os
import traceback

import torch

from .tape import ThreadSwitch

_PACKAGE = os.path.dirname(os.path.abspath(__file__))


class detect_anomaly(ThreadSwitch):
    """Context manager (and decorator) turning anomaly checks on for this thread."""

    attribute, value = "anomaly", True


def user_frame() -> str:
    """'file.py:12 in f: <source line>' for the innermost frame outside tapegrad."""
    for frame in reversed(traceback.extract_stack()):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE):
            return f"{frame.filename}:{frame.lineno} in {frame.name}: {frame.line}"
    return "<unknown>"


def _bad(values: torch.Tensor) -> bool:
    return (values.is_floating_point() or values.is_complex()) and not bool(
        torch.isfinite(values).all()
    )


def check_forward(node, out, recorded: bool) -> None:
    where = user_frame()
    if recorded:
        node.where = where
    if _bad(out):
        what = node.describe() if recorded else f"{node.op.__name__} (not recorded)"
        raise RuntimeError(
            f"anomaly: {what} produced a NaN or infinity in its output of shape "
            f"{tuple(out.shape)}\n  recorded at {where}"
        )


def check_backward(node, position, grad) -> None:
    if _bad(grad):
        raise RuntimeError(
            f"anomaly: the derivative of {node.describe()} produced a NaN or "
            f"infinity in the gradient of input {position}\n  recorded at "
            f"{getattr(node, 'where', '<recorded outside detect_anomaly>')}"
        )
