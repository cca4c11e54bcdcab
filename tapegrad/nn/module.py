"""`Module`: the base class of layers, losses and networks, with torch.nn's API.

A module owns parameters and submodules, registered by attribute
assignment, and computes `forward`. Calling a module records its ops on
the tape (tagged with the module, so pictures can group them) and remembers
its output, so that the course-style ``model.backward(grad_output)`` can
run the reverse sweep from it.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict, namedtuple

import torch

from ..tape import _state, no_grad
from ..tensor import Tensor
from .parameter import Parameter

# What load_state_dict returns, with torch's names (it unpacks as a pair).
IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Module:
    """Base class for all layers and networks.

    Subclasses call ``super().__init__()`` first, assign parameters and
    submodules as attributes, and define ``forward``.
    """

    training: bool

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_last_output", None)
        # What the tape nodes recorded in forward point at: a weak reference, as this
        # module keeps its latest output (and so that output's tape) alive.
        object.__setattr__(self, "_weakref", weakref.ref(self))

    # --- registration -------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {name!r} before Module.__init__() ran: call "
                                 f"super().__init__() first in {type(self).__name__}.__init__")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        # Stored as a plain attribute too, so that self.weight is a fast lookup.
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter({name!r}, ...) takes a Parameter or None, "
                            f"got {type(param).__name__}")
        if param is None:
            self._parameters.pop(name, None)
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, param)

    def add_module(self, name: str, module: Module) -> None:
        if not isinstance(module, Module):
            raise TypeError(f"add_module({name!r}, ...) takes a Module, got {type(module).__name__}")
        setattr(self, name, module)

    # --- running -------------------------------------------------------------
    def forward(self, *inputs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *inputs, **kwargs):
        outer = _state.module
        _state.module = self._weakref
        try:
            out = self.forward(*inputs, **kwargs)
        finally:
            _state.module = outer
        if outer is None:
            # Called by the user, not from another module's forward: keep the output for
            # the course API's backward(). Layers inside a model keep nothing, or every
            # layer's output would stay alive until the next step. (A plain attribute:
            # __setattr__'s registration is skipped.)
            self.__dict__["_last_output"] = out
        return out

    def backward(self, grad_output):
        """The course API: sweep the tape back from this module's latest output.

        ``model.backward(loss_fn.backward())`` accumulates the same
        gradients into the parameters as ``loss.backward()``. Returns None.
        The latest output is that of the latest call made directly, not from
        inside another module's forward (call it on the whole model).
        """
        out = self._last_output
        if out is None:
            raise RuntimeError(f"{type(self).__name__}.backward(): this module has not been called "
                               "directly yet (a layer called by its model keeps no output); run a "
                               "forward pass first, and call backward() on the module you called")
        if not isinstance(out, Tensor) or not out.requires_grad:
            raise RuntimeError(f"{type(self).__name__}.backward(): its latest output was not "
                               "recorded (computed under no_grad, or nothing required grad)")
        out.backward(grad_output)

    # --- parameters and submodules ------------------------------------------
    def named_parameters(self, prefix: str = "", recurse: bool = True):
        """Yield (dotted name, parameter), e.g. ('0.weight', ...), each parameter once."""
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, param in module._parameters.items():
                if id(param) in seen:
                    continue
                seen.add(id(param))
                yield (f"{module_prefix}.{name}" if module_prefix else name), param

    def parameters(self, recurse: bool = True):
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def param(self):
        """The course API: a list of (parameter, gradient) pairs."""
        return [(p, p.grad) for p in self.parameters()]

    def named_children(self):
        yield from self._modules.items()

    def children(self):
        yield from self._modules.values()

    def named_modules(self, prefix: str = ""):
        """Yield (dotted name, module) for this module and every descendant, depth first."""
        stack = [(prefix, self)]
        seen = set()
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{child_name}" if name else child_name, child)
                        for child_name, child in module._modules.items()]
            stack.extend(reversed(children))

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none:
                p._grad = None
            elif p._grad is not None:
                p._grad = torch.zeros_like(p._grad)

    # --- modes, devices, dtypes ---------------------------------------------
    def train(self, mode: bool = True) -> Module:
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def to(self, device=None, dtype=None) -> Module:
        """Move parameters (and gradients) in place to `device` and/or floating `dtype`."""
        if isinstance(device, torch.dtype):
            device, dtype = None, device
        if dtype is not None and not dtype.is_floating_point:
            raise TypeError(f"Module.to(dtype=...) takes a floating-point dtype, got {dtype}")
        for p in self.parameters():
            p.data = p.data.to(device=device, dtype=dtype)
            if p._grad is not None:
                p._grad = p._grad.to(device=device, dtype=dtype)
        return self

    def double(self) -> Module:
        return self.to(dtype=torch.float64)

    def float(self) -> Module:
        return self.to(dtype=torch.float32)

    # --- state ----------------------------------------------------------------
    def state_dict(self) -> OrderedDict:
        """{dotted parameter name: tensor}, sharing storage with the parameters (like torch)."""
        return OrderedDict((name, p.data) for name, p in self.named_parameters())

    def load_state_dict(self, state_dict, strict: bool = True):
        """Copy values into the existing parameters, keeping their dtype and device.

        Everything is checked before anything is copied: a missing or
        unexpected key (with strict=True) or a wrong shape raises an error
        naming it and leaves the module unchanged.
        """
        if not hasattr(state_dict, "items"):
            raise TypeError(f"load_state_dict() takes a mapping of names to tensors, got "
                            f"{type(state_dict).__name__}")
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems = []
        if strict and missing:
            problems.append(f"missing keys: {', '.join(missing)}")
        if strict and unexpected:
            problems.append(f"unexpected keys: {', '.join(unexpected)}")
        for name, value in state_dict.items():
            if name not in own:
                continue
            value = value.data if isinstance(value, Tensor) else value
            if not isinstance(value, torch.Tensor):
                problems.append(f"{name}: expected a tensor, got {type(value).__name__}")
            elif value.shape != own[name].shape:
                problems.append(f"{name}: shape {tuple(value.shape)} in the state dict, "
                                f"{tuple(own[name].shape)} in the model")
        if problems:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__} (the "
                               "module is unchanged):\n  " + "\n  ".join(problems))
        with no_grad():
            for name, value in state_dict.items():
                if name in own:
                    value = value.data if isinstance(value, Tensor) else value
                    own[name].data.copy_(value)
        return IncompatibleKeys(missing, unexpected)

    # --- printing -------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text between the parentheses of this module's repr (override it)."""
        return ""

    def __repr__(self):
        lines = []
        extra = self.extra_repr()
        if extra:
            lines = extra.split("\n")
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        if not self._modules:
            return f"{type(self).__name__}({extra})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"
