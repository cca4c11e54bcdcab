"""tapegrad: reverse-mode automatic differentiation on an explicit tape, built to be read.

    import tapegrad as tg
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()          # two ops, two nodes on y.tape
    y.backward()               # a reverse loop over the tape
    x.grad                     # tensor([2., 4.])
"""

from .tensor import Tensor, tensor  # first: the ops it loads need Tensor
from .anomaly import detect_anomaly
from .function import Function, once_differentiable
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .sweep import backward, grad
from .tape import Node, Tape, enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from . import data, nn, ops, optim
from .serialization import load, save
from .check import check_tape
from .steps import backward_steps, explain
from .compile import compile

__version__ = "0.1.0"

__all__ = ["Tensor", "tensor", "Tape", "Node", "Function", "once_differentiable", "backward",
           "grad", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
           "gradcheck", "gradgradcheck", "GradcheckError", "detect_anomaly", "ops", "nn", "optim", "data",
           "save", "load", "check_tape", "backward_steps", "explain", "compile"]
