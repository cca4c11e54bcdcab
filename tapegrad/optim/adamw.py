"""`AdamW` (Loshchilov & Hutter, 2019): Adam with decoupled weight decay, torch's defaults.

The weight decay shrinks the parameter directly instead of adding to the
gradient, so it never enters the moments m and v:

    p = p * (1 - lr * weight_decay)
    ... then Adam's update of p from m and v (see adam.py)

torch.optim.AdamW is Adam(decoupled_weight_decay=True) with weight_decay=1e-2;
so is this.
"""

from __future__ import annotations

from .adam import Adam


class AdamW(Adam):
    """AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
    maximize=False)

    Options and errors as Adam's; every group has decoupled_weight_decay=True.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas=(0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ):
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            maximize=maximize,
            decoupled_weight_decay=True,
        )

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        for group in self.param_groups:  # like torch: an AdamW stays AdamW
            group["decoupled_weight_decay"] = True
