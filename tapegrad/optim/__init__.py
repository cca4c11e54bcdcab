"""tapegrad.optim: optimizers that update parameters in place, never recorded.

    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

torch.optim's names, options, update rules and state-dict layout (see optimizer.py).
"""

from .adam import Adam
from .adamw import AdamW
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]
