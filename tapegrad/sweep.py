"""The reverse sweep: walk the tape backwards from the loss, running each node's derivative.

    for node in reversed(tape[: loss's index + 1]):
        grad_out = node's gathered gradient            (None: the node does not reach the loss)
        grads_in = node.op.backward(node, grad_out)    (the op's hand-written derivative)
        for each input that needs a gradient:
            input's gathered gradient += its grad_in   (accumulate, never assign)
    for each leaf reached:
        leaf.grad += its gathered gradient             (in place, as torch does)

The tape is in a topological order, so when the loop reaches a node every
node that used its output has already sent its contribution: its gradient
is complete. No recursion, no sort, no depth limit. Leaves' `.grad` are
written only at the end, so a sweep that fails half-way changes none.

With ``create_graph=True`` the same loop runs every derivative on tapegrad
tensors instead of torch tensors (`ops/dual.py`): the gradient dL/dy is a
tapegrad tensor, and so is each saved tensor (the very input or output it
was, `_traced_saved`), so each derivative records ops onto the tape. The
gradients then have a tape of their own (the forward's tape, extended by
the derivative's nodes, each marked with ``node.derivative_of``), and can
be swept again, to any order.

`grad()` is the same sweep returning the gradients of chosen inputs
instead of adding them into `.grad`.
"""

from __future__ import annotations

import sys
from typing import Any

import torch

from . import anomaly, hooks
from .tape import RELEASED, Node, _state, resolve
from .tensor import Tensor

# --- the entry points ----------------------------------------------------------------


def backward(
    tensors,
    grad_tensors=None,
    retain_graph=None,
    create_graph: bool = False,
    inputs=None,
    keep_grads: bool = False,
) -> None:
    """Accumulate dL/d(leaf) into the ``.grad`` of every leaf that `tensors` depend on.

    tensors: a tensor or a sequence of tensors (the roots: one sweep from all).
    grad_tensors: dL/d(each root); None for single-element roots (torch's
        ``tapegrad.backward``; ``Tensor.backward`` calls it with one root).
    retain_graph: keep the saved tensors for another sweep (default: create_graph).
    create_graph: record the sweep, so the gradients can be differentiated again.
    inputs: accumulate only into these tensors' ``.grad`` (leaves, or op outputs).
    keep_grads: keep every node's gradient in ``node.grad`` (for pictures and teaching).

    Errors: RuntimeError for a root that needs no gradient, a non-scalar root
    without a gradient, a second sweep of freed saved tensors, a stale saved
    tensor; TypeError/RuntimeError for a gradient of the wrong kind. On error
    no ``.grad`` changes.
    """
    roots, seeds = _roots_and_seeds(tensors, grad_tensors, "backward", create_graph)
    if retain_graph is None:
        retain_graph = create_graph
    if inputs is None:
        leaves, shared, kept = _run(roots, seeds, retain_graph, create_graph, keep_grads)
        _commit(leaves, shared, kept, create_graph)
        return
    targets = _targets(inputs, "backward(inputs=...)")
    captured: dict = {}
    with _capture(targets, captured):
        leaves, shared, kept = _run(roots, seeds, retain_graph, create_graph, keep_grads, targets)
    if targets is not None:  # only the chosen tensors take a gradient
        chosen = {id(t) for t in targets}
        for leaf in leaves:
            if id(leaf) not in chosen:
                leaf._gathered = None
        leaves = [leaf for leaf in leaves if id(leaf) in chosen]
        shared = [leaf for leaf in shared if id(leaf) in chosen]
        for t in targets:
            if t._node is not None and id(t._node) in captured:
                node = t._node
                node.grad = _added(node.grad, captured[id(node)])
    _commit(leaves, shared, kept, create_graph)


