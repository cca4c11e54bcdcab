"""What the layers share: argument checks, torch's reduction names, and buffers.

`BufferModule` is the base of the layers that hold buffers (BatchNorm's
running statistics, a loss's class weights). It is `Module` itself once
Module has ``register_buffer``; until then it is a minimal stand-in that
keeps buffers in ``_buffers``, lists them in ``state_dict()``, loads them
and moves them with ``to()``.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict

import torch

from ..tensor import Tensor
from .module import Module

REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}     # aten's reduction codes


class ArgumentError(ValueError, RuntimeError):
    """An argument value out of its range (torch raises RuntimeError for these)."""


def data_of(x):
    """The torch tensor inside a tapegrad Tensor (anything else as it is)."""
    return x.data if isinstance(x, Tensor) else x


def pair(value, name: str, owner: str, minimum: int = 0) -> tuple:
    """An int or a pair of ints as a pair, checked: (3, 3) from 3."""
    items = (value, value) if isinstance(value, int) else value
    if (not isinstance(items, (tuple, list)) or len(items) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) or v < minimum for v in items)):
        raise ValueError(f"{owner}: {name} must be an int >= {minimum} or a pair of them, "
                         f"got {value!r}")
    return tuple(items)


def reduction_of(owner: str, reduction: str, size_average=None, reduce=None) -> str:
    """torch's reduction string, from `reduction` or the deprecated size_average / reduce."""
    if size_average is not None or reduce is not None:
        warnings.warn(f"{owner}: size_average and reduce are deprecated (as in torch); use "
                      "reduction='mean', 'sum' or 'none'", stacklevel=3)
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "none" if not reduce else "mean" if size_average else "sum"
    if reduction not in REDUCTIONS:
        raise ValueError(f"{owner}: reduction must be one of 'mean', 'sum', 'none', got "
                         f"{reduction!r}")
    return reduction


def check_constant(owner: str, name: str, value) -> None:
    """Class weights and the like are constants: refuse one that requires grad, as torch does."""
    if isinstance(value, Tensor) and value.requires_grad:
        raise RuntimeError(f"{owner}: the derivative for '{name}' is not implemented (as in "
                           f"torch); pass {name}.detach()")


# --- buffers ---------------------------------------------------------------------------

if hasattr(Module, "register_buffer"):
    BufferModule = Module
else:
    class BufferModule(Module):
        """Module with a minimal ``register_buffer`` (a stand-in until Module has its own).

        Buffers are torch tensors (or None) reachable as attributes, saved
        in ``state_dict()`` after the parameters, loaded by
        ``load_state_dict()`` and moved by ``to()``; only this module's own,
        not those of its submodules.
        """

        def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
            if tensor is not None and not isinstance(tensor, (torch.Tensor, Tensor)):
                raise TypeError(f"cannot assign '{type(tensor).__name__}' object to buffer "
                                f"'{name}' (a tensor or None required)")
            if "_buffers" not in self.__dict__:
                object.__setattr__(self, "_buffers", OrderedDict())
            self._buffers[name] = tensor
            object.__setattr__(self, name, tensor)

        def named_buffers(self, prefix: str = "", recurse: bool = True):
            for name, buffer in self.__dict__.get("_buffers", {}).items():
                if buffer is not None:
                    yield (f"{prefix}.{name}" if prefix else name), buffer

        def buffers(self, recurse: bool = True):
            for _, buffer in self.named_buffers():
                yield buffer

        def state_dict(self) -> OrderedDict:
            state = super().state_dict()
            for name, buffer in self.named_buffers():
                state[name] = data_of(buffer)
            return state

        def load_state_dict(self, state_dict, strict: bool = True):
            own = dict(self.named_buffers())
            params = {k: v for k, v in state_dict.items() if k not in own}
            result = super().load_state_dict(params, strict=False)
            missing = [k for k in result.missing_keys] + [k for k in own if k not in state_dict]
            if strict and (missing or result.unexpected_keys):
                raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}: "
                                   f"missing keys {missing}, unexpected keys "
                                   f"{result.unexpected_keys}")
            for name, buffer in own.items():
                if name in state_dict:
                    data_of(buffer).copy_(data_of(state_dict[name]))
            return result._replace(missing_keys=missing)

        def to(self, device=None, dtype=None):
            super().to(device, dtype)
            if isinstance(device, torch.dtype):
                device, dtype = None, device
            for name, buffer in list(self.__dict__.get("_buffers", {}).items()):
                if buffer is None:
                    continue
                cast = dtype if data_of(buffer).is_floating_point() else None
                self.register_buffer(name, data_of(buffer).to(device=device, dtype=cast))
            return self
