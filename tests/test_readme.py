"""The README's python blocks run, in order, in one namespace (its front door stays true).

The data-parallel block needs a process group started by torchrun; it is
covered by tests/test_distributed.py instead.
"""

from pathlib import Path

import pytest
from test_docs import blocks

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_python_block_of_the_readme_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the pictures and pages the blocks write land here
    namespace = {"__name__": "readme"}
    ran = 0
    for number, (language, code, _, _) in enumerate(blocks(README.read_text(encoding="utf-8"))):
        if language != "python" or "init_process_group" in code:
            continue
        try:
            exec(compile(code, f"README.md block {number}", "exec"), namespace)
        except Exception as error:
            pytest.fail(f"README.md python block {number} failed: {error!r}\n{code}")
        ran += 1
    assert ran >= 5
    assert (tmp_path / "tape.svg").exists() and (tmp_path / "backprop.html").exists()
    printed = capsys.readouterr().out
    assert "Tape of 3 nodes" in printed  # the first example's print(tape)
