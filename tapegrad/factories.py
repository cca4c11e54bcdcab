"""Creation functions, as torch has them: zeros, ones, full, empty, eye, rand, randn, arange,
linspace, *_like.

Each builds its values with the torch function of the same name and wraps
them in a tapegrad `Tensor`, a leaf::

    w = tapegrad.randn(3, 2, requires_grad=True)       # sizes as varargs ...
    b = tapegrad.zeros((2,), dtype=torch.float64)        # ... or as one tuple
    z = tapegrad.zeros_like(w)                           # w's shape, dtype and device

They take torch's keyword arguments `dtype`, `device` and `requires_grad`
(and `generator` where torch does). Mistakes raise the exception type
torch raises: TypeError for sizes that aren't ints, RuntimeError
(`ShapeError`) for negative sizes, RuntimeError (`DtypeError`) for
requires_grad on an integer dtype.
"""

from __future__ import annotations

import operator

import torch

from .errors import DtypeError, ShapeError
from .tensor import Tensor


def _size(size, name: str) -> tuple:
    """Sizes as torch takes them: ``f(2, 3)``, ``f((2, 3))``, ``f([2, 3])`` or
    ``f(torch.Size(...))``."""
    if not size:
        raise TypeError(
            f"tapegrad.{name}() needs a size, as torch: tapegrad.{name}(2, 3), or "
            f"tapegrad.{name}(()) for a 0-d tensor"
        )
    if len(size) == 1 and isinstance(size[0], (tuple, list, torch.Size)):
        size = tuple(size[0])
    try:
        size = tuple(operator.index(s) for s in size)
    except TypeError:
        raise TypeError(
            f"tapegrad.{name}(): sizes must be ints, got {tuple(size)!r}; write "
            f"tapegrad.{name}(2, 3) or tapegrad.{name}((2, 3))"
        ) from None
    if any(s < 0 for s in size):
        raise ShapeError(f"tapegrad.{name}(): sizes must be non-negative, got {size}")
    return size


def _leaf(name: str, make, requires_grad: bool) -> Tensor:
    """Run torch's factory `make()` and wrap its result; torch's errors keep their type, with our
    name."""
    try:
        data = make()
    except (RuntimeError, TypeError, ValueError) as error:
        try:
            raised = type(error)(f"tapegrad.{name}(): {error}")
        except TypeError:
            raised = RuntimeError(f"tapegrad.{name}(): {error}")
        raise raised from error
    if requires_grad and not (data.is_floating_point() or data.is_complex()):
        raise DtypeError(
            f"tapegrad.{name}(): only floating-point and complex tensors can "
            f"require gradients, this one is {data.dtype}; pass "
            "dtype=torch.float32 (or float64)"
        )
    return Tensor(data, requires_grad=requires_grad)


def _data(input, name: str) -> torch.Tensor:
    data = input.data if isinstance(input, Tensor) else input
    if not isinstance(data, torch.Tensor):
        raise TypeError(
            f"tapegrad.{name}(input): input must be a tensor, got {type(input).__name__}"
        )
    return data


# --- filled with one value ---------------------------------------------------------------


def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of the given size filled with 0 (torch.zeros).

    Sizes as varargs or one tuple (``()``: 0-d); the default float dtype unless dtype is given.
    Errors: TypeError for no size or sizes that are not ints, ShapeError (a RuntimeError) for a
    negative size, DtypeError for requires_grad=True with an integer or bool dtype.
    """
    size = _size(size, "zeros")
    return _leaf("zeros", lambda: torch.zeros(size, dtype=dtype, device=device), requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of the given size filled with 1 (torch.ones).

    Sizes, dtype and errors as `zeros`.
    """
    size = _size(size, "ones")
    return _leaf("ones", lambda: torch.ones(size, dtype=dtype, device=device), requires_grad)


