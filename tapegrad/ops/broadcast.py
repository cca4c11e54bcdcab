"""Undoing broadcasting: the one helper every binary op's derivative uses."""

import torch

from ..errors import DtypeError


def unbroadcast(grad: torch.Tensor, shape) -> torch.Tensor:
    """Sum `grad` down to `shape`, undoing torch's broadcasting.

    If y = a + b broadcast `a` of shape (3, 1) to y's shape (2, 3, 4), then
    every element of `a` fed 2 * 4 elements of y, so dL/da is dL/dy summed
    over the dimensions that broadcasting added (the leading 2) or stretched
    (the trailing 1 -> 4).
    """
    if grad.shape == shape:
        return grad
    lead = grad.dim() - len(shape)
    dims = list(range(lead))
    for i, size in enumerate(shape):
        if size == 1 and grad.shape[lead + i] != 1:
            dims.append(lead + i)
    if dims:
        grad = grad.sum(dims, keepdim=True)
    return grad.reshape(shape)


def shape_of(x):
    """The shape of a tensor operand, None for a Python number."""
    return x.shape if isinstance(x, torch.Tensor) else None


def check_same_dtype(a, b) -> None:
    """Refuse float32 with float64 in one op: torch would silently promote the result.

    Raises DtypeError (a TypeError, and the RuntimeError torch raises where it refuses
    the same mix, as in @ and mm).
    """
    if (
        isinstance(a, torch.Tensor)
        and isinstance(b, torch.Tensor)
        and a.dtype != b.dtype
        and a.is_floating_point()
        and b.is_floating_point()
    ):
        raise DtypeError(
            f"inputs have different dtypes, {a.dtype} and {b.dtype}"
            "; convert one with .float() or .double() so both agree"
        )
