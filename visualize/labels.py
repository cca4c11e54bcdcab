"""The text inside the boxes of a tape picture: op, tape index, shape, value and gradient summaries.

Labels are plain Graphviz labels (HTML-like labels need an XML parser that the
WebAssembly Graphviz is built without). Ops and parameters are record boxes:
the title in one field, the summaries in the next. Everything that comes from
the tape is escaped here, in one place.
"""

from __future__ import annotations

import inspect

import torch

from tapegrad.printing import summarize

NO_GRADIENT_YET = "no gradient yet"
NOT_KEPT = "grad not kept: backward(keep_grads=True)"
VALUE_NOT_KEPT = "value not kept: record in `with tg.Tape()`"
_MAX_CONSTANT = 24      # longer constants are cut: the box shows the op, not a dump of its arguments


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


_signatures: dict = {}


def _argument_names(op) -> list | None:
    """The names of `op.forward`'s arguments after ctx, and their defaults (cached per op)."""
    if op not in _signatures:
        try:
            params = list(inspect.signature(op.forward).parameters.values())[1:]
            _signatures[op] = [(p.name, p.default) for p in params]
        except (TypeError, ValueError):
            _signatures[op] = None
    return _signatures[op]


def constants_text(node) -> str:
    """The op's non-tensor arguments, by name, leaving out those at their default: 'dim=1'."""
    names = _argument_names(node.op)
    parts = []
    for position, item in enumerate(node.inputs):
        if item is None or hasattr(item, "data") or isinstance(item, torch.Tensor) \
                or item.__class__.__name__ == "Node":
            continue
        name, default = (names[position] if names and position < len(names)
                         else (f"arg{position}", inspect.Parameter.empty))
        if default is not inspect.Parameter.empty and _same(item, default):
            continue
        text = repr(item)
        if len(text) > _MAX_CONSTANT:
            text = text[:_MAX_CONSTANT - 1] + "…"
        parts.append(f"{name}={text}")
    return ", ".join(parts)


def _same(a, b) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:       # an argument whose == is not a plain bool: show it
        return False


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
