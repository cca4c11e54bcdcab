"""visualize: draw a tapegrad tape as a graph (SVG), the picture of what backprop walks.

    import visualize
    with tg.Tape() as tape:
        loss = loss_fn(model(x), t)
    loss.backward(keep_grads=True)
    visualize.render(tape, "tape.svg", model=model, values=True, grads=True, group="cluster")
    visualize.to_dot(loss, model=model)      # an unrendered graphviz.Digraph: inline in Jupyter
    visualize.render_classes("classes.svg")  # the UML class diagram of tapegrad.nn and .optim

The colours are explained in `visualize.graph`. Rendering uses the system
Graphviz `dot` when there is one and otherwise Graphviz in WebAssembly
(``pip install 'tapegrad[viz]'``). Only this package imports graphviz.
"""

from __future__ import annotations

from pathlib import Path

from . import engine
from .classes import class_diagram, render_classes  # the UML class diagram, from the code
from .engine import TapeGraph, pipe
from .graph import COLOURS, GROUPS, to_dot
from .html import write_backprop_html  # the interactive page that steps through backprop


def render(
    target, path, format: str | None = None, renderer: str = "auto", **to_dot_options
) -> Path:
    """Draw `target` (a Tape or a Tensor) with `to_dot(target, **to_dot_options)` and write it to
    `path`.

    Returns the path written. format: the path's suffix by default ('.svg', '.png': PNG
    needs the system `dot`). renderer: "auto" (system `dot` if on PATH, else
    WebAssembly), "dot" or "wasm".
    """
    return engine.render(to_dot(target, **to_dot_options), path, format=format, renderer=renderer)


__all__ = [
    "to_dot",
    "render",
    "write_backprop_html",
    "class_diagram",
    "render_classes",
    "pipe",
    "TapeGraph",
    "COLOURS",
    "GROUPS",
]
