"""What the layers share: argument checks and torch's reduction names."""

from __future__ import annotations

import warnings

from ..errors import ArgumentError  # noqa: F401  (the layers import it from here)
from ..tensor import Tensor

REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}  # aten's reduction codes


def data_of(x):
    """The torch tensor inside a tapegrad Tensor (anything else as it is)."""
    return x.data if isinstance(x, Tensor) else x


def pair(value, name: str, owner: str, minimum: int = 0) -> tuple:
    """An int or a pair of ints as a pair, checked: (3, 3) from 3."""
    items = (value, value) if isinstance(value, int) else value
    if (
        not isinstance(items, (tuple, list))
        or len(items) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) or v < minimum for v in items)
    ):
        raise ValueError(
            f"{owner}: {name} must be an int >= {minimum} or a pair of them, got {value!r}"
        )
    return tuple(items)


def reduction_of(owner: str, reduction: str, size_average=None, reduce=None) -> str:
    """torch's reduction string, from `reduction` or the deprecated size_average / reduce."""
    if size_average is not None or reduce is not None:
        warnings.warn(
            f"{owner}: size_average and reduce are deprecated (as in torch); use "
            "reduction='mean', 'sum' or 'none'",
            stacklevel=3,
        )
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "none" if not reduce else "mean" if size_average else "sum"
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"{owner}: reduction must be one of 'mean', 'sum', 'none', got {reduction!r}"
        )
    return reduction


def check_constant(owner: str, name: str, value) -> None:
    """Class weights and the like are constants: refuse one that requires grad, as torch does."""
    if isinstance(value, Tensor) and value.requires_grad:
        raise RuntimeError(
            f"{owner}: the derivative for '{name}' is not implemented (as in "
            f"torch); pass {name}.detach()"
        )
