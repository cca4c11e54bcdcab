"""The tape: an explicit Wengert list of the ops that ran, in the order they ran.

Every op on a tensor that needs a gradient appends one `Node` to a `Tape`.
Because nodes are appended as they run, the tape is already a topological
order of the computation: the reverse sweep (`tapegrad.backward`, in
`sweep.py`) is a plain loop over it backwards.

Who owns what (there are no reference cycles, so reference counting frees a
tape the moment the last tensor that needs it goes):

    Tensor ──> its Node (the op that made it)      Tensor ──> its Tape
    Tape   ──> its Nodes, in order                 Node   ──> its input Nodes / leaf Tensors
    Node   ─/─> its output Tensor (never held: that would be a cycle)

Which tape an op records into:

- inside ``with Tape() as tape:``, always that tape;
- otherwise the tape of its inputs. Inputs that are all leaves start a fresh
  tape; inputs from two tapes merge them (keeping execution order). So each
  independent computation has its own tape, which lives exactly as long as
  the tensors that need it: an evaluation loop that keeps ``out = model(x)``
  holds one step's tape, not every step's.

Recording state (explicit tape, ``no_grad``, anomaly mode) is per thread.
"""

from __future__ import annotations

import functools
import itertools
import threading

import torch


class _ThreadState(threading.local):
    """What this thread is recording into, and how."""

    def __init__(self):
        self.recording = True   # False under no_grad()
        self.tape = None        # the explicit Tape of an enclosing `with Tape()`, if any
        self.module = None      # weakref to the innermost Module whose forward is running (for pictures)
        self.sweeping = False   # a reverse sweep is running on this thread
        self.anomaly = False    # detect_anomaly() is on


_state = _ThreadState()
_sequence = itertools.count()   # global execution order, used only to merge tapes in order


class _Released:
    """Marks a node whose saved tensors were freed by a sweep."""

    def __repr__(self):
        return "<released>"


RELEASED = _Released()


class Node:
    """One entry of the tape: an op that ran, its inputs, and what its derivative needs.

    A node is also the ``ctx`` that the op's ``forward(ctx, ...)`` and
    ``backward(ctx, grad_output)`` receive, exactly as in torch: the op stores
    tensors with ``ctx.save_for_backward(...)`` and anything else as plain
    attributes (``ctx.dim = dim``).

    Attributes a reader will want:
        op              the `Function` subclass that ran
        inputs          per input: the Node that produced it, a leaf Tensor,
                        or a constant (number or plain torch tensor)
        needs_input_grad  per input: does a gradient flow back to it
        index           position on its tape
        shape, dtype    of the output
        grad            the gradient of the output, kept after a sweep only
                        for ``retain_grad()`` tensors or ``keep_grads=True``
        value           the output itself, kept only when the tape was made
                        with ``keep_values=True``
    """

    __slots__ = ("op", "inputs", "needs_input_grad", "index", "seq", "shape", "dtype",
                 "_module", "value", "grad", "retains_grad", "_grad", "_saved", "_versions",
                 "__dict__")

    def __init__(self, op):
        self.op = op
        self._saved = self._versions = ()
        self._grad = None      # the gradient being gathered during a sweep
        self.grad = None
        self.retains_grad = False

    @property
    def module(self):
        """The Module whose forward recorded this node, or None.

        Held by a weak reference (a module keeps its latest output, whose
        tape holds this node: a strong reference back would be a cycle).
        """
        ref = self._module
        return None if ref is None else ref()

    @module.setter
    def module(self, value):
        raise AttributeError("ctx.module is the tape node's own field (the module that recorded "
                             "it); store your value under another name, e.g. ctx.my_module")

    # --- torch's ctx API -------------------------------------------------
    def save_for_backward(self, *tensors):
        """Keep `tensors` (torch tensors; None or plain numbers pass through) for the derivative.

        Their version counters are noted, so that a sweep can tell when one
        was changed in place after recording and refuse to use it.
        """
        self._saved = tensors
        # A tuple, not a list: a tuple of numbers drops out of Python's cycle collector, which
        # then has one object less per node to walk on a long tape. (`is not None` first:
        # isinstance(x, torch.Tensor) is slow when x is not a tensor.)
        self._versions = tuple([t._version if t is not None and isinstance(t, torch.Tensor)
                                else None for t in tensors])

    @property
    def saved_tensors(self) -> tuple:
        saved = self._saved
        if saved is RELEASED:
            raise RuntimeError(
                f"{self.describe()}: its saved tensors were already freed by an earlier "
                "backward(). Pass retain_graph=True to the first backward() to sweep the "
                "same tape again.")
        for t, version in zip(saved, self._versions):
            if version is not None and t._version != version:
                raise self._stale_error()
        return saved

    def _stale_error(self) -> RuntimeError:
        """The error for a saved tensor that was changed in place after it was recorded."""
        for position, (t, version) in enumerate(zip(self._saved, self._versions)):
            if version is not None and t._version != version:
                return RuntimeError(
                    f"{self.describe()}: saved tensor {position} ({self._name_of(t)}, shape "
                    f"{tuple(t.shape)}) was "
                    f"modified in place after it was recorded (version {version} -> "
                    f"{t._version}), so its gradient would be wrong. Typical cause: an "
                    "optimizer step or an in-place edit between forward and backward. "
                    "Run the forward again after the change, or clone the tensor first.")
        raise AssertionError("_stale_error() called with no stale saved tensor")

    def _name_of(self, t: torch.Tensor) -> str:
        """Which tensor `t` is, for an error: a parameter's name, an input, or an output."""
        for position, holder in enumerate(self.inputs):
            if getattr(holder, "data", None) is t:      # a leaf Tensor
                module = self.module
                if module is not None:
                    for name, param in module.named_parameters():
                        if param is holder:
                            return f"parameter {name!r} of {module!r}"
                return f"input {position}, a leaf tensor"
            if holder is t:
                return f"input {position}"
            if isinstance(holder, Node) and holder.value is t:    # kept with keep_values
                return f"input {position}, the output of {holder.describe()}"
        if self.value is t:
            return "its own output"
        return "an intermediate result: the output of this op or of an earlier one"

    @property
    def released(self) -> bool:
        return self._saved is RELEASED

    def release(self):
        """Drop the saved tensors (what a sweep does unless retain_graph=True)."""
        self._saved = RELEASED
        self._versions = ()

    # --- reading --------------------------------------------------------
    @property
    def name(self) -> str:
        return self.op.__name__

    def describe(self) -> str:
        """'Mul (tape index 3)', the way errors name a node."""
        index = getattr(self, "index", "?")
        return f"{self.name} (tape index {index})"

    def __repr__(self):
        shape = tuple(self.shape) if hasattr(self, "shape") else "?"
        return f"<Node {getattr(self, 'index', '?')}: {self.name} -> {shape}>"


