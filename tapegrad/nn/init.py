"""Weight initialisation, in place and never recorded (torch.nn.init's names)."""

import math

import torch

from ..tensor import Tensor


def _data(tensor):
    return tensor.data if isinstance(tensor, Tensor) else tensor


def xavier_uniform_(tensor, gain: float = 1.0, generator=None):
    """Glorot & Bengio (2010): U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)).

    Keeps the variance of activations and of gradients about the same
    from layer to layer, for tanh-like units.
    """
    data = _data(tensor)
    fan_out, fan_in = data.shape[0], data[0].numel()
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    data.uniform_(-bound, bound, generator=generator)
    return tensor


def xavier_normal_(tensor, gain: float = 1.0, generator=None):
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    data = _data(tensor)
    fan_out, fan_in = data.shape[0], data[0].numel()
    data.normal_(0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator=generator)
    return tensor


def zeros_(tensor):
    _data(tensor).zero_()
    return tensor


def uniform_(tensor, a: float = 0.0, b: float = 1.0, generator=None):
    _data(tensor).uniform_(a, b, generator=generator)
    return tensor


def normal_(tensor, mean: float = 0.0, std: float = 1.0, generator=None):
    _data(tensor).normal_(mean, std, generator=generator)
    return tensor


def calculate_gain(nonlinearity: str) -> float:
    gains = {"linear": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3, "relu": math.sqrt(2.0)}
    if nonlinearity not in gains:
        raise ValueError(
            f"calculate_gain: unknown nonlinearity {nonlinearity!r}; "
            f"choose one of {', '.join(gains)}"
        )
    return gains[nonlinearity]


def _is_float_dtype(dtype: torch.dtype) -> bool:
    return dtype.is_floating_point
