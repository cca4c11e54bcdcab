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


def test_every_op_in_the_readme_table_exists():
    import re

    import tapegrad as tg

    text = README.read_text()
    table = text.split("## The torch surface", 1)[1].split("`tapegrad.nn` has", 1)[0]
    names = set()
    for row in table.splitlines():
        if not row.startswith("| ") or row.startswith("| kind"):
            continue
        for code in re.findall(r"`([^`]*)`", row.split("|")[2]):
            for token in re.split(r"[\s/,()]+", code):
                token = token.strip(".")
                if re.fullmatch(r"[a-z_][a-z_0-9]*", token) and token not in {"x", "v", "i"}:
                    names.add(token)
    assert len(names) > 80, sorted(names)  # (the table was read)
    arguments = {"keepdim", "correction", "unbiased", "values", "indices", "tensors"}
    arguments |= {"grad_tensors", "len"}  # (keywords, fields, and len() of __len__)
    ctx = {"mark_non_differentiable", "set_materialize_grads"}  # a Function's ctx methods
    assert all(hasattr(tg.Function, "apply") and hasattr(tg.tape.Node, n) for n in ctx)
    missing = [
        n for n in sorted(names - arguments - ctx) if not (hasattr(tg.Tensor, n) or hasattr(tg, n))
    ]
    assert not missing, missing
