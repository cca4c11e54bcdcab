"""`print(tape)`: the Wengert list as text, one line per node.

For the README's first example, ``y = (x @ w).tanh().sum()`` with x and w leaves:

    Tape of 3 nodes
      %0 = MatMul(leaf(2, 2), leaf(2, 1))  -> (2, 1)      mean -2  [-2.5, -1.5]
      %1 = Tanh(%0)                        -> (2, 1)      mean -0.946  [-0.987, -0.905]
      %2 = Sum(%1)                         -> ()          -1.892

Each line: the op and its inputs, the output's shape, and a summary of its values.
`%i` is the output of tape node i. A leaf is written by its name where one
is known, else as ``leaf(shape)`` (requires grad) or ``input(shape)``:

- a parameter of the module whose forward recorded the node (`node.module`)
  is named automatically by its class and attribute, ``Linear0.weight``
  (modules numbered per class in the order the tape meets them);
- ``tape.format(model=model)`` uses the model's dotted names, ``0.weight``;
- ``names={"x": x}`` names any tensor.

Names are looked up only when printing: recording pays nothing for them.
Non-tensor arguments of the op are shown by their name in `forward`'s
signature, leaving out those at their default (``Mean(%3, dim=1)``).
"""

from __future__ import annotations

import inspect
from collections import Counter

import torch

from .tape import Node, Tape

MAX_HEAD = 64  # longer `%i = Op(...)` parts push their own line's columns right
_MAX_CONSTANT = 24  # a constant's repr is cut after this many characters


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


# --- names of leaves ------------------------------------------------------------


def parameter_names(model) -> dict:
    """{id(parameter): dotted name} for a module, {} for None."""
    if model is None:
        return {}
    return {id(p): name for name, p in model.named_parameters()}


def module_parameter_names(tape) -> dict:
    """{id(parameter): 'Linear0.weight'} for the parameters that the tape's modules fed to their
    ops.

    A node knows the module whose forward recorded it, and a module knows its
    own parameters by attribute name; modules of one class are numbered in
    the order the tape meets them (no number when the class appears once).
    """
    modules = {}  # id -> module, in the order the tape meets them (a set: deep tapes)
    for node in tape:
        module = node.module
        if (
            module is not None
            and id(module) not in modules
            and (getattr(module, "_parameters", None) or getattr(module, "_buffers", None))
        ):
            modules[id(module)] = module
    classes = [type(m).__name__ for m in modules.values()]
    totals = Counter(classes)
    names: dict = {}
    seen: dict = {}
    for module, cls in zip(modules.values(), classes):
        number = seen.get(cls, 0)
        seen[cls] = number + 1
        label = cls if totals[cls] == 1 else f"{cls}{number}"
        for attribute, param in module._parameters.items():
            if param is not None:
                names.setdefault(id(param), f"{label}.{attribute}")
        for attribute, buffer in getattr(module, "_buffers", {}).items():
            if buffer is not None:  # an op takes a buffer's torch tensor (running stats)
                names.setdefault(id(getattr(buffer, "_data", buffer)), f"{label}.{attribute}")
    return names


def leaf_names(tape, model=None, names: dict | None = None) -> dict:
    """{id(tensor): name} for printing `tape`'s leaves: automatic, then `model`'s, then `names`.

    names: {"x": x, ...}, the caller's own names for any tensors.
    """
    found = module_parameter_names(tape)
    found.update(parameter_names(model))
    for name, tensor in (names or {}).items():
        found[id(tensor)] = name
    return found


def input_label(item, names: dict) -> str:
    """How an input of a node is written: %i, a leaf's name, or leaf(shape) / input(shape)."""
    if isinstance(item, Node):
        return f"%{item.index}"
    if id(item) in names:
        return names[id(item)]
    data = getattr(item, "data", item)
    if isinstance(data, torch.Tensor):
        kind = "leaf" if getattr(item, "requires_grad", False) else "input"
        return f"{kind}{tuple(data.shape)}"
    return repr(item)


# --- constants --------------------------------------------------------------------

_signatures: dict = {}


def _argument_names(op) -> list | None:
    """[(name, default)] of `op.forward`'s arguments after ctx (cached per op), None if unknown."""
    if op not in _signatures:
        try:
            params = list(inspect.signature(op.forward).parameters.values())[1:]
        except (TypeError, ValueError):
            params = None
        names: list | None = None
        if params is not None:  # names up to a *args (Cat's forward(ctx, dim, *tensors))
            names = []
            for p in params:
                if p.kind is p.VAR_POSITIONAL:
                    break
                names.append((p.name, p.default))
        _signatures[op] = names
    return _signatures[op]


def is_tensor_input(item) -> bool:
    """A node, a tapegrad tensor or a torch tensor (as opposed to a constant like dim=1)."""
    return isinstance(item, (Node, torch.Tensor)) or hasattr(item, "requires_grad")


