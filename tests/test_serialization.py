"""Checkpoints: tapegrad.save / tapegrad.load round-trip, and load never runs code from a file.

Two forms: a state dict {name: tensor}, and a training checkpoint of plain
nested data ({"model": ..., "optimizer": ..., "scheduler": ..., "epoch": 3,
"rng": ...}). Resuming training from one is tested in test_resume.py.
"""

from __future__ import annotations

import math
import os
import pickle

import pytest
import torch

import tapegrad as tg
from tapegrad import nn, optim
from tapegrad.optim import lr_scheduler


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
    tg.save({"w": tg.tensor([1.0, 2.0])}, tmp_path / "tensors.pt")  # tapegrad Tensors too
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


# --- training checkpoints: nested plain data ---------------------------------------------


def trained_parts():
    model = make_model()
    opt = optim.Adam(
        [{"params": model[0].parameters()}, {"params": model[2].parameters(), "lr": 0.01}],
        amsgrad=True,
    )
    sched = lr_scheduler.MultiStepLR(opt, milestones=[2, 2, 5], gamma=0.5)
    for _ in range(3):
        opt.zero_grad()
        nn.MSELoss()(model(torch.rand(4, 2)), torch.rand(4, 1)).backward()
        opt.step()
        sched.step()
    return model, opt, sched


def assert_same(saved, loaded, where="checkpoint"):
    """The same nested data: dicts as dicts (keys and their types kept), tensors equal."""
    if isinstance(saved, torch.Tensor):
        assert isinstance(loaded, torch.Tensor) and loaded.dtype == saved.dtype, where
        assert torch.equal(loaded, saved), where
    elif isinstance(saved, dict):
        assert type(loaded) is dict and list(loaded) == list(saved), where
        for key in saved:
            assert_same(saved[key], loaded[key], f"{where}[{key!r}]")
    elif isinstance(saved, (list, tuple)):
        assert type(loaded) is (list if isinstance(saved, list) else tuple), where
        assert len(loaded) == len(saved), where
        for i, (a, b) in enumerate(zip(saved, loaded)):
            assert_same(a, b, f"{where}[{i}]")
    else:
        assert type(loaded) is type(saved) and (loaded == saved or loaded != loaded), where


def test_a_training_checkpoint_round_trips(tmp_path):
    model, opt, sched = trained_parts()
    plateau = lr_scheduler.ReduceLROnPlateau(optim.SGD(model.parameters(), lr=0.1))
    checkpoint = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "plateau": plateau.state_dict(),
        "epoch": 3,
        "rng": torch.get_rng_state(),
        "history": [0.5, 0.25, math.nan],
        "config": ("adam", None, True, 2.5),
        "tapegrad tensor": tg.tensor([1.0, 2.0]),
    }
    tg.save(checkpoint, tmp_path / "ckpt.pt")
    loaded = tg.load(tmp_path / "ckpt.pt")
    expected = dict(
        checkpoint,
        model=dict(checkpoint["model"]),
        scheduler=dict(
            checkpoint["scheduler"], milestones=dict(sched.milestones)
        ),  # a Counter: a dict
        **{"tapegrad tensor": torch.tensor([1.0, 2.0])},
    )
    assert_same(expected, loaded)
    assert loaded["optimizer"]["state"][0]["step"].item() == 3.0
    assert loaded["plateau"]["best"] == math.inf


def test_save_and_load_an_optimizer_and_a_scheduler(tmp_path):
    model, opt, sched = trained_parts()
    tg.save(opt, tmp_path / "opt.pt")
    tg.save(sched, tmp_path / "sched.pt")
    fresh_opt = optim.Adam([{"params": model[0].parameters()}, {"params": model[2].parameters()}])
    fresh_sched = lr_scheduler.MultiStepLR(fresh_opt, milestones=[2, 2, 5], gamma=0.5)
    fresh_opt.load_state_dict(tg.load(tmp_path / "opt.pt"))
    fresh_sched.load_state_dict(tg.load(tmp_path / "sched.pt"))
    assert fresh_sched.milestones == sched.milestones and fresh_sched.last_epoch == 3
    assert [g["lr"] for g in fresh_opt.param_groups] == [g["lr"] for g in opt.param_groups]
    for p in model.parameters():
        for key, value in opt.state[p].items():
            assert torch.equal(fresh_opt.state[p][key], value), key


def test_a_tensor_saved_twice_is_saved_once(tmp_path):
    t = torch.arange(4.0)
    tg.save({"a": t, "b": [t, t.clone()]}, tmp_path / "x.pt")
    loaded = tg.load(tmp_path / "x.pt")
    assert loaded["a"].data_ptr() == loaded["b"][0].data_ptr() != loaded["b"][1].data_ptr()