class Tape:
    """An explicit, ordered list of nodes: ``len(tape)``, ``tape[i]``, ``for node in tape``.

    ``with Tape() as tape:`` records every op of the block (on this thread)
    into `tape`. Tensors made inside keep a reference to it, so
    ``y.tape`` finds it later.

    keep_values: also keep every node's output, for printing and pictures.
    Explicit tapes keep them by default; the implicit per-computation tapes
    of ordinary training do not (they only keep what derivatives need).
    """

    __slots__ = ("nodes", "keep_values", "_merged_into", "_outer", "_named", "__weakref__")

    def __init__(self, keep_values: bool = True):
        self.nodes: list[Node] = []
        self.keep_values = keep_values
        self._merged_into = None   # set when another tape absorbed this one
        self._outer = None
        self._named = False        # entered with `with Tape() as tape`: merges keep it whole

    # --- recording context ----------------------------------------------
    def __enter__(self) -> Tape:
        if self._merged_into is not None:
            raise RuntimeError("this Tape was merged into another one; record into a new Tape()")
        self._outer = _state.tape
        _state.tape = self
        self._named = True
        return self

    def __exit__(self, *exc):
        _state.tape = self._outer
        self._outer = None
        return False

    # --- the list -------------------------------------------------------
    def __len__(self):
        return len(self.nodes)

    def __iter__(self):
        return iter(self.nodes)

    def __getitem__(self, index):
        return self.nodes[index]

    def __repr__(self):
        return f"<Tape of {len(self.nodes)} nodes>"

    def __str__(self):
        from .printing import format_tape
        return format_tape(self)

    def format(self, model=None, names=None) -> str:
        """The text of ``print(tape)``, naming leaves by `model`'s parameter names and `names`."""
        from .printing import format_tape
        return format_tape(self, model=model, names=names)

    def backward_steps(self, loss, grad=None, retain_graph=False):
        """Run the reverse sweep from `loss` one node at a time (see `tapegrad.steps`)."""
        from .steps import backward_steps
        return backward_steps(loss, grad=grad, retain_graph=retain_graph)


def resolve(tape: Tape) -> Tape:
    """Follow merges to the tape that now holds `tape`'s nodes."""
    while tape._merged_into is not None:
        tape = tape._merged_into
    return tape


def merge(into: Tape, other: Tape) -> Tape:
    """Move `other`'s nodes into `into`, keeping execution order; return `into`.

    Two tapes meet when one op takes inputs from both. They are independent
    computations until then, so any interleaving is a valid topological
    order; we keep the one in which the ops actually ran. In the common case
    (`other` is newer) that is a plain append.
    """
    moved = other.nodes
    if not moved:
        other._merged_into = into
        return into
    if into.nodes and moved[0].seq < into.nodes[-1].seq:
        nodes = sorted(into.nodes + moved, key=_by_sequence)
        start = 0
    else:
        nodes = into.nodes
        start = len(nodes)
        nodes.extend(moved)
    for index in range(start, len(nodes)):
        nodes[index].index = index
    into.nodes = nodes
    other.nodes = []
    other._merged_into = into
    return into


def _by_sequence(node: Node) -> int:
    return node.seq


class ThreadSwitch:
    """A per-thread setting of `_state`, set inside ``with`` and restored after; also a decorator.

    Subclasses name the `attribute` and the `value` it takes inside.
    """

    attribute: str
    value: bool

    def __enter__(self):
        self._previous = getattr(_state, self.attribute)
        setattr(_state, self.attribute, self.value)
        return self

    def __exit__(self, *exc):
        setattr(_state, self.attribute, self._previous)
        return False

    def __call__(self, function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            with type(self)():
                return function(*args, **kwargs)
        return wrapper


class no_grad(ThreadSwitch):
    """Record nothing inside: ``with tapegrad.no_grad():`` or ``@tapegrad.no_grad()``.

    For evaluation and for in-place updates of parameters. Results of ops
    inside need no gradient and hold no tape.
    """

    attribute, value = "recording", False


def is_grad_enabled() -> bool:
    return _state.recording


def _check_no_torch_grad(t: torch.Tensor) -> torch.Tensor:
    """Tensors entering tapegrad never carry torch autograd history."""
    return t.detach() if t.requires_grad else t
