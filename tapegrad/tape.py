"""The tape: an explicit Wengert list of the ops that ran.

Every op on a tensor that needs a gradient appends one `Node` to a `Tape`.
Nodes are appended as they run, after the nodes they read, so a tape is
already a topological order of its computation: the reverse sweep
(`sweep.py`) is a plain loop over it backwards.

Who owns what (no reference cycles: reference counting frees a tape the
moment the last tensor that needs it goes):

    Tensor ──> its Node (the op that made it)      Tensor ──> its Tape
    Tape   ──> its Nodes, in order                 Node   ──> its input Nodes / leaf Tensors
    Node   ─/─> its output Tensor, its Tape (never held: that would be a cycle)

The rules of ownership
----------------------
A *computation tape* holds one connected computation; ``y.tape`` is the one
that holds y's, and the sweep walks it.

1. An op records onto the computation tape of its inputs. Inputs that are
   all leaves start a new one.
2. An op whose inputs come from several computation tapes *joins* them:
   the nodes of the smaller are appended to the larger (which keeps the
   order topological: until this op the two shared nothing) and the smaller
   forwards to the larger. A node moves only to a tape at least twice the
   size it left, so it moves at most log2(n) times: O(n log n) for any
   pattern of joins.
3. Forwarding links only ever point from an emptied tape to a live one that
   is larger or newer, so following them always ends (`resolve`), and they
   are shortened as they are followed.

A *block tape* is the one you hold from ``with Tape() as tape:``. It keeps
every node recorded inside its block on this thread (and inside nested
blocks), in execution order, and nothing joins or empties it:

4. While its block records one computation that started in it, the block
   tape *is* that computation's tape (``y.tape is tape``), and after the
   block it grows with that computation like any computation tape.
5. When the block's computation must join another tape (an op in the block
   reads a tensor from outside it, a later op joins it with another
   computation, or blocks are nested), the block tape hands its computation
   on to a computation tape (a copy of its list, made once) and from then on
   is a *record*: it keeps its nodes and receives the further nodes recorded
   inside its block. Its nodes are numbered by their position on their
   computation tape (``%i``, ``node.index``), as are inputs recorded outside
   the block; a later join that appends that computation to a larger one
   renumbers them all alike (rule 2).

Recording state (open blocks, ``no_grad``, anomaly mode) is per thread.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import threading
from collections.abc import Callable
from typing import Any

import torch


class _ThreadState(threading.local):
    """What this thread is recording into, and how.

    Hot paths (`Function.apply`, `Module.__call__`, the sweep) read and write
    it as ``_state.__dict__``: this thread's own dict, found with one
    thread-local lookup, then plain dict reads (each ``_state.x`` would be a
    thread-local lookup of its own).
    """

    def __init__(self):
        self.recording = True  # False under no_grad()
        self.blocks = ()  # the open `with Tape()` block tapes, innermost last
        self.module = (
            None  # weakref to the innermost Module whose forward is running (for pictures)
        )
        self.sweeping = False  # a reverse sweep is running on this thread
        self.deriving = None  # in a create_graph sweep: the node whose derivative is recording
        self.anomaly = False  # detect_anomaly() is on
        # True while blocks, deriving or anomaly is set: recording an op then has more to do
        # (the hot path reads this one flag instead of three). Set through `watch` only.
        self.watched = False

    def watch(self, name: str, value) -> None:
        """Set `name` (blocks, deriving or anomaly) and the `watched` flag that sums them up."""
        setattr(self, name, value)
        self.watched = bool(self.blocks) or self.deriving is not None or self.anomaly


_state = _ThreadState()
_sequence = itertools.count()  # global execution order of nodes


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
        index           position on its computation tape
        shape, dtype    of the output
        grad            the gradient of the output, kept after a sweep only
                        for ``retain_grad()`` tensors or ``keep_grads=True``
        value           the output itself, kept only when recorded in a tape
                        made with ``keep_values=True`` (``with Tape()``)
        hooks           functions registered with ``register_hook`` on its output
        derivative_of   for a node recorded by a ``create_graph=True`` sweep: the
                        node whose derivative recorded it (None otherwise)
    """

    __slots__ = (
        "op",
        "inputs",
        "needs_input_grad",
        "index",
        "seq",
        "shape",
        "dtype",
        "_module",
        "value",
        "grad",
        "retains_grad",
        "_gathered",
        "_saved",
        "_versions",
        "_out_id",
        "_out_version",
        "__dict__",
    )
    # (types of the slots, for readers and type checkers; `Function.apply` fills them)
    op: Any
    inputs: tuple
    needs_input_grad: tuple
    index: int
    seq: int
    shape: torch.Size
    dtype: torch.dtype
    _module: Any
    value: Any
    grad: Any
    retains_grad: bool
    _gathered: Any
    _saved: Any
    _versions: tuple
    _out_id: int | None
    _out_version: int | None

    # Rarely set, so they live in the instance __dict__ with these class defaults: a node
    # pays nothing for them until one is set.
    hooks: list | None = None  # [fn, ...] from Tensor.register_hook
    derivative_of: Node | None = None  # the Node whose derivative recorded this one (create_graph)

    def __init__(self, op):
        self.op = op
        self._saved = self._versions = ()
        self._gathered = None  # the gradient being gathered during a sweep
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
        raise AttributeError(
            "ctx.module is the tape node's own field (the module that recorded "
            "it); store your value under another name, e.g. ctx.my_module"
        )

    # --- torch's ctx API -------------------------------------------------
    def save_for_backward(self, *tensors):
        """Keep `tensors` (torch tensors; None or plain numbers pass through) for the derivative.

        Their version counters are noted, so that a sweep can tell when one
        was changed in place after recording and refuse to use it. A node
        that saved no tensor (only numbers or None) has nothing to free, and
        can be swept any number of times, as in torch.
        """
        self._saved = tensors
        # A tuple, not a list: a tuple of numbers drops out of Python's cycle collector, which
        # then has one object less per node to walk on a long tape. (`is not None` first:
        # isinstance(x, torch.Tensor) is slow when x is not a tensor.)
        versions = tuple(
            [t._version if t is not None and isinstance(t, torch.Tensor) else None for t in tensors]
        )
        if None in versions and versions.count(None) == len(versions):
            versions = ()  # no tensor saved: nothing to free or check
        self._versions = versions

    def mark_non_differentiable(self, *outputs):
        """torch's API: these outputs of forward get no gradient (their backward input is zeros)."""
        self._non_differentiable = self.__dict__.get("_non_differentiable", ()) + outputs

    def mark_dirty(self, *tensors):
        """torch's API for ops that change their inputs in place: not supported here."""
        raise NotImplementedError(
            f"{self.op.__name__}.forward called ctx.mark_dirty: Functions that change their "
            "inputs in place are not supported by tapegrad; return a new tensor from forward "
            "(tensor.clone() first), and let the caller assign it"
        )

    def set_materialize_grads(self, value: bool):
        """torch's API: with False, backward gets None (not zeros) for outputs that had no
        gradient."""
        self.materialize_grads = bool(value)

    @property
    def saved_tensors(self) -> tuple:
        saved = self._saved
        if saved is RELEASED:
            raise RuntimeError(
                f"{self.describe()}: its saved tensors were already freed by an earlier "
                "backward(). Pass retain_graph=True to the first backward() to sweep the "
                "same tape again."
            )
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
                    "Run the forward again after the change, or clone the tensor first."
                )
        raise AssertionError("_stale_error() called with no stale saved tensor")

    def _name_of(self, t: torch.Tensor) -> str:
        """Which tensor `t` is, for an error: a parameter's name, an input, or an output."""
        for position, holder in enumerate(self.inputs):
            if getattr(holder, "data", None) is t:  # a leaf Tensor
                module = self.module
                if module is not None:
                    for name, param in module.named_parameters():
                        if param is holder:
                            return f"parameter {name!r} of {module!r}"
                return f"input {position}, a leaf tensor"
            if holder is t:
                return f"input {position}"
            if isinstance(holder, Node) and (holder.value is t or holder._out_id == id(t)):
                return f"input {position}, the output of {holder.describe()}"
        if self.value is t or self._out_id == id(t):
            return "its own output"
        return "an intermediate result: the output of this op or of an earlier one"

    @property
    def released(self) -> bool:
        return self._saved is RELEASED

    def release(self):
        """Drop the saved tensors (what a sweep does unless retain_graph=True)."""
        if self._versions:
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
    """An ordered list of nodes: ``len(tape)``, ``tape[i]``, ``for node in tape``.

    ``with Tape() as tape:`` gives `tape` every node recorded in the block
    (on this thread), in execution order; see the rules at the top of this
    module. Printing it gives the Wengert list.

    keep_values: also keep every node's output, for printing and pictures.
    Block tapes keep them by default; the computation tapes of ordinary
    training do not (they only keep what derivatives need).
    """

    __slots__ = ("nodes", "keep_values", "_merged_into", "_block", "_record", "__weakref__")

    def __init__(self, keep_values: bool = True):
        self.nodes: list[Node] = []
        self.keep_values = keep_values
        self._merged_into: Tape | None = None  # the tape that now holds this one's computation
        self._block = True  # made by the user for `with Tape()`
        self._record = False  # a block tape that handed its computation on (rule 5)

    @classmethod
    def _computation(cls) -> Tape:
        """A new computation tape (rule 1): what ops record onto outside any block."""
        tape = cls(keep_values=False)
        tape._block = False
        return tape

    # --- recording context ----------------------------------------------
    def __enter__(self) -> Tape:
        if not self._block:
            raise RuntimeError(
                "this Tape holds a computation recorded outside `with`; "
                "record a block into a new Tape(): `with tapegrad.Tape() as tape:`"
            )
        if self in _state.blocks:
            raise RuntimeError(
                "this Tape is already recording (its `with` block is open); "
                "use a new Tape() for the inner block"
            )
        _state.watch("blocks", _state.blocks + (self,))
        return self

    def __exit__(self, *exc):
        _state.watch("blocks", tuple(b for b in _state.blocks if b is not self))
        return False

    # --- the list -------------------------------------------------------
    def _list(self) -> list:
        # A block tape reads as its own list; a computation tape that was joined into
        # another reads as the tape now holding its nodes.
        return self.nodes if self._block else resolve(self).nodes

    def __len__(self):
        return len(self._list())

    def __iter__(self):
        return iter(self._list())

    def __getitem__(self, index):
        return self._list()[index]

    @property
    def is_record(self) -> bool:
        """True for a block tape that handed its computation on (rule 5 of this module)."""
        return self._record

    def __repr__(self):
        return f"<Tape of {len(self)} nodes>"

    # Reading a tape is the teaching tools' job, above this module: printing.py and steps.py
    # put their functions here when they are imported (``import tapegrad`` imports them), so
    # that the tape, at the bottom of the package, imports nothing above it.
    formatter: Callable[..., str] | None = None  # printing.format_tape
    stepper: Callable[..., Any] | None = None  # steps.backward_steps

    def __str__(self):
        return self.format()

    def format(self, model=None, names=None) -> str:
        """The text of ``print(tape)``, naming leaves by `model`'s parameter names and `names`."""
        if Tape.formatter is None:
            return repr(self)
        return Tape.formatter(self, model=model, names=names)

    def backward_steps(self, loss, grad=None, retain_graph: bool = False):
        """Run the reverse sweep from `loss` one node at a time (see `tapegrad.steps`)."""
        assert Tape.stepper is not None, "tapegrad.steps installs it when tapegrad is imported"
        return Tape.stepper(loss, grad=grad, retain_graph=retain_graph)


