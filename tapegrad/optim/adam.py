"""`Adam` (Kingma & Ba, 2015), with torch.optim.Adam's defaults and update rule.

For each parameter p with gradient g, at step t:

    g = g + weight_decay * p
    m = beta1 * m + (1 - beta1) * g           (first moment)
    v = beta2 * v + (1 - beta2) * g^2         (second moment)
    p = p - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
"""

from __future__ import annotations

import math

import torch

from .optimizer import Optimizer


class Adam(Optimizer):
    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        owner = "Adam"
        self._check_number("lr", lr, owner=owner)
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise ValueError(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}")
        self._check_number("betas[0]", betas[0], 0.0, 1.0, high_open=True, owner=owner)
        self._check_number("betas[1]", betas[1], 0.0, 1.0, high_open=True, owner=owner)
        self._check_number("eps", eps, owner=owner)
        self._check_number("weight_decay", weight_decay, owner=owner)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))
        self.lr, self.betas, self.eps, self.weight_decay = lr, tuple(betas), eps, weight_decay

    def step(self) -> None:
        beta1, beta2 = self.betas
        for p in self.params:
            g = p._grad
            if g is None:
                continue
            state = self.state.get(id(p))
            if state is None:
                state = self.state[id(p)] = {"step": 0, "exp_avg": torch.zeros_like(p.data),
                                             "exp_avg_sq": torch.zeros_like(p.data)}
            state["step"] += 1
            t = state["step"]
            if self.weight_decay:
                g = g.add(p.data, alpha=self.weight_decay)
            m, v = state["exp_avg"], state["exp_avg_sq"]
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            bias1 = 1 - beta1 ** t
            bias2 = 1 - beta2 ** t
            denom = (v.sqrt() / math.sqrt(bias2)).add_(self.eps)
            p.data.addcdiv_(m, denom, value=-self.lr / bias1)
