"""`Tensor`: a torch tensor (`.data`) plus what reverse mode needs to know about it.

A tensor that needs a gradient is either a *leaf* (made by the user, e.g. a
parameter: its gradient accumulates in `.grad`) or the output of an op (it
points at the tape node that made it, and at that tape). Arithmetic on
tensors runs the ops of `tapegrad.ops`, which record onto the tape.

Operands that are not tapegrad tensors follow one rule, on either side of
an operator and as exponents: Python numbers and numpy scalars are plain
numbers (they take the tensor's dtype, as in torch); numpy arrays and torch
tensors are constant tensors, which must have the same floating dtype as
the tensor they meet (tapegrad refuses float32 with float64 rather than
promote silently).
"""

from __future__ import annotations

import builtins  # Tensor has methods named int and bool, as torch's: its annotations say builtins.
import copy
from typing import Any

import torch

from . import _kernels
from .errors import DataError, DtypeError, ShapeError
from .tape import _check_no_torch_grad, _state, resolve


def _can_require_grad(data: torch.Tensor) -> bool:
    return data.is_floating_point() or data.is_complex()


def _refuse_integer_grad(data: torch.Tensor, fix: str) -> None:
    raise DtypeError(
        f"only floating-point and complex tensors can require gradients, got {data.dtype}; {fix}"
    )


