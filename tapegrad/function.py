"""`Function`: how an op is written, and how running it records a node.

Every op, built-in or yours, is a subclass with two staticmethods, exactly
as in torch::

    class Square(tapegrad.Function):
        '''y = x^2      dL/dx = dL/dy * 2x'''

        @staticmethod
        def forward(ctx, x):              # torch tensors in, a torch tensor out
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad_output):   # dL/dy in, one dL/d(input) per input out
            x, = ctx.saved_tensors
            return grad_output * 2 * x

    y = Square.apply(x)

`apply` unwraps the tapegrad tensors, runs `forward` on plain torch tensors
(torch's autograd never sees a tensor that requires grad, so it records
nothing), and, if any input needs a gradient, appends one node to the tape.
"""

from __future__ import annotations

import functools

import torch

from . import anomaly
from .tape import Node, Tape, _sequence, _state, home_in_blocks, join, note_in_blocks, resolve
from .tensor import Tensor


class Function:
    """Base class of every op. Subclass it; don't instantiate it.

    forward(ctx, *inputs) -> torch.Tensor
        Runs the op on torch tensors (and any plain Python arguments).
        Saves what the derivative needs with ``ctx.save_for_backward``.
    backward(ctx, grad_output) -> gradient or tuple of gradients
        One gradient per input of `forward`, each shaped like that input,
        or None where the input needs none (``ctx.needs_input_grad[i]`` is
        False, or the input is not a tensor).

    The docstring of an op states its maths; the teaching tools show it.
    """

    # The sweep checks that user ops return gradients shaped like their
    # inputs; built-in ops are tested and skip that check.
    check_grad_shapes = True
    # An op whose backward always returns new tensors, each its own (no view of
    # grad_output, no tensor returned twice), sets this: the sweep can then hand
    # them to leaves as they are. Otherwise a leaf's .grad is copied when it
    # would share memory with another gradient.
    fresh_grads = False

    @staticmethod
    def forward(ctx, *inputs):
        raise NotImplementedError("a Function subclass must define forward(ctx, *inputs)")

    @staticmethod
    def backward(ctx, grad_output):
        raise NotImplementedError("a Function subclass must define backward(ctx, grad_output)")

    def __init__(self, *args, **kwargs):
        raise TypeError(
            f"{type(self).__name__} is used as {type(self).__name__}.apply(...), "
            "not instantiated (as with torch.autograd.Function)"
        )

    @classmethod
    def apply(cls, *args):
        """Run the op; record it on the tape if any input needs a gradient."""
        # This is the hot path of every forward pass: one pass over the
        # arguments, then the forward, then a handful of slot writes.
        state = _state.__dict__  # this thread's settings (tape.py): one thread-local lookup
        recording = state["recording"]
        raw = []
        inputs = []  # per input: its Node, a leaf Tensor, or the constant itself
        needs = []
        tape = None
        for arg in args:
            if isinstance(arg, Tensor):
                raw.append(arg._data)
                node = arg._node
                inputs.append(arg if node is None else node)  # a leaf, or the op that made it
                needs.append(arg._requires_grad)  # (always True for an op's output)
                if node is not None and recording:
                    version = node._out_version  # None unless the output is a view
                    if version is not None and arg._data._version != version:
                        raise _changed_view_error(cls, node)
                    own = arg._tape
                    if own is not tape:  # the first input's tape, or two tapes meeting
                        fresh = tape is None and own._merged_into is None
                        tape = own if fresh else _tape_of(arg, tape)
            else:
                if isinstance(arg, torch.Tensor) and arg.requires_grad:
                    arg = (
                        arg.detach()
                    )  # a torch-tracked constant would make torch record the forward
                raw.append(arg)
                inputs.append(arg)
                needs.append(False)
        record = recording and True in needs

        ctx = Node(cls)
        ctx.needs_input_grad = tuple(needs) if record else (False,) * len(needs)
        try:
            out = cls.forward(ctx, *raw)
        except (RuntimeError, ValueError, TypeError, IndexError, AttributeError) as error:
            raise _forward_error(cls, error, raw) from error
        if cls.check_grad_shapes:  # a user op: its checks, and torch's extras
            _check_reserved(cls, ctx)
            if out.__class__ is tuple or "_non_differentiable" in ctx.__dict__:
                return _apply_extras(cls, ctx, out, raw, inputs, tape, record)
        if not isinstance(out, torch.Tensor):
            hint = ""
            if isinstance(out, Tensor):
                hint = (
                    " (a tapegrad Tensor: forward computed with one it got inside a list or "
                    "tuple argument, which apply passes on as it is; pass each tensor as an "
                    "argument of apply of its own)"
                )
            raise TypeError(
                f"{cls.__name__}.forward must return a torch.Tensor, got {type(out).__name__}{hint}"
            )

        if not record:
            if state["anomaly"]:
                anomaly.check_forward(ctx, out, recorded=False)
            return Tensor._wrap(out)

        return _record(ctx, out, inputs, tape, state)


