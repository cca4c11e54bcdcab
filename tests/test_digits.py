"""The digits example end to end: its printed lines, every file it writes, exact resume, --runs."""

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

import tapegrad as tg

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "digits.py"
EPOCH_LINE = re.compile(
    r"^epoch +(\d+)/(\d+) +loss (\d+\.\d{4}) +train accuracy +(\d+\.\d\d)% +lr (\d\.\d{6})$"
)
RESULT_LINE = re.compile(
    r"^train accuracy (\d+\.\d\d)% +test accuracy (\d+\.\d\d)% +after (\d+) "
    r"epochs \(\d+\.\d s\)$"
)
SVG = "{http://www.w3.org/2000/svg}"
PNG = b"\x89PNG\r\n\x1a\n"
# A small, short configuration: the same code paths as the real run, in a moment.
SMALL = ["--train-size", "200", "--batch-size", "32", "--lr", "0.01"]


@pytest.fixture(scope="module")
def digits():
    spec = importlib.util.spec_from_file_location("digits", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def keep_threads():
    """main() sets one thread for its tiny tensors; then the test process gets its own back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def command_line(*argv, expect_ok=True):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )
    if expect_ok:
        assert result.returncode == 0, result.stderr
    return result


def module_boxes(svg: Path) -> list:
    """The titles of the collapsed-module boxes in a tape picture written by `visualize`."""
    titles = []
    for g in ET.parse(svg).getroot().iter(SVG + "g"):
        classes = (g.get("class") or "").split()
        if "node" in classes and "module" in classes:
            titles.append(" ".join(next(g.iter(SVG + "text")).text.split()))
    return titles


def test_data_is_the_stratified_split_of_sklearns_digits(digits):
    train_x, train_t, test_x, test_t = digits.load_data(0)
    assert train_x.shape == (1347, 1, 8, 8) and test_x.shape == (450, 1, 8, 8)
    assert train_x.dtype == torch.float32 and train_t.dtype == torch.int64
    assert 0 <= train_x.min() and train_x.max() == 1.0
    # stratified: every digit's share of the test set is within one image of its share overall
    counts_train, counts_test = torch.bincount(train_t), torch.bincount(test_t)
    share = (counts_train + counts_test) * 450 / 1797
    assert (counts_test - share).abs().max() <= 1
    again = digits.load_data(0)
    assert torch.equal(again[0], train_x) and torch.equal(again[3], test_t)
    assert not torch.equal(digits.load_data(1)[3], test_t)  # the split follows the seed


def test_the_cnn_is_the_issues_and_the_benchmarks(digits):
    sys.path.insert(0, str(ROOT))
    from benchmarks import cnn

    model = digits.build_model("cnn")
    assert [type(m).__name__ for m in model] == [
        "Conv2d",
        "ReLU",
        "MaxPool2d",
        "Conv2d",
        "ReLU",
        "MaxPool2d",
        "Flatten",
        "Linear",
    ]
    assert repr(model) == repr(cnn.tapegrad_model())  # workload E times this very network
    mlp = digits.build_model("mlp")
    assert [type(m).__name__ for m in mlp] == ["Flatten", "Linear", "ReLU", "Linear"]


def test_short_run_from_the_command_line_prints_progress_and_writes_every_file(tmp_path):
    out = tmp_path / "figures"
    result = command_line("--epochs", "2", *SMALL, "--seed", "1", "--out", out)
    lines = result.stdout.splitlines()
    epochs = [EPOCH_LINE.match(line) for line in lines if line.startswith("epoch")]
    assert len(epochs) == 2 and all(epochs), lines
    assert [(int(m.group(1)), int(m.group(2))) for m in epochs] == [(1, 2), (2, 2)]
    assert float(epochs[0].group(5)) == 0.01 and float(epochs[1].group(5)) < 0.01  # annealed
    results = [RESULT_LINE.match(line) for line in lines if line.startswith("train accuracy")]
    assert len(results) == 1 and results[0], lines
    assert float(results[0].group(2)) > 25  # 2 epochs on 200 images: well above 10%

    written = {Path(line.split()[1]) for line in lines if line.startswith("wrote ")}
    names = {
        "digits_curves.png",
        "digits_confusion.png",
        "digits_misclassified.png",
        "digits_tape.svg",
        "digits_checkpoint.pt",
    }
    assert written == {out / name for name in names}
    assert {p.name for p in out.iterdir()} == names
    for name in names:
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:8] == PNG, name
    # The tape, collapsed by module: one box per layer of the Sequential and one for the loss.
    assert sorted(module_boxes(out / "digits_tape.svg")) == [
        "0: Conv2d",
        "1: ReLU",
        "2: MaxPool2d",
        "3: Conv2d",
        "4: ReLU",
        "5: MaxPool2d",
        "6: Flatten",
        "7: Linear",
        "CrossEntropyLoss",
    ]
    checkpoint = tg.load(out / "digits_checkpoint.pt")
    assert checkpoint["epoch"] == 2 and checkpoint["settings"]["seed"] == 1
    assert len(checkpoint["history"]["loss"]) == 2


def test_resume_in_a_fresh_process_ends_with_the_uninterrupted_runs_weights(
    digits, keep_threads, tmp_path, capsys
):
    whole, stopped, resumed = (tmp_path / f"{name}.pt" for name in ("whole", "stopped", "resumed"))
    digits.main(["--epochs", "3", *SMALL, "--checkpoint", str(whole), "--quiet"])
    digits.main(["--epochs", "3", *SMALL, "--checkpoint", str(stopped), "--stop-after", "2"])
    printed = capsys.readouterr().out.splitlines()
    assert [line.split("/")[0] for line in printed if line.startswith("epoch")] == [
        "epoch   1",
        "epoch   2",
    ]
    assert tg.load(stopped)["epoch"] == 2

    result = command_line("--resume", stopped, "--checkpoint", resumed)
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"resumed {stopped} after epoch 2/3")
    assert [line for line in lines if line.startswith("epoch")][0].startswith("epoch   3/3")

    expected, got = tg.load(whole), tg.load(resumed)
    assert got["epoch"] == expected["epoch"] == 3
    assert list(got["model"]) == list(expected["model"])
    for name, value in expected["model"].items():
        assert torch.equal(got["model"][name], value), name
    for key in ("state", "param_groups"):
        assert repr(got["optimizer"][key]) == repr(expected["optimizer"][key])
    assert got["history"] == expected["history"]
    # the control: after epoch 2 the weights were not yet the final ones
    assert not torch.equal(tg.load(stopped)["model"]["0.weight"], expected["model"]["0.weight"])


def test_resume_refuses_a_corrupted_or_foreign_file_with_the_librarys_error(
    digits, keep_threads, tmp_path, capsys
):
    good = tmp_path / "good.pt"
    digits.main(["--epochs", "1", *SMALL, "--checkpoint", str(good), "--quiet"])
    capsys.readouterr()
    corrupted = tmp_path / "corrupted.pt"
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupted.write_bytes(bytes(data))
    foreign = tmp_path / "notes.pt"
    foreign.write_text("not a checkpoint\n")
    weights_only = tmp_path / "weights.pt"
    tg.save(digits.build_model(), weights_only)  # a tapegrad file, but only weights
    for path, message in (
        (corrupted, "tapegrad.load: "),
        (foreign, "tapegrad.load: "),
        (tmp_path / "missing.pt", "no file at"),
        (weights_only, "not a checkpoint of this example"),
    ):
        with pytest.raises(SystemExit) as info:
            digits.main(["--resume", str(path)])
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert "--resume: " in err and message in err and str(path) in err, err
        assert "Traceback" not in err

    with pytest.raises(SystemExit):  # a flag that contradicts the checkpoint
        digits.main(["--resume", str(good), "--lr", "0.5"])
    assert "--lr 0.5 (the checkpoint has 0.01)" in capsys.readouterr().err


def test_runs_report_mean_and_std_of_the_test_accuracy(digits, keep_threads, tmp_path, capsys):
    report = digits.main(
        [
            "--runs",
            "2",
            "--epochs",
            "1",
            *SMALL,
            "--quiet",
            "--seed",
            "4",
            "--checkpoint",
            str(tmp_path / "run.pt"),
        ]
    )
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if line.startswith("---")] == [
        "--- run 1/2 (seed 4)",
        "--- run 2/2 (seed 5)",
    ]
    assert not any(line.startswith("epoch") for line in lines)  # --quiet
    accuracies = report["test_accuracies"]
    printed = [
        float(RESULT_LINE.match(line).group(2))
        for line in lines
        if line.startswith("train accuracy")
    ]
    assert printed == [round(100 * a, 2) for a in accuracies]
    assert lines[-1] == (
        f"test accuracy over 2 runs: mean {100 * statistics.mean(accuracies):.2f}%"
        f"  std {100 * statistics.stdev(accuracies):.2f}%"
    )
    # one checkpoint per run, named by its seed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run_seed4.pt", "run_seed5.pt"]
    assert tg.load(tmp_path / "run_seed5.pt")["settings"]["seed"] == 5


def test_the_mlp_trains_too(digits, keep_threads, capsys):
    report = digits.main(["--model", "mlp", "--epochs", "2", *SMALL, "--quiet"])
    assert report["test_accuracies"][0] > 0.25
    assert "test accuracy" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["--epochs", "0"],
        ["--lr", "-1"],
        ["--batch-size", "0"],
        ["--runs", "0"],
        ["--train-size", "0"],
    ],
)
def test_bad_flags_are_refused(digits, argv, capsys):
    with pytest.raises(SystemExit):
        digits.parse_args(argv)
    assert re.search(r"--[a-z-]+ must be (a )?positive", capsys.readouterr().err)


def test_resume_with_several_runs_is_refused(digits, capsys):
    with pytest.raises(SystemExit):
        digits.parse_args(["--resume", "x.pt", "--runs", "2"])
    assert "--resume continues one run" in capsys.readouterr().err
