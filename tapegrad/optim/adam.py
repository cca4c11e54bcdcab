"""`Adam` (Kingma & Ba, 2015), with torch.optim.Adam's options, defaults and update rule.

For each parameter p with gradient g, at its step t (counted from 1), with
learning rate lr, betas (b1, b2), eps and weight decay lambda:

    g = -g                                   if maximize
    p = p * (1 - lr * lambda)                if decoupled_weight_decay (AdamW)
    g = g + lambda * p                       otherwise (L2 penalty; if lambda != 0)
    m = b1 * m + (1 - b1) * g                (first moment: m.lerp_(g, 1 - b1))
    v = b2 * v + (1 - b2) * g * g            (second moment)
    v_max = max(v_max, v)                    if amsgrad, and v_max replaces v below
    p = p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

A complex parameter is treated as a real one with twice the elements (its
real and imaginary parts, ``torch.view_as_real``), like torch: v holds the
squares of each part, not |g|^2.

This is the per-tensor rule that torch.optim.Adam runs on the CPU, written
the same way, so the two agree to the last bit. (torch's fused Adam kernel
rounds differently, so it is not used here.)
"""

from __future__ import annotations

import torch

from .optimizer import Optimizer, _scalar_dtype, grad_of


class Adam(Optimizer):
    """Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
    maximize=False, decoupled_weight_decay=False)

    Options (also per parameter group): lr >= 0, 0 <= b1, b2 < 1, eps >= 0,
    weight_decay >= 0; a bad value raises ValueError (TypeError if it is
    not a number, or betas is not a pair), like torch.
    State per parameter: "step" (a 0-d tensor, t), "exp_avg" (m),
    "exp_avg_sq" (v) and, with amsgrad, "max_exp_avg_sq" (v_max).
    """

    _param_shaped_state = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas=(0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ):
        if isinstance(betas, list):
            betas = tuple(betas)
        super().__init__(
            params,
            dict(
                lr=lr,
                betas=betas,
                eps=eps,
                weight_decay=weight_decay,
                amsgrad=amsgrad,
                maximize=maximize,
                decoupled_weight_decay=decoupled_weight_decay,
            ),
        )

    def _check_options(self, options, where):
        for key in ("lr", "eps", "weight_decay"):
            self._check_number(options, key, where)
        betas = options.get("betas")
        if not isinstance(betas, (tuple, list)):
            raise TypeError(f"{where}: betas must be a pair (beta1, beta2), got {betas!r}")
        if len(betas) != 2:
            raise ValueError(f"{where}: betas must be a pair (beta1, beta2), got {betas!r}")
        for i, beta in enumerate(betas):
            self._check_number({f"betas[{i}]": beta}, f"betas[{i}]", where, high=1.0)

    def _required_state(self, group):
        keys = ("step", "exp_avg", "exp_avg_sq")
        return keys + ("max_exp_avg_sq",) if group["amsgrad"] else keys

    def step(self, closure=None):
        """Update every parameter that has a gradient (rule in the module docstring)."""
        loss = self._run_closure(closure)
        self._check_amsgrad_state()
        # As torch.optim, under no_grad: a gradient that requires torch's grad records nothing.
        with torch.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    g = grad_of(p)
                    if g is not None:
                        self._update(p.data, g, self.state[p], group)
        return loss

    def _check_amsgrad_state(self):
        """Before any update: amsgrad switched on after a parameter took steps without it."""
        for group in self.param_groups:
            if group["amsgrad"]:
                for position, p in enumerate(group["params"]):
                    state = self.state.get(p)
                    if state and "max_exp_avg_sq" not in state:
                        raise KeyError(
                            f"{type(self).__name__}.step: parameter {position} of its group has "
                            "taken steps without amsgrad, so its state has no 'max_exp_avg_sq' "
                            "(torch.optim fails here too); set amsgrad=True when making the "
                            "optimizer, or forget the state first (optimizer.state.clear())"
                        )

    @staticmethod
    def _update(p, g, state, group):
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        weight_decay, amsgrad = group["weight_decay"], group["amsgrad"]
        if not state:
            state["step"] = torch.tensor(0.0, dtype=_scalar_dtype())
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if amsgrad:
                state["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        if group["maximize"]:
            g = -g
        state["step"] += 1
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                p.mul_(1 - lr * weight_decay)
            else:
                g = g.add(p, alpha=weight_decay)
        m, v, v_max = state["exp_avg"], state["exp_avg_sq"], state.get("max_exp_avg_sq")
        if p.is_complex():
            p, g, m, v = (torch.view_as_real(t) for t in (p, g, m, v))
            if amsgrad:
                v_max = torch.view_as_real(v_max)
        m.lerp_(g, 1 - beta1)
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        t = state["step"].item()
        step_size = lr / (1 - beta1**t)
        bias2_sqrt = (1 - beta2**t) ** 0.5
        if amsgrad:
            torch.maximum(v_max, v, out=v_max)
            v = v_max
        denom = (v.sqrt() / bias2_sqrt).add_(eps)
        p.addcdiv_(m, denom, value=-step_size)
