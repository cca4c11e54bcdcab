"""`SGD`: stochastic gradient descent with momentum, dampening, weight decay and Nesterov.

torch.optim.SGD's update rule, for each parameter p with gradient g:

    g = g + weight_decay * p
    buf = g                                   (first step)
    buf = momentum * buf + (1 - dampening) * g (later steps)
    g = g + momentum * buf  if nesterov  else  buf
    p = p - lr * g

All parameters are updated by one fused torch kernel call per step.
"""

from __future__ import annotations

import torch

from .. import _kernels
from .optimizer import Optimizer


class SGD(Optimizer):
    def __init__(self, params, lr: float, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        owner = "SGD"
        self._check_number("lr", lr, owner=owner)
        self._check_number("momentum", momentum, 0.0, 1.0, high_open=True, owner=owner)
        self._check_number("dampening", dampening, 0.0, 1.0, owner=owner)
        self._check_number("weight_decay", weight_decay, owner=owner)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov=True needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))
        self.lr, self.momentum, self.dampening = lr, momentum, dampening
        self.weight_decay, self.nesterov = weight_decay, nesterov
        self._buffers: dict[int, torch.Tensor] = {}

    def step(self) -> None:
        live = [p for p in self.params if p._grad is not None]
        if not live:
            return
        params = [p.data for p in live]
        grads = [p._grad for p in live]
        if not self.momentum:
            self._update(params, grads, [], False)
            return
        buffers = [self._buffers.get(id(p)) for p in live]
        fresh = [i for i, buf in enumerate(buffers) if buf is None]
        for i in fresh:
            p = live[i]
            buffers[i] = self._buffers[id(p)] = torch.empty_like(p.data)
            self.state[id(p)] = {"momentum_buffer": buffers[i]}
        if fresh and len(fresh) != len(live):
            # Some buffers start now, some carry on: two calls, as the kernel
            # takes one first-step flag for all.
            new = set(fresh)
            for first in (True, False):
                keep = [i for i in range(len(params)) if (i in new) == first]
                self._update([params[i] for i in keep], [grads[i] for i in keep],
                             [buffers[i] for i in keep], first)
        else:
            self._update(params, grads, buffers, bool(fresh))

    def _update(self, params, grads, buffers, is_first_step):
        _kernels.sgd_step(params, grads, buffers, lr=self.lr, momentum=self.momentum,
                          dampening=self.dampening, weight_decay=self.weight_decay,
                          nesterov=self.nesterov, is_first_step=is_first_step)
