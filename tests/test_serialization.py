"""Checkpoints: tapegrad.save / tapegrad.load round-trip, and load never runs code from a file."""

from __future__ import annotations

import os

import pytest
import torch

import tapegrad as tg
from tapegrad import nn


def make_model():
    return nn.Sequential(nn.Linear(2, 5), nn.ReLU(), nn.Linear(5, 1), nn.Tanh())


def test_module_round_trips_through_save_and_load(tmp_path):
    model = make_model()
    path = tmp_path / "model.pt"
    tg.save(model, path)
    state = tg.load(path)
    assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    fresh = make_model()
    fresh.load_state_dict(state)
    for p, q in zip(model.parameters(), fresh.parameters()):
        assert torch.equal(p.data, q.data)
    x = torch.rand(7, 2)
    assert torch.equal(model(x).data, fresh(x).data)


def test_saved_values_are_a_snapshot(tmp_path):
    """Training on after saving does not change the checkpoint."""
    model = make_model()
    path = tmp_path / "model.pt"
    tg.save(model, path)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    for p in model.parameters():
        p.data.add_(1.0)
    state = tg.load(path)
    assert all(torch.equal(state[name], before[name]) for name in before)


def test_state_dict_round_trip_keeps_dtype(tmp_path):
    model = make_model().double()
    path = tmp_path / "state.pt"
    tg.save(model.state_dict(), path)
    state = tg.load(path)
    assert all(value.dtype == torch.float64 for value in state.values())
    tg.save({"w": tg.tensor([1.0, 2.0])}, tmp_path / "tensors.pt")      # tapegrad Tensors too
    assert torch.equal(tg.load(tmp_path / "tensors.pt")["w"], torch.tensor([1.0, 2.0]))


def test_load_uses_weights_only(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    tg.save(make_model(), path)
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    tg.load(path)
    assert calls and all(call.get("weights_only") is True for call in calls)


class _Payload:
    """An object whose unpickling would run code (it would create a file)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_load_refuses_a_file_that_would_run_code(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(2), "payload": _Payload(str(marker))}, path)
    with pytest.raises(ValueError, match="refused"):
        tg.load(path)
    assert not marker.exists()


def test_load_refuses_what_is_not_a_state_dict(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(ValueError, match="state dict"):
        tg.load(path)
    torch.save({"lr": 0.1}, path)
    with pytest.raises(ValueError, match="'lr' is a float"):
        tg.load(path)
    with pytest.raises(FileNotFoundError, match="no file"):
        tg.load(tmp_path / "missing.pt")


def test_save_refuses_what_is_not_a_state_dict(tmp_path):
    with pytest.raises(TypeError, match="Module or a dict"):
        tg.save([1, 2], tmp_path / "x.pt")
    with pytest.raises(TypeError, match="'lr' is a float"):
        tg.save({"lr": 0.1}, tmp_path / "x.pt")
    assert not os.path.exists(tmp_path / "x.pt")


def test_loading_a_checkpoint_into_a_different_model_names_the_problem(tmp_path):
    path = tmp_path / "model.pt"
    tg.save(make_model(), path)
    other = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
    before = [p.data.clone() for p in other.parameters()]
    with pytest.raises(RuntimeError, match=r"0.weight: shape \(5, 2\)"):
        other.load_state_dict(tg.load(path))
    assert all(torch.equal(p.data, b) for p, b in zip(other.parameters(), before))


@pytest.mark.cuda
def test_load_with_map_location(tmp_path):
    path = tmp_path / "model.pt"
    tg.save(make_model().to("cuda"), path)
    state = tg.load(path, map_location="cpu")
    assert all(value.device.type == "cpu" for value in state.values())
