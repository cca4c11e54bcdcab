"""`Optimizer`: what every optimizer shares, with torch.optim's names and layout.

    optimizer.param_groups  [{"params": [p, ...], "lr": 0.1, ...}, ...]   one dict per group
    optimizer.defaults      the options a group takes when it does not set them
    optimizer.state         {p: {"momentum_buffer": tensor, ...}}          keyed by the parameter
    optimizer.step()        one update of every parameter that has a gradient
    optimizer.state_dict()  {"state": {index: {...}}, "param_groups": [{..., "params": [index]}]}

A parameter's index is its position when the groups' parameter lists are
laid end to end: a state dict holds no tensors that are parameters, only
numbers that say which parameter each state belongs to.

Updates are in place on ``p.data`` and never recorded on a tape. Each one
bumps the parameter's version counter, so a tape recorded before a step
refuses to run its backward afterwards (the weights it saved are stale).
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict

import torch

from ..tape import enable_grad
from ..tensor import Tensor


def grad_of(p: Tensor):
    """p's gradient as a torch tensor, or None.

    After ``backward(create_graph=True)`` a gradient is itself a tapegrad
    Tensor; an optimizer only reads its values. A gradient has p's shape,
    dtype and device: the .grad setter and the sweep check that.
    """
    g = p._grad
    if isinstance(g, Tensor):
        g = g.data
    return g


def _scalar_dtype():
    """The dtype torch.optim keeps a step count in (a 0-d tensor on the CPU)."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


class Optimizer:
    """Holds parameter groups and per-parameter state; subclasses define `step()`.

    params: an iterable of Tensors, or of dicts ``{"params": [...], "lr": ..., ...}``
    that each make a parameter group with its own options (those it leaves
    out come from `defaults`). ``(name, tensor)`` pairs, as from
    ``model.named_parameters()``, keep the names in ``group["param_names"]``.

    Raises TypeError for a single Tensor, a set or a non-Tensor parameter;
    ValueError for an empty list, a non-leaf, a parameter listed twice, or a
    bad option value (each optimizer names its own); KeyError for a group
    without "params".
    """

    #: per-parameter state entries that have the parameter's shape
    _param_shaped_state: tuple = ()

    def __init__(self, params, defaults: dict):
        name = type(self).__name__
        if isinstance(params, (Tensor, torch.Tensor)):
            raise TypeError(
                f"{name} takes an iterable of parameters (or of parameter groups), got "
                f"a single {type(params).__name__}; wrap it in a list: [p]"
            )
        if isinstance(params, (set, frozenset)):
            raise TypeError(
                f"{name}: parameters must be in an ordered collection (a list), not a "
                "set: a set's order changes between runs, and the state dict numbers "
                "parameters by their order"
            )
        self._check_options(defaults, name)
        self.defaults = defaults
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list = []
        groups = list(params)
        if not groups:
            raise ValueError(
                f"{name} got an empty parameter list; pass model.parameters() of a "
                "model that has parameters"
            )
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # --- parameter groups ---------------------------------------------------
    def add_param_group(self, param_group: dict) -> None:
        """Add a group ``{"params": [...], option: value, ...}``; missing options come from
        defaults.

        Raises TypeError (not a dict, a set, a non-Tensor), KeyError (no "params"),
        ValueError (a non-leaf, a parameter already in a group, a bad option).
        The optimizer is unchanged when it raises.
        """
        index = len(self.param_groups)
        where = f"{type(self).__name__} param group {index}"
        if not isinstance(param_group, dict):
            raise TypeError(
                f"{where} must be a dict {{'params': [...], option: value}}, got "
                f"{type(param_group).__name__} (pass either parameters or groups, "
                "not both)"
            )
        if "params" not in param_group:
            raise KeyError(f"{where} has no 'params' entry: give it the list of its parameters")
        params = param_group["params"]
        if isinstance(params, (Tensor, torch.Tensor)):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(f"{where}: 'params' must be an ordered collection (a list), not a set")
        params = list(params)
        names = [p[0] for p in params if isinstance(p, tuple)]
        params = [p[1] if isinstance(p, tuple) else p for p in params]
        if names and len(names) != len(params):
            raise ValueError(f"{where}: give every parameter a name, (name, tensor), or none")
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                hint = (
                    " (a torch tensor: wrap it as tapegrad.Tensor(t, requires_grad=True))"
                    if isinstance(p, torch.Tensor)
                    else ""
                )
                raise TypeError(
                    f"{where}: parameter {i} must be a tapegrad Tensor, got "
                    f"{type(p).__name__}{hint}"
                )
            if not p.is_leaf:
                raise ValueError(
                    f"{where}: parameter {i} is not a leaf (it is the output of "
                    f"{p.node.describe()}); an optimizer updates leaves, e.g. "
                    "model.parameters()"
                )
        group = dict(param_group, params=params)
        if names:
            group["param_names"] = names
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._check_options(group, where)
        seen = set()
        for i, p in enumerate(params):
            if p in seen:
                raise ValueError(f"{where}: parameter {i} appears twice in the group")
            seen.add(p)
        for other, earlier in enumerate(self.param_groups):
            if ("param_names" in earlier) != bool(names):
                raise ValueError(
                    f"{where}: either every group names its parameters, (name, "
                    f"tensor), or none does; param group {other} "
                    f"{'does not' if names else 'does'}"
                )
            if not seen.isdisjoint(earlier["params"]):
                raise ValueError(
                    f"{where}: some parameters are already in param group {other}; "
                    "a parameter may be in only one group"
                )
        self.param_groups.append(group)

    def _check_options(self, options: dict, where: str) -> None:
        """Raise ValueError/TypeError for a bad option value; each optimizer checks its own."""

    @staticmethod
    def _check_number(
        options: dict, key: str, where: str, low: float = 0.0, high: float | None = None
    ) -> None:
        """options[key] must be a finite number in [low, high) (or >= low)."""
        value = options.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{where}: {key} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{where}: {key} must be a finite number, got {value!r}")
        if value < low or (high is not None and value >= high):
            bound = f">= {low}" if high is None else f"in [{low}, {high})"
            raise ValueError(f"{where}: {key} must be {bound}, got {value!r}")

    # --- the step -------------------------------------------------------------
    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns closure()'s loss, if given.

        closure: a function that clears the gradients, recomputes the loss
        (recorded, even inside no_grad), calls backward() and returns it.
        """
        raise NotImplementedError(f"{type(self).__name__} must define step()")

    def _run_closure(self, closure):
        """closure() with recording on (None without a closure): what step() starts with."""
        if closure is None:
            return None
        with enable_grad():
            return closure()

    def __init_subclass__(cls, **kwargs):
        # Every step() notes that it ran, for the schedulers' "scheduler.step() before
        # optimizer.step()" warning (torch wraps step the same way), also in your own optimizers.
        # A step that sets self._opt_called itself and says so (notes_its_call = True: SGD's,
        # the hot path of training) is left unwrapped: the wrapper's call costs a step 0.5 us.
        # (functools.wraps copies the flag: a step wrapped that way must call SGD.step.)
        super().__init_subclass__(**kwargs)
        inner = cls.__dict__.get("step")
        if inner is not None and not getattr(inner, "notes_its_call", False):

            @functools.wraps(inner)
            def step(self, *args, **kwargs):  # named step: tracebacks and compile read it
                self._opt_called = True
                return inner(self, *args, **kwargs)

            cls.step = step

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient: set it to None, or zero it in place."""
        for group in self.param_groups:
            if set_to_none:  # (the hot path of training: inline)
                for p in group["params"]:
                    p._grad = None
                continue
            for p in group["params"]:
                p._zero_grad()

    # --- state dict -------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{"state": {index: {...}}, "param_groups": [{option: value, "params": [index]}]}``.

        The state's tensors are the optimizer's own (like torch): save or
        clone them to keep a snapshot.
        """
        index: dict = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(p, len(index)) for p in group["params"]]
            groups.append(packed)
        state = {index[p]: s for p, s in self.state.items() if p in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Load what `state_dict()` returned (this optimizer's, or torch.optim's of the same kind).

        The groups' options are replaced by the saved ones; state tensors are
        copied to their parameter's device (and, for a real floating-point
        parameter, its dtype; the step count stays as saved), like torch.
        Everything is checked first, and the optimizer is unchanged if
        anything is wrong: TypeError (not a dict), KeyError (no "state" or
        "param_groups"), ValueError (a different number of groups, a group
        of another size, a state tensor of the wrong shape or missing, a
        bad option value).
        """
        name = type(self).__name__
        if not isinstance(state_dict, dict):
            raise TypeError(
                f"{name}.load_state_dict takes the dict that state_dict() returns, got "
                f"{type(state_dict).__name__}"
            )
        for key in ("state", "param_groups"):
            if key not in state_dict:
                raise KeyError(
                    f"{name}.load_state_dict: the state dict has no {key!r} entry "
                    "(pass what optimizer.state_dict() returned)"
                )
        saved_groups = state_dict["param_groups"]
        if not isinstance(saved_groups, (list, tuple)) or len(saved_groups) != len(
            self.param_groups
        ):
            count = len(saved_groups) if isinstance(saved_groups, (list, tuple)) else saved_groups
            raise ValueError(
                f"{name}.load_state_dict: the state dict has {count!r} parameter "
                f"groups, this optimizer has {len(self.param_groups)}"
            )
        by_index = {}  # saved index -> (our parameter, its new group)
        new_groups = []
        for i, (ours, saved) in enumerate(zip(self.param_groups, saved_groups)):
            where = f"{name}.load_state_dict: param group {i}"
            if not isinstance(saved, dict) or not isinstance(saved.get("params"), (list, tuple)):
                raise ValueError(f"{where} is not a dict with a 'params' list of indices")
            if len(saved["params"]) != len(ours["params"]):
                raise ValueError(
                    f"{where} has {len(saved['params'])} parameters in the state "
                    f"dict, {len(ours['params'])} in this optimizer"
                )
            group = {k: v for k, v in saved.items() if k != "params"}
            group["params"] = ours["params"]
            if "param_names" in ours and "param_names" not in saved:
                group["param_names"] = ours["param_names"]
            self._check_options(group, where)
            for index, p in zip(saved["params"], ours["params"]):
                if index in by_index:
                    raise ValueError(f"{where}: parameter index {index!r} appears twice")
                by_index[index] = (p, group)
            new_groups.append(group)
        saved_state = state_dict["state"]
        if not isinstance(saved_state, dict):
            raise ValueError(
                f"{name}.load_state_dict: 'state' must be a dict {{index: {{...}}}}, "
                f"got {type(saved_state).__name__}"
            )
        new_state: defaultdict = defaultdict(dict)
        for index, entry in saved_state.items():
            where = f"{name}.load_state_dict: the state of parameter {index!r}"
            if index not in by_index:
                raise ValueError(f"{where}: no parameter group lists that index")
            if not isinstance(entry, dict):
                raise ValueError(f"{where} must be a dict, got {type(entry).__name__}")
            p, group = by_index[index]
            missing = [key for key in self._required_state(group) if key not in entry]
            if missing:
                raise ValueError(
                    f"{where} has no {', '.join(map(repr, missing))} (was it saved "
                    f"by another kind of optimizer?)"
                )
            step = entry.get("step", 0)
            step = step.data if isinstance(step, Tensor) else step
            if not (
                isinstance(step, (int, float))
                and not isinstance(step, bool)
                or isinstance(step, torch.Tensor)
                and step.numel() == 1
            ):
                raise ValueError(f"{where}: 'step' must be a number, got {step!r}")
            for key in self._param_shaped_state:
                value = entry.get(key)
                if value is None:
                    continue
                value = value.data if isinstance(value, Tensor) else value
                if not isinstance(value, torch.Tensor) or value.shape != p.shape:
                    got = (
                        f"shape {tuple(value.shape)}"
                        if isinstance(value, torch.Tensor)
                        else f"a {type(value).__name__}"
                    )
                    raise ValueError(
                        f"{where}: {key!r} is {got}, the parameter has shape {tuple(p.shape)}"
                    )
            new_state[p] = {key: self._cast_state(key, value, p) for key, value in entry.items()}
        self.param_groups = new_groups
        self.state = new_state

    def _required_state(self, group) -> tuple:
        """The state entries a parameter of `group` must have once it has any."""
        return ()

    @staticmethod
    def _cast_state(key, value, p):
        """A copy of a loaded state value, on p's device (and p's dtype if p is real floating)."""
        value = value.data if isinstance(value, Tensor) else value
        if key == "step":  # a count: torch keeps its dtype and device
            if isinstance(value, torch.Tensor):
                return value.clone()
            return torch.tensor(float(value), dtype=_scalar_dtype())  # as older torch saved it
        if not isinstance(value, torch.Tensor):
            return value
        dtype = p.dtype if p.data.is_floating_point() else value.dtype
        return value.to(device=p.device, dtype=dtype, copy=True)

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {key}: {group[key]}" for key in sorted(group) if key != "params"]
        return "\n".join(lines) + "\n)"
