"""How the generated code writes things: torch callables, plain values, and names of state.

torch.relu / F.linear / x.mm(w)   a torch function or tensor method, as eager called it
aten.mse_loss                     torch.ops.aten.mse_loss.default (bound in codegen)
0.05, torch.float32, slice(...)   plain values, as Python literals
model_0_weight                    a Python name for a path: model[0].weight.data
"""

from __future__ import annotations

import builtins
import keyword
import re

import torch
from torch.nn import functional as F

_NAMES = None


def callable_names() -> dict:
    """{id(function): 'torch.relu' / 'F.linear' / ...} for the public torch namespaces."""
    global _NAMES
    if _NAMES is None:
        names: dict = {}
        spaces = [
            ("F", F),
            ("torch", torch),
            ("torch.linalg", torch.linalg),
            ("torch.special", torch.special),
            ("torch.fft", torch.fft),
            ("torch.nn.functional", F),
        ]
        for prefix, space in spaces:
            for attr, value in vars(space).items():
                if attr.startswith("__") or not callable(value) or isinstance(value, type):
                    continue
                names.setdefault(id(value), f"{prefix}.{attr}")
        _NAMES = names
    return _NAMES


def tensor_method(func) -> str | None:
    """The method name if `func` is a method of torch.Tensor (``x.mm(w)``), else None."""
    name = getattr(func, "__name__", None)
    if name is None:
        return None
    owner = getattr(func, "__objclass__", None)
    if isinstance(owner, type) and issubclass(owner, torch._C.TensorBase):
        return name
    if getattr(torch.Tensor, name, None) is func:
        return name
    return None


def literal(value) -> str | None:
    """Python source for a plain value, or None when it needs a named constant."""
    if value is None or type(value) in (bool, int, str, bytes, complex, range):
        return repr(value)
    if type(value) is float:
        if value != value or value in (float("inf"), float("-inf")):
            return f"float({str(value)!r})"
        return repr(value)
    if value is Ellipsis:
        return "..."
    if type(value) is slice:
        return f"slice({literal(value.start)}, {literal(value.stop)}, {literal(value.step)})"
    if isinstance(value, (torch.dtype, torch.layout, torch.memory_format)):
        return str(value)
    if type(value) is torch.Size:
        return f"torch.Size({list(value)!r})"
    return None


# Names the generated code's namespace already uses, and Python's own.
_RESERVED = frozenset(dir(builtins)) | {"S", "torch", "F", "aten"}


def identifier(path: str, taken: set) -> str:
    """A Python name for a readable path: 'model.0.weight.data' -> 'model_0_weight'."""
    text = path or "value"
    # optimizer.state[id(model.0.weight)]['momentum_buffer'] -> momentum_buffer_model_0_weight
    m = re.match(r"^.*\[id\(([^()]*)\)\](?:\[['\"]?([^\]'\"]*)['\"]?\])?$", text)
    if m:
        owner, key = m.group(1), m.group(2)
        if key is None:
            key = text[: text.index("[id(")].rsplit(".", 1)[-1]
        text = f"{key}_{owner}"
    if text.endswith(".data"):
        text = text[: -len(".data")]
    name = re.sub(r"\W+", "_", text).strip("_") or "value"
    name = re.sub(r"_+", "_", name)
    if name[0].isdigit():
        name = "_" + name
    if keyword.iskeyword(name) or name in _RESERVED:
        name += "_"
    base, n = name, 2
    while name in taken:
        name = f"{base}_{n}"
        n += 1
    taken.add(name)
    return name