def grad(
    outputs,
    inputs,
    grad_outputs=None,
    retain_graph=None,
    create_graph: bool = False,
    allow_unused: bool | None = None,
    materialize_grads: bool = False,
) -> tuple:
    """The gradients of `outputs` with respect to each of `inputs`, as torch.autograd.grad.

    Returns a tuple with one tapegrad Tensor per input (None for an input the
    outputs do not depend on, only with ``allow_unused=True``); ``.grad``
    attributes are left alone. `outputs` and `inputs` may be single tensors
    or sequences; `grad_outputs` gives dL/d(each output) (None: ones, for
    single-element outputs). With ``create_graph=True`` the gradients are
    recorded and can be differentiated again; `retain_graph` defaults to it.
    ``materialize_grads=True`` gives zeros instead of None for an unused input
    (and implies allow_unused), as torch's does.

    Errors: RuntimeError for an input that does not require grad, or that
    the outputs do not depend on (unless allow_unused).
    """
    roots, seeds = _roots_and_seeds(outputs, grad_outputs, "grad", create_graph)
    if retain_graph is None:
        retain_graph = create_graph
    targets = _targets(inputs, "grad(inputs=...)")
    captured: dict = {}
    with _capture(targets, captured):
        leaves, _, _ = _run(roots, seeds, retain_graph, create_graph, False, targets)
    try:
        for leaf in leaves:  # leaves' gradients go to the caller, not into .grad
            captured[id(leaf)] = _with_hooks(leaf, leaf._gathered)
    finally:
        for leaf in leaves:
            leaf._gathered = None
    result = []
    for position, t in enumerate(targets):
        key = id(t) if t._node is None else id(t._node)
        g = captured.get(key)
        if g is None and materialize_grads:
            g = Tensor._wrap(torch.zeros_like(t._data))
        if g is None and not allow_unused:
            raise RuntimeError(
                f"grad(): input {position} (shape {tuple(t.shape)}) was not used to "
                "compute the outputs, so it has no gradient. Pass "
                "allow_unused=True to get None for it"
            )
        result.append(None if g is None else g if isinstance(g, Tensor) else Tensor._wrap(g))
    return tuple(result)


# --- roots, seeds and targets ----------------------------------------------------------


def _as_list(value) -> list:
    if isinstance(value, (Tensor, torch.Tensor)) or value is None:
        return [value]
    return list(value)


def _roots_and_seeds(tensors, grads, caller: str, create_graph: bool):
    roots = [tensors] if tensors.__class__ is Tensor else _as_list(tensors)
    if not roots:
        raise RuntimeError(f"{caller}(): no tensors to differentiate; pass the loss (or losses)")
    grads = [None] * len(roots) if grads is None else _as_list(grads)
    if len(grads) != len(roots):
        raise RuntimeError(
            f"{caller}(): got {len(roots)} tensors but {len(grads)} gradients; "
            "pass one gradient (or None) per tensor"
        )
    seeds = [begin_sweep(root, g, caller, create_graph) for root, g in zip(roots, grads)]
    return roots, seeds


def _targets(inputs, caller: str) -> list:
    targets = _as_list(inputs)
    if not targets:
        raise RuntimeError(f"{caller}: no inputs given; pass the tensors to differentiate against")
    for position, t in enumerate(targets):
        if not isinstance(t, Tensor):
            raise TypeError(
                f"{caller}: input {position} is a {type(t).__name__}, not a tapegrad Tensor"
            )
        if not t._requires_grad:
            raise RuntimeError(
                f"{caller}: input {position} (shape {tuple(t.shape)}) does not "
                "require grad, so there is no gradient for it; create it with "
                "requires_grad=True"
            )
    return targets


class _capture:
    """While a sweep runs: remember the complete gradient of each op-output target."""

    def __init__(self, targets, captured: dict):
        self.nodes = [t._node for t in targets or () if t._node is not None]
        self.captured = captured

    def __enter__(self):
        for node in self.nodes:
            node.hooks = (node.hooks or []) + [self._keeper(node)]

    def _keeper(self, node):
        def keep(grad):
            self.captured[id(node)] = grad

        keep.internal = True
        return keep

    def __exit__(self, *exc):
        for node in self.nodes:
            kept = [h for h in node.hooks if not getattr(h, "internal", False)]
            node.hooks = kept or None
        return False