def full(size, fill_value, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of shape `size` (a tuple) filled with `fill_value` (torch.full).

    As in torch the dtype follows the value when not given: an int gives
    int64, a bool gives bool, a float the default float dtype.
    Errors: TypeError for a size that is not a tuple or list of ints or a
    fill_value that is not a number, ShapeError (a RuntimeError) for a negative
    size, DtypeError for requires_grad=True with an integer or bool dtype (an
    int value without dtype=).
    """
    if not isinstance(size, (tuple, list, torch.Size)):
        raise TypeError(
            f"tapegrad.full(): size must be a tuple of ints, got "
            f"{type(size).__name__} {size!r}; write tapegrad.full((2, 3), value)"
        )
    size = _size((size,), "full")
    return _leaf(
        "full", lambda: torch.full(size, fill_value, dtype=dtype, device=device), requires_grad
    )


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of the given size with whatever values its memory held (torch.empty).

    Sizes, dtype and errors as `zeros`.
    """
    size = _size(size, "empty")
    return _leaf("empty", lambda: torch.empty(size, dtype=dtype, device=device), requires_grad)


def eye(
    n: int, m: int | None = None, *, dtype=None, device=None, requires_grad: bool = False
) -> Tensor:
    """The n x m identity matrix: ones on the diagonal, zeros elsewhere (torch.eye; m defaults
    to n).

    Shape (n, m), the default float dtype unless given. Errors, torch's: RuntimeError for a
    negative n or m, TypeError for one that is not an int; DtypeError for requires_grad=True
    with an integer or bool dtype.
    """
    if m is None:
        m = n
    return _leaf("eye", lambda: torch.eye(n, m, dtype=dtype, device=device), requires_grad)


# --- random -----------------------------------------------------------------------------------


def rand(*size, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Uniform random values in [0, 1) (torch.rand); `generator` for reproducible values.

    Sizes and dtype as `zeros`; a floating dtype only (NotImplementedError, a RuntimeError,
    torch's, for an integer one). Errors otherwise as `zeros`.
    """
    size = _size(size, "rand")
    return _leaf(
        "rand",
        lambda: torch.rand(size, generator=generator, dtype=dtype, device=device),
        requires_grad,
    )


def randn(*size, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Standard normal random values (torch.randn); `generator` for reproducible values.

    Mean 0, variance 1. Sizes and dtype as `zeros`; a floating dtype only
    (NotImplementedError, a RuntimeError, torch's, for an integer one). Errors otherwise as
    `zeros`.
    """
    size = _size(size, "randn")
    return _leaf(
        "randn",
        lambda: torch.randn(size, generator=generator, dtype=dtype, device=device),
        requires_grad,
    )


# --- ranges -------------------------------------------------------------------------------------


def arange(
    start=0, end=None, step=1, *, dtype=None, device=None, requires_grad: bool = False
) -> Tensor:
    """start, start + step, ... up to (not including) end; ``arange(n)`` is 0 .. n-1 (torch.arange).

    As in torch, integer arguments give int64 values, a float argument the
    default float dtype. Shape (ceil((end - start) / step),).
    Errors, torch's: RuntimeError for step 0 or a step that leads away from
    end, TypeError for arguments that are not numbers; DtypeError for
    requires_grad=True with integer values (give a float or dtype=).
    """
    if end is None:
        start, end = 0, start
    return _leaf(
        "arange", lambda: torch.arange(start, end, step, dtype=dtype, device=device), requires_grad
    )


def linspace(
    start, end, steps: int, *, dtype=None, device=None, requires_grad: bool = False
) -> Tensor:
    """`steps` evenly spaced values from start to end, both included (torch.linspace).

    Shape (steps,), the default float dtype unless given. Errors, torch's: RuntimeError for
    steps < 0, TypeError for steps that is not an int; DtypeError for requires_grad=True with
    an integer dtype.
    """
    return _leaf(
        "linspace",
        lambda: torch.linspace(start, end, steps, dtype=dtype, device=device),
        requires_grad,
    )


# --- shaped like another tensor ------------------------------------------------------------------


def zeros_like(
    input,
    *,
    dtype=None,
    device=None,
    requires_grad: bool = False,
    memory_format=torch.preserve_format,
) -> Tensor:
    """Zeros with input's shape, and its dtype and device unless given (torch.zeros_like).

    input: a tapegrad or torch tensor (only its shape, dtype and device are read). Errors: TypeError
    for an input that is not a tensor, DtypeError for requires_grad=True with an integer or bool
    dtype.
    """
    data = _data(input, "zeros_like")
    return _leaf(
        "zeros_like",
        lambda: torch.zeros_like(data, dtype=dtype, device=device, memory_format=memory_format),
        requires_grad,
    )


def ones_like(
    input,
    *,
    dtype=None,
    device=None,
    requires_grad: bool = False,
    memory_format=torch.preserve_format,
) -> Tensor:
    """Ones with input's shape, and its dtype and device unless given (torch.ones_like).

    input and errors as `zeros_like`.
    """
    data = _data(input, "ones_like")
    return _leaf(
        "ones_like",
        lambda: torch.ones_like(data, dtype=dtype, device=device, memory_format=memory_format),
        requires_grad,
    )


def full_like(
    input,
    fill_value,
    *,
    dtype=None,
    device=None,
    requires_grad: bool = False,
    memory_format=torch.preserve_format,
) -> Tensor:
    """`fill_value` everywhere, with input's shape, dtype and device (torch.full_like).

    The value is converted to that dtype (2.5 in an int64 tensor is 2). input and errors as
    `zeros_like`.
    """
    data = _data(input, "full_like")
    return _leaf(
        "full_like",
        lambda: torch.full_like(
            data, fill_value, dtype=dtype, device=device, memory_format=memory_format
        ),
        requires_grad,
    )


def empty_like(
    input,
    *,
    dtype=None,
    device=None,
    requires_grad: bool = False,
    memory_format=torch.preserve_format,
) -> Tensor:
    """Uninitialized values with input's shape, dtype and device (torch.empty_like).

    input and errors as `zeros_like`.
    """
    data = _data(input, "empty_like")
    return _leaf(
        "empty_like",
        lambda: torch.empty_like(data, dtype=dtype, device=device, memory_format=memory_format),
        requires_grad,
    )


def rand_like(
    input,
    *,
    generator=None,
    dtype=None,
    device=None,
    requires_grad: bool = False,
    memory_format=torch.preserve_format,
) -> Tensor:
    """Uniform random values in [0, 1) with input's shape, dtype and device (torch.rand_like).

    A floating dtype only (NotImplementedError, a RuntimeError, torch's, for an integer
    one); input and the other errors as `zeros_like`.
    """
    data = _data(input, "rand_like")
    extra = {} if generator is None else {"generator": generator}  # (older torch lacks it)
    return _leaf(
        "rand_like",
        lambda: torch.rand_like(
            data, dtype=dtype, device=device, memory_format=memory_format, **extra
        ),
        requires_grad,
    )


def randn_like(
    input,
    *,
    generator=None,
    dtype=None,
    device=None,
    requires_grad: bool = False,
    memory_format=torch.preserve_format,
) -> Tensor:
    """Standard normal random values with input's shape, dtype and device (torch.randn_like).

    A floating dtype only (NotImplementedError, a RuntimeError, torch's, for an integer
    one); input and the other errors as `zeros_like`.
    """
    data = _data(input, "randn_like")
    extra = {} if generator is None else {"generator": generator}
    return _leaf(
        "randn_like",
        lambda: torch.randn_like(
            data, dtype=dtype, device=device, memory_format=memory_format, **extra
        ),
        requires_grad,
    )
