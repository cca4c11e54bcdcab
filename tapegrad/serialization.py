"""Checkpoints: `save` a state dict or a whole training checkpoint, `load` it without running code.

What a file may hold is a dict of one of two forms:

    a state dict    {name: tensor, ...}            model.state_dict(); save(model) writes it
    a checkpoint    {"model": model.state_dict(),  plain data nested to any depth:
                     "optimizer": opt.state_dict(),  dicts, lists and tuples of tensors,
                     "scheduler": sched.state_dict(), str, int, float, bool and None
                     "epoch": 3,
                     "rng": torch.get_rng_state()}

A dict with no dict, list or tuple among its values is a state dict and
holds only tensors (and, under the keys ``<prefix>_extra_state``, what a
module's ``get_extra_state`` returned: plain data): a stray value beside a
model's tensors would make load_state_dict fail later, so `save` and `load`
refuse it now (put it in a checkpoint: ``{"model": model.state_dict(), "epoch": 3}``).

`load` uses torch.load(weights_only=True): plain data and tensors only, so
a pickled object that would run code when loaded is refused, never run.
It also checks the zip archive's checksums, which torch.load does not.
"""

from __future__ import annotations

import os
import pickle
import zipfile

import torch

from .tensor import Tensor

_CONTAINERS = (dict, list, tuple)
_PLAIN = (bool, str, int, float, type(None))  # bool first: a bool is an int


def save(obj, path) -> None:
    """Save a Module, Optimizer or scheduler (its state_dict()), a state dict or a checkpoint.

    Tensors are saved as copies of their values (tapegrad Tensors as their
    `.data`); dict subclasses become dicts, tuple subclasses tuples. Raises
    TypeError, before writing anything, for what `load` could not read back
    (naming where it sits, e.g. ``['scheduler']['lr_lambdas'][0]``). A file
    path is written whole or not at all (through a temporary file).
    """
    state = obj.state_dict() if hasattr(obj, "state_dict") else obj
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise TypeError(
            f"tapegrad.save takes a Module or a dict (a state dict {{name: tensor}} "
            "or a checkpoint dict with str keys), or anything with a state_dict() "
            f"such as an optimizer; got {type(obj).__name__}"
        )
    if not any(isinstance(value, _CONTAINERS) for value in state.values()):
        for name, value in state.items():
            if not isinstance(value, (Tensor, torch.Tensor)) and not _is_extra_state(name):
                raise TypeError(
                    f"tapegrad.save: {name!r} is a {type(value).__name__}, not a "
                    "tensor: a dict of tensors is a state dict and holds only "
                    "tensors. Save other values in a checkpoint: {'model': "
                    f"model.state_dict(), {name!r}: ...}}"
                )
    clean = _plain(state, "", {}, set())
    if not isinstance(path, (str, os.PathLike)):
        torch.save(clean, path)  # a file object: torch writes to it
        return
    partial = f"{os.fspath(path)}.partial"
    try:
        torch.save(clean, partial)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def _plain(value, where: str, copies: dict, open_containers: set):
    """`value` as plain containers, numbers, strings and tensor copies; TypeError otherwise."""
    if isinstance(value, Tensor):
        value = value.data
    if isinstance(value, torch.Tensor):
        if id(value) not in copies:  # a tensor saved twice stays one tensor
            copies[id(value)] = (value, value.detach().clone())
        return copies[id(value)][1]
    if value is None:
        return None
    for kind in (bool, str, int, float):  # bool first: a bool is an int
        if isinstance(value, kind):
            return value if type(value) is kind else kind(value)
    if not isinstance(value, _CONTAINERS):
        raise TypeError(
            f"tapegrad.save: {where or 'the checkpoint'} is a {type(value).__name__}, "
            "which tapegrad.load could not read back: a checkpoint holds only dicts, "
            "lists and tuples of tensors, str, int, float, bool and None"
        )
    if id(value) in open_containers:
        raise ValueError(f"tapegrad.save: {where} contains itself")
    open_containers.add(id(value))
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, (str, int, float, bool, type(None))):
                raise TypeError(
                    f"tapegrad.save: {where or 'the checkpoint'} has a key of type "
                    f"{type(key).__name__} ({key!r}); keys must be str, int, float, "
                    "bool or None"
                )
        result = {
            _plain(k, where, copies, open_containers): _plain(
                v, f"{where}[{k!r}]", copies, open_containers
            )
            for k, v in value.items()
        }
    else:
        items = [_plain(v, f"{where}[{i}]", copies, open_containers) for i, v in enumerate(value)]
        result = items if isinstance(value, list) else tuple(items)  # type: ignore[assignment]
    open_containers.discard(id(value))
    return result