def begin_sweep(root, grad, caller: str, create_graph: bool = False):
    """The checks every sweep begins with (`caller` names it in errors); returns dL/d(root)."""
    if _state.sweeping:
        raise RuntimeError(
            f"{caller}() was called from inside a backward() (from an op's "
            "derivative or a hook); finish that sweep first, then start the next"
        )
    if not isinstance(root, Tensor):
        raise TypeError(f"{caller}() takes tapegrad Tensors, got {type(root).__name__}")
    if not root._requires_grad:
        raise RuntimeError(
            f"{caller}() on a tensor that does not require grad: nothing it depends "
            "on has requires_grad=True, or it was computed under no_grad(). Create "
            "the inputs with requires_grad=True and compute it outside no_grad()"
        )
    seed = _seed(root, grad, create_graph)
    if grad is not None:
        Tensor._grads_from_user += 1  # the caller's tensor: it may reach a leaf as it is
    if _state.anomaly and anomaly._bad(seed.data if isinstance(seed, Tensor) else seed):
        raise RuntimeError(
            f"anomaly: the gradient passed to {caller}(grad=...) holds a NaN or "
            f"infinity (shape {tuple(seed.shape)}); check where it was computed"
        )
    return seed


def _seed(root, grad, create_graph: bool = False):
    """dL/d(root): ones for a one-element root, else the caller's `grad`, checked."""
    data = root._data
    if grad is None:
        if data.numel() != 1:
            raise RuntimeError(
                f"backward() without a gradient needs a single-element tensor (a "
                f"loss), this one has shape {tuple(data.shape)}; reduce it first "
                "(.sum() or .mean()) or pass grad= shaped like it"
            )
        seed = torch.ones_like(data)
        return Tensor._wrap(seed) if create_graph else seed
    value = grad._data if isinstance(grad, Tensor) else grad
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"backward(grad=...) takes a tensor, got {type(grad).__name__}")
    if value.shape != data.shape:
        raise RuntimeError(
            f"backward(grad=...): grad has shape {tuple(value.shape)} but the tensor "
            f"has shape {tuple(data.shape)}; they must match"
        )
    if value.dtype != data.dtype or value.device != data.device:
        raise TypeError(
            f"backward(grad=...): grad is {value.dtype} on {value.device} but the "
            f"tensor is {data.dtype} on {data.device}; they must match"
        )
    if create_graph:  # a gradient that requires grad is differentiated against, as is
        return (
            grad
            if isinstance(grad, Tensor) and grad._requires_grad
            else Tensor._wrap(value.clone())
        )
    return value.clone()  # the caller keeps its tensor; a leaf's .grad must not share it


# --- the sweep -------------------------------------------------------------------------


def _run(roots, seeds, retain_graph, create_graph, keep_grads, targets=None):
    """Sweep from every root; return (leaves reached, leaves whose gradient may be shared, kept).

    The leaves' gathered gradients are in their ``_gathered``; the caller
    commits them (backward) or hands them out (grad). On error everything
    gathered is dropped and kept node gradients are restored. With
    `targets`, only the derivatives that lead to them are computed (`_prune`).
    """
    touched, shared, kept = [], [], []
    walks = _seed_roots(roots, seeds, touched, shared, create_graph or targets is not None)
    pruned = [] if targets is None else _prune(walks, targets)
    state = _state.__dict__  # this thread's settings: one thread-local lookup
    recording, state["recording"], state["sweeping"] = state["recording"], create_graph, True
    try:
        for tape, nodes, start in walks:
            if create_graph:
                _sweep_graph(nodes, tape, keep_grads, touched, kept, bool(pruned))
            else:
                _sweep(nodes, start, retain_graph, keep_grads, touched, shared, kept, bool(pruned))
    except BaseException:
        _undo(touched, kept, walks)
        raise
    finally:
        state["sweeping"], state["recording"] = False, recording
        for node, needs in pruned:
            node.needs_input_grad = needs
    return touched, shared, kept