def resolve(tape: Tape) -> Tape:
    """The live computation tape that now holds `tape`'s computation (rule 3)."""
    root = tape
    while root._merged_into is not None:
        root = root._merged_into
    while tape is not root:  # shorten the path for the next lookup
        following = tape._merged_into
        assert following is not None
        tape._merged_into, tape = root, following
    return root


def join(a: Tape, b: Tape) -> Tape:
    """One computation tape holding the computations of live tapes `a` and `b` (rule 2)."""
    if a is b:
        return a
    if a._block and not a._record:
        a = hand_on(a)
    if b._block and not b._record:
        b = hand_on(b)
    if len(a.nodes) < len(b.nodes):
        a, b = b, a
    nodes = a.nodes
    start = len(nodes)
    nodes.extend(b.nodes)
    for index in range(start, len(nodes)):
        nodes[index].index = index
    b.nodes = []
    b._merged_into = a
    return a


def hand_on(block: Tape) -> Tape:
    """Make live block tape `block` a record; return the computation tape that takes over (rule 5).

    The new tape starts as a copy of the block's list, so every node keeps
    its index; tensors that pointed at the block now resolve to it.
    """
    tape = Tape._computation()
    tape.nodes = list(block.nodes)
    block._merged_into = tape
    block._record = True
    return tape


