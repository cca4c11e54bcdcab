"""`Dropout`: in training, zero each element with probability p and scale the rest by 1 / (1 - p).

The random mask is drawn outside the op and handed to it as a constant
input, so the op itself is deterministic (`check_tape` and `gradcheck`
can replay it) and its derivative is the same mask:

    y = x * m / (1 - p)          m[i] = 1 with probability 1 - p, else 0
    dL/dx = dL/dy * m / (1 - p)

The mask is drawn as torch draws it on the CPU (``bernoulli_(1 - p)`` on a
tensor like x), so with the same seed tapegrad and torch drop the same
elements there. `generator` draws it from a generator of your own instead
of torch's global one.
"""

from __future__ import annotations

import torch

from ..function import Function
from ._utils import data_of
from .module import Module


class DropoutFunction(Function):
    """y = x * m   (m: the mask, 0 where an element is dropped, 1 / (1 - p) where it is kept)

    dL/dx = dL/dy * m
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x, mask):
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask, None


def dropout(
    input,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    generator: torch.Generator | None = None,
):
    """torch.nn.functional.dropout (computed out of place, whatever `inplace` says)."""
    return _dropout(input, p, training, generator, "dropout")


def _check_p(owner: str, p) -> None:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{owner}: dropout probability has to be between 0 and 1, but got {p!r}")


def _dropout(x, p, training, generator, owner):
    _check_p(owner if isinstance(owner, str) else type(owner).__name__, p)
    data = data_of(x)
    if not training or p == 0 or data.numel() == 0:
        return x  # torch returns the input itself
    if p == 1:
        mask = torch.zeros_like(data)
    else:
        mask = torch.empty_like(data).bernoulli_(1 - p, generator=generator)
        mask.div_(1 - p)
    return DropoutFunction.apply(x, mask)


class Dropout(Module):
    """Zero each element with probability p in training, scaling the rest by 1 / (1 - p).

    In eval mode, y = x.
    """

    def __init__(
        self, p: float = 0.5, inplace: bool = False, generator: torch.Generator | None = None
    ):
        super().__init__()
        _check_p("Dropout", p)
        self.p, self.inplace, self.generator = p, inplace, generator

    def forward(self, x):
        return _dropout(x, self.p, self.training, self.generator, self)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
