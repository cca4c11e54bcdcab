"""Ops that choose between values elementwise: where, clamp, maximum and minimum.

Their derivatives send dL/dy to whichever input was chosen, with `where`
(never `grad * mask`: a NaN or infinite gradient times 0 would leak NaN
into the input that was not chosen). Where maximum or minimum meet a tie,
each input gets half, as in torch.

At the end, the functions torch has under ``torch.``: ``tapegrad.where``,
``tapegrad.clamp`` (``clip``, ``clamp_min``, ``clamp_max``),
``tapegrad.maximum`` and ``tapegrad.minimum``.
"""

import torch

from ..errors import ArgumentError, DtypeError
from ..function import Function
from ..tensor import Tensor, as_operand
from .broadcast import check_same_dtype, shape_of, unbroadcast


class Where(Function):
    """y = a where cond, else b   (cond a bool tensor; a, b tensors or numbers; all broadcast)

    dL/da = dL/dy where cond, else 0
    dL/db = dL/dy where not cond, else 0

    y has the broadcast shape of cond, a and b, and torch's result dtype. Errors: DtypeError
    (a TypeError and RuntimeError) for a cond that is not a bool tensor or for float32 with
    float64, RuntimeError for shapes that do not broadcast.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, cond, a, b):
        if not isinstance(cond, torch.Tensor) or cond.dtype != torch.bool:
            raise DtypeError(
                f"where(cond, a, b): cond must be a bool tensor, got "
                f"{getattr(cond, 'dtype', type(cond).__name__)}; build it with a "
                "comparison such as x > 0"
            )
        check_same_dtype(a, b)
        ctx.shapes = (shape_of(a), shape_of(b))
        ctx.save_for_backward(cond)
        return torch.where(cond, a, b)

    @staticmethod
    def backward(ctx, grad):
        (cond,) = ctx.saved_tensors
        _, need_a, need_b = ctx.needs_input_grad
        shape_a, shape_b = ctx.shapes
        return (
            None,
            unbroadcast(where(cond, grad, 0.0), shape_a) if need_a else None,
            unbroadcast(where(cond, 0.0, grad), shape_b) if need_b else None,
        )


def where(cond, a=None, b=None):
    """a where cond, else b: the recorded `Where` when any of them is a tapegrad tensor.

    Given only torch tensors and numbers it is torch.where itself, and gives
    a torch tensor: derivatives call it on the plain tensors of an ordinary
    sweep. ``where(cond)`` alone is torch's: the indices where cond is True,
    one tensor per dimension.

    Errors: cond not a bool tensor (DtypeError, a TypeError and, as in torch,
    a RuntimeError); a and b of different float dtypes (TypeError); shapes
    that do not broadcast (RuntimeError).
    """
    if a is None and b is None:
        found = torch.where(cond.data if isinstance(cond, Tensor) else cond)
        return tuple(Tensor._wrap(t) for t in found) if isinstance(cond, Tensor) else found
    if isinstance(a, Tensor) or isinstance(b, Tensor) or isinstance(cond, Tensor):
        return Where.apply(cond, as_operand(a), as_operand(b))
    return torch.where(cond, a, b)


class Clamp(Function):
    """y = min(max(x, low), high)   (x.clamp(min=low, max=high); each bound None, a number or a
    tensor; low > high gives high)

    dL/dx    = dL/dy where low <= x <= high, else 0   (1 at the bounds, as in torch)
    dL/dlow  = dL/dy where x < low and low < high, else 0
    dL/dhigh = dL/dy where x > high or high < low, else 0

    y has the shape of x and the tensor bounds broadcast together (each gradient is summed
    back over broadcast dimensions), and torch's result dtype (x's, or float for an integer
    x with a float bound). Errors: RuntimeError (ArgumentError) with neither bound,
    RuntimeError for bounds whose shapes do not broadcast with x, DtypeError for float32
    with float64.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, x, min=None, max=None):  # noqa: A002  (torch's names, shown on the tape)
        low, high = min, max
        if low is None and high is None:
            raise ArgumentError("clamp() needs min or max (or both), got neither")
        for bound in (low, high):
            if isinstance(bound, torch.Tensor):
                check_same_dtype(x, bound)
        ctx.shapes = (x.shape, shape_of(low), shape_of(high))
        if (
            low is not None
            and high is not None
            and isinstance(low, torch.Tensor) != isinstance(high, torch.Tensor)
        ):
            # torch.clamp takes two numbers or two tensors: the number becomes a 0-d tensor
            low, high = (torch.as_tensor(v, dtype=x.dtype, device=x.device) for v in (low, high))
        # Masks, kept as bool tensors: which input each element of y came from.
        keep = _between(x, low, high)
        from_low = from_high = None
        _, need_low, need_high = ctx.needs_input_grad
        if need_low:
            from_low = x < low if high is None else (x < low) & (low < high)
        if need_high:
            from_high = x > high if low is None else (x > high) | (high < low)
        ctx.save_for_backward(keep, from_low, from_high)
        return torch.clamp(x, low, high)

    @staticmethod
    def backward(ctx, grad):
        keep, from_low, from_high = ctx.saved_tensors
        need_x, need_low, need_high = ctx.needs_input_grad
        shape_x, shape_low, shape_high = ctx.shapes
        return (
            unbroadcast(where(keep, grad, 0.0), shape_x) if need_x else None,
            unbroadcast(where(from_low, grad, 0.0), shape_low) if need_low else None,
            unbroadcast(where(from_high, grad, 0.0), shape_high) if need_high else None,
        )