def home_in_blocks(tape: Tape | None, blocks: tuple) -> Tape:
    """The computation tape for an op recorded inside `blocks`, given its inputs' tape (or None)."""
    inner = blocks[-1]
    if len(blocks) == 1 and not inner._record and (tape is None or tape is inner):
        return inner  # rule 4: the block tape is its computation's tape
    for block in blocks:  # rule 5: every open block must receive this node,
        if not block._record:  # and one list can't be two: all become records
            hand_on(block)
    home = None if tape is None else resolve(tape)
    for block in blocks:
        own = resolve(block)
        home = own if home is None else join(home, own)
    assert home is not None  # (blocks is not empty)
    return home


def note_in_blocks(node: Node, out: torch.Tensor, home: Tape, blocks: tuple) -> None:
    """Give `node` (already on `home`) to every open block that is a record, and keep its value."""
    for block in blocks:
        if block is not home:
            block.nodes.append(node)
        if block.keep_values:
            node.value = out


class ThreadSwitch:
    """A per-thread setting of `_state`, set inside ``with`` and restored after; also a decorator.

    Subclasses name the `attribute` and the `value` it takes inside. As a
    decorator (``@no_grad()`` or ``@no_grad``) it also covers generator
    functions: the setting holds while the generator runs, not only while
    it is created (torch's behaviour).
    """

    attribute: str
    value: bool

    def __new__(cls, function=None):
        self = super().__new__(cls)
        if function is None:
            return self
        if not callable(function):
            raise TypeError(
                f"{cls.__name__}() takes no arguments, or a function to decorate; "
                f"got {type(function).__name__}"
            )
        return self(function)  # used bare, as @no_grad

    def __enter__(self):
        self._previous = getattr(_state, self.attribute)
        self._set(self._value())
        return self

    def __exit__(self, *exc):
        self._set(self._previous)
        return False

    def _set(self, value) -> None:
        if self.attribute == "recording":
            _state.recording = value
        else:
            _state.watch(self.attribute, value)

    def _value(self):
        return self.value

    def _fresh(self):
        """A new switch like this one, for one call of a decorated function."""
        return type(self)()

    def __call__(self, function):
        if inspect.isgeneratorfunction(function):
            return self._wrap_generator(function)

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            with self._fresh():
                return function(*args, **kwargs)

        return wrapper

    def _wrap_generator(self, function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            generator = function(*args, **kwargs)
            try:
                with self._fresh():  # every resumption runs under the setting
                    response = generator.send(None)
                while True:
                    try:
                        request = yield response
                    except GeneratorExit:
                        with self._fresh():
                            generator.close()
                        raise
                    except BaseException as error:
                        with self._fresh():
                            response = generator.throw(error)
                    else:
                        with self._fresh():
                            response = generator.send(request)
            except StopIteration as stop:
                return stop.value

        return wrapper


class no_grad(ThreadSwitch):
    """Record nothing inside: ``with tapegrad.no_grad():``, ``@tapegrad.no_grad()`` or ``@no_grad``.

    For evaluation and for in-place updates of parameters. Results of ops
    inside need no gradient and hold no tape.
    """

    attribute, value = "recording", False


class enable_grad(ThreadSwitch):
    """Record again inside, e.g. within a ``no_grad`` block: ``with tapegrad.enable_grad():``."""

    attribute, value = "recording", True


class set_grad_enabled(ThreadSwitch):
    """``set_grad_enabled(False)``: recording on or off, as a function call or a context manager.

    Called as a function it switches recording at once (like torch); used
    with ``with`` it also restores the previous setting at the end.
    """

    attribute = "recording"

    def __new__(cls, mode):
        return object.__new__(cls)

    def __init__(self, mode: bool):
        if not isinstance(mode, bool):
            raise TypeError(f"set_grad_enabled(mode) takes a bool, got {type(mode).__name__}")
        self.mode = mode
        self._previous = _state.recording
        _state.recording = mode  # takes effect now, like torch.set_grad_enabled(...)

    def __enter__(self):
        return self  # already set by the call; __exit__ restores

    def __call__(self, function):
        _state.recording = self._previous  # as a decorator it sets the mode per call only
        return super().__call__(function)

    def _fresh(self):
        return _GradMode(self.mode)


class _GradMode(ThreadSwitch):
    """set_grad_enabled(mode) as a decorator: `mode` for each call of the function."""

    attribute = "recording"

    def __new__(cls, mode):
        return object.__new__(cls)

    def __init__(self, mode):
        self.mode = mode

    def _value(self):
        return self.mode


def is_grad_enabled() -> bool:
    return _state.recording


def _check_no_torch_grad(t: torch.Tensor) -> torch.Tensor:
    """Tensors entering tapegrad never carry torch autograd history."""
    return t.detach() if t.requires_grad else t
