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
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(f"tapegrad.load: {path} holds objects other than tensors (loading it "
                         "could run code), so it was refused. Only load checkpoints written by "
                         f"tapegrad.save or torch.save(state_dict).\n  ({error})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as error:
        raise ValueError(f"tapegrad.load: {path} is not a readable checkpoint (truncated, corrupted "
                         f"or another kind of file): {error}") from None
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise ValueError(f"tapegrad.load: {path} does not hold a state dict (a mapping of names to "
                         f"tensors), it holds a {type(state).__name__}")
    return state
