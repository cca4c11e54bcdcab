"""Check every node of a tape: each op's derivative against central differences on its own inputs.

    report = tapegrad.check_tape(loss)
    print(report)               # one row per node: op, elements checked, largest error
    assert report               # falsy when some node's backward is wrong

`tapegrad.gradcheck` checks a whole function; `check_tape` finds *which*
op is wrong. For each node that the loss depends on, with v a fixed random
weighting of the node's output y = f(x_1, ..., x_k) and
L = sum(v * f(x_1, ..., x_k)):

    analytic    dL/dx_j = op.backward(ctx, v)[j]
    numerical   dL/dx_j[i] ~ (L(x_j[i] + eps) - L(x_j[i] - eps)) / (2 eps)

and each element must agree within ``atol + rtol * |numerical|``. At a kink
(relu at 0, a tie of max: the one-sided differences disagree) any slope
between the one-sided ones is accepted, since torch's derivative there is
one of them.

The inputs come from replaying the tape forward in float64: leaves'
current values (and constants) are copied to float64, and each node's op
runs ``op.forward`` on a fresh ctx, in tape order. So any tape can be
checked, whatever its dtype and whether it kept its values; what is
needed is that the leaves still hold the values the loss was computed
from (check before the optimizer step) and that ops are deterministic.
A node whose op outputs a lower precision than float64 (``x.float()``)
is checked with eps = 1e-3 and tolerances of 1e-2, which that rounding
needs. Inputs with more than `max_elements` elements are checked at
`max_elements` random elements and along one random direction through
all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .steps import reached_nodes
from .tape import Node, Tape
from .tensor import Tensor

LOW_PRECISION = (1e-3, 1e-2, 1e-2)  # eps, atol, rtol for ops whose output is not float64


@dataclass
class NodeCheck:
    """The verdict on one node: `error` is the largest |analytic - numerical| found."""

    index: int
    name: str
    checked: int = 0  # elements compared, over all inputs
    error: float = 0.0
    ok: bool = True
    problem: str = ""  # what is wrong, where, with the two values


class TapeCheck:
    """The report of `check_tape`: truthy when every node agrees, printable as a table."""

    def __init__(self, rows: list, eps: float):
        self.rows = rows
        self.eps = eps

    def __bool__(self) -> bool:
        return all(row.ok for row in self.rows)

    @property
    def failures(self) -> list:
        """The rows of the nodes whose derivative is wrong, worst first."""
        return sorted((r for r in self.rows if not r.ok), key=lambda r: -r.error)

    @property
    def worst(self) -> NodeCheck | None:
        """The node with the largest error (a failing one first, if any)."""
        if not self.rows:
            return None
        return self.failures[0] if not self else max(self.rows, key=lambda r: r.error)

    def __str__(self):
        verdict = "all agree" if self else f"{len(self.failures)} WRONG"
        lines = [
            f"check_tape: {len(self.rows)} nodes against central differences "
            f"(float64, eps {self.eps:g}): {verdict}",
            f"  {'node':<6} {'op':<18} {'elements':>8}  {'largest error':>13}  verdict",
        ]
        for row in self.rows:
            lines.append(
                f"  %{row.index:<5} {row.name:<18} {row.checked:>8}  {row.error:>13.3g}  "
                f"{'ok' if row.ok else 'WRONG: ' + row.problem}"
            )
        return "\n".join(lines)

    def __repr__(self):
        return f"<TapeCheck of {len(self.rows)} nodes: {'ok' if self else 'WRONG'}>"


def check_tape(
    loss,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    max_elements: int = 200,
    seed: int = 0,
) -> TapeCheck:
    """Check the derivative of every node that `loss` depends on (or every node of a `Tape`).

    Returns a `TapeCheck`: falsy if some node's backward disagrees with
    central differences; ``print`` it for the table, ``.failures`` for the
    wrong nodes (index, op name, largest error, and where).
    """
    nodes = _nodes_to_check(loss)
    values: dict = {}  # Node -> its output, recomputed in float64
    rows = []
    for node in nodes:
        row = NodeCheck(node.index, node.name)
        rows.append(row)
        inputs = [
            values.get(item) if isinstance(item, Node) else _float64(item) for item in node.inputs
        ]
        if any(v is None for v, item in zip(inputs, node.inputs) if isinstance(item, Node)):
            row.ok, row.problem = False, "not checked: an input node could not be recomputed"
            continue
        try:
            ctx = _fresh_ctx(node)
            out = node.op.forward(ctx, *inputs)
            if not isinstance(out, torch.Tensor):
                raise TypeError(f"forward returned a {type(out).__name__}, not a tensor")
            values[node] = _float64(out)
            _check_node(node, ctx, out, inputs, row, eps, atol, rtol, max_elements, seed)
        except Exception as error:  # a derivative that crashes is a wrong derivative: report it
            row.ok, row.problem = False, f"{type(error).__name__}: {error}"
    return TapeCheck(rows, eps)


def _nodes_to_check(loss) -> list:
    if isinstance(loss, Tape):
        # A block record may read nodes recorded outside its block: replay those too.
        nodes, seen = [], set()
        stack = list(loss)
        while stack:
            node = stack.pop()
            if id(node) not in seen:
                seen.add(id(node))
                nodes.append(node)
                stack.extend(item for item in node.inputs if isinstance(item, Node))
        return sorted(nodes, key=lambda node: node.index)
    if getattr(loss, "_node", None) is None:
        raise ValueError(
            "check_tape(loss): the loss was not recorded on a tape (it is a leaf, was "
            "computed under no_grad(), or nothing it depends on requires grad); "
            "pass the output of recorded ops, or a Tape"
        )
    return reached_nodes(loss)


def _float64(item):
    """A value for the replay: floating tensors (tapegrad or torch) become float64 copies."""
    data = item.data if isinstance(item, Tensor) else item
    if isinstance(data, torch.Tensor) and data.is_floating_point():
        return data.to(torch.float64, copy=True)
    return data


def _fresh_ctx(node: Node) -> Node:
    ctx = Node(node.op)
    ctx.needs_input_grad = node.needs_input_grad
    ctx.index = node.index  # so that errors from the op name the node
    ctx._module = node._module
    return ctx


def _check_node(node, ctx, out, inputs, row, eps, atol, rtol, max_elements, seed) -> None:
    """Compare op.backward (on `ctx`, which ran forward to `out`) with central differences."""
    if out.dtype != torch.float64:
        eps, atol, rtol = LOW_PRECISION
    generator = torch.Generator().manual_seed(seed + node.index)
    weights = torch.randn(out.shape, generator=generator, dtype=torch.float64)
    grads = node.op.backward(ctx, weights.to(out.dtype))
    if grads.__class__ is not tuple:
        grads = (grads,)
    if len(grads) != len(inputs):
        raise RuntimeError(f"backward returned {len(grads)} gradient(s) for {len(inputs)} input(s)")

    def loss(position, x) -> float:
        args = list(inputs)
        args[position] = x
        return float((node.op.forward(_fresh_ctx(node), *args).to(torch.float64) * weights).sum())

    for position, (x, needed) in enumerate(zip(inputs, node.needs_input_grad)):
        if not needed or not isinstance(x, torch.Tensor) or not x.is_floating_point():
            continue
        analytic = grads[position]
        if analytic is None:
            analytic = torch.zeros_like(x)  # the sweep adds nothing for None
        elif not isinstance(analytic, torch.Tensor) or analytic.shape != x.shape:
            row.ok = False
            row.problem = (
                f"input {position}: backward returned "
                f"{getattr(analytic, 'shape', type(analytic).__name__)} for an input "
                f"of shape {tuple(x.shape)}"
            )
            return
        analytic = analytic.to(torch.float64)
        analytic_flat = analytic.reshape(-1)
        x = x.clone(memory_format=torch.contiguous_format)
        flat = x.view(-1)
        elements: list | range = range(flat.numel())
        if flat.numel() > max_elements:
            elements = torch.randperm(flat.numel(), generator=generator)[:max_elements].tolist()
            _check_direction(position, x, analytic, loss, row, eps, atol, rtol, generator)
        centre = loss(position, x)
        for k in elements:
            original = flat[k].item()
            flat[k] = original + eps
            plus = loss(position, x)
            flat[k] = original - eps
            minus = loss(position, x)
            flat[k] = original
            numerical = (plus - minus) / (2 * eps)
            got = analytic_flat[k].item()
            right, left = (plus - centre) / eps, (centre - minus) / eps
            if abs(right - left) > 10 * (atol + rtol * max(abs(right), abs(left))):
                # a kink (relu at 0, a tie of max): any slope between the one-sided ones is
                # a right derivative there (torch picks one), so take the nearest of them
                numerical = min(max(got, min(left, right)), max(left, right))

            def where(position=position, k=k, x=x) -> str:  # the message, made only on a failure
                return f"input {position} at {_unravel(k, x.shape)}"

            _compare(row, got, numerical, atol, rtol, where)


def _check_direction(position, x, analytic, loss, row, eps, atol, rtol, generator) -> None:
    """dL/dx . u against (L(x + eps u) - L(x - eps u)) / (2 eps), u a random unit direction."""
    u = torch.randn(x.shape, generator=generator, dtype=torch.float64)
    u /= u.norm()
    numerical = (loss(position, x + eps * u) - loss(position, x - eps * u)) / (2 * eps)
    got = float((analytic * u).sum())
    _compare(row, got, numerical, atol, rtol, lambda: f"input {position} along a random direction")


def _compare(row, got, numerical, atol, rtol, where) -> None:
    error = abs(got - numerical)
    row.checked += 1
    wrong = not error <= atol + rtol * abs(numerical)  # `not <=`: a NaN is wrong too
    if wrong and (row.ok or error > row.error):
        row.problem = f"{where()}: backward gives {got:.6g}, central differences {numerical:.6g}"
    if wrong:
        row.ok = False
    if error > row.error or error != error:
        row.error = error


def _unravel(k: int, shape) -> tuple:
    return tuple(int(i) for i in torch.unravel_index(torch.tensor(k), shape))