def _record(ctx, out, inputs, tape, state) -> Tensor:
    """Append `ctx` to the right tape (the inputs' `tape`, or a block's, or a new one).

    `state` is this thread's settings (``_state.__dict__``).
    """
    watched = state["watched"]  # inside `with Tape()`, a create_graph sweep or anomaly mode
    if watched and state["blocks"]:
        tape = home_in_blocks(tape, state["blocks"])
    elif tape is None:
        tape = Tape._computation()
    nodes = tape.nodes
    ctx.inputs = tuple(inputs)
    ctx.index = len(nodes)
    ctx.seq = next(_sequence)
    ctx.shape = out.shape
    dtype = ctx.dtype = out.dtype
    if dtype in _COMPLEX:
        raise _complex_error(ctx)
    ctx._module = state["module"]
    ctx._out_id = id(out)  # which saved tensor is this output: see sweep's create_graph
    # A view whose memory changes later (an in-place op on its base) is refused when used.
    ctx._out_version = None if out._base is None else out._version
    ctx.value = out if tape.keep_values else None
    if watched:
        if state["deriving"] is not None:  # recorded by a create_graph sweep: its derivative's
            ctx.derivative_of = state["deriving"]
        if state["anomaly"]:  # before appending: a refused node leaves the tape as it was
            anomaly.check_forward(ctx, out, recorded=True)
        nodes.append(ctx)
        if state["blocks"]:
            note_in_blocks(ctx, out, tape, state["blocks"])
    else:
        nodes.append(ctx)
    return Tensor._recorded(out, ctx, tape)


_COMPLEX = frozenset({torch.complex32, torch.complex64, torch.complex128})


def _apply_extras(cls, ctx, out, raw, inputs, tape, record):
    """A user op that returns several outputs, or marks outputs non-differentiable (torch's API).

    The op is recorded as one node, and each differentiable output as a
    node of its own, `OutputOf` (``%6 = OutputOf(%5, 0)``), through which
    its gradient reaches the op; the op's backward then gets one gradient
    per output: zeros (or None after ``ctx.set_materialize_grads(False)``)
    for an output that received none, and always for non-differentiable ones.
    """
    outs = out if out.__class__ is tuple else (out,)
    for position, o in enumerate(outs):
        if not isinstance(o, torch.Tensor):
            raise TypeError(
                f"{cls.__name__}.forward must return a torch.Tensor or a tuple of "
                f"them, got a {type(o).__name__} as output {position}"
            )
    frozen = ctx.__dict__.get("_non_differentiable", ())
    live = [
        all(o is not f for f in frozen) and (o.is_floating_point() or o.is_complex()) for o in outs
    ]
    if not record or not any(live):
        wrapped = tuple(Tensor._wrap(o) for o in outs)
        return wrapped if out.__class__ is tuple else wrapped[0]
    ctx.op = _several_outputs(cls)
    ctx.outputs = tuple((o.shape, o.dtype, o.device, alive) for o, alive in zip(outs, live))
    parent = _record(ctx, outs[0], inputs, tape, _state.__dict__)
    ctx._out_id = None  # its outputs are those of its OutputOf nodes
    ctx.shape = outs[0].shape if len(outs) == 1 else torch.Size([len(outs)])
    results = tuple(
        OutputOf.apply(parent, position, o) if alive else Tensor._wrap(o)
        for position, (o, alive) in enumerate(zip(outs, live))
    )
    return results if out.__class__ is tuple else results[0]