def load(path, map_location=None) -> dict:
    """Load what `save` wrote (or torch.save of the same plain data); refuse anything else.

    Raises FileNotFoundError for a missing file and ValueError, naming the
    file, for a truncated or corrupted one, one that holds objects other
    than plain data and tensors (never run), or one that is not a state
    dict or checkpoint dict as described in this module's docstring.
    """
    if hasattr(path, "read"):  # a file object (io.BytesIO, open(..., "rb")), as torch.load
        path.seek(0)
    elif not os.path.exists(path):
        raise FileNotFoundError(f"tapegrad.load: no file at {path}")
    _check_checksums(path)
    if hasattr(path, "read"):
        path.seek(0)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(
            f"tapegrad.load: {path} was refused: it is not a tensors-only checkpoint "
            "(it holds pickled objects other than tensors and plain data, which could "
            "run code when loaded, or it was not written by torch.save). Only load "
            f"checkpoints written by tapegrad.save or torch.save(state_dict).\n  "
            f"({error})"
        ) from None
    except Exception as error:  # a foreign or damaged file can fail anywhere in the parser
        raise ValueError(
            f"tapegrad.load: {path} is not a readable checkpoint (truncated, corrupted "
            f"or another kind of file): {type(error).__name__}: {error}"
        ) from None
    if not isinstance(state, dict):
        raise ValueError(
            f"tapegrad.load: {path} does not hold a state dict (a mapping of names to "
            f"tensors) or a checkpoint dict, it holds a {type(state).__name__}"
        )
    if not any(isinstance(value, _CONTAINERS) for value in state.values()):
        for name, value in state.items():
            if not isinstance(name, str) or not (
                isinstance(value, torch.Tensor) or _is_extra_state(name)
            ):
                raise ValueError(
                    f"tapegrad.load: {path} does not hold a state dict (a mapping of "
                    f"names to tensors): its entry {name!r} is a "
                    f"{type(value).__name__} (a checkpoint that holds other values "
                    "keeps the tensors in a nested dict)"
                )
    problem = _not_plain(state, "")
    if problem:
        raise ValueError(
            f"tapegrad.load: {path} holds {problem}; a checkpoint holds only dicts, "
            "lists and tuples of tensors, str, int, float, bool and None"
        )
    return state


def _is_extra_state(name) -> bool:
    """Is `name` a state dict's key for a module's extra state (Module.get_extra_state)?"""
    return isinstance(name, str) and (name == "_extra_state" or name.endswith("._extra_state"))


def _not_plain(value, where: str) -> str | None:
    """Where `value` holds something other than plain data and tensors, or None."""
    if isinstance(value, (torch.Tensor,) + _PLAIN):
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _not_plain(item, f"{where}[{key!r}]")
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = _not_plain(item, f"{where}[{i}]")
            if found:
                return found
        return None
    return f"a {type(value).__name__} at {where}"


def _check_checksums(path) -> None:
    """Refuse a checkpoint whose bytes changed after saving.

    torch.save writes a zip archive with a CRC-32 per entry, but torch.load
    does not check them: a flipped bit in a tensor's bytes would load as a
    silently wrong weight. zipfile's testzip() reads every entry and checks it.
    """
    if not zipfile.is_zipfile(path):
        return  # not a zip: torch.load's own parser accepts or refuses it
    try:
        with zipfile.ZipFile(path) as archive:
            if not any(info.CRC for info in archive.infolist()):
                # written with torch.serialization.set_crc32_options(False): nothing to check
                return
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise ValueError(
            f"tapegrad.load: {path} is not a readable checkpoint (truncated or "
            f"corrupted): {type(error).__name__}: {error}"
        ) from None
    if bad is not None:
        raise ValueError(
            f"tapegrad.load: {path} is corrupted: the checksum of its entry {bad!r} "
            "does not match its bytes (the file changed after it was saved). Use "
            "another copy of the checkpoint"
        )
