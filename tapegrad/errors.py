"""Error classes that are caught as both tapegrad's type and the one torch raises for the same
mistake.

tapegrad names its errors by what went wrong (a wrong shape is a
ValueError, a wrong dtype a TypeError), but code written for torch
catches what torch raises, which for these mistakes is RuntimeError.
These classes derive from both, so ``except RuntimeError`` and
``except ValueError`` each catch a shape mismatch in ``@``.
"""


class ShapeError(ValueError, RuntimeError):
    """Shapes or sizes that do not fit together (torch raises RuntimeError)."""


class DtypeError(TypeError, RuntimeError):
    """A dtype that the operation cannot take (torch raises RuntimeError)."""


class DataError(TypeError, ValueError):
    """Values that can't make a tensor (torch raises ValueError for ragged lists, TypeError
    else)."""


class ArgumentError(ValueError, RuntimeError):
    """An argument torch reports as RuntimeError (e.g. clamp() with neither min nor max)."""