def test_numbers_that_subclass_plain_types_are_saved_as_plain_numbers(tmp_path):
    np = pytest.importorskip("numpy")
    tg.save({"model": {}, "loss": np.float64(0.25), "flag": True}, tmp_path / "x.pt")
    loaded = tg.load(tmp_path / "x.pt")
    assert type(loaded["loss"]) is float and loaded["loss"] == 0.25 and loaded["flag"] is True


@pytest.mark.parametrize(
    "checkpoint, error, match",
    [
        (
            {"model": {}, "loss_fn": len},
            TypeError,
            r"\['loss_fn'\] is a builtin_function_or_method, which tapegrad.load could not "
            r"read back",
        ),
        ({"a": [1, {"b": object()}]}, TypeError, r"\['a'\]\[1\]\['b'\] is a object"),
        ({"a": {(1, 2): torch.zeros(1)}}, TypeError, r"\['a'\] has a key of type tuple"),
        ({"dtype": [torch.float32]}, TypeError, r"\['dtype'\]\[0\] is a dtype"),
    ],
    ids=["function", "object", "tuple key", "dtype"],
)
def test_save_refuses_what_load_could_not_read_and_writes_nothing(
    tmp_path, checkpoint, error, match
):
    with pytest.raises(error, match=match):
        tg.save(checkpoint, tmp_path / "x.pt")
    assert os.listdir(tmp_path) == []


def test_save_refuses_a_checkpoint_that_contains_itself(tmp_path):
    loop = []
    loop.append(loop)
    with pytest.raises(ValueError, match=r"\['a'\]\[0\] contains itself"):
        tg.save({"a": loop}, tmp_path / "x.pt")


def test_a_failed_save_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    tg.save({"model": make_model().state_dict(), "epoch": 1}, path)
    before = path.read_bytes()
    real_save = torch.save

    def dies_half_way(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        with open(f, "r+b") as file:
            file.truncate(100)
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(OSError, match="disk full"):
        tg.save({"model": make_model().state_dict(), "epoch": 2}, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["ckpt.pt"]
    assert tg.load(path)["epoch"] == 1


def test_load_refuses_a_torch_saved_checkpoint_holding_other_objects(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "dtype": torch.float64}, path)
    torch.load(path, weights_only=True)  # torch itself would load it
    with pytest.raises(ValueError, match=rf"{path} holds a dtype at \['dtype'\]"):
        tg.load(path)


def test_load_refuses_a_nested_object_that_would_run_code(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "extra": [1, _Payload(str(marker))]}, path)
    with pytest.raises(ValueError, match="refused"):
        tg.load(path)
    assert not marker.exists()
    with open(path, "wb") as f:
        pickle.dump({"model": {}, "extra": _Payload(str(marker))}, f)
    with pytest.raises(ValueError, match="refused"):
        tg.load(path)
    assert not marker.exists()


def test_a_flipped_bit_in_a_training_checkpoint_is_refused(tmp_path):
    model, opt, sched = trained_parts()
    path = tmp_path / "ckpt.pt"
    tg.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}, path)
    raw = bytearray(path.read_bytes())
    offset = raw.find(model[0].weight.data.numpy().tobytes())
    assert offset > 0
    raw[offset] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"is corrupted: the checksum of its entry"):
        tg.load(path)


def test_load_reads_a_file_object_like_torch_load():
    import io

    buffer = io.BytesIO()
    tg.save({"w": torch.arange(3.0)}, buffer)
    assert torch.equal(tg.load(buffer)["w"], torch.arange(3.0))


class _Counted(nn.Linear):
    """A layer with extra state (Module.get_extra_state) of any plain kind."""

    def __init__(self, extra):
        super().__init__(2, 1)
        self.extra = extra

    def get_extra_state(self):
        return self.extra

    def set_extra_state(self, state):
        self.extra = state


@pytest.mark.parametrize("extra", [3, 1.5, "v2", None, [1, "a"], {"steps": 4}, torch.ones(2)])
def test_a_state_dict_with_extra_state_round_trips(tmp_path, extra):
    model = nn.Sequential(_Counted(extra), nn.Tanh())
    tg.save(model, tmp_path / "ours.pt")
    torch.save(model.state_dict(), tmp_path / "torch.pt")  # torch's own writer, read by load
    for name in ("ours.pt", "torch.pt"):
        again = nn.Sequential(_Counted("before"), nn.Tanh())
        again.load_state_dict(tg.load(tmp_path / name))
        got = again[0].extra
        assert torch.equal(got, extra) if isinstance(extra, torch.Tensor) else got == extra


def test_a_stray_value_beside_tensors_is_still_refused(tmp_path):
    with pytest.raises(TypeError, match="'epoch' is a int"):
        tg.save({"w": torch.ones(1), "epoch": 3}, tmp_path / "x.pt")
    with pytest.raises(TypeError, match="'w._extra_stat' is a int"):
        tg.save({"w": torch.ones(1), "w._extra_stat": 3}, tmp_path / "x.pt")