def _between(x, low, high):
    if low is None:
        return x <= high
    if high is None:
        return x >= low
    return (x >= low) & (x <= high)


class Maximum(Function):
    """y = max(a, b) elementwise   (a, b tensors, broadcast together)

    dL/da = dL/dy where a > b, dL/dy / 2 where a = b, else 0
    dL/db = dL/dy where b > a, dL/dy / 2 where a = b, else 0
    (each summed over broadcast dimensions; where a or b is NaN, so is y, and both get
    dL/dy, as in torch)

    a, b: tensors whose shapes broadcast; y has the broadcast shape and torch's result dtype.
    Errors: TypeError for an operand that is not a tensor, DtypeError for float32 with
    float64, RuntimeError for shapes that do not broadcast.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, a, b):
        _check_two_tensors("maximum", a, b)
        ctx.shapes = (a.shape, b.shape)
        need_a, need_b = ctx.needs_input_grad
        ctx.save_for_backward(a == b, a < b if need_a else None, a > b if need_b else None)
        return torch.maximum(a, b)

    @staticmethod
    def backward(ctx, grad):
        tie, a_loses, b_loses = ctx.saved_tensors
        return _split(ctx, grad, tie, a_loses, b_loses)


class Minimum(Function):
    """y = min(a, b) elementwise   (a, b tensors, broadcast together)

    dL/da = dL/dy where a < b, dL/dy / 2 where a = b, else 0
    dL/db = dL/dy where b < a, dL/dy / 2 where a = b, else 0
    (each summed over broadcast dimensions; where a or b is NaN, so is y, and both get
    dL/dy, as in torch)

    a, b: tensors whose shapes broadcast; y has the broadcast shape and torch's result dtype.
    Errors: TypeError for an operand that is not a tensor, DtypeError for float32 with
    float64, RuntimeError for shapes that do not broadcast.
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, a, b):
        _check_two_tensors("minimum", a, b)
        ctx.shapes = (a.shape, b.shape)
        need_a, need_b = ctx.needs_input_grad
        ctx.save_for_backward(a == b, a > b if need_a else None, a < b if need_b else None)
        return torch.minimum(a, b)

    @staticmethod
    def backward(ctx, grad):
        tie, a_loses, b_loses = ctx.saved_tensors
        return _split(ctx, grad, tie, a_loses, b_loses)


_FOR_A_NUMBER = {"maximum": "clamp_min", "minimum": "clamp_max"}  # max(x, c) = clamp(x, min=c)


def _check_two_tensors(name, a, b):
    for operand in (a, b):
        if not isinstance(operand, torch.Tensor):
            raise TypeError(
                f"{name}(a, b) takes two tensors, got a {type(operand).__name__}; "
                f"for a number use x.{_FOR_A_NUMBER[name]}(number), or make it a "
                "tensor with tapegrad.tensor(number)"
            )
    check_same_dtype(a, b)


def _split(ctx, grad, tie, a_loses, b_loses):
    """dL/dy to the input that won, half of it to each at a tie (Maximum's and Minimum's rule)."""
    shape_a, shape_b = ctx.shapes
    shared = where(tie, grad / 2, grad)
    return (
        None if a_loses is None else unbroadcast(where(a_loses, 0.0, shared), shape_a),
        None if b_loses is None else unbroadcast(where(b_loses, 0.0, shared), shape_b),
    )


# --- the functions torch has under torch. ---------------------------------------------------


def clamp(input, min=None, max=None):
    """min(max(input, min), max) elementwise (`Clamp`); min and max are None, numbers or tensors.

    Where min > max every element is max, as in torch. Errors: neither bound
    given (RuntimeError, as torch), bounds whose shapes do not broadcast
    with input (RuntimeError), float32 with float64 (TypeError).
    """
    return Clamp.apply(input, as_operand(min), as_operand(max))


clip = clamp


def clamp_min(input, min):
    """max(input, min) elementwise (`Clamp` with only a lower bound); min a number or a
    tensor. Shapes, dtypes and errors as `clamp`."""
    return Clamp.apply(input, as_operand(min), None)


def clamp_max(input, max):
    """min(input, max) elementwise (`Clamp` with only an upper bound); max a number or a
    tensor. Shapes, dtypes and errors as `clamp`."""
    return Clamp.apply(input, None, as_operand(max))


def maximum(input, other):
    """The larger of input and other, elementwise (`Maximum`); ties split the gradient evenly.

    Both must be tensors (a number is a TypeError, as in torch: use
    clamp_min); their shapes broadcast, and the result has the broadcast shape.
    Errors otherwise: DtypeError for float32 with float64, RuntimeError for shapes
    that do not broadcast.
    """
    return Maximum.apply(input, as_operand(other))


def minimum(input, other):
    """The smaller of input and other, elementwise (`Minimum`); ties split the gradient evenly.

    As `maximum`: both tensors (a number is a TypeError: use clamp_max), shapes broadcast;
    DtypeError for float32 with float64, RuntimeError for shapes that do not broadcast.
    """
    return Minimum.apply(input, as_operand(other))
