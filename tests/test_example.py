"""The disk example, end to end: a short run from the command line, its printed lines and its
files."""

from __future__ import annotations

import importlib.util
import re
import statistics
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "disk_circle.py"
EPOCH_LINE = re.compile(r"^epoch +(\d+)/(\d+) +loss (\d+\.\d{4}) +train error +(\d+\.\d\d)%$")
RESULT_LINE = re.compile(r"^train error (\d+\.\d\d)% +test error (\d+\.\d\d)% +\(\d+\.\d s\)$")


@pytest.fixture(scope="module")
def disk_circle():
    spec = importlib.util.spec_from_file_location("disk_circle", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def keep_threads():
    """One thread, as main() sets for its tiny tensors; then the test process gets its own back."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_short_run_from_the_command_line_prints_progress_and_writes_the_figures(tmp_path):
    out = tmp_path / "figures"
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--epochs",
            "3",
            "--train-size",
            "300",
            "--test-size",
            "200",
            "--seed",
            "1",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    epochs = [EPOCH_LINE.match(line) for line in lines if line.startswith("epoch")]
    assert len(epochs) == 3 and all(epochs), lines
    assert [int(m.group(1)) for m in epochs] == [1, 2, 3]
    results = [RESULT_LINE.match(line) for line in lines if line.startswith("train error")]
    assert len(results) == 1 and results[0], lines

    png, svg = out / "disk_circle.png", out / "disk_circle.svg"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    text = svg.read_text()
    for label in ("true classes", "model's predictions", "learned boundary"):
        assert label in text, label
    written = {line.split(" ", 1)[1] for line in lines if line.startswith("wrote ")}
    assert {str(png), str(svg)} <= written

    # The tape picture and the backprop page come from the visualize package, when it has them.
    import visualize

    if hasattr(visualize, "render"):
        tape_svg = out / "disk_circle_tape.svg"
        assert ET.parse(tape_svg).getroot().tag.endswith("svg")
        assert "LinearFunction" in tape_svg.read_text() or "Linear" in tape_svg.read_text()
        assert str(tape_svg) in written
    if hasattr(visualize, "write_backprop_html"):
        page = out / "disk_circle_backprop.html"
        assert "<html" in page.read_text().lower()
        assert str(page) in written


def test_runs_report_mean_and_std_of_the_test_error(disk_circle, keep_threads, capsys):
    report = disk_circle.main(
        [
            "--runs",
            "3",
            "--epochs",
            "2",
            "--train-size",
            "200",
            "--test-size",
            "100",
            "--quiet",
            "--seed",
            "4",
        ]
    )
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if line.startswith("---")] == [
        "--- run 1/3 (seed 4)",
        "--- run 2/3 (seed 5)",
        "--- run 3/3 (seed 6)",
    ]
    assert not any(line.startswith("epoch") for line in lines)  # --quiet
    errors = report["test_errors"]
    printed = [
        float(RESULT_LINE.match(line).group(2)) for line in lines if line.startswith("train error")
    ]
    assert printed == [round(100 * e, 2) for e in errors]
    assert lines[-1] == (
        f"test error over 3 runs: mean {100 * statistics.mean(errors):.2f}%  "
        f"std {100 * statistics.stdev(errors):.2f}%"
    )


def test_runs_are_reproducible_from_the_seed(disk_circle, keep_threads):
    args = disk_circle.parse_args(["--epochs", "2", "--train-size", "200", "--test-size", "100"])
    a, b = (disk_circle.run(3, args, log=None) for _ in range(2))
    assert (a.train_error, a.test_error) == (b.train_error, b.test_error)
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(p.data, q.data)


def test_the_network_learns_the_disk(disk_circle, keep_threads):
    """15 epochs of the real set-up already get well below chance (50%): measured 3-5.5%."""
    args = disk_circle.parse_args(["--epochs", "15"])
    trained = disk_circle.run(0, args, log=None)
    assert trained.train_error < 0.10 and trained.test_error < 0.10


def test_the_network_is_the_courses(disk_circle):
    from tapegrad import nn

    model = disk_circle.build_model()
    assert [type(m).__name__ for m in model] == [
        "Linear",
        "ReLU",
        "Linear",
        "ReLU",
        "Linear",
        "Tanh",
        "Linear",
        "Tanh",
    ]
    assert [(m.in_features, m.out_features) for m in model if isinstance(m, nn.Linear)] == [
        (2, 25),
        (25, 25),
        (25, 25),
        (25, 1),
    ]


@pytest.mark.parametrize(
    "argv", [["--epochs", "0"], ["--lr", "-1"], ["--batch-size", "0"], ["--runs", "0"]]
)
def test_bad_flags_are_refused(disk_circle, argv, capsys):
    with pytest.raises(SystemExit):
        disk_circle.parse_args(argv)
    assert re.search(r"--[a-z-]+ must be (a )?positive", capsys.readouterr().err)


def test_device_cuda_without_a_gpu_says_so(disk_circle, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SystemExit):
        disk_circle.parse_args(["--device", "cuda"])
    assert "no CUDA device" in capsys.readouterr().err


@pytest.mark.cuda
def test_short_run_on_cuda(disk_circle, tmp_path, capsys):
    report = disk_circle.main(
        [
            "--device",
            "cuda",
            "--epochs",
            "2",
            "--train-size",
            "200",
            "--test-size",
            "100",
            "--out",
            str(tmp_path),
        ]
    )
    assert len(report["test_errors"]) == 1
    assert (tmp_path / "disk_circle.png").exists()
    assert "train error" in capsys.readouterr().out