def backward_root(root, grad=None, retain_graph=None, keep_grads: bool = False) -> None:
    """`backward` from one recorded root (`root._node` is not None), with neither
    create_graph nor inputs: `_run` and `_commit` for the case every training step
    takes (``loss.backward()``), with less to set up. `grad` is dL/d(root) or None."""
    seed = begin_sweep(root, grad, "backward")
    node = root._node
    tape = root._tape
    if tape._merged_into is not None:
        tape = resolve(tape)
    nodes = tape.nodes
    touched: list = []  # leaves reached
    shared: list = []  # leaves whose gradient may be another's (see _own_leaf_grads)
    kept: list = []  # (node, previous node.grad) for retained gradients
    state = _state.__dict__  # this thread's settings: one thread-local lookup
    recording, state["recording"], state["sweeping"] = state["recording"], False, True
    node._gathered = seed
    try:
        _sweep(nodes, node.index, bool(retain_graph), keep_grads, touched, shared, kept)
    except BaseException:
        _undo(touched, kept, [(tape, nodes, node.index)])
        raise
    finally:
        state["sweeping"], state["recording"] = False, recording
    _commit(touched, shared, kept, False)


def _undo(touched, kept, walks) -> None:
    """After a sweep failed: drop every gathered gradient, restore the kept node gradients."""
    for holder in touched:
        holder._gathered = None
    for holder, previous in reversed(kept):
        holder.grad = previous
    for _, nodes, start in walks:
        for node in nodes[: start + 1]:
            node._gathered = None


def _seed_roots(roots, seeds, touched, shared, copy: bool) -> list:
    """Give each root its seed; return the walks, (tape, its nodes, start), one per tape.

    With `copy` each walk is over a copy of the tape's list, as it is now.
    """
    starts: list = []  # [tape, the highest root index on it], per tape reached
    seeded = []
    try:
        for root, seed in zip(roots, seeds):
            node = root._node
            holder = root if node is None else node
            if holder._gathered is None:
                holder._gathered = seed
                seeded.append(holder)
                if node is None:
                    touched.append(root)
                    shared.append(root)
            else:
                holder._gathered = holder._gathered + seed
            if node is not None:
                tape = resolve(root._tape)
                for entry in starts:
                    if entry[0] is tape:
                        entry[1] = max(entry[1], node.index)
                        break
                else:
                    starts.append([tape, node.index])
    except BaseException:
        for holder in seeded:
            holder._gathered = None
        raise
    # The lists to walk, fixed now: a create_graph sweep records onto these tapes (an
    # ordinary one appends nothing, and walks the tape's own list from `start` down).
    return [
        (tape, tape.nodes[: start + 1] if copy else tape.nodes, start) for tape, start in starts
    ]


def _prune(walks, targets) -> list:
    """For this sweep, send gradients only along inputs that lead to `targets` (as torch does).

    One pass forward over the tape marks the nodes that depend on a
    target; every other input's ``needs_input_grad`` is switched off until
    the sweep ends. Returns [(node, its original needs)] to restore.
    """
    wanted = {id(t) if t._node is None else id(t._node) for t in targets}
    changed = []
    for _, nodes, _ in walks:
        leads = set(wanted)
        for node in nodes:
            needs = node.needs_input_grad
            pruned = tuple(need and id(holder) in leads for holder, need in zip(node.inputs, needs))
            if True in pruned:
                leads.add(id(node))
            if pruned != needs:
                changed.append((node, needs))
                node.needs_input_grad = pruned
    return changed


