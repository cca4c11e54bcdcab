"""The reverse sweep one node at a time, for reading: `backward_steps` and `explain`.

    for step in tapegrad.backward_steps(loss):
        print(step)             # the node, dL/dy, its rule, what it sends to each input

Each `Step` is what the loop of `sweep.py` does at one node: take the
node's gathered gradient dL/dy (complete, because every node that used y
is later on the tape and was swept first), apply the op's derivative (its
rule in words comes from the op's docstring: the ``dL/d...`` lines), and
add the result into each input's gradient. Running the generator to the
end leaves exactly the gradients of ``loss.backward()``: the same
derivatives run on the same tensors and are added in the same order.

What differs from ``loss.backward()``, so that stepping is safe to stop:
gradients are gathered in the generator, and written into the leaves'
``.grad`` (and ``retain_grad()`` outputs' ``.grad``), and the saved tensors
released, only when the last step is done. A step-through that is
abandoned half-way, or that fails, changes nothing.
"""

from __future__ import annotations

import functools
import inspect
import sys
from dataclasses import dataclass

import torch

from . import hooks
from .function import Parts
from .printing import input_label, leaf_names, node_call, summarize
from .sweep import _check_grads, _seed, begin_sweep
from .sweep import _commit as sweep_commit
from .tape import Node, Tape, _state
from .tensor import Tensor

# --- the op's maths, from its docstring ---------------------------------------------


def _paragraphs(op) -> list:
    doc = inspect.cleandoc(op.__doc__ or "")
    return [p.strip("\n") for p in doc.split("\n\n") if p.strip()]


@functools.cache
def derivative_rule(op) -> str:
    """The ``dL/d...`` lines of `op`'s docstring (with the rest of their paragraph), or ''."""
    for paragraph in _paragraphs(op):
        lines = paragraph.split("\n")
        for position, line in enumerate(lines):
            if "dL/d" in line:
                return "\n".join(lines[position:])
    return ""


@functools.cache
def forward_rule(op) -> str:
    """What `op` computes, from its docstring: the paragraph before the derivative, e.g.
    'y = tanh(x)'."""
    paragraphs = _paragraphs(op)
    if paragraphs and "dL/d" not in paragraphs[0].split("\n")[0]:
        return paragraphs[0]
    return ""


def rule_text(op) -> str:
    """The derivative rule, or how to make one appear."""
    return derivative_rule(op) or (
        f"(no rule to show: write it in the docstring of {op.__name__} as a line 'dL/dx = ...')"
    )


# --- one step ------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Step:
    """What the reverse sweep did at one node.

    node         the tape Node (``node.op``, ``node.inputs``, ``node.index``, ...)
    grad_output  dL/dy: the gradient of the node's output, complete when the step ran
                 (after its hooks, if it has any)
    rule         the derivative in words, from the op's docstring ('' if it has none)
    grads        per input of the node: the contribution dL/d(input) it sent, or None
    hooks        the hooks (``register_hook``) that saw dL/dy first: [(name, changed it?)]
    """

    node: Node
    grad_output: object
    rule: str
    grads: tuple
    hooks: tuple = ()

    @property
    def index(self) -> int:
        return self.node.index

    @property
    def contributions(self) -> list:
        """[(input, gradient sent)] for the inputs that received one (Nodes or leaf Tensors)."""
        return [
            (holder, grad) for holder, grad in zip(self.node.inputs, self.grads) if grad is not None
        ]

    def format(self, names: dict | None = None) -> str:
        """A few lines: the node, dL/dy, the rule, and each contribution."""
        names = names or {}
        lines = [node_call(self.node, names)]
        forward = forward_rule(self.node.op)
        if forward:
            lines.append("    computes  " + forward.replace("\n", "\n              "))
        for name, changed in self.hooks:
            lines.append(f"    hook      {name}(dL/dy) {'replaced it' if changed else 'kept it'}")
        lines.append(f"    dL/dy     {_tensor_text(self.grad_output)}")
        lines.append("    rule      " + rule_text(self.node.op).replace("\n", "\n              "))
        for holder, grad in self.contributions:
            lines.append(f"    -> {input_label(holder, names):<14} += {_tensor_text(grad)}")
        if not self.contributions:
            lines.append("    -> nothing: no input needs a gradient")
        return "\n".join(lines)

    def __str__(self):
        return self.format()


def _tensor_text(value) -> str:
    if isinstance(value, Parts):  # the gradients of an op with several outputs
        return "; ".join(f"output {k}: {_tensor_text(v)}" for k, v in sorted(value.grads.items()))
    value = getattr(value, "data", value)
    if value.numel() == 1:
        return summarize(value)
    return f"{str(tuple(value.shape)):<9} {summarize(value)}"


# --- the steppable sweep -----------------------------------------------------------


def backward_steps(loss, grad=None, retain_graph: bool = False, accumulate: bool = True):
    """Sweep the tape backwards from `loss` one node at a time: a generator of `Step`.

    Same arguments, checks and errors as ``loss.backward()`` (checked now,
    not at the first step). The leaves' ``.grad`` are written when the
    generator finishes; stopping early writes nothing.
    accumulate=False: only look, as the interactive page does: write no
    gradient and free no saved tensor, even at the end.
    """
    seed = begin_sweep(loss, grad, "backward_steps")
    return _steps(loss, seed, retain_graph, commit=accumulate)