class Tensor:
    """A torch tensor that knows how it was computed.

    data            the torch.Tensor holding the values (never tracked by torch autograd)
    requires_grad   does a gradient flow back to this tensor
    grad            dL/d(this), after backward(): accumulated for leaves; for
                    op outputs only after retain_grad() or backward(keep_grads=True).
                    A torch.Tensor, or a tapegrad Tensor after backward(create_graph=True)
    tape, node      the tape that recorded this tensor and its entry (None for leaves)
    """

    __slots__ = ("_data", "_requires_grad", "_grad", "_node", "_tape", "_gathered", "__weakref__")
    # (types of the slots, for readers and type checkers)
    _data: torch.Tensor
    _requires_grad: builtins.bool
    _grad: Any
    _node: Any
    _tape: Any
    _gathered: Any
    __hash__ = object.__hash__  # like torch: == is elementwise, hashing by identity
    # How many tensors the user's code handed in as gradients: a leaf's .grad set by hand
    # (the setter), a seed given to backward(), a hook's replacement, a user Function's
    # backward. Any of them may share memory with an optimizer's state; the sweep's own
    # gradients are new tensors (SGD._repeat relies on it).
    _grads_from_user = 0
    __array_priority__ = 1000  # so that numpy defers to our reflected operators

    def __init__(self, data, requires_grad: builtins.bool = False):
        """Wrap `data`, a torch.Tensor (or a Tensor's values), sharing its memory; a leaf.

        Errors: TypeError for data that is not a tensor (use tapegrad.tensor(...) for lists
        and numbers), DtypeError for requires_grad=True on an integer or bool tensor.
        """
        if isinstance(data, Tensor):
            data = data._data
        if not isinstance(data, torch.Tensor):
            raise TypeError(
                f"Tensor(data): data must be a torch.Tensor, got {type(data).__name__}; "
                "use tapegrad.tensor(...) to build one from a list or a number"
            )
        if requires_grad and not _can_require_grad(data):
            _refuse_integer_grad(data, "build it with dtype=torch.float32 (or float64)")
        self._data = _check_no_torch_grad(data)
        self._requires_grad = bool(requires_grad)
        self._grad = None
        self._node = None
        self._tape = None
        self._gathered = None  # the gradient being gathered during a sweep

    @classmethod
    def _wrap(cls, data: torch.Tensor) -> Tensor:
        """A tensor that needs no gradient (the fast path of ops that record nothing)."""
        t = object.__new__(Tensor)
        t._data = data
        t._requires_grad = False
        t._grad = None
        t._node = None
        t._tape = None
        t._gathered = None
        return t

    @classmethod
    def _recorded(cls, data: torch.Tensor, node, tape) -> Tensor:
        """The output of a recorded op."""
        t = object.__new__(Tensor)
        t._data = data
        t._requires_grad = True
        t._grad = None
        t._node = node
        t._tape = tape
        t._gathered = None
        return t

    # --- what torch users reach for ------------------------------------
    @property
    def data(self) -> torch.Tensor:
        """The values, a plain torch.Tensor; assigning replaces them (no gradient flows through
        that)."""
        return self._data

    @data.setter
    def data(self, value):
        if isinstance(value, Tensor):
            value = value._data
        if not isinstance(value, torch.Tensor):
            raise TypeError(f".data must be set to a torch.Tensor, got {type(value).__name__}")
        if self._requires_grad and not _can_require_grad(value):
            _refuse_integer_grad(
                value,
                "this tensor requires grad, so its .data must stay "
                "floating-point: convert the new value with .to(dtype)",
            )
        self._data = _check_no_torch_grad(value)

    @property
    def requires_grad(self) -> builtins.bool:
        """Does a gradient flow back to this tensor? True for every op's output. Setting it is
        `requires_grad_` (its rules and errors)."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        self.requires_grad_(value)

    @property
    def grad(self):
        """dL/d(this tensor) after backward(), shaped like it; None until a sweep gives one.

        A leaf's accumulates over sweeps; an op's output has one only after retain_grad() or
        backward(keep_grads=True). Setting it (None or a tensor) is for leaves only
        (RuntimeError on an op's output), and refuses as torch a non-tensor (TypeError), another
        shape (ShapeError, a RuntimeError), dtype (DtypeError) or device (RuntimeError).
        """
        node = self._node
        return self._grad if node is None else node.grad

    @grad.setter
    def grad(self, value):
        if self._node is not None:
            raise RuntimeError(
                "only a leaf tensor's .grad can be set; this tensor is the output "
                f"of {self._node.describe()}"
            )
        if value is not None:
            if isinstance(value, Tensor) and value._node is None:
                value = value._data  # a plain gradient: kept as a torch tensor
            data = value._data if isinstance(value, Tensor) else value
            if not isinstance(data, torch.Tensor):
                raise TypeError(
                    f"assigned grad must be a tensor or None, got {type(value).__name__}"
                )
            if data.shape != self._data.shape:
                raise ShapeError(
                    f"assigned grad has shape {tuple(data.shape)}, but the tensor "
                    f"has shape {tuple(self._data.shape)}; they must be the same"
                )
            if data.dtype != self._data.dtype:
                # else an optimizer step would fail half-way, some parameters already updated
                raise DtypeError(
                    f"assigned grad is {data.dtype} but the tensor is "
                    f"{self._data.dtype}; convert it with .to(tensor.dtype)"
                )
            if data.device != self._data.device:
                raise RuntimeError(
                    f"assigned grad is on {data.device} but the tensor is on "
                    f"{self._data.device}; move it with .to(tensor.device)"
                )
        self._grad = value
        if value is not None:
            # Any gradient set by hand may share memory with an optimizer's state: SGD
            # looks at the gradients afresh after one (optim/sgd.py, `_repeat`). Counted
            # after the assignment, so a step that reads the new count sees the gradient.
            Tensor._grads_from_user += 1

    def _zero_grad(self) -> None:
        """What zero_grad(set_to_none=False) (Module's, Optimizer's) does to a parameter, as
        torch does: its gradient zeroed in place, so a reference held to it stays its .grad;
        one recorded by create_graph=True is detached first (its values zeroed in place: a
        tape that saved them then refuses to sweep, as torch's does)."""
        grad = self._grad
        if grad is None:
            return
        if isinstance(grad, Tensor):
            grad = self._grad = grad._data
        grad.zero_()

    @property
    def is_leaf(self) -> builtins.bool:
        """True unless a recorded op made this tensor (as torch: a tensor that needs no
        gradient is a leaf too)."""
        return self._node is None

    @property
    def node(self):
        """The tape entry that produced this tensor (torch calls it `grad_fn`); None for leaves."""
        return self._node

    grad_fn = node

    @property
    def tape(self):
        """The computation tape that holds this tensor's computation (None for leaves and
        untracked tensors)."""
        tape = self._tape
        if tape is not None and tape._merged_into is not None:
            tape = self._tape = resolve(tape)
        return tape

    @property
    def shape(self) -> torch.Size:
        """The size of each dimension, a torch.Size (``()`` for a 0-d tensor)."""
        return self._data.shape

    @property
    def dtype(self) -> torch.dtype:
        """The element type, a torch.dtype (torch.float32, torch.int64, ...)."""
        return self._data.dtype

    @property
    def device(self) -> torch.device:
        """Where the values live, a torch.device (cpu, cuda:0, ...)."""
        return self._data.device

    @property
    def ndim(self) -> builtins.int:
        """The number of dimensions, len(shape) (0 for a 0-d tensor)."""
        return self._data.dim()

    def size(self, dim=None):
        """The shape, a torch.Size; ``size(dim)``: the size of dimension `dim`, an int.

        Errors, torch's: IndexError for a dim out of range, TypeError for a dim that is not an
        int.
        """
        return self._data.size() if dim is None else self._data.size(dim)

    def dim(self) -> builtins.int:
        """The number of dimensions, len(shape) (0 for a 0-d tensor); as `ndim`."""
        return self._data.dim()

    def numel(self) -> builtins.int:
        """The number of elements: the product of the sizes (1 for a 0-d tensor)."""
        return self._data.numel()

    def __len__(self):
        """len(x): the size of the first dimension, shape[0].

        TypeError for a 0-d tensor (as torch), which has no first dimension.
        """
        if self._data.dim() == 0:
            raise TypeError(
                "len() of a 0-d tensor: it has no first dimension to count (as in "
                "torch); use .numel() for the number of elements, .item() for the value"
            )
        return self._data.shape[0]

    def __iter__(self):
        """The slices x[0], x[1], ... along the first dimension, each recorded like x[i]."""
        if self._data.dim() == 0:
            raise TypeError(
                "iteration over a 0-d tensor (as in torch): it has no first "
                "dimension; use .item() for its value"
            )
        return iter(self.unbind(0))

    def item(self):
        """The value of a one-element tensor (of any shape) as a Python number; no gradient.

        RuntimeError (torch's) for a tensor of 0 or several elements.
        """
        return self._data.item()

    def tolist(self):
        """The values as nested Python lists (one level per dimension; a 0-d tensor gives a
        number); no gradient."""
        return self._data.tolist()

    def numpy(self, *, force: builtins.bool = False):
        """The values as a numpy array sharing memory (a CPU tensor that requires no grad, as in
        torch): same shape, the matching numpy dtype.

        force=True: detach and copy to the CPU first when needed (torch's option).
        Errors, as torch: RuntimeError for a tensor that requires grad (use
        ``.detach().numpy()``), TypeError for one that is not on the CPU (use ``.cpu()``).
        """
        if force:
            return self._data.detach().cpu().resolve_conj().resolve_neg().numpy()
        if self._requires_grad:
            raise RuntimeError(
                "can't call numpy() on a tensor that requires grad (as in torch): "
                "numpy would not see the tape. Use tensor.detach().numpy()"
            )
        if self._data.device.type != "cpu":
            raise TypeError(
                f"can't convert a tensor on {self._data.device} to numpy (as in "
                "torch); copy it to the CPU first: tensor.cpu().numpy()"
            )
        return self._data.numpy()

    def __float__(self):
        """float(x): the value of a one-element tensor; ValueError (torch's) for any other."""
        return float(self._data)

    def __int__(self):
        """int(x): the value of a one-element tensor, truncated toward 0; ValueError (torch's)
        for any other."""
        return int(self._data)

    def __index__(self):
        """operator.index(x), as in ``range(x)`` or ``seq[x]``: a one-element integer tensor's
        value; TypeError (torch's) for a floating-point tensor or several elements."""
        return self._data.__index__()

    def __bool__(self):
        """bool(x), as in ``if x:``: is the one element nonzero? RuntimeError (torch's) for a
        tensor of 0 or several elements, whose truth is ambiguous."""
        return bool(self._data)

    def detach(self) -> Tensor:
        """The same values, cut from the tape (shares storage, like torch)."""
        return Tensor._wrap(self._data)

    def requires_grad_(self, requires_grad: builtins.bool = True) -> Tensor:
        """Make this leaf require (or not) a gradient; torch's rules and errors."""
        requires_grad = bool(requires_grad)
        if self._node is not None:
            if requires_grad:
                return self  # an op's output already requires grad
            raise RuntimeError(
                "you can only change requires_grad flags of leaf tensors; this "
                f"tensor is the output of {self._node.describe()}. To use it "
                "without a gradient, take tensor.detach()"
            )
        if requires_grad and not _can_require_grad(self._data):
            _refuse_integer_grad(self._data, "convert it first with .float() or .double()")
        self._requires_grad = requires_grad
        return self

    def retain_grad(self) -> None:
        """Keep this op output's gradient in `.grad` after backward() (leaves always keep it)."""
        if self._node is not None:
            self._node.retains_grad = True
        elif not self._requires_grad:
            raise RuntimeError("retain_grad() on a tensor that does not require grad")

    def register_hook(self, hook):
        """Call ``hook(grad)`` with this tensor's gradient when a sweep has it complete.

        The hook may return a tensor to use instead (same shape), or None to
        keep the gradient. On a leaf it runs before the gradient is added to
        `.grad`. Returns a handle: ``handle.remove()`` unregisters it.
        """
        from .hooks import register

        return register(self, hook)

    def backward(
        self,
        gradient=None,
        retain_graph=None,
        create_graph: builtins.bool = False,
        inputs=None,
        *,
        keep_grads: builtins.bool = False,
        grad=None,
    ) -> None:
        """Sweep the tape backwards from this tensor, accumulating dL/d(leaf) into leaves' .grad.

        gradient: dL/d(this tensor); may be omitted for a single-element
            tensor (torch's name; ``grad=`` is accepted too).
        retain_graph: keep the saved tensors, to sweep the same tape again
            (default: `create_graph`).
        create_graph: record the sweep itself, so that the gradients have a
            tape of their own and can be differentiated again.
        inputs: only accumulate into these leaves (torch's `inputs=`).
        keep_grads: keep every node's gradient (``node.grad``), for pictures and teaching.
        """
        if grad is not None:
            if gradient is not None:
                raise TypeError("backward(): pass the gradient once, as gradient= (or grad=)")
            gradient = grad
        if inputs is None and not create_graph and self._node is not None:
            sweep.backward_root(self, gradient, retain_graph, keep_grads)
            return
        sweep.backward(
            self,
            [gradient],
            retain_graph=retain_graph,
            create_graph=create_graph,
            inputs=inputs,
            keep_grads=keep_grads,
        )

    def __repr__(self):
        """torch's ``tensor([...])``, with ``grad_fn=<Op (tape index i)>`` for an op's output,
        ``requires_grad=True`` for a leaf that needs a gradient."""
        body = repr(self._data)
        if body.startswith("tensor("):
            body = body[len("tensor(") : -1]
        extra = ""
        if self._node is not None:
            extra = f", grad_fn=<{self._node.describe()}>"
        elif self._requires_grad:
            extra = ", requires_grad=True"
        return f"tensor({body}{extra})"

    # --- copying and pickling: torch's rules ----------------------------
    def __deepcopy__(self, memo):
        """copy.deepcopy: a leaf with a copy of the values, requires_grad and .grad, as in
        torch (a Parameter drops .grad: see Parameter). An op's output is refused
        (RuntimeError, as torch), as its tape would be copied with it."""
        if self._node is not None:
            raise RuntimeError(
                "only leaf tensors (made by the user, not by a recorded op) can be deep-copied, "
                f"as in torch; this one is the output of {self._node.describe()}. Copy "
                "tensor.detach() instead (the values, without the tape)"
            )
        data = copy.deepcopy(self._data, memo)  # views of one tensor stay views of one copy
        new = _rebuilt(type(self), data, self._requires_grad)
        memo[id(self)] = new  # (before the rest: it may hold this tensor)
        new._grad = copy.deepcopy(self._grad, memo)
        state = self.__getstate__()
        if state is not None:
            new.__setstate__(copy.deepcopy(state, memo))
        return new

    def __reduce_ex__(self, protocol):
        """pickle and copy.copy: a leaf with the values (copy.copy shares them) and
        requires_grad, without .grad or tape (torch's Tensor.__reduce_ex__ keeps no grad;
        an op's output comes back as a leaf that requires grad, as in torch)."""
        return _rebuilt, (type(self), self._data, self._requires_grad), self.__getstate__()

    def __getstate__(self):
        """A subclass's own attributes (its slots and __dict__), for copies and pickles; None
        for a Tensor. A subclass may define its own, and ``__setstate__``, as for torch's
        (the values, requires_grad, .grad and tape are not part of it)."""
        if type(self) is Tensor:
            return None
        state = {}
        for klass in type(self).__mro__:
            if klass is Tensor or klass is object:
                continue
            slots = vars(klass).get("__slots__", ())
            for name in (slots,) if isinstance(slots, str) else slots:
                if name in ("__dict__", "__weakref__"):
                    continue
                if name.startswith("__") and not name.endswith("__") and klass.__name__.strip("_"):
                    name = f"_{klass.__name__.lstrip('_')}{name}"  # a private slot: Python's name
                if hasattr(self, name):
                    state[name] = getattr(self, name)
        state.update(getattr(self, "__dict__", {}))
        return state

    def __setstate__(self, state: dict) -> None:
        """Take back what `__getstate__` gave, in a copy or an unpickled tensor."""
        for name, value in state.items():
            object.__setattr__(self, name, value)

    # --- conversions (recorded, so gradients flow through them) ---------
    def to(self, *args, **kwargs) -> Tensor:
        """A copy in another dtype and/or on another device; `self` itself when nothing changes.

        As torch: ``to(dtype)``, ``to(device, dtype=None)``, ``to(other_tensor)``,
        with ``non_blocking=``, ``copy=`` and ``memory_format=``. Recorded (To),
        so the gradient flows back converted to this tensor's dtype and device;
        a conversion to an integer or bool dtype gives a tensor without gradient.
        Errors: TypeError for arguments torch would refuse; torch's own error
        type (e.g. AssertionError without CUDA) for a device that can't be used.
        """
        target = ops.shape.to_arguments(args, kwargs)
        dtype, device = target["dtype"], target["device"]
        data = self._data
        if (
            not target["copy"]
            and (dtype is None or dtype == data.dtype)
            and ops.shape.same_device(device, data.device)
            and (
                target["memory_format"] is torch.preserve_format
                or data.is_contiguous(memory_format=target["memory_format"])
            )
        ):
            return self
        ops.shape.check_device_available(device)
        if dtype is not None and not (dtype.is_floating_point or dtype.is_complex):
            return Tensor._wrap(data.to(**target))  # no gradient through an integer copy
        return ops.To.apply(
            self, dtype, device, target["copy"], target["non_blocking"], target["memory_format"]
        )

    def float(self) -> Tensor:
        """``self.to(torch.float32)``: the same shape as float32 (itself if already float32);
        recorded (`To`), so the gradient flows back converted to this tensor's dtype."""
        return self.to(torch.float32)

    def double(self) -> Tensor:
        """``self.to(torch.float64)``: the same shape as float64 (itself if already float64);
        recorded (`To`), so the gradient flows back converted to this tensor's dtype."""
        return self.to(torch.float64)

    def half(self) -> Tensor:
        """``self.to(torch.float16)``: the same shape as float16 (itself if already float16);
        recorded (`To`), so the gradient flows back converted to this tensor's dtype."""
        return self.to(torch.float16)

    def long(self) -> Tensor:
        """int64 values, ``self.to(torch.int64)``: the same shape, floats truncated toward 0; no
        gradient (an integer tensor needs none, as in torch)."""
        return self.to(torch.int64)

    def int(self) -> Tensor:
        """int32 values, ``self.to(torch.int32)``: the same shape, floats truncated toward 0; no
        gradient (an integer tensor needs none, as in torch)."""
        return self.to(torch.int32)

    def bool(self) -> Tensor:
        """``self.to(torch.bool)``: True where an element is nonzero, the same shape; no
        gradient."""
        return self.to(torch.bool)

    def cpu(self) -> Tensor:
        """This tensor on the CPU (itself if it already is there): ``self.to("cpu")``, recorded
        (`To`) so that the gradient goes back to the device it came from."""
        return self.to("cpu")

    def cuda(self, device=None, non_blocking: builtins.bool = False) -> Tensor:
        """This tensor on a CUDA device (itself if it already is there): ``self.to("cuda")``, or
        ``cuda:<device>`` for an int `device`; recorded (`To`).

        Without a usable CUDA device: torch's error type (AssertionError on a CPU-only build,
        RuntimeError else), with the fix in the message.
        """
        target = (
            "cuda" if device is None else f"cuda:{device}" if isinstance(device, int) else device
        )
        ops.shape.check_device_available(
            torch.device(target),
            "cuda()" if device is None else f"cuda({device!r})",
            lambda: torch.empty(0).cuda(device),
        )
        return self.to(target, non_blocking=non_blocking)

    # --- arithmetic -------------------------------------------------------
    # (the operand rule is the module docstring's; the maths and derivatives: ops/arithmetic.py)
    def __add__(self, other):
        """x + other elementwise (`Add`): shapes broadcast as in torch, and the result has the
        broadcast shape and torch's result dtype (int with float gives the float).

        Errors: RuntimeError for shapes that do not broadcast, DtypeError for float32 with
        float64, TypeError for an operand that is neither a tensor nor a number (e.g. a list).
        """
        return ops.Add.apply(self, as_operand(other))

    def __radd__(self, other):
        """other + x, for a number or an array on the left; as `__add__`."""
        return ops.Add.apply(as_operand(other), self)

    def __sub__(self, other):
        """x - other elementwise (`Sub`); shapes broadcast, result dtype and errors as `__add__`."""
        return ops.Sub.apply(self, as_operand(other))

    def __rsub__(self, other):
        """other - x, for a number or an array on the left; as `__sub__`."""
        return ops.Sub.apply(as_operand(other), self)

    def __mul__(self, other):
        """x * other elementwise (`Mul`); shapes broadcast, result dtype and errors as `__add__`."""
        return ops.Mul.apply(self, as_operand(other))

    def __rmul__(self, other):
        """other * x, for a number or an array on the left; as `__mul__`."""
        return ops.Mul.apply(as_operand(other), self)

    def __truediv__(self, other):
        """x / other elementwise (`Div`), true division: integer tensors give floats, as in
        torch (x / 0 is inf or NaN, no error); shapes broadcast, errors as `__add__`."""
        return ops.Div.apply(self, as_operand(other))

    def __rtruediv__(self, other):
        """other / x, for a number or an array on the left; as `__truediv__`."""
        return ops.Div.apply(as_operand(other), self)

    def __neg__(self):
        """-x elementwise (`Neg`): the same shape and dtype. RuntimeError (torch's) for a bool
        tensor: use ~x."""
        return ops.Neg.apply(self)

    def __pow__(self, exponent):
        """x ** exponent elementwise: `Pow` for a number exponent, `PowTensor` for a tensor one
        (shapes broadcast). Torch's result dtype (an int tensor to a float power gives floats).

        Errors: TypeError for an exponent that is neither a number nor a tensor, DtypeError for
        float32 with float64, RuntimeError for shapes that do not broadcast or an integer
        tensor to a negative integer power (torch's).
        """
        return ops.pow(self, as_operand(exponent))

    def __rpow__(self, base):
        """base ** x, for a number base (``2 ** x``): `PowTensor`; as `__pow__`."""
        return ops.pow(as_operand(base), self)

    def __matmul__(self, other):
        """x @ other, the matrix product (`MatMul`), with torch's rules for the shapes.

        (..., n, k) @ (..., k, m) -> (..., n, m), batch dimensions broadcast; a 1-D operand is
        a row (on the left) or a column (on the right), its dimension dropped from the result:
        (k,) @ (k,) -> (), (n, k) @ (k,) -> (n,).
        Errors: ShapeError (a RuntimeError) for a 0-d operand or inner sizes that differ,
        RuntimeError for batch dimensions that do not broadcast, DtypeError for float32 with
        float64.
        """
        return ops.MatMul.apply(self, as_operand(other))

    def __rmatmul__(self, other):
        """other @ x, for a torch tensor or numpy array on the left; as `__matmul__`."""
        return ops.MatMul.apply(as_operand(other), self)

    def add(self, other, *, alpha=1):
        """x + alpha * other, as torch.add (`Add`, and `Mul` when alpha != 1); also
        ``tapegrad.add(x, other)``. Shapes, dtypes and errors as `__add__`."""
        return self + (other if alpha == 1 else as_operand(other) * alpha)

    def sub(self, other, *, alpha=1):
        """x - alpha * other, as torch.sub (`Sub`, and `Mul` when alpha != 1); also
        ``tapegrad.sub(x, other)``. Shapes, dtypes and errors as `__add__`."""
        return self - (other if alpha == 1 else as_operand(other) * alpha)

    def mul(self, other):
        """x * other elementwise (`Mul`), as torch.mul; also ``tapegrad.mul(x, other)``.

        Shapes broadcast; torch's result dtype. Errors: RuntimeError for shapes that do not
        broadcast, DtypeError for float32 with float64, TypeError for an operand that is neither
        a tensor nor a number.
        """
        return self * other

    def div(self, other):
        """x / other elementwise (`Div`), true division (integers give floats), as torch.div; also
        ``tapegrad.div(x, other)``.

        Shapes broadcast; torch's result dtype. Errors: RuntimeError for shapes that do not
        broadcast, DtypeError for float32 with float64, TypeError for an operand that is neither
        a tensor nor a number.
        """
        return self / other

    def neg(self):
        """-x elementwise (`Neg`), as torch.neg; also ``tapegrad.neg(x)``: the same shape and
        dtype. RuntimeError (torch's) for a bool tensor."""
        return -self

    def pow(self, exponent):
        """x ** exponent (`Pow`, or `PowTensor` for a tensor exponent), as torch.pow. See
        `__pow__`; ``tapegrad.pow(base, exponent)`` also takes a number base."""
        return self**exponent

    def matmul(self, other):
        """x @ other (`MatMul`), as torch.matmul; also ``tapegrad.matmul(x, other)``. See
        `__matmul__` for the shapes and errors."""
        return self @ other

    def mm(self, other):
        """x @ other for two 2-D tensors only, as torch.mm: (n, k) @ (k, m) -> (n, m)
        (`MatMul`); also ``tapegrad.mm(x, other)``.

        Errors: ShapeError (a RuntimeError) for an operand that is not 2-D (use matmul) or
        inner sizes that differ, DtypeError for float32 with float64.
        """
        if self.dim() != 2 or getattr(other, "ndim", 0) != 2:
            raise ShapeError(
                f"mm takes two 2-D tensors, got shapes {tuple(self.shape)} and "
                f"{tuple(getattr(other, 'shape', ()))}; use @ (matmul) for others"
            )
        return self @ other

    # --- in place: torch's rules (see _in_place) ----------------------------
    # Each returns this tensor, its shape and dtype unchanged. Errors common to all: RuntimeError
    # for a leaf that requires grad while recording (update it under no_grad()), for a view of
    # a recorded tensor, or for a tensor that needs no gradient but shares its memory while the
    # value written needs one; RuntimeError (ShapeError when recorded) for a result whose shape
    # is not this tensor's; DtypeError for float32 with float64.
    def __iadd__(self, other):
        """x += other: x + other (`Add`) written into x's memory; see `add_`."""
        return self._in_place("add_", ops.Add.apply, other)

    def __isub__(self, other):
        """x -= other: x - other (`Sub`) written into x's memory; see `sub_`."""
        return self._in_place("sub_", ops.Sub.apply, other)

    def __imul__(self, other):
        """x *= other: x * other (`Mul`) written into x's memory; see `mul_`."""
        return self._in_place("mul_", ops.Mul.apply, other)

    def __itruediv__(self, other):
        """x /= other: x / other (`Div`) written into x's memory; see `div_`."""
        return self._in_place("div_", ops.Div.apply, other)

    def add_(self, other, *, alpha=1):
        """x = x + alpha * other, in place (`Add` when recorded): other broadcasts to x's shape.

        Errors: those of in-place ops (see the comment above `__iadd__`); RuntimeError
        (torch's) when nothing is recorded and the result's dtype can't be stored in x's (a
        float added to an int tensor).
        """
        return self._in_place(
            "add_", ops.Add.apply, other if alpha == 1 else as_operand(other) * alpha
        )

    def sub_(self, other, *, alpha=1):
        """x = x - alpha * other, in place (`Sub` when recorded); shapes and errors as
        `add_`."""
        return self._in_place(
            "sub_", ops.Sub.apply, other if alpha == 1 else as_operand(other) * alpha
        )

    def mul_(self, other):
        """x = x * other, in place (`Mul` when recorded); shapes and errors as `add_`."""
        return self._in_place("mul_", ops.Mul.apply, other)

    def div_(self, other):
        """x = x / other, in place (`Div` when recorded); shapes and errors as `add_` (an
        integer tensor can't hold the quotient: RuntimeError, torch's)."""
        return self._in_place("div_", ops.Div.apply, other)

    def zero_(self):
        """Every element set to 0, in place (`Fill` when recorded: no gradient reaches the old
        values). Errors as for any in-place op (see the comment above `__iadd__`)."""
        return self._in_place("fill_", ops.Fill.apply, 0)

    def fill_(self, value):
        """Every element set to `value`, a number or a 0-d tensor, in place (`Fill` when
        recorded: dL/dvalue is the sum of dL/dx, the old values get none).

        Errors: ShapeError (a RuntimeError) for a value tensor that is not 0-d; those of
        in-place ops (see the comment above `__iadd__`).
        """
        return self._in_place("fill_", ops.Fill.apply, value)

    def copy_(self, src):
        """x's values replaced by src's, broadcast to x's shape and converted to x's dtype and
        device, in place (`CopyInto` when recorded: the gradient goes to src, not the old x).

        Errors: TypeError for a src that is not a tensor (use fill_ for a number), RuntimeError
        for a src whose shape does not broadcast to x's; those of in-place ops (see the comment
        above `__iadd__`), except that another float dtype is converted, as in torch.
        """
        return self._in_place("copy_", ops.CopyInto.apply, src)

    def clamp_(self, min=None, max=None):
        """x = x.clamp(min, max), in place (`Clamp` when recorded); see `clamp`.

        Errors: those of `clamp` (RuntimeError with neither bound) and of in-place ops (see the
        comment above `__iadd__`).
        """
        return self._in_place("clamp_", ops.Clamp.apply, min, max)

    def __setitem__(self, index, value):
        """x[index] = value, in place: value (a number or a tensor) broadcast to x[index]'s
        shape and written there (`SetItem` when recorded: the overwritten positions of x get no
        gradient, value gets dL/dy[index] summed to its shape). Any index torch takes.

        Errors, torch's: IndexError for an index out of range, too many indices or a float
        index, TypeError for an index of another type, RuntimeError for a value whose shape
        does not broadcast to x[index]'s; and those of in-place ops (see the comment above
        `__iadd__`).
        """
        index, _ = ops.indexing.plain_index(index)  # torch's own forms, also under no_grad
        return self._in_place("__setitem__", ops.SetItem.apply, index, value)

    def _in_place(self, method: str, record, *operands):
        """``self.method(*operands)`` in place, with torch's rules.

        - When nothing needs recording (under ``no_grad()``, or when neither
          this tensor nor an operand requires grad), torch's in-place method
          changes ``.data`` and bumps its version counter: a tape that saved
          the old values then refuses to sweep.
        - A leaf that requires grad is refused, as torch refuses it.
        - Otherwise the op is recorded in its out-of-place form on a copy of
          the old values, and the result is written into this tensor's memory
          (views of it see the new values, and nodes that saved the old ones
          go stale, as in torch); the tensor then is that node's output.
        """
        operands = tuple(as_operand(o) for o in operands)
        needs = (
            _state.recording
            and _can_require_grad(self._data)  # (an integer tensor: torch's op, no gradient)
            and (
                self._requires_grad
                or any(isinstance(o, Tensor) and o._requires_grad for o in operands)
            )
        )
        name = "x[index] = value" if method == "__setitem__" else f"{method}()"
        if not needs:
            raw = [o._data if isinstance(o, Tensor) else o for o in operands]
            for o in raw:
                if isinstance(o, torch.Tensor) and method not in ("copy_", "fill_"):  # they convert
                    _check_same_float(self._data, o, name)
            getattr(self._data, method)(*raw)
            return self
        if self._node is None and self._requires_grad:
            if method == "__setitem__":
                self._data[operands[0]]  # an index out of range first: IndexError, as torch
            raise RuntimeError(
                f"{name}: a leaf tensor that requires grad can't be changed in place "
                "while recording (as in torch): the change would not be on the tape. "
                "For an update such as an optimizer step, do it inside "
                "`with tapegrad.no_grad():`; otherwise use the out-of-place form "
                "(x = x + y)"
            )
        if self._node is None and _kernels.storage_shared(self._data):
            raise RuntimeError(
                f"{name}: this tensor needs no gradient but the value written into it does, so "
                "it would start to require grad; its memory is shared with another tensor (it is a "
                "view, or a view of it exists), which would not (torch tracks views; tapegrad "
                "does not). Write into a tensor of its own (buffer = buffer.clone(), or build the "
                "result out of place, e.g. tapegrad.stack)"
            )
        if self._node is not None:
            if self._data._base is not None:
                raise RuntimeError(
                    f"{name}: this tensor is a view of another recorded tensor's memory (the "
                    f"output of {self._node.describe()}); changing it in place would change "
                    "that tensor behind the tape's back. Use the out-of-place form (x = x + y), "
                    "or write into the tensor it views: base[index] = new_value"
                )
            snapshot = self._data.clone()
            old = Tensor._recorded(snapshot, self._node, self.tape)
            # the snapshot is the old node's output by another name, for create_graph's mapping
            self._node.__dict__.setdefault("aliases", set()).add(id(snapshot))
        else:
            old = Tensor._wrap(self._data.clone())
        # x.mul_(x): the operand is the old value too (as the op saw it), not the memory rewritten
        result = record(old, *(old if o is self else o for o in operands))
        if result.shape != self.shape:
            raise ShapeError(
                f"{name}: the result has shape {tuple(result.shape)}, which can't be "
                f"written into this tensor of shape {tuple(self.shape)}"
            )
        _rebase(self, result)
        return self

    # --- reductions, elementwise, shape ----------------------------------------
    # (dims as in torch: negative ones count from the end; a 0-d tensor takes dim 0 and -1)
    def sum(self, dim=None, keepdim: builtins.bool = False):
        """The sum of the elements over `dim` (`Sum`): None or () for all of them, an int or a
        tuple of ints.

        The reduced dimensions are removed (kept as size 1 with keepdim=True): x.sum() is 0-d.
        The dtype is x's (int64 for integer and bool tensors, as torch). Errors: IndexError for
        a dim out of range, RuntimeError for a dim named twice, TypeError for a dim that is
        not an int.
        """
        return ops.Sum.apply(self, dim, keepdim)

    def mean(self, dim=None, keepdim: builtins.bool = False):
        """The mean of the elements over `dim` (`Mean`): None or () for all of them, an int or a
        tuple of ints; NaN over no elements.

        Shapes as `sum`. x must be floating-point (RuntimeError, torch's, for an integer
        tensor). Errors: IndexError for a dim out of range, RuntimeError for a dim named
        twice, TypeError for a dim that is not an int.
        """
        return ops.Mean.apply(self, dim, keepdim)

    def exp(self):
        """e^x elementwise (`Exp`): the same shape; floating-point (an integer tensor gives the
        default float dtype, as torch). Overflows to inf, no error."""
        return ops.Exp.apply(self)

    def log(self):
        """The natural logarithm elementwise (`Log`): the same shape; floating-point (an integer
        tensor gives the default float dtype). -inf at 0, NaN below, as torch: no error."""
        return ops.Log.apply(self)

    def log1p(self):
        """log(1 + x) elementwise, accurate for small x (`Log1p`): the same shape and float
        dtype (an integer tensor gives the default float dtype); -inf at -1, NaN below."""
        return ops.Log1p.apply(self)

    def relu(self):
        """max(x, 0) elementwise (`ReLU`): the same shape and dtype. RuntimeError (torch's) for
        a bool tensor."""
        return ops.ReLU.apply(self)

    def tanh(self):
        """The hyperbolic tangent elementwise, in (-1, 1) (`Tanh`): the same shape; float (an
        integer tensor gives the default float dtype)."""
        return ops.Tanh.apply(self)

    def sigmoid(self):
        """1 / (1 + e^-x) elementwise, in (0, 1) (`Sigmoid`): the same shape; float (an integer
        tensor gives the default float dtype)."""
        return ops.Sigmoid.apply(self)

    def clamp(self, min=None, max=None):
        """min(max(x, min), max) elementwise (`Clamp`); each bound None, a number or a tensor.

        Where min > max every element is max, as in torch. The result has the shape of x and
        the tensor bounds broadcast together. Errors: RuntimeError (ArgumentError) with
        neither bound, RuntimeError for bounds whose shapes do not broadcast with x,
        DtypeError for float32 with float64. Also ``x.clip``.
        """
        return ops.Clamp.apply(self, as_operand(min), as_operand(max))

    clip = clamp

    def clamp_min(self, min):
        """max(x, min) elementwise (`Clamp` with only a lower bound); as `clamp`."""
        return ops.Clamp.apply(self, as_operand(min), None)

    def clamp_max(self, max):
        """min(x, max) elementwise (`Clamp` with only an upper bound); as `clamp`."""
        return ops.Clamp.apply(self, None, as_operand(max))

    def reshape(self, *shape):
        """The same values in another shape (`Reshape`): a view when the strides allow it, else a
        copy. Sizes as varargs or one tuple; one of them may be -1, computed from the others.

        Errors: ShapeError (a RuntimeError) for a shape that does not hold x's number of
        elements or has two -1s, TypeError for sizes that are not ints.
        """
        if len(shape) == 1 and isinstance(shape[0], (tuple, list, torch.Size)):
            shape = tuple(shape[0])
        return ops.Reshape.apply(self, shape)

    def transpose(self, dim0: builtins.int, dim1: builtins.int):
        """Dimensions dim0 and dim1 swapped (`Transpose`, a view): y[..i..j..] = x[..j..i..].

        Errors: IndexError for a dim out of range, TypeError for a dim that is not an int.
        """
        return ops.Transpose.apply(self, dim0, dim1)

    def t(self):
        """The transpose of a matrix, ``transpose(0, 1)`` (`Transpose`): (n, m) -> (m, n); a
        tensor of 0 or 1 dimension is returned as it is. ShapeError (a RuntimeError, as torch)
        for more than 2 dimensions."""
        if self._data.dim() > 2:
            raise ShapeError(
                f"t() is for tensors of at most 2 dimensions, this one has shape "
                f"{tuple(self.shape)}; use .transpose(dim0, dim1)"
            )
        return self if self._data.dim() < 2 else ops.Transpose.apply(self, 0, 1)

    @property
    def T(self):
        """x.t(): the transpose of a matrix (`Transpose`); 0-d and 1-D tensors as they are.
        ShapeError (a RuntimeError) for more than 2 dimensions: use .transpose or .permute."""
        if self._data.dim() > 2:
            raise ShapeError(
                f".T is for tensors of at most 2 dimensions, this one has shape "
                f"{tuple(self.shape)}; use .transpose(dim0, dim1)"
            )
        return self.t()

    def unsqueeze(self, dim: builtins.int):
        """A new dimension of size 1 at position `dim` (`Unsqueeze`, a view): (2, 3) with dim=1
        gives (2, 1, 3); dim may be in [-ndim - 1, ndim].

        Errors: IndexError for a dim out of range, TypeError for a dim that is not an int.
        """
        return ops.Unsqueeze.apply(self, dim)

    def expand(self, *sizes):
        """x repeated along its size-1 dimensions, and new leading ones, to `sizes` (`Expand`, a
        view that copies nothing). Sizes as varargs or one tuple; -1 keeps a size.

        Errors: ShapeError (a RuntimeError) for sizes x can't expand to (a size other than 1
        changed, fewer sizes than dimensions, -1 for a new dimension), TypeError for sizes
        that are not ints.
        """
        if len(sizes) == 1 and isinstance(sizes[0], (tuple, list, torch.Size)):
            sizes = tuple(sizes[0])
        return ops.Expand.apply(self, tuple(sizes))

    def __getitem__(self, index):
        """x[index] (`GetItem`), with every index torch takes and torch's result shape.

        Ints, slices, None and ``...`` give a view (an int removes its dimension, None adds
        one); integer or bool tensors, lists and numpy arrays (advanced indexing) give a copy.
        Errors, torch's: IndexError for an index out of range, too many indices, a bool mask
        of the wrong shape or a float index; TypeError for an index of another type.
        """
        return ops.GetItem.apply(self, index)

    # --- elementwise and reductions (the torch surface) -----------------------------
    # (the ops and their maths: ops/unary.py, ops/select.py, ops/reduction.py)
    def abs(self):
        """|x| elementwise (`Abs`): the same shape and dtype; also ``abs(x)``, ``x.absolute()``.
        NotImplementedError (a RuntimeError, torch's) for a bool tensor."""
        return ops.Abs.apply(self)

    absolute = abs
    __abs__ = abs

    def sqrt(self):
        """The square root elementwise (`Sqrt`): the same shape; float (an integer tensor gives
        the default float dtype). NaN for x < 0, as torch: no error."""
        return ops.Sqrt.apply(self)

    def sin(self):
        """The sine elementwise, x in radians (`Sin`): the same shape; float (an integer tensor
        gives the default float dtype)."""
        return ops.Sin.apply(self)

    def cos(self):
        """The cosine elementwise, x in radians (`Cos`): the same shape; float (an integer
        tensor gives the default float dtype)."""
        return ops.Cos.apply(self)

    def sign(self):
        """-1, 0 or 1 elementwise, as x is negative, zero or positive (`Sign`; 0 for NaN, as
        torch): the same shape and dtype. Its gradient is zero."""
        return ops.Sign.apply(self)

    def maximum(self, other):
        """The larger of x and other, elementwise (`Maximum`); ties split the gradient evenly.

        other must be a tensor; the shapes broadcast. Errors: TypeError for a number (use
        clamp_min), RuntimeError for shapes that do not broadcast, DtypeError for float32 with
        float64.
        """
        return ops.select.maximum(self, other)

    def minimum(self, other):
        """The smaller of x and other, elementwise (`Minimum`); ties split the gradient evenly.

        As `maximum`: other a tensor (TypeError for a number: use clamp_max), shapes broadcast,
        DtypeError for float32 with float64.
        """
        return ops.select.minimum(self, other)

    def where(self, condition, other):
        """torch's x.where(condition, y): x where condition, else y (`Where`).

        condition is a bool tensor, other a tensor or a number; the three shapes broadcast.
        Errors: DtypeError (a TypeError and RuntimeError) for a condition that is not bool or
        for float32 with float64, RuntimeError for shapes that do not broadcast.
        """
        return ops.Where.apply(as_operand(condition), self, as_operand(other))

    def max(self, dim=None, keepdim: builtins.bool = False):
        """max() -> a 0-d tensor; max(dim, keepdim) -> (values, indices); max(other) -> maximum.

        max(): `Max`, tied maxima share the gradient; RuntimeError for an empty tensor.
        max(dim): `MaxDim`, a named tuple of the values and their int64 indices (the dim
        removed, or kept as size 1 with keepdim); the gradient goes to the index returned.
        Errors: IndexError for a dim out of range or empty, TypeError for a dim that is not
        one int (use amax) or keepdim without dim. See `tapegrad.max`.
        """
        return ops.reduction.max(self, dim, keepdim)

    def min(self, dim=None, keepdim: builtins.bool = False):
        """min() -> a 0-d tensor; min(dim, keepdim) -> (values, indices); min(other) -> minimum.

        As `max`, with the smallest element (`Min`, `MinDim`) and `minimum`.
        """
        return ops.reduction.min(self, dim, keepdim)

    def amax(self, dim=(), keepdim: builtins.bool = False):
        """The largest element over `dim` (`Amax`): () or None for all, an int or a tuple of
        ints; tied maxima share the gradient evenly. Shapes as `sum`, x's dtype.

        Errors: RuntimeError for an empty tensor over all dims, IndexError for a dim out of
        range or empty, RuntimeError for a dim named twice, TypeError for a dim not an int.
        """
        return ops.Amax.apply(self, dim, keepdim)

    def amin(self, dim=(), keepdim: builtins.bool = False):
        """The smallest element over `dim` (`Amin`): () or None for all, an int or a tuple of
        ints; tied minima share the gradient evenly. Shapes and errors as `amax`."""
        return ops.Amin.apply(self, dim, keepdim)

    def argmax(self, dim=None, keepdim: builtins.bool = False):
        """The index of the largest element: int64, no gradient (the first of tied maxima).

        dim=None: the index into the flattened tensor, 0-d (shape (1,) * ndim with keepdim);
        an int dim: one index per slice, that dim removed (or kept as size 1). Errors:
        IndexError for a dim out of range, an empty dim, or an empty tensor without dim;
        TypeError for a dim that is not one int.
        """
        return ops.reduction.argmax(self, dim, keepdim)

    def argmin(self, dim=None, keepdim: builtins.bool = False):
        """The index of the smallest element: int64, no gradient (the first of tied minima).
        Shapes and errors as `argmax`."""
        return ops.reduction.argmin(self, dim, keepdim)

    def var(self, dim=None, unbiased=None, keepdim: builtins.bool = False, *, correction=None):
        """The variance over `dim` (`Var`): sum of (x - mean)^2 / (n - correction), n elements
        per slice; correction=1 (or unbiased=True) by default, correction=0 (unbiased=False)
        for the population variance. dim and shapes as `sum`.

        Errors: DtypeError for an integer tensor, TypeError for both correction and unbiased,
        IndexError for a dim out of range. Where n <= correction: inf or NaN (torch warns).
        """
        return ops.reduction.var(self, dim, unbiased, keepdim, correction=correction)

    def std(self, dim=None, unbiased=None, keepdim: builtins.bool = False, *, correction=None):
        """The standard deviation over `dim` (`Std`): sqrt of `var` with the same arguments,
        shapes and errors. Its gradient is 0 where the result is 0, as torch's."""
        return ops.reduction.std(self, dim, unbiased, keepdim, correction=correction)

    def prod(self, dim=None, keepdim: builtins.bool = False):
        """The product of the elements over one int `dim`, or of all of them (`Prod`); its
        gradient is right where elements are 0 too.

        Shapes as `sum`; x's dtype (int64 for integer tensors). Errors: TypeError for a tuple
        dim (as torch) or keepdim without dim, IndexError for a dim out of range.
        """
        return ops.reduction.prod(self, dim, keepdim)

    # (the comparisons: elementwise, shapes broadcast, bool results without gradient; see __lt__)
    def lt(self, other):
        """x < other elementwise, as torch.lt; also ``tapegrad.lt``: a bool tensor of the
        broadcast shape, no gradient. Errors, torch's: RuntimeError for shapes that do not
        broadcast, TypeError for an operand that is neither a tensor nor a number."""
        return self < other

    def le(self, other):
        """x <= other elementwise, as torch.le; also ``tapegrad.le``: a bool tensor of the
        broadcast shape, no gradient. Errors, torch's: RuntimeError for shapes that do not
        broadcast, TypeError for an operand that is neither a tensor nor a number."""
        return self <= other

    def gt(self, other):
        """x > other elementwise, as torch.gt; also ``tapegrad.gt``: a bool tensor of the
        broadcast shape, no gradient. Errors, torch's: RuntimeError for shapes that do not
        broadcast, TypeError for an operand that is neither a tensor nor a number."""
        return self > other

    def ge(self, other):
        """x >= other elementwise, as torch.ge; also ``tapegrad.ge``: a bool tensor of the
        broadcast shape, no gradient. Errors, torch's: RuntimeError for shapes that do not
        broadcast, TypeError for an operand that is neither a tensor nor a number."""
        return self >= other

    def eq(self, other):
        """x == other elementwise, as torch.eq; also ``tapegrad.eq``: a bool tensor of the
        broadcast shape, no gradient. Errors, torch's: RuntimeError for shapes that do not
        broadcast, TypeError for an operand that is neither a tensor nor a number."""
        return self == other

    def ne(self, other):
        """x != other elementwise, as torch.ne; also ``tapegrad.ne``: a bool tensor of the
        broadcast shape, no gradient. Errors, torch's: RuntimeError for shapes that do not
        broadcast, TypeError for an operand that is neither a tensor nor a number."""
        return self != other

    # --- softmax, log_softmax, logsumexp -------------------------------------------
    def softmax(self, dim: builtins.int, dtype=None):
        """exp(x) / sum exp(x) along `dim` (`Softmax`): the same shape, each slice along dim
        sums to 1. dtype: convert x first (as torch; needed for an integer tensor).

        Errors: IndexError for a dim out of range, TypeError for a dim that is not one int,
        NotImplementedError (a RuntimeError, torch's) for an integer tensor without dtype.
        """
        return ops.softmax(self, dim, dtype)

    def log_softmax(self, dim: builtins.int, dtype=None):
        """x - logsumexp(x, dim, keepdim=True), computed stably (`LogSoftmax`): the same shape.
        dtype, and the errors, as `softmax`."""
        return ops.log_softmax(self, dim, dtype)

    def logsumexp(self, dim, keepdim: builtins.bool = False):
        """log(sum(exp(x))) over `dim` (an int or a tuple of ints), computed stably
        (`LogSumExp`); shapes as `sum`, float (an integer tensor gives the default float dtype).

        Errors: IndexError for a dim out of range, TypeError for a dim that is not an int or a
        tuple (None included), RuntimeError for a dim named twice or dim=() (torch's).
        """
        return ops.logsumexp(self, dim, keepdim)

    # --- shape, joins and conversions (the torch surface) ----------------------------
    def view(self, *shape):
        """The same memory read in another shape (a view, never a copy); ``view(dtype)``
        reinterprets the bits.

        Sizes as varargs or one tuple, one of them may be -1 (`View`). Refuses, as torch
        (RuntimeError: ShapeError), a shape the strides don't allow (a transposed or sliced
        tensor): use reshape, which copies then; and a shape that does not hold x's number
        of elements. TypeError for sizes that are not ints or none given. A view as another
        dtype has no gradient (torch's isn't differentiable either); RuntimeError (torch's)
        when the last dimension does not fit the new element size.
        """
        if len(shape) == 1 and isinstance(shape[0], torch.dtype):
            if shape[0] == self._data.dtype:
                return ops.View.apply(self, tuple(self.shape))
            return Tensor._wrap(self._data.view(shape[0]))
        return ops.View.apply(self, ops.shape.sizes_argument(shape, "view()"))

    def view_as(self, other) -> Tensor:
        """``x.view(other.shape)``: x's memory read in other's shape; see `view` for the
        errors."""
        return self.view(tuple(other.shape))

    def reshape_as(self, other) -> Tensor:
        """``x.reshape(other.shape)``: x's values in other's shape; see `reshape` for the
        errors."""
        return self.reshape(tuple(other.shape))

    def expand_as(self, other) -> Tensor:
        """``x.expand(other.shape)``: x repeated to other's shape (a view); see `expand` for
        the errors."""
        return self.expand(tuple(other.shape))

    def flatten(self, start_dim: builtins.int = 0, end_dim: builtins.int = -1) -> Tensor:
        """Dimensions start_dim..end_dim merged into one (a reshape); a 0-d tensor becomes shape
        (1,).

        Errors: IndexError for a dim out of range, RuntimeError if start_dim
        comes after end_dim (as torch).
        """
        shape = tuple(self.shape)
        start = ops.shape.normalize_dim(start_dim, shape, "flatten(start_dim)")
        end = ops.shape.normalize_dim(end_dim, shape, "flatten(end_dim)")
        if start > end:
            raise RuntimeError(
                f"flatten(): start_dim {start_dim} comes after end_dim {end_dim} "
                f"for a tensor of shape {shape}; swap them"
            )
        if not shape:
            return ops.Reshape.apply(self, (1,))
        if start == end:
            return self  # nothing to merge: torch returns the tensor itself too
        merged = 1
        for size in shape[start : end + 1]:
            merged *= size
        return ops.Reshape.apply(self, shape[:start] + (merged,) + shape[end + 1 :])

    def squeeze(self, dim=None) -> Tensor:
        """Remove dimensions of size 1: all of them, or those among `dim` (an int or a tuple).

        (`Squeeze`, a view.) A named dim whose size is not 1 is kept, as in torch: (1, 2, 1)
        squeezed at 1 stays (1, 2, 1). Errors: IndexError for a dim out of range,
        RuntimeError for a dim named twice, TypeError for a dim that is not an int.
        """
        return ops.Squeeze.apply(self, tuple(dim) if isinstance(dim, list) else dim)

    def permute(self, *dims) -> Tensor:
        """Reorder the dimensions: dimension i of the result is dimension dims[i] (a view).

        (`Permute`; dims as varargs or one tuple.) Errors: ShapeError (a RuntimeError) when
        dims does not name every dimension, RuntimeError for a dim named twice, IndexError for
        a dim out of range, TypeError for dims that are not ints or none given.
        """
        return ops.Permute.apply(self, ops.shape.sizes_argument(dims, "permute()"))

    def movedim(self, source, destination) -> Tensor:
        """Move dims `source` to positions `destination`, the others keeping their order (a
        permute, `Permute`). Both ints, or both sequences of one length.

        Errors: IndexError for a dim out of range, RuntimeError for a dim named twice or
        sequences of different lengths, TypeError for an int with a sequence.
        """
        if isinstance(source, list):
            source = tuple(source)
        if isinstance(destination, list):
            destination = tuple(destination)
        return ops.Permute.apply(
            self, ops.shape.movedim_order(source, destination, tuple(self.shape))
        )

    moveaxis = movedim

    def swapaxes(self, axis0: builtins.int, axis1: builtins.int) -> Tensor:
        """``x.transpose(axis0, axis1)`` (numpy's name; also ``swapdims``); see `transpose`."""
        return self.transpose(axis0, axis1)

    swapdims = swapaxes

    def narrow(self, dim: builtins.int, start: builtins.int, length: builtins.int) -> Tensor:
        """The slice start:start+length along `dim` (a view, recorded like
        x[:, start:start+length]): that dim's size becomes `length`.

        start may be negative (counting from the end). Errors, as torch: RuntimeError for a
        0-d tensor or a length that is negative or runs past the end, IndexError for a dim or
        a start out of range.
        """
        if self._data.dim() == 0:
            raise RuntimeError(
                "narrow() cannot be applied to a 0-d tensor (as in torch); reshape it first"
            )
        d = ops.shape.normalize_dim(dim, tuple(self.shape), "narrow()")
        size = self.shape[d]
        if not -size <= start <= size:
            raise IndexError(
                f"narrow(): start {start} is out of range for dim {dim} of size {size} "
                f"(shape {tuple(self.shape)}); use a start in [{-size}, {size}]"
            )
        start = start + size if start < 0 else start
        if length < 0 or start + length > size:
            raise RuntimeError(
                f"narrow(): start {start} + length {length} doesn't fit in dim {dim} "
                f"of size {size} (shape {tuple(self.shape)}); the length must be "
                f"in [0, {size - start}]"
            )
        return self[(slice(None),) * d + (slice(start, start + length),)]

    def select(self, dim: builtins.int, index: builtins.int) -> Tensor:
        """x[.., index, ..] along `dim`: that dimension removed (recorded like x[:, index]).

        Errors, as torch: IndexError for a 0-d tensor, or a dim or an index out of range.
        """
        if self._data.dim() == 0:
            raise IndexError("select() cannot be applied to a 0-d tensor (as in torch)")
        d = ops.shape.normalize_dim(dim, tuple(self.shape), "select()")
        return self[(slice(None),) * d + (index,)]

    def split(self, split_size_or_sections, dim: builtins.int = 0) -> tuple:
        """Pieces along `dim`: of size split_size (the last smaller), or one per listed size.

        A tuple of views, each a recorded slice. Errors, as torch: RuntimeError (ShapeError)
        for a negative size, a size 0 of a non-empty dim or sizes that don't add up to the
        dim's size; RuntimeError for a 0-d tensor; IndexError for a dim out of range.
        """
        return ops.join.split(self, split_size_or_sections, dim)

    def chunk(self, chunks: builtins.int, dim: builtins.int = 0) -> tuple:
        """`chunks` pieces along `dim`, each of ceil(n / chunks) elements there (the last fewer;
        there may be fewer pieces, as in torch): a tuple of recorded slices.

        Errors, as torch: RuntimeError for chunks < 1 or a 0-d tensor, IndexError for a dim
        out of range.
        """
        return ops.join.chunk(self, chunks, dim)

    def unbind(self, dim: builtins.int = 0) -> tuple:
        """The slices x[.., i, ..] along `dim`, each without that dimension: a tuple of
        recorded slices (as torch.unbind). IndexError for a 0-d tensor or a dim out of
        range."""
        return ops.join.unbind(self, dim)

    def clone(self, *, memory_format=torch.preserve_format) -> Tensor:
        """A copy in memory of its own, recorded (`Clone`): the same shape and dtype; the
        gradient passes through to this tensor. RuntimeError (torch's) for a memory_format
        this tensor can't take (channels_last needs 4 dimensions)."""
        return ops.Clone.apply(self, memory_format)

    def contiguous(self, memory_format=torch.contiguous_format) -> Tensor:
        """This tensor if its memory already is contiguous (as torch), else a recorded copy
        (`Contiguous`) with the same shape and values, laid out row-major (or in memory_format:
        RuntimeError, torch's, for one this tensor can't take)."""
        if self._data.is_contiguous(memory_format=memory_format):
            return self
        return ops.Contiguous.apply(self, memory_format)

    def is_floating_point(self) -> builtins.bool:
        """Is the dtype a floating-point one (float16, bfloat16, float32, float64, ...)?"""
        return self._data.is_floating_point()

    def is_contiguous(self, memory_format=torch.contiguous_format) -> builtins.bool:
        """Are the elements laid out in memory in row-major order, with no gaps (torch's)?"""
        return self._data.is_contiguous(memory_format=memory_format)

    def stride(self, dim=None):
        """The steps in memory, in elements, between neighbours along each dimension (a tuple),
        or along `dim` (an int; IndexError for a dim out of range, torch's)."""
        return self._data.stride() if dim is None else self._data.stride(dim)

    # --- comparisons: plain values, no gradient ---------------------------
    def _compare(self, other, compare):
        other = as_operand(other)
        other = other._data if isinstance(other, Tensor) else other
        return Tensor._wrap(compare(self._data, other))

    def __lt__(self, other):
        """x < other elementwise: a bool tensor of the broadcast shape, with no gradient.

        other: a tensor or a number; dtypes are compared as torch promotes them (float32 with
        float64 is allowed here). Errors, torch's: RuntimeError for shapes that do not
        broadcast, TypeError for another kind of operand (None too, but ``==``/``!=`` with None
        give False/True, as torch).
        """
        return self._compare(other, torch.lt)

    def __le__(self, other):
        """x <= other elementwise: a bool tensor, no gradient; shapes and errors as `__lt__`."""
        return self._compare(other, torch.le)

    def __gt__(self, other):
        """x > other elementwise: a bool tensor, no gradient; shapes and errors as `__lt__`."""
        return self._compare(other, torch.gt)

    def __ge__(self, other):
        """x >= other elementwise: a bool tensor, no gradient; shapes and errors as `__lt__`."""
        return self._compare(other, torch.ge)

    def __eq__(self, other):
        """x == other elementwise: a bool tensor, no gradient; shapes and errors as `__lt__`.
        (Hashing stays by identity.) ``x == None`` is False, as torch."""
        if other is None:
            return False
        return self._compare(other, torch.eq)

    def __ne__(self, other):
        """x != other elementwise: a bool tensor, no gradient; shapes and errors as `__lt__`.
        ``x != None`` is True, as torch."""
        if other is None:
            return True
        return self._compare(other, torch.ne)

    # --- logic on bool (or integer) tensors: plain values, no gradient ------------
    def __and__(self, other):
        """x & other: logical and of bool tensors, bitwise and of integer ones (broadcast), no
        gradient. NotImplementedError (a RuntimeError, torch's) for floating-point tensors."""
        return self._compare(other, torch.bitwise_and)

    __rand__ = __and__

    def __or__(self, other):
        """x | other: logical or of bool tensors, bitwise or of integer ones (broadcast), no
        gradient. NotImplementedError (a RuntimeError, torch's) for floating-point tensors."""
        return self._compare(other, torch.bitwise_or)

    __ror__ = __or__

    def __xor__(self, other):
        """x ^ other: logical xor of bool tensors, bitwise xor of integer ones (broadcast), no
        gradient. NotImplementedError (a RuntimeError, torch's) for floating-point tensors."""
        return self._compare(other, torch.bitwise_xor)

    __rxor__ = __xor__

    def __invert__(self):
        """~x: logical not of a bool tensor, bitwise not of an integer one; no gradient.
        TypeError (torch's) for a floating-point tensor."""
        return Tensor._wrap(~self._data)


def as_operand(value):
    """An operand as an op takes it: tensors and numbers as they are, numpy converted.

    numpy scalars become Python numbers; numpy arrays become torch tensors
    (constants, with their dtype). Anything else is passed on for the op to
    accept or refuse.
    """
    if value.__class__ in _PLAIN:
        return value
    if type(value).__module__ == "numpy":
        import numpy

        if isinstance(value, numpy.generic):
            return value.item()
        if isinstance(value, numpy.ndarray):
            return torch.from_numpy(value) if value.flags.writeable else torch.tensor(value)
    return value


_PLAIN = {Tensor, torch.Tensor, float, int, bool, type(None)}


def _rebuilt(cls, data, requires_grad):
    """A leaf of class `cls` (Tensor or a subclass) holding `data`, as pickle and copy make
    it (then its ``__setstate__`` takes what its ``__getstate__`` gave)."""
    t = object.__new__(cls)
    t._data = data
    t._requires_grad = requires_grad
    t._grad = t._node = t._tape = t._gathered = None
    return t


def _check_same_float(target: torch.Tensor, operand: torch.Tensor, name: str) -> None:
    if operand.dtype != target.dtype and operand.is_floating_point() and target.is_floating_point():
        raise DtypeError(
            f"{name}: the tensor is {target.dtype} but the operand is "
            f"{operand.dtype}; convert one with .float() or .double() so both agree"
        )


def _rebase(tensor: Tensor, result: Tensor) -> None:
    """Write `result` into `tensor`'s memory and make `tensor` the output of result's node."""
    data = tensor._data
    data.copy_(result._data)  # bumps data's version: nodes that saved the old values go stale
    node = result._node
    if node is None:
        tensor._node = tensor._tape = None
        tensor._requires_grad = False
        return
    old = result._data
    if any(t is old for t in node._saved):  # what the node saved of its output: now `data`
        node._saved = tuple(data if t is old else t for t in node._saved)
        node._versions = tuple(
            None if not isinstance(t, torch.Tensor) else t._version for t in node._saved
        )
    node._out_id = id(data)
    node._out_version = None if data._base is None else data._version
    if node.value is old:
        node.value = data
    if tensor._node is not None and tensor._node.retains_grad:
        node.retains_grad = True  # retain_grad() follows the tensor to its new value, as in torch
    tensor._node, tensor._tape, tensor._requires_grad = node, result._tape, True


def tensor(data, requires_grad: bool = False, dtype=None, device=None) -> Tensor:
    """Build a Tensor from a number, a (nested) list, a numpy array or a torch tensor.

    Like torch.tensor: lists of Python floats become float32, of ints int64;
    the values are always copied (a tensor given keeps its own memory). The
    shape is the nesting of the lists (a number gives a 0-d tensor).
    Errors: DataError (a TypeError and ValueError) for ragged lists, DtypeError
    (a TypeError and RuntimeError) for values the dtype can't hold or whose
    dtype can't be inferred (None) and for requires_grad=True on an integer
    or bool tensor, TypeError for data of another kind (a string).
    """
    if isinstance(data, Tensor):
        data = data._data
    if isinstance(data, torch.Tensor):
        data = data.detach().to(dtype=dtype, device=device, copy=True)
    else:
        try:
            data = torch.tensor(data, dtype=dtype, device=device)
        except (TypeError, ValueError, RuntimeError) as error:
            # tapegrad's type (TypeError: not data for a tensor), and the one torch raised
            kind = {ValueError: DataError, RuntimeError: DtypeError}.get(type(error), TypeError)
            raise kind(
                f"tapegrad.tensor(): cannot build a tensor from {type(data).__name__} "
                f"({error}); pass a number, a nested list of numbers (of equal lengths at "
                "each depth) or a torch.Tensor"
            ) from error
    return Tensor(data, requires_grad=requires_grad)


from . import ops, sweep  # noqa: E402  (the ops need Tensor defined first)
