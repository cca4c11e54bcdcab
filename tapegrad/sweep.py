"""The reverse sweep: walk the tape backwards from the loss, running each node's derivative.

    for node in reversed(tape[: loss's index + 1]):
        grad_out = node's gathered gradient            (None: the node does not reach the loss)
        grads_in = node.op.backward(node, grad_out)    (the op's hand-written derivative)
        for each input that needs a gradient:
            input.grad += its grad_in                  (accumulate, never assign)

The tape is in execution order, so when the loop reaches a node every node
that used its output has already sent its contribution: its gradient is
complete. No recursion, no sort, no depth limit.
"""

from __future__ import annotations

import torch

from . import anomaly
from .tape import RELEASED, Node, _state


def backward(root, grad=None, retain_graph: bool = False, keep_grads: bool = False) -> None:
    """Accumulate dL/d(leaf) into every leaf that `root` depends on; see Tensor.backward."""
    seed = begin_sweep(root, grad, "backward")
    node = root._node
    if node is None:        # a leaf: dL/dL is the seed itself
        root._grad = seed if root._grad is None else root._grad + seed
        return
    nodes = root.tape.nodes
    touched = []            # (leaf, previous gradient): to undo a sweep that fails half-way
    shared = []             # leaves given, as is, a gradient that may be shared or a view
    kept = []
    node._grad = seed
    _state.sweeping = True
    try:
        _sweep(nodes, node.index, retain_graph, keep_grads, touched, shared, kept)
        if shared:
            _own_leaf_grads(shared, kept)
    except BaseException:
        for holder, previous in reversed(touched):
            holder._grad = previous
        for holder, previous in reversed(kept):
            holder.grad = previous
        for index in range(node.index + 1):
            nodes[index]._grad = None
        raise
    finally:
        _state.sweeping = False


def begin_sweep(root, grad, caller: str):
    """The checks every sweep begins with (`caller` names it in errors); returns dL/d(root)."""
    if _state.sweeping:
        raise RuntimeError(f"{caller}() was called from inside a backward() (from an op's "
                           "derivative or a hook); finish that sweep first, then start the next")
    if not getattr(root, "requires_grad", False):
        raise RuntimeError(f"{caller}() on a tensor that does not require grad: nothing it depends "
                           "on has requires_grad=True, or it was computed under no_grad(). Create "
                           "the inputs with requires_grad=True and compute it outside no_grad()")
    seed = _seed(root, grad)
    if _state.anomaly and anomaly._bad(seed):
        raise RuntimeError(f"anomaly: the gradient passed to {caller}(grad=...) holds a NaN or "
                           f"infinity (shape {tuple(seed.shape)}); check where it was computed")
    return seed


def _sweep(nodes, start, retain_graph, keep_grads, touched, shared, kept):
    check = _state.anomaly
    for index in range(start, -1, -1):
        node = nodes[index]
        grad = node._grad
        if grad is None:
            continue                    # this node does not lead to the loss
        node._grad = None               # free it as we pass
        if keep_grads or node.retains_grad:
            kept.append((node, node.grad))
            node.grad = grad if node.grad is None else node.grad + grad
        if node._saved is RELEASED:
            raise RuntimeError(
                f"backward() through {node.describe()} a second time: the tape's saved tensors "
                "were freed by the first backward(). Pass retain_graph=True to the first "
                "backward() to sweep the same tape again")
        op = node.op
        grads = op.backward(node, grad)
        if grads.__class__ is not tuple:
            grads = (grads,)
        if op.check_grad_shapes or check:   # user ops (built-in ones are tested instead)
            _check_grads(node, grads)
        fresh = op.fresh_grads
        for holder, needed, grad_in in zip(node.inputs, node.needs_input_grad, grads):
            if needed and grad_in is not None:
                previous = holder._grad
                if holder.__class__ is not Node:    # a leaf (a failed sweep clears the nodes)
                    touched.append((holder, previous))
                    if previous is None and not fresh:
                        shared.append(holder)
                holder._grad = grad_in if previous is None else previous + grad_in
        if not retain_graph:
            node._saved = RELEASED      # node.release(), inlined: this loop is the hot path
            node._versions = ()


def _own_leaf_grads(leaves, kept) -> None:
    """Give each of `leaves` a .grad of its own, as torch does.

    A derivative may hand its incoming gradient straight through (+, reshape,
    to(), the broadcast view of sum's derivative), so a leaf's gradient can be
    a view, or the very tensor another leaf or a retained node holds. An
    in-place edit of one (``p.grad.mul_(0.5)`` to clip) would change the
    others, or fail on a broadcast view. Copy just those, once per sweep.
    The sweep passes only the leaves that took such a gradient as it was
    (from an op without `fresh_grads`); `kept` is [(node, ...)] of kept gradients.
    """
    seen = {id(node.grad) for node, _ in kept}
    done = set()
    for holder in leaves:
        if id(holder) in done:
            continue
        done.add(id(holder))
        grad = holder._grad
        if grad._base is not None or id(grad) in seen or not grad.is_contiguous():
            grad = holder._grad = grad.clone(memory_format=torch.contiguous_format)
        seen.add(id(grad))


def _check_grads(node, grads):
    """One gradient per input, each a tensor shaped like its input (and finite, in anomaly mode)."""
    if len(grads) != len(node.inputs):
        raise RuntimeError(f"{node.op.__name__}.backward returned {len(grads)} gradient(s) "
                           f"for {len(node.inputs)} input(s); return one per input of forward "
                           "(None where there is none)")
    for position, (holder, needed, grad_in) in enumerate(zip(node.inputs, node.needs_input_grad, grads)):
        if not needed or grad_in is None:
            continue
        if not isinstance(grad_in, torch.Tensor):
            raise TypeError(f"{node.op.__name__}.backward returned a {type(grad_in).__name__} as the "
                            f"gradient of input {position}; return a torch.Tensor (or None)")
        shape = holder.shape
        if grad_in.shape != shape:
            raise RuntimeError(f"{node.describe()}: backward returned a gradient of shape "
                               f"{tuple(grad_in.shape)} for input {position}, whose shape is "
                               f"{tuple(shape)}; each gradient must have its input's shape")
        dtype = holder.dtype
        if grad_in.dtype != dtype:
            raise TypeError(f"{node.describe()}: backward returned a {grad_in.dtype} gradient for "
                            f"input {position}, which is {dtype}; return it in its input's dtype")
        if _state.anomaly:
            anomaly.check_backward(node, position, grad_in)


def _seed(root, grad):
    """dL/d(root): ones for a one-element root, else the caller's `grad`, checked."""
    data = root.data
    if grad is None:
        if data.numel() != 1:
            raise RuntimeError(f"backward() without a gradient needs a single-element tensor (a "
                               f"loss), this one has shape {tuple(data.shape)}; reduce it first "
                               "(.sum() or .mean()) or pass grad= shaped like it")
        return torch.ones_like(data)
    grad = getattr(grad, "data", grad)
    if not isinstance(grad, torch.Tensor):
        raise TypeError(f"backward(grad=...) takes a tensor, got {type(grad).__name__}")
    if grad.shape != data.shape:
        raise RuntimeError(f"backward(grad=...): grad has shape {tuple(grad.shape)} but the tensor "
                           f"has shape {tuple(data.shape)}; they must match")
    if grad.dtype != data.dtype or grad.device != data.device:
        raise TypeError(f"backward(grad=...): grad is {grad.dtype} on {grad.device} but the tensor "
                        f"is {data.dtype} on {data.device}; they must match")
    return grad.clone()     # the caller keeps its tensor; a leaf's .grad must not share it