def _steps(root, seed, retain_graph: bool, commit: bool):
    """The sweep of sweep.py, gathering gradients here; `commit` writes them at the end."""
    top = root._node
    leaves: dict = {}  # id(leaf) -> [leaf, its .grad when we started, gathered gradient]
    kept = []  # (node, dL/dy) for retain_grad() outputs
    passed = []  # the nodes swept, to release at the end
    if top is not None:
        nodes = root.tape.nodes[
            : top.index + 1
        ]  # a copy: ops run between steps append nothing here
        gathered = {top: seed}  # Node -> dL/d(its output) so far
        for node in reversed(nodes):
            grad_output = gathered.pop(node, None)
            if grad_output is None:
                continue  # this node does not lead to the loss
            seen = []
            if node.hooks:
                for hook in list(node.hooks):
                    before = grad_output
                    grad_output = hooks.run([hook], grad_output, node.describe(), Tensor._wrap)
                    seen.append((getattr(hook, "__name__", repr(hook)), grad_output is not before))
            grads = local_gradients(node, grad_output)
            for holder, needed, grad_in in zip(node.inputs, node.needs_input_grad, grads):
                if not needed or grad_in is None:
                    continue
                if isinstance(holder, Node):
                    previous = gathered.get(holder)
                    gathered[holder] = grad_in if previous is None else previous + grad_in
                else:
                    entry = leaves.setdefault(id(holder), [holder, holder._grad, None])
                    entry[2] = grad_in if entry[2] is None else entry[2] + grad_in
            if node.retains_grad:
                kept.append((node, grad_output))
            passed.append(node)
            yield Step(
                node,
                grad_output,
                derivative_rule(node.op),
                tuple(g if needed else None for g, needed in zip(grads, node.needs_input_grad)),
                tuple(seen),
            )
    else:
        leaves[id(root)] = [root, root._grad, seed]
    if commit:
        _commit(leaves.values(), kept, passed, retain_graph)


def _commit(leaves, kept, passed, retain_graph: bool) -> None:
    """Write the gathered gradients, as the sweep would have, all or nothing."""
    for leaf, start, _ in leaves:
        if leaf._grad is not start:
            raise RuntimeError(
                "backward_steps(): the .grad of a leaf of shape "
                f"{tuple(leaf.shape)} changed while the sweep was being stepped "
                "(a backward() or zero_grad() between steps); nothing was written. "
                "Step through to the end before changing gradients"
            )
    for node, grad in kept:
        node.grad = grad if node.grad is None else node.grad + grad
    for leaf, _, grad in leaves:
        leaf._gathered = grad
    reached = [leaf for leaf, _, _ in leaves]
    # the sweep's own ending: leaves' hooks, .grad added in place, each leaf's own tensor
    sweep_commit(reached, reached, [(node, None) for node, _ in kept], create_graph=False)
    if not retain_graph:
        for node in passed:
            node.release()


def local_gradients(node: Node, grad_output: torch.Tensor) -> tuple:
    """One gradient per input of `node`: its op's derivative applied to dL/dy, with the sweep's
    checks."""
    if node.released:
        raise RuntimeError(
            f"backward() through {node.describe()} a second time: the tape's saved tensors "
            "were freed by the first backward(). Pass retain_graph=True to the first "
            "backward() to sweep the same tape again"
        )
    _state.sweeping = True  # an op's derivative must not start another sweep
    try:
        grads = node.op.backward(node, grad_output)
    finally:
        _state.sweeping = False
    if grads.__class__ is not tuple:
        grads = (grads,)
    if node.op.check_grad_shapes or _state.anomaly:  # user ops (built-in ones are tested instead)
        grads = _check_grads(node, grads)
    return grads


def reached_nodes(loss) -> list:
    """The nodes of `loss`'s tape that a sweep from `loss` can reach, in tape order."""
    top = loss._node
    if top is None:
        return []
    nodes = loss.tape.nodes[: top.index + 1]
    reached = {top}
    for node in reversed(nodes):
        if node in reached:
            reached.update(
                item
                for item, needed in zip(node.inputs, node.needs_input_grad)
                if needed and isinstance(item, Node)
            )
    return [node for node in nodes if node in reached]


# --- the trace as text ------------------------------------------------------------


def explain(
    loss, grad=None, retain_graph: bool = False, model=None, names: dict | None = None, file=None
) -> None:
    """``loss.backward()`` that prints what it does, node by node (see `Step`).

    model, names: name the leaves, as in ``tape.format(model=..., names=...)``.
    file: where to print (default: standard output).
    """
    out = file or sys.stdout
    steps = backward_steps(loss, grad, retain_graph)
    if loss._node is None:
        print("the loss is a leaf: dL/dL = 1 goes straight into its .grad", file=out)
        list(steps)
        return
    labels = leaf_names(loss.tape, model, names)
    print(
        f"Reverse sweep from %{loss._node.index} ({loss._node.name}), "
        f"starting from dL/dL = {_tensor_text(_seed(loss, grad))}",
        file=out,
    )
    reached: list = []
    for step in steps:
        print(step.format(labels), file=out)
        for holder, _ in step.contributions:
            if not isinstance(holder, Node) and all(holder is not r for r in reached):
                reached.append(holder)
    print("Gradients accumulated into the leaves (.grad):", file=out)
    for leaf in reached:
        print(f"    {input_label(leaf, labels):<14} {_tensor_text(leaf.grad)}", file=out)


Tape.stepper = staticmethod(backward_steps)  # tape.backward_steps(loss): see Tape
