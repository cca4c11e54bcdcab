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
    """SGD(params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
    maximize=False)

    Options (also per parameter group): lr >= 0, momentum >= 0, any finite
    dampening, weight_decay >= 0; nesterov needs momentum > 0 and dampening 0.
    A bad value raises ValueError (TypeError if it is not a number), like torch.
    State: ``state[p]["momentum_buffer"]`` (b above) once p has stepped with momentum.
    """

    _param_shaped_state = ("momentum_buffer",)

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ):
        super().__init__(
            params,
            dict(
                lr=lr,
                momentum=momentum,
                dampening=dampening,
                weight_decay=weight_decay,
                nesterov=nesterov,
                maximize=maximize,
            ),
        )
        self._fused = _Memo()  # p -> what _fused_as knows of p.data and its buffer

    def _check_options(self, options, where):
        for key in ("lr", "momentum", "weight_decay"):
            self._check_number(options, key, where)
        self._check_number(options, "dampening", where, low=-float("inf"))
        if options.get("nesterov") and (options["momentum"] <= 0 or options["dampening"] != 0):
            raise ValueError(
                f"{where}: nesterov=True needs momentum > 0 and dampening = 0, got "
                f"momentum={options['momentum']}, dampening={options['dampening']}"
            )

    def step(self, closure=None):
        """Update every parameter that has a gradient (rule in the module docstring)."""
        loss = self._run_closure(closure)
        for group in self.param_groups:
            calls, started = self._plan(group)
            for (fused_as, first), (params, grads, buffers) in calls.items():
                update = _kernels._public_sgd if fused_as is None else _kernels.sgd_step
                update(
                    params,
                    grads,
                    buffers,
                    lr=group["lr"],
                    momentum=group["momentum"],
                    dampening=group["dampening"],
                    weight_decay=group["weight_decay"],
                    nesterov=group["nesterov"],
                    maximize=group["maximize"],
                    is_first_step=first,
                )
            for p, buf in started:
                self.state[p]["momentum_buffer"] = buf
        return loss

    def _plan(self, group):
        """Sort a group's parameters into kernel calls.

        Returns ({(fused as (dtype, device index), or None; first step of the buffers?):
        (params, grads, buffers)}, [(p, buffer) for buffers that start at this step]).
        """
        calls: dict = {}
        started = []
        momentum, state = group["momentum"], self.state
        for p in group["params"]:
            g = grad_of(p)
            if g is None:
                continue
            data = p.data
            buf, first = None, False
            if momentum:
                entry = state.get(p)
                buf = entry.get("momentum_buffer") if entry else None
                if buf is None:
                    buf, first = torch.empty_like(data), True
                    started.append((p, buf))
            key = (self._fused_as(p, data, g, buf), first)
            call = calls.get(key)
            if call is None:
                call = calls[key] = ([], [], [])
            call[0].append(data)
            call[1].append(g)
            call[2].append(buf)
        return calls, started

    def _fused_as(self, p, data, g, buf):
        """(dtype, device index) to update p with the fused kernel at this step, or None.

        `_kernels.fused_sgd_takes` decides. What it checks of the parameter and
        its buffer (dtype, device, layout) is kept while p.data and the buffer
        stay the same tensors, so each step checks only the gradient's dtype
        and layout: this runs for every parameter at every step. (A leaf's
        gradient has its shape and device: the .grad setter and the sweep
        check them.)
        """
        known = self._fused.get(p)
        if known is None or known[0] is not data or known[1] is not buf:
            fused_as = (data.dtype, data.get_device())
            if not _kernels.fused_sgd_takes(data, data, buf):
                fused_as = None
            layout = None if data.is_contiguous() else data.stride()
            known = self._fused[p] = (data, buf, fused_as, layout)
        fused_as, layout = known[2], known[3]
        if fused_as is None or g.dtype is not fused_as[0] or g.shape != data.shape:
            return None  # (a .data replaced after backward(): the public path refuses it)
        alike = g.is_contiguous() if layout is None else g.stride() == layout
        return fused_as if alike else None


class _Memo(dict):
    """A cache, not state: what `SGD._fused_as` last learnt of a parameter's data and buffer.

    Its own class so that `tapegrad.compile` treats it as an opaque object rather than
    state the step writes: everything it remembers (identity, dtype, device and layout of
    p.data and of the momentum buffer) is among what a compiled step's guards check.
    """

    __slots__ = ()
