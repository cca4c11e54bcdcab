"""The text inside the boxes of a tape picture: op, tape index, shape, value and gradient summaries.

Labels are plain Graphviz labels, one fact a line. Not HTML-like labels: the
WebAssembly Graphviz is built without the XML parser they need. Not record
shapes either: Graphviz drops a flat edge between a record and its neighbour,
and a parameter drawn level with its op is exactly that. Everything that comes
from the tape is escaped here, in one place.
"""

from __future__ import annotations

import torch

from tapegrad.printing import summarize

NO_GRADIENT_YET = "no gradient yet"
NOT_KEPT = "grad not kept: backward(keep_grads=True)"
VALUE_NOT_KEPT = "value not kept: record in `with tg.Tape()`"


def shape_text(shape, dtype) -> str:
    """'(100, 25)' ('scalar' for shape ()), plus the dtype when not torch's default:
    '(3,) float64'."""
    text = str(tuple(shape)) if len(shape) else "scalar"
    if dtype is not None and dtype != torch.get_default_dtype():
        text += " " + str(dtype).removeprefix("torch.")
    return text


def stats(value) -> str:
    """The value for one element, else mean and [min, max] (tapegrad.printing's summary)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return "= " + summarize(value)
    return summarize(value)


def is_finite(value) -> bool:
    return (
        not isinstance(value, torch.Tensor)
        or not value.is_floating_point()
        or bool(torch.isfinite(value).all())
    )


def label(title: str, lines) -> str:
    """A Graphviz label: `title`, then `lines` (plain text; empty ones are skipped), one a line."""
    return "\\n".join(_escape(text) for text in [title, *lines] if text)


def _escape(text: str) -> str:
    """Make `text` literal inside a DOT label (a backslash would start an escape like \\n)."""
    return text.replace("\\", "\\\\")


def grad_line(grad, released: bool, leaf: bool = False) -> str:
    """'grad mean … [min, max]', or say plainly why there is none."""
    if grad is not None:
        return "grad " + stats(grad)
    if released and not leaf:
        return NOT_KEPT
    return NO_GRADIENT_YET