def _sweep(nodes, start, retain_graph, keep_grads, touched, shared, kept, pruned=False):
    check = _state.anomaly
    for index in range(start, -1, -1):
        node = nodes[index]
        grad = node._gathered
        if grad is None:
            continue  # this node does not lead to the loss
        node._gathered = None  # free it as we pass
        if keep_grads or node.retains_grad or node.hooks is not None:
            grad = _at_node(node, grad, keep_grads, kept)
        if pruned and True not in node.needs_input_grad:
            continue  # nothing it leads to is wanted (grad(), inputs=)
        if node._saved is RELEASED:
            raise RuntimeError(
                f"backward() through {node.describe()} a second time: the tape's saved tensors "
                "were freed by the first backward(). Pass retain_graph=True to the first "
                "backward() to sweep the same tape again"
            )
        op = node.op
        grads = op.backward(node, grad)
        if grads.__class__ is not tuple:
            grads = (grads,)
        if op.check_grad_shapes or check:  # user ops (built-in ones are tested instead)
            grads = _check_grads(node, grads)
        fresh = op.fresh_grads
        for holder, needed, grad_in in zip(node.inputs, node.needs_input_grad, grads):
            if needed and grad_in is not None:
                previous = holder._gathered
                if previous is None:
                    if holder.__class__ is not Node:  # a leaf: its first contribution
                        touched.append(holder)
                        if not fresh:
                            shared.append(holder)
                    holder._gathered = grad_in
                else:
                    holder._gathered = previous + grad_in
        if not retain_graph and node._versions:  # node.release(), inlined: the hot path
            node._saved = RELEASED
            node._versions = ()


def _sweep_graph(nodes, tape, keep_grads, touched, kept, pruned=False):
    """The sweep with create_graph=True: every derivative recorded (see the module docstring).

    The nodes each derivative records (the op's backward, and the sums that
    gather its results) are marked ``derivative_of = node``.
    """
    try:
        for node in reversed(nodes):
            grad = node._gathered
            if grad is None:
                continue
            node._gathered = None
            _state.watch("deriving", node)
            if keep_grads or node.retains_grad or node.hooks is not None:
                grad = _at_node(node, grad, keep_grads, kept)
            if pruned and True not in node.needs_input_grad:
                continue
            if node._saved is RELEASED:
                raise RuntimeError(
                    f"backward(create_graph=True) through {node.describe()}: its saved tensors "
                    "were freed by an earlier backward(). Pass retain_graph=True (or "
                    "create_graph=True) to that earlier backward()"
                )
            grads = _traced_backward(node, grad, tape)
            if node.op.check_grad_shapes or _state.anomaly:
                grads = _check_grads(node, grads, traced=True)
            for holder, needed, grad_in in zip(node.inputs, node.needs_input_grad, grads):
                if needed and grad_in is not None:
                    previous = holder._gathered
                    if previous is None:
                        if holder.__class__ is not Node:
                            touched.append(holder)
                        holder._gathered = grad_in
                    else:
                        holder._gathered = previous + grad_in
            _state.watch("deriving", None)
    finally:
        _state.watch("deriving", None)


def _at_node(node, grad, keep_grads, kept):
    """A node's complete gradient meets its hooks, then retain_grad / keep_grads keep it."""
    if node.hooks is not None:
        given = grad
        grad = hooks.run(node.hooks, grad, node.describe(), Tensor._wrap)
        if grad is not given:  # a hook's tensor: it may reach a leaf as it is
            Tensor._grads_from_user += 1
    if keep_grads or node.retains_grad:
        kept.append((node, node.grad))
        # a copy of its own (torch's retain_grad clones): grad may be a broadcast view, or
        # the tensor that flows on and into a leaf's .grad
        own = (
            grad.clone(memory_format=torch.contiguous_format)
            if isinstance(grad, torch.Tensor)
            else grad
        )
        node.grad = _added(node.grad, own)
    return grad


def _added(previous, grad):
    return grad if previous is None else previous + grad


# --- create_graph: derivatives as recorded ops ------------------------------------------


class GraphCtx:
    """The ctx an op's backward receives in a create_graph sweep.

    Everything reads through to the node (``ctx.needs_input_grad``,
    ``ctx.shapes``, ...), except `saved_tensors`: those are tapegrad tensors,
    each the very input or output of the node that was saved, so that ops on
    them record onto the tape and reach what they depend on.
    """

    __slots__ = ("_node", "saved_tensors")

    def __init__(self, node, tape):
        object.__setattr__(self, "_node", node)
        object.__setattr__(self, "saved_tensors", _traced_saved(node, tape))

    def __getattr__(self, name):
        return getattr(self._node, name)

    def __setattr__(self, name, value):
        setattr(self._node, name, value)


