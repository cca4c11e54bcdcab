"""The built-in ops. Each is a `Function` with its forward, its derivative and their maths side by side."""

from .arithmetic import Add, Div, Mul, Neg, Pow, Sub
from .broadcast import unbroadcast
from .matmul import MatMul
from .reduction import Mean, Sum
from .shape import GetItem, Reshape, To, Transpose
from .unary import Exp, Log, ReLU, Sigmoid, Tanh

__all__ = ["Add", "Sub", "Mul", "Div", "Neg", "Pow", "MatMul", "Sum", "Mean", "Exp", "Log",
           "ReLU", "Tanh", "Sigmoid", "Reshape", "Transpose", "GetItem", "To", "unbroadcast"]
