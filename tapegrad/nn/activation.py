"""Activation layers. Their derivatives live with the ops in `tapegrad/ops/unary.py`."""

from .. import ops
from .module import Module


class ReLU(Module):
    """y = max(x, 0)"""

    def forward(self, x):
        return ops.ReLU.apply(x)


class Tanh(Module):
    """y = tanh(x)"""

    def forward(self, x):
        return ops.Tanh.apply(x)


class Sigmoid(Module):
    """y = 1 / (1 + exp(-x))"""

    def forward(self, x):
        return ops.Sigmoid.apply(x)
