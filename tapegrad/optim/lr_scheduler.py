"""Learning-rate schedulers, with torch.optim.lr_scheduler's names, semantics and state dicts.

A scheduler sets ``group["lr"]`` of every parameter group of its optimizer.
Call ``scheduler.step()`` once per epoch (or per iteration, as you count),
*after* ``optimizer.step()``:

    scheduler = StepLR(optimizer, step_size=30, gamma=0.1)
    for epoch in range(100):
        train(...)                  # optimizer.step() inside
        scheduler.step()            # the lr for the next epoch

Conventions (torch's): ``last_epoch`` counts the scheduler's steps; building
a scheduler records each group's lr as ``group["initial_lr"]`` (the base
lr) and takes step 0, so ``last_epoch`` is 0 right after construction.
Each later ``step()`` adds one and computes the new lr from the current one
(a chainable, recursive form: another scheduler or the user may change the
lr in between). ``get_last_lr()`` is the list of lrs the last step set.

To resume: build the optimizer and the scheduler as at the start, then
``optimizer.load_state_dict(...)`` and ``scheduler.load_state_dict(...)``.
"""

from __future__ import annotations

import math
import types
import warnings
from bisect import bisect_right
from collections import Counter

from .optimizer import Optimizer

__all__ = [
    "LRScheduler",
    "LambdaLR",
    "StepLR",
    "MultiStepLR",
    "ExponentialLR",
    "CosineAnnealingLR",
    "ReduceLROnPlateau",
]


