"""The disk data set of the course, and a mini-batch iterator.

Points are uniform in the unit square [0, 1]^2. The class is 1 inside the
disk centred at (0.5, 0.5) of radius 1/sqrt(2 pi), whose area is
pi r^2 = 1/2: half the square, so the two classes are balanced.
"""

from __future__ import annotations

import math

import torch

from .tensor import Tensor

RADIUS = 1.0 / math.sqrt(2.0 * math.pi)


def generate_disc_set(n: int, generator: torch.Generator | None = None, dtype=torch.float32):
    """Return (inputs, targets): inputs of shape (n, 2), targets of shape (n, 1), 1.0 inside
    the disk."""
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise ValueError(f"generate_disc_set: n must be a positive int, got {n!r}")
    inputs = torch.rand(n, 2, generator=generator, dtype=dtype)
    inside = (inputs - 0.5).pow(2).sum(1, keepdim=True) < RADIUS**2
    return Tensor(inputs), Tensor(inside.to(dtype))


def batches(
    inputs,
    targets,
    batch_size: int,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
):
    """Yield (input batch, target batch) pairs covering the data once (the last may be smaller)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batches: batch_size must be a positive int, got {batch_size!r}")
    x = inputs.data if isinstance(inputs, Tensor) else inputs
    t = targets.data if isinstance(targets, Tensor) else targets
    if len(x) != len(t):
        raise ValueError(f"batches: {len(x)} inputs but {len(t)} targets; they must match")
    n = len(x)
    if shuffle:
        order = torch.randperm(n, generator=generator)
        x, t = x[order], t[order]
    for start in range(0, n, batch_size):
        yield (
            Tensor._wrap(x[start : start + batch_size]),
            Tensor._wrap(t[start : start + batch_size]),
        )
