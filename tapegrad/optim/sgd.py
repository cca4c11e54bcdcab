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
parameter, its gradient and its momentum buffer of one shape, laid out alike
in memory and not sharing it) are updated by one kernel call per run of
consecutive such parameters of one device and dtype (in a model: one call);
the rest (complex, half precision, strided views, a gradient laid out unlike
its parameter) one tensor at a time by the same rule in public torch. The
calls run in the group's order, as torch.optim's loop does.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .. import _kernels
from ..tensor import Tensor
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
        self._opt_called = True  # (for the schedulers' warning: see Optimizer.__init_subclass__)
        loss = None if closure is None else self._run_closure(closure)
        for index, group in enumerate(self.param_groups):
            again = self._repeat(group)
            if again is not None:  # the last step's plan holds: one fused call for the group
                try:
                    _update(_kernels.sgd_step, group, *again, False)
                except BaseException:
                    self._fused.pop(id(group), None)  # the next step plans afresh
                    raise
                continue
            calls, started = self._plan(group, index)
            for (fused_as, first), (params, grads, buffers) in calls:
                kernel = _kernels._public_sgd if fused_as is None else _kernels.sgd_step
                _update(kernel, group, params, grads, buffers, first)
            for p, buf in started:
                self.state[p]["momentum_buffer"] = buf
        return loss

    step.notes_its_call = True  # type: ignore[attr-defined]

    def _plan(self, group, index):
        """Sort a group's parameters into kernel calls, in the group's order (`index`: the
        group's place in param_groups, for errors).

        Returns ([((fused as (dtype, device index), or None; first step of the buffers?),
        (params, grads, buffers)), ...], [(p, buffer) for buffers that start at this step]).
        Consecutive parameters that take the same call share it; the calls run in
        list order, as torch.optim's loop does (it matters where parameters overlap
        in memory: views of one tensor).
        """
        calls: list = []
        started = []
        momentum, state, memo = group["momentum"], self.state, self._fused
        for i, p in enumerate(group["params"]):
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
            if g.shape != data.shape or (buf is not None and buf.shape != data.shape):
                raise _shape_error(index, i, data, g, buf)
            # The fused kernel where it is exact: what _learn found of p.data and the buffer
            # holds while they are the same tensors with the same dtype, shape, layout and
            # memory; the gradient is checked at every step.
            known = memo.get(p)
            if (
                known is None
                or known[0] is not data
                or known[1] is not buf
                or known[4] != _metadata(data, buf)
            ):  # (the same tensors, changed in place: resized, laid out anew, are learnt again)
                known = self._learn(p, data, buf)
            fused_as, layout = known[2], known[3]
            if fused_as is not None:
                alike = g.is_contiguous() if layout is None else g.stride() == layout
                if (
                    not alike
                    or g.dtype is not fused_as[0]
                    or g.is_neg()  # (a negative-bit view: the kernel refuses it)
                    or (buf is not None and _kernels.same_memory(g, buf))
                    or (g is not data and _kernels.same_memory(g, data))
                ):
                    fused_as = None  # the public path
            key = (fused_as, first)
            if calls and calls[-1][0] == key:
                call = calls[-1][1]
            else:
                call = ([], [], [])
                calls.append((key, call))
            call[0].append(data)
            call[1].append(g)
            call[2].append(buf)
        if len(calls) == 1:
            (((fused_as, first), (datas, grads, bufs)),) = calls
            if fused_as is not None and not first and len(datas) == len(group["params"]):
                # One fused call for the whole group: remembered, for _repeat at the next steps.
                guarded = [*datas, *grads, *(bufs if momentum else ())]
                memo[id(group)] = _Plan(
                    datas,
                    bufs,
                    _kernels.layout_guard(guarded),
                    Tensor._grads_from_user,
                )
        return calls, started

    def _repeat(self, group):
        """The last step's one fused call again, (params' data, grads, buffers), if it
        holds; else None (and `_plan` sorts afresh).

        The common case: the group holds as many parameters as when `_plan`
        sent them all to one fused kernel call, each with the same data and
        momentum buffer, and a gradient; the data, gradient and buffer of each
        still have the Python type, dtype, device, shape and strides that call
        was made for (the kernel walks them as flat arrays: a tensor resized or
        laid out anew, in place or by torch's ``.data =`` setter, would be
        walked wrongly or past its end). `_kernels.layout_guard` checks all of
        that in one call. Which Parameter objects hold them does not matter:
        the kernel updates the data and the buffers, as the public path would.
        No gradient may have come from the user's code since
        (`Tensor._grads_from_user`: set by hand, a seed given to backward, a
        hook's replacement, a user Function's backward): one may share a
        buffer's or its parameter's memory, which `_plan` looks for (the
        sweep's own gradients are new tensors).

        Not read here, for the price of one or two more reads per tensor per
        step (`_plan` sees it, and the per-tensor path is then exact): memory
        re-pointed by torch's in-place ``set_`` or its ``.data =`` setter, used
        on the raw torch tensors (p.data, p.grad, a buffer), so that one of the
        three uses memory another uses (``p.grad.set_(buffer)``): the kernel,
        which reads each element before it writes, then differs from torch's loop.
        """
        last = self._fused.get(id(group))
        if last is None or last.from_user != Tensor._grads_from_user:
            return None  # (a gradient from the user's code may share memory with a buffer)
        datas, bufs, guard, _ = last
        momentum = group["momentum"]
        if (bufs[0] is None) != (not momentum):
            return None  # momentum switched on or off since: buffers start or stop
        params = group["params"]
        if len(params) != len(datas):
            return None
        state = self.state
        grads = []
        try:
            for p, data, buf in zip(params, datas, bufs):
                if p._data is not data or (momentum and state[p]["momentum_buffer"] is not buf):
                    return None
                grads.append(p._grad)
        except KeyError:  # no buffer
            return None
        if not guard.check(*datas, *grads, *(bufs if momentum else ())):
            return None  # (a missing or recorded gradient fails it too: not a torch tensor)
        return datas, grads, bufs

    def _learn(self, p, data, buf):
        """What the fused kernel needs of p.data and its buffer, kept while they stay the same.

        Returns (data, buf, (dtype, device index) or None, data's strides or None
        if contiguous, `_metadata(data, buf)`); None in third place where
        `_kernels.fused_sgd_takes` refuses them (a shape, layout, dtype or device
        the kernel would get wrong). `_plan` learns again when the metadata
        changes, and checks the gradient at each step: its dtype, shape and
        layout (its device is its parameter's: the .grad setter and the sweep
        check that).
        """
        fused_as = (data.dtype, data.get_device())
        if not _kernels.fused_sgd_takes(data, data, buf):
            fused_as = None
        layout = None if data.is_contiguous() else data.stride()
        known = self._fused[p] = (data, buf, fused_as, layout, _metadata(data, buf))
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