def _check(
    value,
    name: str,
    owner: str,
    *,
    integer: bool = False,
    low=None,
    high=None,
    low_open: bool = False,
) -> None:
    """TypeError for a non-number, ValueError for a number out of range (torch's types)."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise TypeError(
            f"{owner}: {name} must be {'an integer' if integer else 'a number'}, got {value!r}"
        )
    if not math.isfinite(value):
        raise ValueError(f"{owner}: {name} must be finite, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(
            f"{owner}: {name} must be {'>' if low_open else '>='} {low}, got {value!r}"
        )
    if high is not None and value >= high:
        raise ValueError(f"{owner}: {name} must be < {high}, got {value!r}")


class LRScheduler:
    """Base class: subclasses define `get_lr()` (the recursive form) and may define
    `_get_closed_form_lr()` (the lr as a function of last_epoch, for ``step(epoch)``).

    optimizer: a tapegrad Optimizer (TypeError otherwise).
    last_epoch: -1 to start; a later epoch only to rebuild a scheduler whose
    optimizer already has ``initial_lr`` in its groups (KeyError otherwise).
    """

    _is_initial = False

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        owner = type(self).__name__
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{owner}: {type(optimizer).__name__} is not a tapegrad Optimizer")
        _check(last_epoch, "last_epoch", owner, integer=True, low=-1)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"{owner}: param group {i} has no 'initial_lr', needed to resume "
                        f"at last_epoch={last_epoch}: load the optimizer's state dict "
                        "first, or start at last_epoch=-1"
                    )
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list:
        """The lrs for epoch `last_epoch`, computed from the current ones."""
        raise NotImplementedError(f"{type(self).__name__} must define get_lr()")

    def get_last_lr(self) -> list:
        """The lr of each param group, as the last step() set them."""
        return self._last_lr

    def step(self, epoch: int | None = None) -> None:
        """Advance one epoch and set every group's lr (call it after optimizer.step()).

        step(epoch) is torch's deprecated form: it jumps to `epoch` (using
        the closed form where there is one) and warns.
        """
        if self._step_count == 1 and not getattr(self.optimizer, "_opt_called", False):
            warnings.warn(
                "Detected call of `lr_scheduler.step()` before `optimizer.step()`: call "
                "`optimizer.step()` first, else the first value of the schedule is "
                "skipped",
                UserWarning,
                stacklevel=2,
            )
        self._step_count += 1
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            warnings.warn(
                "The epoch parameter in `scheduler.step()` is deprecated (as in torch); "
                "call `scheduler.step()` once per epoch instead",
                UserWarning,
                stacklevel=2,
            )
            self.last_epoch = epoch
            closed_form = getattr(self, "_get_closed_form_lr", None)
            values = closed_form() if closed_form is not None else self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values, strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _current_lrs(self) -> list:
        return [group["lr"] for group in self.optimizer.param_groups]

    # --- state dict -------------------------------------------------------------
    def state_dict(self) -> dict:
        """Every attribute but the optimizer (torch's layout): last_epoch, base_lrs, ..."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict: dict) -> None:
        """Load what state_dict() returned (this scheduler's kind, or torch's).

        TypeError if it is not a dict; ValueError, with the scheduler
        unchanged, if an entry this scheduler has is missing. Entries it does
        not have (torch's private ones) are ignored.
        """
        owner = type(self).__name__
        if not isinstance(state_dict, dict):
            raise TypeError(
                f"{owner}.load_state_dict takes the dict that state_dict() returns, "
                f"got {type(state_dict).__name__}"
            )
        own = self.state_dict()
        missing = [key for key in own if key not in state_dict]
        if missing:
            raise ValueError(
                f"{owner}.load_state_dict: the state dict has no "
                f"{', '.join(map(repr, missing))} (was it saved by another kind of "
                "scheduler?); the scheduler is unchanged"
            )
        self.__dict__.update({key: state_dict[key] for key in own})


class LambdaLR(LRScheduler):
    """lr = base_lr * lr_lambda(last_epoch), one function for all groups or one per group.

    state_dict() saves a callable object's attributes, not plain functions
    or lambdas (those are rebuilt by the code that builds the scheduler).
    Raises TypeError for a non-callable, ValueError for a list of the wrong length.
    """

    def __init__(self, optimizer: Optimizer, lr_lambda, last_epoch: int = -1):
        owner = type(self).__name__
        count = len(getattr(optimizer, "param_groups", ()))
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != count:
                raise ValueError(
                    f"{owner}: expected {count} lr_lambdas (one per param group), "
                    f"got {len(lr_lambda)}"
                )
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * count
        for fn in self.lr_lambdas:
            if not callable(fn):
                raise TypeError(f"{owner}: lr_lambda must be a function of the epoch, got {fn!r}")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        return [
            base_lr * fn(self.last_epoch) for fn, base_lr in zip(self.lr_lambdas, self.base_lrs)
        ]

    def state_dict(self) -> dict:
        state = {
            key: value
            for key, value in self.__dict__.items()
            if key not in ("optimizer", "lr_lambdas")
        }
        state["lr_lambdas"] = [
            None if isinstance(fn, types.FunctionType) else fn.__dict__.copy()
            for fn in self.lr_lambdas
        ]
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        saved = state_dict.get("lr_lambdas") if isinstance(state_dict, dict) else None
        if saved is not None and len(saved) != len(self.lr_lambdas):
            raise ValueError(
                f"LambdaLR.load_state_dict: {len(saved)} lr_lambdas saved, "
                f"{len(self.lr_lambdas)} here; the scheduler is unchanged"
            )
        lambdas = self.lr_lambdas
        super().load_state_dict(state_dict)
        self.lr_lambdas = lambdas
        for fn, attributes in zip(lambdas, saved or ()):
            if attributes is not None:
                fn.__dict__.update(attributes)


class StepLR(LRScheduler):
    """lr = lr * gamma every step_size epochs (closed form: base_lr * gamma^(epoch // step_size)).

    Raises TypeError/ValueError unless step_size is an integer >= 1 and gamma a finite number.
    """

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ):
        _check(step_size, "step_size", "StepLR", integer=True, low=1)
        _check(gamma, "gamma", "StepLR")
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list:
        return [
            base_lr * self.gamma ** (self.last_epoch // self.step_size) for base_lr in self.base_lrs
        ]


class MultiStepLR(LRScheduler):
    """lr = lr * gamma at each milestone epoch (gamma^n at a milestone listed n times).

    Raises TypeError unless milestones are integers, and for a non-number gamma.
    """

    def __init__(self, optimizer: Optimizer, milestones, gamma: float = 0.1, last_epoch: int = -1):
        milestones = list(milestones)
        for m in milestones:
            _check(m, "each milestone", "MultiStepLR", integer=True)
        _check(gamma, "gamma", "MultiStepLR")
        self.milestones = Counter(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        if self.last_epoch not in self.milestones:
            return self._current_lrs()
        return [
            group["lr"] * self.gamma ** self.milestones[self.last_epoch]
            for group in self.optimizer.param_groups
        ]

    def _get_closed_form_lr(self) -> list:
        milestones = sorted(self.milestones.elements())
        return [
            base_lr * self.gamma ** bisect_right(milestones, self.last_epoch)
            for base_lr in self.base_lrs
        ]

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self.milestones = Counter(self.milestones)  # a checkpoint stores a plain dict


class ExponentialLR(LRScheduler):
    """lr = lr * gamma every epoch (closed form: base_lr * gamma^epoch)."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        _check(gamma, "gamma", "ExponentialLR")
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        if self._is_initial:
            return self._current_lrs()
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list:
        return [base_lr * self.gamma**self.last_epoch for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from base_lr down to eta_min over T_max epochs (SGDR without restarts).

    Closed form:  lr_t = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2
    step() applies it recursively, as torch does:

        lr_t = eta_min + (lr_{t-1} - eta_min)
                         * (1 + cos(pi t / T_max)) / (1 + cos(pi (t-1) / T_max))

    and past T_max follows the cosine back up (period 2 T_max).
    Raises TypeError/ValueError unless T_max > 0 and eta_min are finite numbers.
    """

    def __init__(
        self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1
    ):
        _check(T_max, "T_max", "CosineAnnealingLR", low=0, low_open=True)
        _check(eta_min, "eta_min", "CosineAnnealingLR")
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        groups = self.optimizer.param_groups
        if self._is_initial:
            return self._current_lrs()
        if self._step_count == 1 and self.last_epoch > 0:
            return [
                self.eta_min
                + (base_lr - self.eta_min)
                * (1 + math.cos(self.last_epoch * math.pi / self.T_max))
                / 2
                for base_lr in self.base_lrs
            ]
        if (self.last_epoch - 1 - self.T_max) % (2 * self.T_max) == 0:
            return [
                group["lr"] + (base_lr - self.eta_min) * (1 - math.cos(math.pi / self.T_max)) / 2
                for base_lr, group in zip(self.base_lrs, groups)
            ]
        return [
            (1 + math.cos(math.pi * self.last_epoch / self.T_max))
            / (1 + math.cos(math.pi * (self.last_epoch - 1) / self.T_max))
            * (group["lr"] - self.eta_min)
            + self.eta_min
            for group in groups
        ]

    def _get_closed_form_lr(self) -> list:
        return [
            self.eta_min
            + (base_lr - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
            for base_lr in self.base_lrs
        ]


class ReduceLROnPlateau(LRScheduler):
    """Multiply the lr by `factor` once a metric has stopped improving for `patience` epochs.

    step(metric) once per epoch. The metric improves on `best` when

        mode="min", threshold_mode="rel":  metric < best * (1 - threshold)
        mode="min", threshold_mode="abs":  metric < best - threshold
        mode="max", "rel" / "abs":         metric > best * (1 + threshold) / best + threshold

    After more than `patience` epochs without improvement, each group's lr
    becomes max(lr * factor, min_lr) (unless that changes it by less than
    eps), and the next `cooldown` epochs count no bad epochs.
    Raises ValueError for factor >= 1, an unknown mode or threshold_mode, a
    negative patience or cooldown, or a min_lr list of the wrong length.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr=0,
        eps: float = 1e-8,
    ):
        owner = "ReduceLROnPlateau"
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{owner}: {type(optimizer).__name__} is not a tapegrad Optimizer")
        _check(factor, "factor", owner, low=0, high=1.0)
        _check(patience, "patience", owner, integer=True, low=0)
        _check(cooldown, "cooldown", owner, integer=True, low=0)
        _check(threshold, "threshold", owner)
        _check(eps, "eps", owner, low=0)
        if mode not in ("min", "max"):
            raise ValueError(f"{owner}: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(
                f"{owner}: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}"
            )
        count = len(optimizer.param_groups)
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != count:
                raise ValueError(
                    f"{owner}: expected {count} min_lrs (one per param group), got {len(min_lr)}"
                )
            self.default_min_lr = None
            self.min_lrs = list(min_lr)
        else:
            self.default_min_lr = min_lr
            self.min_lrs = [min_lr] * count
        for value in self.min_lrs:
            _check(value, "min_lr", owner, low=0)
        self.factor = factor
        self.optimizer = optimizer
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.last_epoch = 0
        self._last_lr = self._current_lrs()
        self.mode, self.threshold, self.threshold_mode = mode, threshold, threshold_mode
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def step(self, metrics, epoch=None) -> None:  # type: ignore[override]
        """Record this epoch's metric (a number or a one-element tensor) and maybe reduce the lr."""
        current = float(metrics)
        if epoch is None:
            epoch = self.last_epoch + 1
        else:
            warnings.warn(
                "The epoch parameter in `scheduler.step()` is deprecated (as in torch)",
                UserWarning,
                stacklevel=2,
            )
        self.last_epoch = epoch
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = self._current_lrs()

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(
                    f"ReduceLROnPlateau: the optimizer has {len(groups)} param "
                    f"groups, {len(self.min_lrs)} when the scheduler was built (a "
                    "group was added since); set scheduler.min_lrs to one per group"
                )
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, min_lr)
            if old_lr - new_lr > self.eps:
                group["lr"] = new_lr

    def _is_better(self, a: float, best: float) -> bool:
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold
