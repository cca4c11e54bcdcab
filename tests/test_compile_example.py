"""The disk example with --compile: the same printed results as eager, and the generated step."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "disk_circle.py"


def run(*flags):
    env = dict(os.environ, PYTHONPATH=str(ROOT))  # this tree's tapegrad
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--epochs",
            "4",
            "--train-size",
            "250",
            "--test-size",
            "100",
            "--seed",
            "2",
            *flags,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_compile_flag_prints_the_same_losses_and_errors_as_eager(tmp_path):
    eager = run()
    compiled = run("--compile", "--out", str(tmp_path))
    same = [line for line in compiled if not line.startswith("wrote ")]

    def strip(lines):  # drop the seconds
        return [line.split("  (")[0] for line in lines]

    assert strip(same) == strip(eager) and len(eager) == 5
    step = tmp_path / "disk_circle_step.py"
    assert f"wrote {step}" in compiled
    code = step.read_text()
    ast.parse(code)
    assert "def train_step(x, t):" in code and "# [0] LinearFunction  model.0" in code
    assert "torch._fused_sgd_(" in code
