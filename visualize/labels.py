"""The text inside the boxes of a tape picture: op, tape index, shape, value and gradient summaries.

Labels are plain Graphviz labels (HTML-like labels need an XML parser that the
WebAssembly Graphviz is built without). Ops and parameters are record boxes:
the title in one field, the summaries in the next. Everything that comes from
the tape is escaped here, in one place.
"""

from __future__ import annotations

import torch

from tapegrad.printing import summarize

NO_GRADIENT_YET = "no gradient yet"
NOT_KEPT = "grad not kept: backward(keep_grads=True)"
VALUE_NOT_KEPT = "value not kept: record in `with tg.Tape()`"


def shape_text(shape, dtype) -> str:
    """'(100, 25)', plus the dtype when it is not torch's default ('(3,) float64')."""
    text = str(tuple(shape))
    if dtype is not None and dtype != torch.get_default_dtype():
        text += " " + str(dtype).removeprefix("torch.")
    return text


def stats(value) -> str:
    """The value for one element, else mean and [min, max] (tapegrad.printing's summary)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return "= " + summarize(value)
    return summarize(value)


def is_finite(value) -> bool:
    return not isinstance(value, torch.Tensor) or not value.is_floating_point() \
        or bool(torch.isfinite(value).all())


def label(title: str, lines, record: bool = False, across: bool = False) -> str:
    """A Graphviz label: `title`, then `lines` (plain text; empty ones are skipped).

    record=True: for shape=record/Mrecord boxes, the title in its own field above the
    lines (beside them when `across`, since records turn with rankdir=TB/LR).
    """
    lines = [line for line in lines if line]
    if not record:
        return "\\n".join(_escape(text) for text in [title, *lines])
    fields = [_escape(title, record=True)]
    if lines:
        fields.append("\\n".join(_escape(line, record=True) for line in lines))
    body = "|".join(fields)
    return body if across else "{" + body + "}"


def _escape(text: str, record: bool = False) -> str:
    """Make `text` literal inside a DOT label (backslashes start escapes like \\n)."""
    text = text.replace("\\", "\\\\")
    if record:
        for char in "{}|<>":
            text = text.replace(char, "\\" + char)
    return text


def grad_line(grad, released: bool, leaf: bool = False) -> str:
    """'grad mean … [min, max]', or say plainly why there is none."""
    if grad is not None:
        return "grad " + stats(grad)
    if released and not leaf:
        return NOT_KEPT
    return NO_GRADIENT_YET
