"""`SGD`: stochastic gradient descent with momentum, dampening, weight decay, Nesterov, maximize.

torch.optim.SGD's update rule, for each parameter p with gradient g, learning
rate lr, momentum mu, dampening tau and weight decay lambda:

    g = -g                               if maximize
    g = g + lambda * p                   (if lambda != 0)
    b = g                                (first step; if mu != 0)
    b = mu * b + (1 - tau) * g           (later steps)
    g = g + mu * b  if nesterov  else b
    p = p - lr * g

Parameters that torch's fused kernel handles exactly (see
`_kernels.fused_sgd_takes`: real float32/float64 on the CPU or a GPU, the
parameter, its gradient and its momentum buffer laid out alike in memory)
are updated by one kernel call per device and dtype; the rest (complex,
half precision, strided views, a gradient laid out unlike its parameter)
one tensor at a time by the same rule in public torch.
"""

from __future__ import annotations

import torch

from .. import _kernels
from .optimizer import Optimizer, grad_of


class SGD(Optimizer):
    """SGD(params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *, maximize=False)

    Options (also per parameter group): lr >= 0, momentum >= 0, any finite
    dampening, weight_decay >= 0; nesterov needs momentum > 0 and dampening 0.
    A bad value raises ValueError (TypeError if it is not a number), like torch.
    State: ``state[p]["momentum_buffer"]`` (b above) once p has stepped with momentum.
    """

    _param_shaped_state = ("momentum_buffer",)

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    def _check_options(self, options, where):
        for key in ("lr", "momentum", "weight_decay"):
            self._check_number(options, key, where)
        self._check_number(options, "dampening", where, low=-float("inf"))
        if options.get("nesterov") and (options["momentum"] <= 0 or options["dampening"] != 0):
            raise ValueError(f"{where}: nesterov=True needs momentum > 0 and dampening = 0, got "
                             f"momentum={options['momentum']}, dampening={options['dampening']}")

    def step(self, closure=None):
        """Update every parameter that has a gradient (rule in the module docstring)."""
        loss = self._begin_step(closure)
        plans = [self._plan(group) for group in self.param_groups]   # checks before any update
        for group, (calls, started) in zip(self.param_groups, plans):
            for (fused, first, *_), (params, grads, buffers) in calls.items():
                update = _kernels.sgd_step if fused else _kernels._public_sgd
                update(params, grads, buffers, lr=group["lr"], momentum=group["momentum"],
                       dampening=group["dampening"], weight_decay=group["weight_decay"],
                       nesterov=group["nesterov"], maximize=group["maximize"],
                       is_first_step=first)
            for p, buf in started:
                self.state[p]["momentum_buffer"] = buf
        return loss

    def _plan(self, group):
        """Sort a group's parameters into kernel calls.

        Returns ({(fused?, first step of the buffers?, [device, dtype]): (params, grads,
        buffers)}, [(p, buffer) for buffers that start at this step]).
        """
        calls: dict = {}
        started = []
        for p in group["params"]:
            g = grad_of(p)
            if g is None:
                continue
            if g.shape != p.data.shape:
                raise RuntimeError(f"SGD: a parameter of shape {tuple(p.shape)} has a gradient of "
                                   f"shape {tuple(g.shape)}; nothing was updated")
            buf, first = None, False
            if group["momentum"]:
                buf = self.state.get(p, {}).get("momentum_buffer")
                if buf is None:
                    buf, first = torch.empty_like(p.data), True
                    started.append((p, buf))
            if _kernels.fused_sgd_takes(p.data, g, buf):
                key = (True, first, p.data.device, p.data.dtype)
            else:
                key = (False, first)
            params, grads, buffers = calls.setdefault(key, ([], [], []))
            params.append(p.data)
            grads.append(g)
            buffers.append(buf)
        return calls, started