class NotTraceable(RuntimeError):
    """A saved tensor whose dependence on the inputs the tape does not know."""


def _traced_saved(node, tape) -> tuple:
    saved = node.saved_tensors  # checks for freed and stale tensors
    return tuple(
        _traced(node, position, t, tape) if isinstance(t, torch.Tensor) else t
        for position, t in enumerate(saved)
    )


def _traced(node, position, t, tape):
    """The tapegrad tensor that saved tensor `t` of `node` is: an input, the output, or a
    constant."""
    for holder in node.inputs:
        if holder.__class__ is Node:
            if holder._out_id == id(t) or id(t) in holder.__dict__.get("aliases", ()):
                return Tensor._recorded(t, holder, tape)
        elif isinstance(holder, Tensor):
            if holder._data is t:
                return holder
        elif holder is t:
            return Tensor._wrap(t)
    if node._out_id == id(t):
        return Tensor._recorded(t, node, tape)
    for output in _output_nodes(node, tape):  # an op with several outputs
        if output._out_id == id(t):
            return Tensor._recorded(t, output, tape)
    if not (t.is_floating_point() or t.is_complex()):
        return Tensor._wrap(t)  # masks, indices: constants of the derivative
    raise NotTraceable(
        f"backward(create_graph=True) through {node.describe()}: saved tensor {position} is "
        f"neither an input nor the output of {node.name}, so its derivative can't be recorded "
        "(the tape does not know what it depends on). Save only inputs and outputs with "
        "ctx.save_for_backward and compute the rest in backward from them, or mark backward "
        "with @tapegrad.once_differentiable"
    )


def _output_nodes(node, tape) -> list:
    """The `OutputOf` nodes of a node with several outputs: recorded right after it."""
    if "outputs" not in node.__dict__:
        return []
    from .function import OutputOf

    nodes = resolve(tape).nodes
    found = []
    for later in nodes[node.index + 1 :]:
        if later.op is not OutputOf or later.inputs[0] is not node:
            break
        found.append(later)
    return found


def _traced_backward(node, grad, tape) -> tuple:
    """Run `node`'s derivative on tapegrad tensors, so that it records; see the module docstring."""
    op = node.op
    if getattr(op.backward, "once_differentiable", False):
        return _once(node, grad, tape, "it is marked @once_differentiable")
    builtin = op.__module__.startswith("tapegrad.")
    try:
        ctx = GraphCtx(node, tape)
    except NotTraceable as error:
        if builtin:
            raise
        return _once(node, grad, tape, str(error).split(": ", 1)[-1])
    try:
        grads = op.backward(ctx, grad)
    except (TypeError, AttributeError) as error:
        if builtin:
            raise
        # A user op whose backward calls torch on the tensors it gets: run it on torch
        # tensors, and let a second-order sweep that reaches the result fail (never a
        # silently zero second derivative).
        return _once(
            node,
            grad,
            tape,
            f"its backward does not run on tapegrad tensors ({type(error).__name__}: {error})",
        )
    if grads.__class__ is not tuple:
        grads = (grads,)
    if any(isinstance(g, torch.Tensor) for g in grads):
        if _requires_grad(grad) or any(
            isinstance(s, Tensor) and s._requires_grad for s in ctx.saved_tensors
        ):
            return _once(
                node,
                grad,
                tape,
                "its backward returned plain torch tensors, computed outside the tape",
            )
        grads = tuple(Tensor._wrap(g) if isinstance(g, torch.Tensor) else g for g in grads)
    return grads