def constants_text(node: Node) -> list:
    """The op's non-tensor arguments, ['dim=1'], leaving out those at their default."""
    names = _argument_names(node.op)
    parts = []
    for position, item in enumerate(node.inputs):
        if is_tensor_input(item):
            continue
        name, default = (
            names[position] if names and position < len(names) else (None, inspect.Parameter.empty)
        )
        if default is not inspect.Parameter.empty and _same(item, default):
            continue
        text = _constant_repr(item)
        if len(text) > _MAX_CONSTANT:
            text = text[: _MAX_CONSTANT - 1] + "…"
        # a number operand reads best bare (Mul(%0, 2)); settings read best named (dim=1)
        bare = name is None or (
            isinstance(item, (int, float))
            and not isinstance(item, bool)
            and default is inspect.Parameter.empty
            and len(name) == 1
        )
        parts.append(text if bare else f"{name}={text}")
    return parts


def _constant_repr(item) -> str:
    """repr, but slices as Python writes them in an index: (1:, ::2) rather than
    (slice(1, None, None), ...)."""
    if isinstance(item, slice):
        parts = ["" if v is None else repr(v) for v in (item.start, item.stop, item.step)]
        return ":".join(parts[:2] if item.step is None else parts)
    if isinstance(item, tuple) and any(isinstance(i, slice) for i in item):
        return "(" + ", ".join(_constant_repr(i) for i in item) + ")"
    if isinstance(item, torch.Size):
        return repr(tuple(item))  # (3, 2), not torch.Size([3, 2])
    return repr(item)


def _same(a, b) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:  # an argument whose == is not a plain bool: show it
        return False


# --- lines ----------------------------------------------------------------------------


def node_call(node: Node, names: dict | None = None) -> str:
    """'%3 = ReLU(%2)': the node as the assignment of a Wengert list."""
    names = names or {}
    if "position" in node.__dict__ and node.name == "OutputOf":  # an op with several outputs
        return f"%{node.index} = output {node.__dict__['position']} of %{node.inputs[0].index}"
    args = [input_label(item, names) for item in node.inputs if is_tensor_input(item)]
    args += constants_text(node)
    return f"%{node.index} = {node.name}({', '.join(args)})"


def shape_text(node: Node) -> str:
    """'(10, 25)', or '2 outputs' for an op with several."""
    outputs = node.__dict__.get("outputs")
    if outputs is not None and len(outputs) > 1:
        return f"{len(outputs)} outputs"
    return str(tuple(node.shape))


def marks(node: Node) -> str:
    """What else a line says about its node: its hooks, the node whose derivative it belongs to."""
    parts = []
    if node.hooks:
        parts.append("hooks: " + ", ".join(getattr(h, "__name__", "hook") for h in node.hooks))
    if node.derivative_of is not None:
        parts.append(f"derivative of %{node.derivative_of.index} {node.derivative_of.name}")
    return "  [" + "; ".join(parts) + "]" if parts else ""


def format_node(node: Node, names: dict | None = None, width: int = 40) -> str:
    """One line: the call, the output shape, its value and gradient where kept."""
    line = f"{node_call(node, names):<{width}}  -> {shape_text(node):<10}"
    if node.value is not None:
        line += "  " + summarize(node.value)
    if node.grad is not None:
        line += "  grad " + summarize(getattr(node.grad, "data", node.grad))
    if node.released:
        line += "  (released)"
    return (line + marks(node)).rstrip()


def format_tape(tape, model=None, names: dict | None = None) -> str:
    """The whole tape, one line per node; `model` and `names` name the leaves (see module doc)."""
    labels = leaf_names(tape, model, names)
    heads = [node_call(node, labels) for node in tape]
    width = min(MAX_HEAD, max((len(h) for h in heads), default=0))
    title = f"Tape of {len(tape)} nodes"
    if len(tape) and not tape.keep_values:
        title += " (values not kept: record inside `with tapegrad.Tape():` to see them)"
    lines = [title] + ["  " + format_node(node, labels, width) for node in tape]
    derivative = sum(1 for node in tape if node.derivative_of is not None)
    if derivative:
        lines.append(
            f"  ({derivative} node{'s' if derivative != 1 else ''} recorded by a "
            "create_graph=True sweep, each marked with the node whose derivative it "
            "computes)"
        )
    here = {id(node) for node in tape}
    outside = sorted(
        {
            item.index
            for node in tape
            for item in node.inputs
            if isinstance(item, Node) and id(item) not in here
        }
    )
    if outside:
        listed = ", ".join(f"%{i}" for i in outside)
        lines.append(
            f"  ({listed}: recorded outside this tape's block, on the computation's own "
            "tape, y.tape)"
        )
    return "\n".join(lines)


Tape.formatter = staticmethod(format_tape)  # print(tape), tape.format(): see Tape
