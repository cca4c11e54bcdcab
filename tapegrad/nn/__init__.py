"""tapegrad.nn: layers, losses and networks, with torch.nn's names."""

from . import functional, init
from .activation import (
    GELU,
    GELUBackward,
    GELUFunction,
    LeakyReLU,
    LeakyReLUBackward,
    LeakyReLUFunction,
    LogSoftmax,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from .container import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .conv import Conv2d, Conv2dFunction, Conv2dInputGrad, Conv2dWeightGrad
from .dropout import Dropout, DropoutFunction
from .flatten import Flatten, Identity
from .linear import Linear, LinearFunction
from .loss import (
    BCEFunction,
    BCELoss,
    BCEWithLogitsFunction,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    LossMSE,
    MSEFunction,
    MSELoss,
    NLLLoss,
    NLLLossBackward,
    NLLLossFunction,
)
from .module import IncompatibleKeys, Module, RemovableHandle
from .normalization import BatchNorm1d, BatchNorm2d, BatchNormFunction, LayerNorm, LayerNormFunction
from .parameter import Buffer, Parameter
from .pooling import (
    AvgPool2d,
    AvgPool2dBackward,
    AvgPool2dFunction,
    MaxPool2d,
    MaxPool2dFunction,
    MaxPool2dGather,
    MaxPool2dScatter,
)
from .sparse import Embedding, EmbeddingBackward, EmbeddingFunction

__all__ = [
    "Module",
    "Parameter",
    "Buffer",
    "Sequential",
    "ModuleList",
    "ModuleDict",
    "ParameterList",
    "ParameterDict",
    "RemovableHandle",
    "IncompatibleKeys",
    "Linear",
    "LinearFunction",
    "ReLU",
    "Tanh",
    "Sigmoid",
    "MSELoss",
    "LossMSE",
    "BCELoss",
    "MSEFunction",
    "BCEFunction",
    "init",
    "functional",
    # layers
    "Conv2d",
    "MaxPool2d",
    "AvgPool2d",
    "Flatten",
    "Identity",
    "Dropout",
    "BatchNorm1d",
    "BatchNorm2d",
    "LayerNorm",
    "Embedding",
    "LeakyReLU",
    "GELU",
    "Softmax",
    "LogSoftmax",
    # losses
    "CrossEntropyLoss",
    "NLLLoss",
    "BCEWithLogitsLoss",
    # their ops
    "Conv2dFunction",
    "Conv2dInputGrad",
    "Conv2dWeightGrad",
    "MaxPool2dFunction",
    "MaxPool2dScatter",
    "MaxPool2dGather",
    "AvgPool2dFunction",
    "AvgPool2dBackward",
    "DropoutFunction",
    "BatchNormFunction",
    "LayerNormFunction",
    "EmbeddingFunction",
    "EmbeddingBackward",
    "LeakyReLUFunction",
    "LeakyReLUBackward",
    "GELUFunction",
    "GELUBackward",
    "NLLLossFunction",
    "NLLLossBackward",
    "BCEWithLogitsFunction",
]
