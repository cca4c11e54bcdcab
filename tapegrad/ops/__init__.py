"""The built-in ops. Each is a `Function` with its forward, its derivative and their maths side by side."""

from .arithmetic import Add, Div, Mul, Neg, Pow, PowTensor, Sub, pow
from .assign import CopyInto, Fill, SetItem
from .broadcast import unbroadcast
from .indexing import GetItem, GetItemBackward
from .join import Cat, Stack
from .matmul import MatMul
from .reduction import (Amax, Amin, Max, MaxDim, Mean, Min, MinDim, Prod, PutAlongDim, Std, Sum,
                        TakeAlongDim, Var)
from .select import Clamp, Maximum, Minimum, Where, where
from .shape import (Clone, Contiguous, Expand, Permute, Reshape, Squeeze, To, Transpose,
                    Unsqueeze, View)
from .unary import (Abs, Cos, Exp, Log, Log1p, ReLU, Sigmoid, SigmoidBackward, Sign, Sin, Sqrt,
                    Tanh, TanhBackward, ThresholdBackward)
from .softmax import (LogSoftmax, LogSoftmaxBackward, LogSumExp, Softmax, SoftmaxBackward,
                      log_softmax, logsumexp, softmax)

__all__ = ["Add", "Sub", "Mul", "Div", "Neg", "Pow", "PowTensor", "pow", "MatMul", "Sum", "Mean",
           "Exp", "Log", "Log1p", "ReLU", "Tanh", "Sigmoid", "ThresholdBackward", "TanhBackward",
           "SigmoidBackward", "Reshape", "Transpose", "Unsqueeze", "Expand", "GetItem",
           "GetItemBackward", "SetItem", "Fill", "CopyInto", "Where", "where", "Clamp", "To",
           "unbroadcast",
           # shape, joins (the torch surface)
           "View", "Squeeze", "Permute", "Clone", "Contiguous", "Cat", "Stack",
           # elementwise and reductions (the torch surface)
           "Abs", "Sqrt", "Sin", "Cos", "Sign", "Maximum", "Minimum", "Max", "Min", "MaxDim",
           "MinDim", "TakeAlongDim", "PutAlongDim", "Amax", "Amin", "Var", "Std", "Prod",
           # softmax family
           "Softmax", "SoftmaxBackward", "LogSoftmax", "LogSoftmaxBackward", "LogSumExp",
           "softmax", "log_softmax", "logsumexp"]
