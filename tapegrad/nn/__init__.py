"""tapegrad.nn: layers, losses and networks, with torch.nn's names."""

from . import init
from .activation import ReLU, Sigmoid, Tanh
from .container import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .linear import Linear, LinearFunction
from .loss import BCEFunction, BCELoss, LossMSE, MSEFunction, MSELoss
from .module import IncompatibleKeys, Module, RemovableHandle
from .parameter import Buffer, Parameter

__all__ = ["Module", "Parameter", "Buffer", "Sequential", "ModuleList", "ModuleDict",
           "ParameterList", "ParameterDict", "RemovableHandle", "IncompatibleKeys", "Linear",
           "LinearFunction", "ReLU", "Tanh", "Sigmoid", "MSELoss", "LossMSE", "BCELoss",
           "MSEFunction", "BCEFunction", "init"]
