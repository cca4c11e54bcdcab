"""Checkpoints that must be refused: truncated, corrupted, not a checkpoint, or carrying code.

Each is refused by `tapegrad.load` with a ValueError naming the file and
what is wrong with it, and the model the user meant to load it into is
left exactly as it was. A pickled object whose unpickling would run code
never runs: its marker file never appears.
"""

import os
import pickle
import zipfile

import pytest
import torch

import tapegrad as tg
from tapegrad import nn


def make_model(seed=0):
    g = torch.Generator().manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 4, generator=g), nn.ReLU(), nn.Linear(4, 1, generator=g))


def snapshot(model):
    return {name: p.data.clone() for name, p in model.named_parameters()}


def unchanged(model, before):
    return all(torch.equal(p.data, before[name]) for name, p in model.named_parameters())


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.pt"
    tg.save(make_model(seed=1), path)
    return path


def refuse(path, match):
    """Loading `path` into a model raises a ValueError matching `match`; the model is unchanged."""
    model = make_model(seed=2)
    before = snapshot(model)
    with pytest.raises(ValueError, match=match) as info:
        model.load_state_dict(tg.load(path))
    assert str(path) in str(info.value)
    assert unchanged(model, before)
    return str(info.value)


def test_the_good_checkpoint_loads(good):
    # The control for every test below.
    model = make_model(seed=2)
    model.load_state_dict(tg.load(good))
    assert unchanged(model, snapshot(make_model(seed=1)))


@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.9, 0.99])
def test_truncated_checkpoint(good, tmp_path, keep):
    raw = good.read_bytes()
    path = tmp_path / "truncated.pt"
    path.write_bytes(raw[: int(len(raw) * keep)])
    refuse(path, r"is not a readable checkpoint|is corrupted")


def tensor_offset(raw: bytes, model) -> int:
    """Where the first weight's bytes sit in the checkpoint file."""
    weight = model[0].weight.data.numpy().tobytes()
    offset = raw.find(weight)
    assert offset > 0
    return offset


def test_one_flipped_bit_in_a_weight_is_refused(good, tmp_path):
    # torch.load alone would load this file, with one weight silently changed.
    raw = bytearray(good.read_bytes())
    offset = tensor_offset(bytes(raw), make_model(seed=1))
    raw[offset] ^= 0x01
    path = tmp_path / "bitflip.pt"
    path.write_bytes(bytes(raw))
    assert not torch.equal(
        torch.load(path, weights_only=True)["0.weight"], make_model(seed=1)[0].weight.data
    )
    message = refuse(path, r"is corrupted: the checksum of its entry")
    assert "data/0" in message


@pytest.mark.parametrize("where", [0.0, 0.3, 0.6])
def test_corrupted_bytes_are_refused(good, tmp_path, where):
    raw = bytearray(good.read_bytes())
    start = int(len(raw) * where)
    for i in range(start, start + 32):
        raw[i] ^= 0xFF
    path = tmp_path / "corrupted.pt"
    path.write_bytes(bytes(raw))
    refuse(path, r"is not a readable checkpoint|is corrupted")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")
    refuse(path, r"is not a readable checkpoint")


def test_text_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("these are my notes, not a checkpoint\n")
    refuse(path, r"is not a readable checkpoint")


def test_plain_pickled_list(tmp_path):
    path = tmp_path / "list.pkl"
    with open(path, "wb") as f:
        pickle.dump([1.0, 2.0, 3.0], f)
    refuse(path, r"was refused: it is not a tensors-only checkpoint")


def test_torch_saved_list_of_tensors(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([torch.ones(2)], path)
    refuse(path, r"does not hold a state dict .* it holds a list")


def test_torch_saved_dict_with_a_non_tensor_value(tmp_path):
    path = tmp_path / "mixed.pt"
    torch.save({"0.weight": torch.ones(4, 2), "epoch": 3}, path)
    refuse(path, r"its entry 'epoch' is a int")


def test_a_zip_that_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "archive.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    refuse(path, r"is not a readable checkpoint")


def test_a_directory(tmp_path):
    refuse(tmp_path, r"is not a readable checkpoint")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"tapegrad.load: no file at"):
        tg.load(tmp_path / "nope.pt")


class RunsCode:
    """Unpickling this would call `open(marker, 'w')`: it creates the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_a_pickled_object_that_would_run_code_never_runs(tmp_path, writer):
    marker = tmp_path / "MARKER"
    path = tmp_path / "evil.pt"
    payload = {"0.weight": RunsCode(marker)}
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(payload, f)
    message = refuse(path, r"was refused: it is not a tensors-only checkpoint")
    assert "could run code" in message
    assert not marker.exists()


def test_the_payload_is_real(tmp_path):
    # The control for the test above: plain pickle.load does run it.
    marker = tmp_path / "MARKER"
    data = pickle.dumps(RunsCode(marker))
    pickle.loads(data).close()
    assert marker.exists()


# --- load_state_dict itself --------------------------------------------------------


def test_load_state_dict_with_a_wrong_shape_leaves_the_module_unchanged():
    model = make_model()
    before = snapshot(model)
    state = {name: torch.zeros_like(value) for name, value in before.items()}
    state["2.weight"] = torch.zeros(1, 5)  # every other entry is fine, and would be copied
    with pytest.raises(
        RuntimeError,
        match=r"2.weight: shape \(1, 5\) in the state dict, \(1, 4\) "
        r"in the model",
    ) as info:
        model.load_state_dict(state)
    assert "(the module is unchanged)" in str(info.value)
    assert unchanged(model, before)


def test_load_state_dict_with_missing_unexpected_or_non_tensor_entries():
    model = make_model()
    before = snapshot(model)
    state = dict(before)
    del state["0.bias"]
    state["3.weight"] = torch.zeros(1)
    state["0.weight"] = "not a tensor"
    with pytest.raises(RuntimeError) as info:
        model.load_state_dict(state)
    message = str(info.value)
    assert "missing keys: 0.bias" in message
    assert "unexpected keys: 3.weight" in message
    assert "0.weight: expected a tensor, got str" in message
    assert unchanged(model, before)


def test_a_checkpoint_of_another_architecture_is_refused_by_load_state_dict(tmp_path):
    path = tmp_path / "other.pt"
    tg.save(nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1)), path)
    model = make_model()
    before = snapshot(model)
    with pytest.raises(RuntimeError, match=r"0.weight: shape \(8, 2\) in the state dict"):
        model.load_state_dict(tg.load(path))
    assert unchanged(model, before)


def test_save_refuses_what_it_cannot_load_back(tmp_path):
    with pytest.raises(TypeError, match=r"'epoch' is a int, not a tensor"):
        tg.save({"w": torch.ones(2), "epoch": 3}, tmp_path / "x.pt")
    assert not os.path.exists(tmp_path / "x.pt")
