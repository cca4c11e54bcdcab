"""`Optimizer`: what SGD and Adam share: the parameter list, argument checks, zero_grad."""

from __future__ import annotations

import math

import torch

from ..tensor import Tensor


class Optimizer:
    """Holds the parameters to update; subclasses define `step()`.

    Updates are in place on ``p.data`` and never recorded on a tape. Each
    one bumps the parameters' version counters, so a tape recorded before a
    step refuses to run its backward afterwards (its saved weights are stale).
    """

    def __init__(self, params, defaults: dict):
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__} takes an iterable of parameters, got a single "
                            "Tensor; wrap it in a list: [p]")
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list; pass "
                             "model.parameters() of a model that has parameters")
        for index, p in enumerate(self.params):
            if not isinstance(p, Tensor) or not p.is_leaf or not p.requires_grad:
                raise TypeError(f"{type(self).__name__}: parameter {index} must be a leaf Tensor "
                                f"with requires_grad=True, got {type(p).__name__}")
        self.defaults = defaults
        self.state: dict = {}

    @staticmethod
    def _check_number(name: str, value, low: float = 0.0, high: float | None = None,
                      high_open: bool = False, owner: str = "") -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{owner}: {name} must be a finite number, got {value!r}")
        if value < low or (high is not None and (value >= high if high_open else value > high)):
            if high is None:
                bound = f">= {low}"
            else:
                bound = f"in [{low}, {high}{')' if high_open else ']'}"
            raise ValueError(f"{owner}: {name} must be {bound}, got {value!r}")

    def zero_grad(self, set_to_none: bool = True) -> None:
        if set_to_none:
            for p in self.params:
                p._grad = None
            return
        for p in self.params:
            if p._grad is not None:
                p._grad = torch.zeros_like(p._grad)

    def step(self):
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {"state": {i: dict(self.state[id(p)]) for i, p in enumerate(self.params)
                          if id(p) in self.state},
                "defaults": dict(self.defaults)}

    def __repr__(self):
        args = ", ".join(f"{k}={v}" for k, v in self.defaults.items())
        return f"{type(self).__name__}({args})"
