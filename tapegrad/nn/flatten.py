"""Layers that only reshape or pass through: `Flatten` and `Identity`."""

from __future__ import annotations

import math

from ..errors import ShapeError
from .module import Module


class Flatten(Module):
    """y = x with dims start_dim .. end_dim merged into one: (N, C, H, W) -> (N, C*H*W) by default.

    A `Reshape` on the tape; its derivative reshapes dL/dy back.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        if self.start_dim == 1 and self.end_dim == -1 and x.ndim > 2:  # the usual case
            return x.reshape(x.shape[0], math.prod(x.shape[1:]))
        return flatten(x, self.start_dim, self.end_dim, self)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


def flatten(x, start_dim: int = 0, end_dim: int = -1, owner="flatten"):
    """x with dimensions start_dim .. end_dim merged (torch.flatten's rule), recorded as a
    reshape."""
    shape = tuple(x.shape)
    ndim = max(len(shape), 1)
    if not (-ndim <= start_dim < ndim and -ndim <= end_dim < ndim):
        raise IndexError(
            f"{owner if isinstance(owner, str) else repr(owner)}: dimensions "
            f"start_dim={start_dim}, end_dim={end_dim} are out of range for input of "
            f"shape {shape} (expected in [{-ndim}, {ndim - 1}])"
        )
    start, end = start_dim % ndim, end_dim % ndim
    if start > end:
        raise ShapeError(
            f"{owner if isinstance(owner, str) else repr(owner)}: start_dim "
            f"({start_dim}) comes after end_dim ({end_dim}) for input of shape "
            f"{shape}"
        )
    if not shape:
        return x.reshape(1)
    merged = 1
    for size in shape[start : end + 1]:
        merged *= size
    new = shape[:start] + (merged,) + shape[end + 1 :]
    return x if new == shape else x.reshape(new)


class Identity(Module):
    """y = x (a placeholder layer; any constructor arguments are ignored, as in torch)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x