def _once(node, grad, tape, reason: str) -> tuple:
    """The derivative run once on torch tensors; a second-order sweep through it raises."""
    from .function import OnceDifferentiable, Parts

    if isinstance(grad, Parts):  # the gradients of an op with several outputs
        given = [g for g in grad.grads.values() if g is not None]
        raw = node.op.backward(node, Parts({k: g._data for k, g in grad.grads.items()}))
    else:
        given = [grad]
        raw = node.op.backward(node, grad._data)
    if raw.__class__ is not tuple:
        raw = (raw,)
    depends = given + [
        _depend(holder, tape)
        for holder, needed in zip(node.inputs, node.needs_input_grad)
        if needed
    ]
    return tuple(
        None
        if g is None
        else OnceDifferentiable.apply(
            g._data if isinstance(g, Tensor) else g, f"{node.describe()}: {reason}", *depends
        )
        for g in raw
    )


def _requires_grad(grad) -> bool:
    from .function import Parts

    if isinstance(grad, Parts):
        return any(g is not None and g._requires_grad for g in grad.grads.values())
    return grad._requires_grad


def _depend(holder, tape):
    """An input of a node as a tensor to depend on (its values are not needed)."""
    if holder.__class__ is Node:
        return Tensor._recorded(torch.empty(0), holder, tape)
    return holder


# --- the end of a sweep: leaves' .grad ----------------------------------------------------


def _with_hooks(leaf, grad):
    if hooks.leaf_hooks:
        found = hooks.leaf_hooks.get(id(leaf))
        if found is not None and found[0]() is leaf:
            grad = hooks.run(found[1], grad, f"a leaf of shape {tuple(leaf.shape)}", Tensor._wrap)
    return grad


def _commit(leaves, shared, kept, create_graph: bool) -> None:
    """Add each leaf's gathered gradient into its ``.grad``, as torch's AccumulateGrad does.

    A leaf with no ``.grad`` takes the gradient (a copy where it could be a
    view or another tensor's: see `_own_leaf_grads`); otherwise it is added
    in place, so a reference held to ``x.grad`` sees the sum. After
    create_graph=True the sum is recorded instead (out of place).
    """
    try:
        if hooks.leaf_hooks:  # run them all before any .grad changes (one may raise)
            _run_leaf_hooks(leaves)
        if create_graph:
            _own_recorded_grads([leaf for leaf in leaves if leaf._grad is None])
        elif shared:
            _own_leaf_grads([leaf for leaf in shared if leaf._grad is None], kept)
    except BaseException:
        for leaf in leaves:
            leaf._gathered = None
        raise
    for leaf in leaves:
        grad = leaf._gathered
        leaf._gathered = None
        old = leaf._grad
        if old is None:
            leaf._grad = grad
        elif create_graph or isinstance(grad, Tensor):
            leaf._grad = grad + old
        else:
            if isinstance(old, Tensor):
                old = old._data
            if 0 in old.stride() and old.numel() > 1:  # an expanded .grad: can't add in place
                leaf._grad = old + grad
            else:
                leaf._grad = old.add_(grad)


def _run_leaf_hooks(leaves) -> None:
    """Replace each leaf's gathered gradient by what its hooks make of it."""
    hooked = [(leaf, _with_hooks(leaf, leaf._gathered)) for leaf in leaves]
    for leaf, grad in hooked:
        # a hook may keep the tensor it saw, or return one it keeps: .grad takes a copy
        if id(leaf) in hooks.leaf_hooks and isinstance(grad, torch.Tensor):
            grad = grad.clone()
        leaf._gathered = grad


