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
        # p -> what _learn found of p.data and its buffer; id(group) -> what _repeat checks
        self._fused = _Memo()

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
        loss = None if closure is None else self._run_closure(closure)
        for group in self.param_groups:
            again = self._repeat(group)
            if again is not None:  # the last step's plan holds: one fused call for the group
                _update(_kernels.sgd_step, group, *again, False)
                continue
            calls, started = self._plan(group)
            for (fused_as, first), (params, grads, buffers) in calls.items():
                kernel = _kernels._public_sgd if fused_as is None else _kernels.sgd_step
                _update(kernel, group, params, grads, buffers, first)
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
        momentum, state, memo = group["momentum"], self.state, self._fused
        for p in group["params"]:
            g = p._grad
            if g is None:
                continue
            if g.__class__ is not torch.Tensor:
                g = grad_of(p)  # a recorded gradient (after create_graph=True)
            data = p._data
            buf, first = None, False
            if momentum:
                entry = state.get(p)
                buf = entry.get("momentum_buffer") if entry else None
                if buf is None:
                    buf, first = torch.empty_like(data), True
                    started.append((p, buf))
            # The fused kernel where it is exact: what _learn found of p.data and the buffer
            # holds while they are the same tensors, the data laid out as then; the gradient
            # is checked at every step.
            known = memo.get(p)
            if (
                known is None
                or known[0] is not data
                or known[1] is not buf
                or not (data.is_contiguous() if known[3] is None else data.stride() == known[3])
            ):  # (the same tensors, laid out anew in place, are learnt again)
                known = self._learn(p, data, buf)
            fused_as, layout = known[2], known[3]
            if fused_as is not None:
                alike = g.is_contiguous() if layout is None else g.stride() == layout
                if not alike or g.dtype is not fused_as[0] or g.shape != data.shape:
                    fused_as = None  # the public path (it refuses a .data of another shape)
            key = (fused_as, first)
            call = calls.get(key)
            if call is None:
                call = calls[key] = ([], [], [])
            call[0].append(data)
            call[1].append(g)
            call[2].append(buf)
        if len(calls) == 1:
            ((fused_as, first),) = calls
            datas, grads, bufs = calls[fused_as, first]
            if fused_as is not None and not first and len(datas) == len(group["params"]):
                # One fused call for the whole group: remembered, for _repeat at the next step.
                strides = None if all(g.is_contiguous() for g in grads) else _strides(grads)
                memo[id(group)] = (len(datas), datas, bufs, fused_as[0], strides)
        return calls, started

    def _repeat(self, group):
        """The last step's one fused call again, (params' data, grads, buffers), if it
        holds; else None (and `_plan` sorts afresh).

        The common case: the group holds as many parameters as when `_plan`
        sent them all to one fused kernel call, each with the same data (laid
        out as then) and momentum buffer, and a plain gradient of the same
        dtype and strides. (Which Parameter objects hold them does not matter: the
        kernel updates the data and the buffers, as the public path would.)
        One pass, each parameter visited once: measured faster in a training
        step than a pass per check.
        """
        last = self._fused.get(id(group))
        if last is None:
            return None
        count, datas, bufs, dtype, strides = last
        momentum = group["momentum"]
        if (bufs[0] is None) != (not momentum):
            return None  # momentum switched on or off since: buffers start or stop
        params = group["params"]
        if len(params) != count:
            return None
        state = self.state
        grads = []
        try:  # (None, a recorded gradient or a missing buffer fails: TypeError, AttributeError...)
            for i, p in enumerate(params):
                g = p._grad
                # (A gradient's dtype can change behind the .grad setter's back, e.g. by
                # p.grad.data = p.grad.data.double(): checked at every step. Its shape is
                # its parameter's: the setter and the sweep check that.)
                if p._data is not datas[i] or g.dtype is not dtype:
                    return None
                # The data's layout too: an in-place op (p.data.t_(), set_, as_strided_) keeps
                # the tensor and changes how the kernel would walk it.
                if strides is None:
                    if not (_is_contiguous(g) and _is_contiguous(p._data)):
                        return None
                elif not (_stride(g) == strides[i] == _stride(p._data)):
                    return None
                if momentum and state.get(p)["momentum_buffer"] is not bufs[i]:
                    return None
                grads.append(g)
        except (TypeError, AttributeError, KeyError):
            return None
        return datas, grads, bufs

    def _learn(self, p, data, buf):
        """What the fused kernel needs of p.data and its buffer, kept while they stay the same.

        Returns (data, buf, (dtype, device index) or None, data's strides or None
        if contiguous); None in third place where `_kernels.fused_sgd_takes`
        refuses them (a layout, dtype or device the kernel would get wrong). `_plan`
        then checks only the gradient at each step: its dtype and layout (a
        leaf's gradient has its shape and device: the .grad setter and the
        sweep check them).
        """
        fused_as = (data.dtype, data.get_device())
        if not _kernels.fused_sgd_takes(data, data, buf):
            fused_as = None
        layout = None if data.is_contiguous() else data.stride()
        known = self._fused[p] = (data, buf, fused_as, layout)
        return known


def _update(kernel, group, params, grads, buffers, first: bool) -> None:
    """kernel(params, grads, buffers) with the group's options; `first`: the buffers start."""
    kernel(
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


_is_contiguous = torch.Tensor.is_contiguous  # (TypeError for anything but a torch tensor)
_stride = torch.Tensor.stride


def _strides(tensors) -> list:
    return list(map(torch.Tensor.stride, tensors))


class _Memo(dict):
    """A cache, not state: what `SGD._learn` last learnt of a parameter's data and buffer.

    Its own class so that `tapegrad.compile` treats it as an opaque object rather than
    state the step writes: everything it remembers (identity, dtype, device and layout of
    p.data and of the momentum buffer) is among what a compiled step's guards check.
    """

    __slots__ = ()
