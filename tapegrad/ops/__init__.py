"""The built-in ops. Each is a `Function` with its forward, its derivative and their maths side by side."""

from .arithmetic import Add, Div, Mul, Neg, Pow, PowTensor, Sub, pow
from .assign import CopyInto, Fill, SetItem
from .broadcast import unbroadcast
from .indexing import GetItem, GetItemBackward
from .join import Cat, Stack
from .matmul import MatMul
from .reduction import Mean, Sum
from .select import Clamp, Where, where
from .shape import (Clone, Contiguous, Expand, Permute, Reshape, Squeeze, To, Transpose,
                    Unsqueeze, View)
from .unary import (Exp, Log, Log1p, ReLU, Sigmoid, SigmoidBackward, Tanh, TanhBackward,
                    ThresholdBackward)

__all__ = ["Add", "Sub", "Mul", "Div", "Neg", "Pow", "PowTensor", "pow", "MatMul", "Sum", "Mean",
           "Exp", "Log", "Log1p", "ReLU", "Tanh", "Sigmoid", "ThresholdBackward", "TanhBackward",
           "SigmoidBackward", "Reshape", "Transpose", "Unsqueeze", "Expand", "GetItem",
           "GetItemBackward", "SetItem", "Fill", "CopyInto", "Where", "where", "Clamp", "To",
           "unbroadcast",
           # shape, joins (surface-b)
           "View", "Squeeze", "Permute", "Clone", "Contiguous", "Cat", "Stack"]