def _own_leaf_grads(leaves, kept) -> None:
    """Give each of `leaves` a .grad of its own, as torch does.

    A derivative may hand its incoming gradient straight through (+, reshape,
    to(), the broadcast view of sum's derivative), so a leaf's gradient can be
    a view, or the very tensor another leaf or a retained node holds; and a
    user Function's backward, a hook or the caller's seed may hand in a tensor
    held elsewhere (a saved input, another parameter's data, an optimizer's
    buffer). An in-place edit of one (``p.grad.mul_(0.5)`` to clip, an
    optimizer's step) would change the others, or fail on a broadcast view.
    Copy just those, once per sweep. torch's AccumulateGrad keeps a gradient
    only when nothing else holds its tensor (its use count); here that is
    Python's reference count, against `_UNHELD` (3 on CPython 3.11-3.13: the
    leaf's `_gathered`, the local name, getrefcount's own argument). The
    sweep passes only the leaves that took such a gradient as it was (from an
    op without `fresh_grads`); `kept` is [(node, ...)] of kept gradients.
    """
    seen = {id(node.grad) for node, _ in kept}
    done = set()
    for holder in leaves:
        if id(holder) in done:
            continue
        done.add(id(holder))
        grad = holder._gathered
        if (
            grad._base is not None
            or id(grad) in seen
            or not grad.is_contiguous()
            or sys.getrefcount(grad) > _UNHELD
        ):
            grad = holder._gathered = grad.clone(memory_format=torch.contiguous_format)
        seen.add(id(grad))


def _own_recorded_grads(leaves) -> None:
    """After create_graph=True, a leaf with no .grad takes a recorded copy of its gradient,
    as torch's AccumulateGrad copies every one there: the gradient may be another leaf's,
    the caller's seed or a view of it, and a later plain backward adds into .grad in place."""
    for holder in dict.fromkeys(leaves):
        holder._gathered = holder._gathered.clone()


class _Probe:
    __slots__ = ("_gathered",)
    _gathered: Any  # (a slot, as a Tensor's)


def _refs_of_an_unheld_gradient() -> int:
    """sys.getrefcount of a tensor that only a leaf's `_gathered` holds, read the way
    `_own_leaf_grads` reads it: measured at import, as an interpreter that borrows
    references for local names (newer CPython) counts fewer."""
    probe = _Probe()
    probe._gathered = torch.empty(0)
    grad = probe._gathered
    return sys.getrefcount(grad)


_UNHELD = _refs_of_an_unheld_gradient()


def _check_grads(node, grads, traced: bool = False) -> tuple:
    """One gradient per input, each a tensor shaped like its input (and finite, in anomaly mode).

    Returns the gradients as the sweep uses them: in an ordinary sweep, a
    tapegrad Tensor that a user's backward returned (from ops it called)
    is taken as its values.
    """
    if node.op.check_grad_shapes:  # a user op's backward may return any tensor it holds
        Tensor._grads_from_user += 1
    if len(grads) > len(node.inputs) and all(g is None for g in grads[len(node.inputs) :]):
        grads = grads[: len(node.inputs)]  # trailing Nones (e.g. for defaulted arguments): fine
    if len(grads) != len(node.inputs):
        raise RuntimeError(
            f"{node.op.__name__}.backward returned {len(grads)} gradient(s) "
            f"for {len(node.inputs)} input(s); return one per input of forward "
            "(None where there is none)"
        )
    for position, (holder, needed, grad_in) in enumerate(
        zip(node.inputs, node.needs_input_grad, grads)
    ):
        if not needed or grad_in is None:
            continue
        if not isinstance(grad_in, (torch.Tensor, Tensor)):
            raise TypeError(
                f"{node.op.__name__}.backward returned a {type(grad_in).__name__} as the "
                f"gradient of input {position}; return a torch.Tensor (or None)"
            )
        shape = holder.shape
        if grad_in.shape != shape:
            raise RuntimeError(
                f"{node.describe()}: backward returned a gradient of shape "
                f"{tuple(grad_in.shape)} for input {position}, whose shape is "
                f"{tuple(shape)}; each gradient must have its input's shape"
            )
        dtype = holder.dtype
        if grad_in.dtype != dtype:
            raise TypeError(
                f"{node.describe()}: backward returned a {grad_in.dtype} gradient for "
                f"input {position}, which is {dtype}; return it in its input's dtype"
            )
        if _state.anomaly:
            anomaly.check_backward(
                node, position, grad_in._data if isinstance(grad_in, Tensor) else grad_in
            )
    if not traced and any(isinstance(g, Tensor) for g in grads):
        grads = tuple(g._data if isinstance(g, Tensor) else g for g in grads)
    return grads
