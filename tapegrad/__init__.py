"""tapegrad: reverse-mode automatic differentiation on an explicit tape, built to be read.

import tapegrad as tg
x = tg.tensor([1.0, 2.0], requires_grad=True)
y = (x * x).sum()          # two ops, two nodes on y.tape
y.backward()               # a reverse loop over the tape
x.grad                     # tensor([2., 4.])
"""

from .tensor import Tensor, tensor  # first: the ops it loads need Tensor

# isort: split
from . import data, nn, ops, optim
from .anomaly import detect_anomaly
from .check import check_tape
from .compile import compile
from .function import Function, once_differentiable
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .ops.softmax import log_softmax, logsumexp, softmax
from .serialization import load, save
from .steps import backward_steps, explain
from .sweep import backward, grad
from .tape import Node, Tape, enable_grad, is_grad_enabled, no_grad, set_grad_enabled

# --- the torch surface: functions as torch has them (tapegrad.cat, tapegrad.zeros, ...) ---
# isort: split
from .factories import (
    arange,
    empty,
    empty_like,
    eye,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    rand,
    rand_like,
    randn,
    randn_like,
    zeros,
    zeros_like,
)
from .ops.join import cat, chunk, concat, concatenate, split, stack, unbind
from .ops.shape import clone, flatten, movedim, permute, reshape, squeeze, transpose, unsqueeze

# --- torch's functions: tapegrad.abs(x), tapegrad.max(x, dim), ... as torch.abs, torch.max ----
# (left out of __all__: `from tapegrad import *` must not hide Python's abs, max, min, sum, pow)
# isort: split
from .ops.arithmetic import pow
from .ops.reduction import (
    amax,
    amin,
    argmax,
    argmin,
    max,
    mean,
    min,
    prod,
    return_types,
    std,
    std_mean,
    sum,
    var,
    var_mean,
)
from .ops.select import clamp, clamp_max, clamp_min, clip, maximum, minimum, where
from .ops.unary import abs, absolute, cos, exp, log, log1p, relu, sigmoid, sign, sin, sqrt, tanh

add, sub, mul, div, neg, matmul, mm = (
    Tensor.add,
    Tensor.sub,
    Tensor.mul,
    Tensor.div,
    Tensor.neg,
    Tensor.matmul,
    Tensor.mm,
)
lt, le, gt, ge, eq, ne = Tensor.lt, Tensor.le, Tensor.gt, Tensor.ge, Tensor.eq, Tensor.ne
# --- end of torch's functions ------------------------------------------------------------------

__version__ = "0.1.0"

__all__ = [
    "Tensor",
    "tensor",
    "Tape",
    "Node",
    "Function",
    "once_differentiable",
    "backward",
    "grad",
    "no_grad",
    "enable_grad",
    "set_grad_enabled",
    "is_grad_enabled",
    "gradcheck",
    "gradgradcheck",
    "GradcheckError",
    "detect_anomaly",
    "ops",
    "nn",
    "optim",
    "data",
    "save",
    "load",
    "check_tape",
    "backward_steps",
    "explain",
    "compile",
]

__all__ += [  # the torch surface: creation, joins and shape functions
    "zeros",
    "ones",
    "full",
    "empty",
    "eye",
    "rand",
    "randn",
    "arange",
    "linspace",
    "zeros_like",
    "ones_like",
    "full_like",
    "empty_like",
    "rand_like",
    "randn_like",
    "cat",
    "concat",
    "concatenate",
    "stack",
    "split",
    "chunk",
    "unbind",
    "reshape",
    "flatten",
    "squeeze",
    "unsqueeze",
    "permute",
    "transpose",
    "movedim",
    "clone",
]

__all__ += ["softmax", "log_softmax", "logsumexp"]
