"""tapegrad.optim: optimizers that update parameters in place, never recorded."""

from .adam import Adam
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam"]