class OutputOf(Function):
    """y = output i of a node with several outputs

    dL/d(that node) = dL/dy in its place i (the node's backward gets one gradient per output)
    """

    check_grad_shapes = False

    @staticmethod
    def forward(ctx, parent, position, value):
        ctx.position = position
        return value

    @staticmethod
    def backward(ctx, grad):
        return Parts.one(ctx.position, grad), None, None


class Parts:
    """The gradients a multi-output node's outputs sent so far (None where none yet); ``+``
    merges."""

    __slots__ = ("grads",)

    def __init__(self, grads: dict):
        self.grads = grads

    @classmethod
    def one(cls, position, grad) -> Parts:
        return cls({position: grad})

    def __add__(self, other: Parts) -> Parts:
        grads = dict(self.grads)
        for position, grad in other.grads.items():
            grads[position] = grad if position not in grads else grads[position] + grad
        return Parts(grads)

    def values(self, ctx) -> list:
        """One gradient per output: zeros (or None, without materialize_grads) where none came."""
        traced = any(isinstance(g, Tensor) for g in self.grads.values())
        result = []
        for position, (shape, dtype, device, alive) in enumerate(ctx.outputs):
            grad = self.grads.get(position) if alive else None
            if grad is None and ctx.__dict__.get("materialize_grads", True):
                grad = torch.zeros(shape, dtype=dtype, device=device)
                grad = Tensor._wrap(grad) if traced else grad
            result.append(grad)
        return result


@functools.cache
def _several_outputs(cls):
    """`cls` with a backward that unpacks the gathered `Parts` into one gradient per output."""
    user_backward = cls.backward

    def backward(ctx, parts):
        return user_backward(ctx, *parts.values(ctx))

    if getattr(user_backward, "once_differentiable", False):
        backward.once_differentiable = True
    return type(
        cls.__name__,
        (cls,),
        {
            "backward": staticmethod(backward),
            "__doc__": cls.__doc__,
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
        },
    )


def _complex_error(ctx) -> TypeError:
    return TypeError(
        f"{ctx.op.__name__}: recording an op on complex tensors is not supported: tapegrad's "
        "derivatives are written for real numbers, and torch's convention for complex ones "
        "(conjugate Wirtinger derivatives) would need conjugates in every rule. Work on the real "
        "and imaginary parts as two real tensors, or compute under tapegrad.no_grad(). (Complex "
        "parameters with gradients you set yourself are fine for the optimizers.)"
    )


def _changed_view_error(cls, node) -> RuntimeError:
    return RuntimeError(
        f"{cls.__name__}: an input is the output of {node.describe()}, a view of another tensor's "
        "memory, and that memory was changed in place after the view was taken (e.g. "
        "base[index] = value, or base += 1): the view's values changed but its tape entry did "
        "not, so its gradient would be wrong. Take the view again after the change (or clone "
        "it before)"
    )


def _tape_of(tensor: Tensor, tape: Tape | None) -> Tape:
    """The computation tape an op with `tensor` among its inputs records onto so far."""
    own = tensor._tape
    if own._merged_into is not None:
        own = tensor._tape = resolve(own)
    if tape is None or tape is own:
        return own
    return join(resolve(tape), own)  # inputs from two computations: one op joins them


