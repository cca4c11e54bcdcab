"""`print(tape)`: the Wengert list as text, one line per node.

      %0 = Linear(x, 0.weight, 0.bias)     -> (100, 25)   mean 0.013  [-2.1, 2.4]
      %1 = ReLU(%0)                        -> (100, 25)   ...

`%i` is the output of tape node i; leaves are shown by name where one is
known (parameters of a module passed as `model=`), else as `leaf(shape)`.
"""

from __future__ import annotations

import torch

from .tape import Node


def summarize(value) -> str:
    """A short summary of a tensor's values: the value for one element, else mean and range."""
    if value is None:
        return ""
    if not isinstance(value, torch.Tensor):
        return repr(value)
    if value.numel() == 1:
        return f"{value.item():.4g}"
    if value.numel() == 0 or not value.is_floating_point():
        return ""
    v = value.detach()
    return f"mean {v.mean().item():.3g}  [{v.min().item():.3g}, {v.max().item():.3g}]"


def parameter_names(model) -> dict:
    """{id(parameter): dotted name} for a module, {} for None."""
    if model is None:
        return {}
    return {id(p): name for name, p in model.named_parameters()}


def input_label(item, names: dict) -> str:
    """How an input of a node is written: %i, a parameter name, or a constant."""
    if isinstance(item, Node):
        return f"%{item.index}"
    data = getattr(item, "data", item)
    if id(item) in names:
        return names[id(item)]
    if isinstance(data, torch.Tensor):
        kind = "leaf" if getattr(item, "requires_grad", False) else "input"
        return f"{kind}{tuple(data.shape)}"
    return repr(item)


def format_node(node: Node, names: dict | None = None) -> str:
    names = names or {}
    args = ", ".join(input_label(item, names) for item in node.inputs
                     if isinstance(item, (Node, torch.Tensor)) or hasattr(item, "data"))
    head = f"%{node.index} = {node.name}({args})"
    line = f"{head:<40} -> {str(tuple(node.shape)):<12}"
    if node.value is not None:
        line += "  " + summarize(node.value)
    if node.grad is not None:
        line += "  grad " + summarize(node.grad)
    if node.released:
        line += "  (released)"
    return line.rstrip()


def format_tape(tape, model=None) -> str:
    names = parameter_names(model)
    lines = [f"Tape of {len(tape)} nodes"]
    lines += ["  " + format_node(node, names) for node in tape]
    return "\n".join(lines)