def _shape_error(group_index, i, data, g, buf) -> RuntimeError:
    """A parameter changed shape in place (p.data.resize_ ...) after its gradient or buffer."""
    where = f"SGD.step: parameter {i} of param group {group_index}"
    if g.shape != data.shape:
        return RuntimeError(
            f"{where} has shape {tuple(data.shape)} but its gradient has shape "
            f"{tuple(g.shape)}: one of them changed shape since backward (p.data = a tensor "
            "of another shape, resize_, set_, as_strided_ ...); call zero_grad() and "
            "backward() again, or "
            "set p.grad to a tensor of the parameter's shape"
        )
    return RuntimeError(
        f"{where} has shape {tuple(data.shape)} but its momentum buffer "
        f"(optimizer.state[p]['momentum_buffer']) has shape {tuple(buf.shape)}: one of them "
        "changed shape since the last step (p.data = a tensor of another shape, resize_, "
        "set_ ...); put a buffer of the parameter's shape "
        "there, or `del optimizer.state[p]` to start its momentum afresh"
    )


def _metadata(data, buf) -> tuple:
    """What an in-place op or torch's .data setter can change of p.data and its buffer (and
    whether inference mode is on: outside it an inference tensor takes the public path)."""
    here = (data.dtype, data.shape, data.stride(), data.data_ptr(), _inference_mode())
    return here if buf is None else (here, buf.dtype, buf.shape, buf.stride(), buf.data_ptr())


_inference_mode = torch.is_inference_mode_enabled


class _Plan(NamedTuple):
    """A group's one fused call, as `_plan` made it: what `_repeat` checks at the next steps."""

    datas: list  # each parameter's data (all the group's), its momentum buffer (or None)
    bufs: list
    guard: object  # `_kernels.layout_guard` of the datas, the gradients and the buffers
    from_user: int  # Tensor._grads_from_user when the plan was made


class _Memo(dict):
    """A cache, not state: what `SGD._learn` last learnt of a parameter's data and buffer,
    and each group's `_Plan`.

    Its own class so that `tapegrad.compile` treats it as an opaque object rather than
    state the step writes: everything it remembers (identity, dtype, device, shape and
    layout of p.data, of the gradients and of the momentum buffers) is among what a
    compiled step's guards check, but the count of gradients from the user's code, which a
    compiled step (it makes no plan) does not read.

    A copy (copy.deepcopy, pickle) starts empty: what it would hold describes the
    original's tensors, and a plan's layout guard (torch's C++ TensorGuards) cannot
    be pickled.
    """

    __slots__ = ()

    def __reduce__(self):
        return _Memo, ()
