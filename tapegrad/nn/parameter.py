"""`Parameter`: a leaf tensor that a Module owns and an optimizer updates."""

import torch

from ..tensor import Tensor


class Parameter(Tensor):
    """A leaf Tensor that requires grad by default and registers itself on a Module.

    Assigning one to a module attribute (``self.weight = Parameter(...)``)
    makes it part of ``module.parameters()`` and ``module.state_dict()``.
    """

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True):
        if isinstance(data, Tensor):
            data = data.data
        if not isinstance(data, torch.Tensor):
            data = torch.as_tensor(data, dtype=torch.get_default_dtype())
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()