def once_differentiable(backward):
    """Mark an op's ``backward`` as differentiable only once, as torch's decorator of that name.

        class Clip(tapegrad.Function):
            @staticmethod
            @tapegrad.once_differentiable
            def backward(ctx, grad_output): ...   # may use any torch code

    A ``create_graph=True`` sweep runs such a backward on plain torch tensors;
    a second-order sweep that then reaches its result raises an error naming
    the op, instead of giving a silently wrong (zero) second derivative.
    """

    @functools.wraps(backward)
    def wrapper(*args, **kwargs):
        return backward(*args, **kwargs)

    wrapper.once_differentiable = True
    return wrapper


_RESERVED = (
    "inputs",
    "index",
    "seq",
    "shape",
    "dtype",
    "value",
    "outputs",
)  # (ctx.module refuses itself)


def _check_reserved(cls, ctx) -> None:
    """A user op must not overwrite the node's own fields (it would corrupt the tape)."""
    for name in _RESERVED:
        if hasattr(ctx, name):
            raise AttributeError(
                f"{cls.__name__}.forward set ctx.{name}, a name the tape node uses "
                f"itself; store it under another name (e.g. ctx.my_{name})"
            )


def _forward_error(cls, error: Exception, raw) -> Exception:
    """The error of a failed forward: the op, its inputs and, for the common mistakes, the fix.

    Runs only when a forward failed, so the checks cost the hot path nothing.
    """
    kind = type(error)
    odd = [
        type(v).__name__ for v in raw if v is None or isinstance(v, (str, bytes, list, dict, set))
    ]
    hint = ""
    if (
        odd
        and isinstance(error, (TypeError, AttributeError))
        and any(name in str(error) for name in odd)
    ):
        # e.g. x + "1", x @ [[1.0], [2.0]], or None from a function that forgot to return
        kind = TypeError
        hint = (
            f"\n  an input is a {odd[0]}: where a tensor is expected, pass a tapegrad Tensor "
            "or a number (build one with tapegrad.tensor(...))"
        )
    else:
        tensors = [v for v in raw if isinstance(v, torch.Tensor)]
        devices = sorted({str(t.device) for t in tensors})
        if len(devices) > 1:
            hint = (
                f"\n  the inputs are on different devices ({', '.join(devices)}); move them to "
                "one device with .to(device) (for a model: model.to(device))"
            )
        elif (
            isinstance(error, RuntimeError)
            and "must match the size" in str(error)
            and len(tensors) > 1
            and not _broadcastable(tensors)
        ):
            shapes = " and ".join(str(tuple(t.shape)) for t in tensors)
            hint = (
                f"\n  shapes {shapes} do not broadcast: aligned from the right, each pair of "
                "sizes must be equal or one of them 1; reshape or index an input so they agree"
            )
    try:
        return kind(f"{cls.__name__}: {error}\n  inputs: {_describe(raw)}{hint}")
    except TypeError:  # an exception class with a constructor of its own
        return RuntimeError(f"{cls.__name__}: {error}\n  inputs: {_describe(raw)}{hint}")


def _broadcastable(tensors) -> bool:
    try:
        torch.broadcast_shapes(*(t.shape for t in tensors))
    except RuntimeError:
        return False
    return True


def _describe(raw) -> str:
    parts = []
    for value in raw:
        if isinstance(value, torch.Tensor):
            parts.append(
                f"tensor{tuple(value.shape)} {str(value.dtype).replace('torch.', '')}"
                f"{'' if value.device.type == 'cpu' else ' on ' + str(value.device)}"
            )
        else:
            parts.append(repr(value))
    return ", ".join(parts)


class OnceDifferentiable(Function):
    """z = a gradient that an op's backward computed on plain torch tensors (create_graph=True)

    dL/d(anything) = an error: that backward cannot be differentiated again
    """

    check_grad_shapes = False

    @staticmethod
    def forward(ctx, result, reason, *dependencies):
        ctx.reason = reason
        return result

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError(
            f"a second-order sweep reached the derivative of {ctx.reason}: that "
            "derivative was computed outside the tape, so it can't be "
            "differentiated again. Write the op's backward with tensor methods "
            "and operators on what it gets (ctx.saved_tensors, grad_output) so that "
            "tapegrad can record it"
        )
