"""Every ```python block of docs/backprop.md runs, in order, in one namespace.

A ```text block right after a python block is that block's printed output,
and must match it exactly. After a deliberate change to what the code
prints, regenerate the outputs with

    python tests/test_docs.py --update
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tempfile
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "backprop.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)


def blocks(text: str) -> list:
    """[(language, code, start, end)] of the fenced blocks, in order."""
    return [(m.group(1), m.group(2), m.start(), m.end()) for m in FENCE.finditer(text)]


def run_blocks(text: str, workdir) -> list:
    """Run the python blocks in order; [(block number, its output, expected output or None)]."""
    found = blocks(text)
    namespace = {"__name__": "backprop_doc"}
    results = []
    old = os.getcwd()
    os.chdir(workdir)  # files the walk-through writes land here
    try:
        for number, (language, code, _, end) in enumerate(found):
            if language != "python":
                continue
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                try:
                    exec(compile(code, f"{DOC.name} block {number}", "exec"), namespace)
                except Exception as error:
                    raise AssertionError(
                        f"{DOC.name}: python block {number} failed:\n{code}"
                    ) from error
            following = found[number + 1] if number + 1 < len(found) else None
            expected = None
            if following and following[0] == "text" and not text[end : following[2]].strip():
                expected = following[1]
            results.append((number, out.getvalue(), expected))
    finally:
        os.chdir(old)
    return results


def test_every_python_block_runs_and_prints_what_the_doc_shows(tmp_path):
    text = DOC.read_text(encoding="utf-8")
    results = run_blocks(text, tmp_path)
    assert len(results) >= 8
    for number, output, expected in results:
        if expected is not None:
            assert output.rstrip() == expected.rstrip(), (
                f"{DOC.name}: the output shown after python block {number} is not what it prints "
                "now; if the change is intended, run  python tests/test_docs.py --update"
            )


def test_the_doc_walks_through_the_tape_the_sweep_the_check_and_the_pictures():
    text = DOC.read_text(encoding="utf-8")
    for needed in (
        "print(tape",
        "backward_steps",
        "explain",
        "check_tape",
        "tg.Function",
        "disk_circle_tape.svg",
        "write_backprop_html",
        "dL/dx = dL/dy * (1 - y^2)",
    ):
        assert needed in text, needed
    # issue 12's section: the derivative's own tape, printed and swept again
    section = text.split("## The derivative of the derivative", 1)[1].split("\n## ", 1)[0]
    code = "".join(code for language, code, *_ in blocks(section) if language == "python")
    for needed in ("create_graph=True", "print(tape)", "tg.grad(g.sum()"):  # swept again
        assert needed in code, needed


def update() -> None:
    """Rewrite the ```text block after each python block with what it prints now."""
    text = DOC.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as workdir:
        results = run_blocks(text, workdir)
    found = blocks(text)
    pieces, position = [], 0
    for number, output, expected in results:
        if expected is None:
            continue
        _, _, start, end = found[number + 1]
        pieces += [text[position:start], f"```text\n{output.rstrip()}\n```\n"]
        position = end
    DOC.write_text("".join(pieces) + text[position:], encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit("usage: python tests/test_docs.py --update")
    update()
