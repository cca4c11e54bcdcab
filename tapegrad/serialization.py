"""Checkpoints: `save` a module's state dict, `load` it back without running code from the file.

`load` uses torch.load(weights_only=True): the file may only hold tensors
and plain containers, never a pickled object that would run code.
"""

from __future__ import annotations

import os
import pickle
import zipfile

import torch

from .tensor import Tensor


def save(obj, path) -> None:
    """Save a Module (its state_dict) or a state dict {name: tensor} to `path`."""
    state = obj.state_dict() if hasattr(obj, "state_dict") else obj
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise TypeError(f"tapegrad.save takes a Module or a dict of name -> tensor, got "
                        f"{type(obj).__name__}")
    clean = {}
    for name, value in state.items():
        value = value.data if isinstance(value, Tensor) else value
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"tapegrad.save: {name!r} is a {type(value).__name__}, not a tensor")
        clean[name] = value.detach().clone()
    torch.save(clean, path)


def load(path, map_location=None) -> dict:
    """Load a state dict saved by `save`; refuse anything else with a clear error."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"tapegrad.load: no file at {path}")
    _check_checksums(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(f"tapegrad.load: {path} was refused: it is not a tensors-only checkpoint "
                         "(it holds pickled objects other than tensors, which could run code when "
                         "loaded, or it was not written by torch.save). Only load checkpoints "
                         f"written by tapegrad.save or torch.save(state_dict).\n  ({error})") from None
    except Exception as error:  # a foreign or damaged file can fail anywhere in the parser
        raise ValueError(f"tapegrad.load: {path} is not a readable checkpoint (truncated, corrupted "
                         f"or another kind of file): {type(error).__name__}: {error}") from None
    if not isinstance(state, dict):
        raise ValueError(f"tapegrad.load: {path} does not hold a state dict (a mapping of names to "
                         f"tensors), it holds a {type(state).__name__}")
    for name, value in state.items():
        if not (isinstance(name, str) and isinstance(value, torch.Tensor)):
            raise ValueError(f"tapegrad.load: {path} does not hold a state dict (a mapping of names "
                             f"to tensors): its entry {name!r} is a {type(value).__name__}")
    return state


def _check_checksums(path) -> None:
    """Refuse a checkpoint whose bytes changed after saving.

    torch.save writes a zip archive with a CRC-32 per entry, but torch.load
    does not check them: a flipped bit in a tensor's bytes would load as a
    silently wrong weight. zipfile's testzip() reads every entry and checks it.
    """
    if not zipfile.is_zipfile(path):
        return          # not a zip: torch.load's own parser accepts or refuses it
    try:
        with zipfile.ZipFile(path) as archive:
            if not any(info.CRC for info in archive.infolist()):
                return  # written with torch.serialization.set_crc32_options(False): nothing to check
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise ValueError(f"tapegrad.load: {path} is not a readable checkpoint (truncated or "
                         f"corrupted): {type(error).__name__}: {error}") from None
    if bad is not None:
        raise ValueError(f"tapegrad.load: {path} is corrupted: the checksum of its entry {bad!r} "
                         "does not match its bytes (the file changed after it was saved). Use "
                         "another copy of the checkpoint")
