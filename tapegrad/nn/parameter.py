"""`Parameter`: a leaf tensor that a Module owns and an optimizer updates.

`Buffer`: a tensor that is module state but is not trained (running means).
"""

import copy

import torch

from ..tensor import Tensor, _rebuilt


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

    def __deepcopy__(self, memo):
        """copy.deepcopy, as torch's Parameter: a new Parameter with a copy of the values
        (laid out alike) and requires_grad, and no .grad."""
        data = self._data.clone(memory_format=torch.preserve_format)
        new = _rebuilt(type(self), data, self._requires_grad)
        memo[id(self)] = new
        state = self.__getstate__()
        if state is not None:
            new.__setstate__(copy.deepcopy(state, memo))
        return new


class Buffer(Tensor):
    """A tensor that registers itself on a Module as a buffer when assigned to an attribute.

    ``self.running_mean = Buffer(torch.zeros(3))`` is
    ``self.register_buffer("running_mean", torch.zeros(3))``: the buffer
    moves with ``module.to()`` and, if `persistent`, is saved in
    ``module.state_dict()``, but it is not a parameter (no optimizer
    updates it).
    """

    __slots__ = ("persistent",)

    def __init__(self, data, *, persistent: bool = True):
        if isinstance(data, Tensor):
            data = data.data
        if not isinstance(data, torch.Tensor):
            data = torch.as_tensor(data)
        super().__init__(data)
        self.persistent = persistent
