"""tapegrad.nn.functional: the layers and losses as functions, with torch.nn.functional's names.

    import tapegrad.nn.functional as F
    h = F.max_pool2d(F.relu(F.conv2d(x, w, b, padding=1)), 2)
    loss = F.cross_entropy(h.reshape(len(h), -1) @ v, labels)

Each function records the same ops as its layer (the layers call these
functions, or the same ops directly), and takes the same arguments as
torch's. The ops and their derivatives live with the layers: `conv.py`,
`pooling.py`, `normalization.py`, `dropout.py`, `sparse.py`,
`activation.py`, `loss.py`.
"""

from __future__ import annotations

from .activation import gelu, leaky_relu, log_softmax, relu, sigmoid, softmax, tanh
from .conv import conv2d
from .dropout import dropout
from .linear import LinearFunction
from .loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    mse_loss,
    nll_loss,
)
from .normalization import batch_norm, layer_norm
from .pooling import avg_pool2d, max_pool2d
from .sparse import embedding


def linear(input, weight, bias=None):
    """y = x W^T + b (one fused node, as the Linear layer)."""
    return LinearFunction.apply(input, weight, bias)


__all__ = [
    "relu",
    "tanh",
    "sigmoid",
    "leaky_relu",
    "gelu",
    "softmax",
    "log_softmax",
    "linear",
    "conv2d",
    "max_pool2d",
    "avg_pool2d",
    "dropout",
    "batch_norm",
    "layer_norm",
    "embedding",
    "mse_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "nll_loss",
]
