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
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        self.requires_grad_(value)

    @property
    def grad(self):
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
        return self._data.shape

    @property
    def dtype(self) -> torch.dtype:
        return self._data.dtype

    @property
    def device(self) -> torch.device:
        return self._data.device

    @property
    def ndim(self) -> builtins.int:
        return self._data.dim()

    def size(self, dim=None):
        return self._data.size() if dim is None else self._data.size(dim)

    def dim(self) -> builtins.int:
        return self._data.dim()

    def numel(self) -> builtins.int:
        return self._data.numel()

    def __len__(self):
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
        return self._data.item()

    def tolist(self):
        return self._data.tolist()

    def numpy(self, *, force: builtins.bool = False):
        """The values as a numpy array sharing memory (a CPU tensor that requires no grad, as in
        torch).

        force=True: detach and copy to the CPU first when needed (torch's option).
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
        return float(self._data)

    def __int__(self):
        return int(self._data)

    def __index__(self):
        return self._data.__index__()

    def __bool__(self):
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
        return self.to(torch.float32)

    def double(self) -> Tensor:
        return self.to(torch.float64)

    def half(self) -> Tensor:
        return self.to(torch.float16)

    def long(self) -> Tensor:
        """int64 values (an integer tensor needs no gradient, as in torch)."""
        return self.to(torch.int64)

    def int(self) -> Tensor:
        return self.to(torch.int32)

    def bool(self) -> Tensor:
        return self.to(torch.bool)

    def cpu(self) -> Tensor:
        """This tensor on the CPU (itself if it already is there)."""
        return self.to("cpu")

    def cuda(self, device=None, non_blocking: builtins.bool = False) -> Tensor:
        """This tensor on a CUDA device (itself if it already is there); torch's error without
        one."""
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
    def __add__(self, other):
        return ops.Add.apply(self, as_operand(other))

    def __radd__(self, other):
        return ops.Add.apply(as_operand(other), self)

    def __sub__(self, other):
        return ops.Sub.apply(self, as_operand(other))

    def __rsub__(self, other):
        return ops.Sub.apply(as_operand(other), self)

    def __mul__(self, other):
        return ops.Mul.apply(self, as_operand(other))

    def __rmul__(self, other):
        return ops.Mul.apply(as_operand(other), self)

    def __truediv__(self, other):
        return ops.Div.apply(self, as_operand(other))

    def __rtruediv__(self, other):
        return ops.Div.apply(as_operand(other), self)

    def __neg__(self):
        return ops.Neg.apply(self)

    def __pow__(self, exponent):
        return ops.pow(self, as_operand(exponent))

    def __rpow__(self, base):
        return ops.pow(as_operand(base), self)

    def __matmul__(self, other):
        return ops.MatMul.apply(self, as_operand(other))

    def __rmatmul__(self, other):
        return ops.MatMul.apply(as_operand(other), self)

    def add(self, other, *, alpha=1):
        return self + (other if alpha == 1 else as_operand(other) * alpha)

    def sub(self, other, *, alpha=1):
        return self - (other if alpha == 1 else as_operand(other) * alpha)

    def mul(self, other):
        return self * other

    def div(self, other):
        return self / other

    def neg(self):
        return -self

    def pow(self, exponent):
        return self**exponent

    def matmul(self, other):
        return self @ other

    def mm(self, other):
        if self.dim() != 2 or getattr(other, "ndim", 0) != 2:
            raise ShapeError(
                f"mm takes two 2-D tensors, got shapes {tuple(self.shape)} and "
                f"{tuple(getattr(other, 'shape', ()))}; use @ (matmul) for others"
            )
        return self @ other

    # --- in place: torch's rules (see _in_place) ----------------------------
    def __iadd__(self, other):
        return self._in_place("add_", ops.Add.apply, other)

    def __isub__(self, other):
        return self._in_place("sub_", ops.Sub.apply, other)

    def __imul__(self, other):
        return self._in_place("mul_", ops.Mul.apply, other)

    def __itruediv__(self, other):
        return self._in_place("div_", ops.Div.apply, other)

    def add_(self, other, *, alpha=1):
        return self._in_place(
            "add_", ops.Add.apply, other if alpha == 1 else as_operand(other) * alpha
        )

    def sub_(self, other, *, alpha=1):
        return self._in_place(
            "sub_", ops.Sub.apply, other if alpha == 1 else as_operand(other) * alpha
        )

    def mul_(self, other):
        return self._in_place("mul_", ops.Mul.apply, other)

    def div_(self, other):
        return self._in_place("div_", ops.Div.apply, other)

    def zero_(self):
        return self._in_place("fill_", ops.Fill.apply, 0)

    def fill_(self, value):
        return self._in_place("fill_", ops.Fill.apply, value)

    def copy_(self, src):
        return self._in_place("copy_", ops.CopyInto.apply, src)

    def clamp_(self, min=None, max=None):
        return self._in_place("clamp_", ops.Clamp.apply, min, max)

    def __setitem__(self, index, value):
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
        needs = _state.recording and (
            self._requires_grad or any(isinstance(o, Tensor) and o._requires_grad for o in operands)
        )
        name = "x[index] = value" if method == "__setitem__" else f"{method}()"
        if not needs:
            raw = [o._data if isinstance(o, Tensor) else o for o in operands]
            for o in raw:
                if isinstance(o, torch.Tensor) and method != "copy_":  # copy_ converts, as in torch
                    _check_same_float(self._data, o, name)
            getattr(self._data, method)(*raw)
            return self
        if self._node is None and self._requires_grad:
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
    def sum(self, dim=None, keepdim: builtins.bool = False):
        return ops.Sum.apply(self, dim, keepdim)

    def mean(self, dim=None, keepdim: builtins.bool = False):
        return ops.Mean.apply(self, dim, keepdim)

    def exp(self):
        return ops.Exp.apply(self)

    def log(self):
        return ops.Log.apply(self)

    def log1p(self):
        return ops.Log1p.apply(self)

    def relu(self):
        return ops.ReLU.apply(self)

    def tanh(self):
        return ops.Tanh.apply(self)

    def sigmoid(self):
        return ops.Sigmoid.apply(self)

    def clamp(self, min=None, max=None):
        return ops.Clamp.apply(self, as_operand(min), as_operand(max))

    clip = clamp

    def clamp_min(self, min):
        return ops.Clamp.apply(self, as_operand(min), None)

    def clamp_max(self, max):
        return ops.Clamp.apply(self, None, as_operand(max))

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list, torch.Size)):
            shape = tuple(shape[0])
        return ops.Reshape.apply(self, shape)

    def transpose(self, dim0: builtins.int, dim1: builtins.int):
        return ops.Transpose.apply(self, dim0, dim1)

    def t(self):
        if self._data.dim() > 2:
            raise ShapeError(
                f"t() is for tensors of at most 2 dimensions, this one has shape "
                f"{tuple(self.shape)}; use .transpose(dim0, dim1)"
            )
        return self if self._data.dim() < 2 else ops.Transpose.apply(self, 0, 1)

    @property
    def T(self):
        if self._data.dim() > 2:
            raise ShapeError(
                f".T is for tensors of at most 2 dimensions, this one has shape "
                f"{tuple(self.shape)}; use .transpose(dim0, dim1)"
            )
        return self.t()

    def unsqueeze(self, dim: builtins.int):
        return ops.Unsqueeze.apply(self, dim)

    def expand(self, *sizes):
        if len(sizes) == 1 and isinstance(sizes[0], (tuple, list, torch.Size)):
            sizes = tuple(sizes[0])
        return ops.Expand.apply(self, tuple(sizes))

    def __getitem__(self, index):
        return ops.GetItem.apply(self, index)

    # --- elementwise and reductions (the torch surface) -----------------------------
    # (the ops and their maths: ops/unary.py, ops/select.py, ops/reduction.py)
    def abs(self):
        return ops.Abs.apply(self)

    absolute = abs
    __abs__ = abs

    def sqrt(self):
        return ops.Sqrt.apply(self)

    def sin(self):
        return ops.Sin.apply(self)

    def cos(self):
        return ops.Cos.apply(self)

    def sign(self):
        return ops.Sign.apply(self)

    def maximum(self, other):
        return ops.select.maximum(self, other)

    def minimum(self, other):
        return ops.select.minimum(self, other)

    def where(self, condition, other):
        """torch's x.where(condition, y): x where condition, else y."""
        return ops.Where.apply(as_operand(condition), self, as_operand(other))

    def max(self, dim=None, keepdim: builtins.bool = False):
        """max() -> a 0-d tensor; max(dim, keepdim) -> (values, indices); max(other) -> maximum."""
        return ops.reduction.max(self, dim, keepdim)

    def min(self, dim=None, keepdim: builtins.bool = False):
        """min() -> a 0-d tensor; min(dim, keepdim) -> (values, indices); min(other) -> minimum."""
        return ops.reduction.min(self, dim, keepdim)

    def amax(self, dim=(), keepdim: builtins.bool = False):
        return ops.Amax.apply(self, dim, keepdim)

    def amin(self, dim=(), keepdim: builtins.bool = False):
        return ops.Amin.apply(self, dim, keepdim)

    def argmax(self, dim=None, keepdim: builtins.bool = False):
        return ops.reduction.argmax(self, dim, keepdim)

    def argmin(self, dim=None, keepdim: builtins.bool = False):
        return ops.reduction.argmin(self, dim, keepdim)

    def var(self, dim=None, unbiased=None, keepdim: builtins.bool = False, *, correction=None):
        return ops.reduction.var(self, dim, unbiased, keepdim, correction=correction)

    def std(self, dim=None, unbiased=None, keepdim: builtins.bool = False, *, correction=None):
        return ops.reduction.std(self, dim, unbiased, keepdim, correction=correction)

    def prod(self, dim=None, keepdim: builtins.bool = False):
        return ops.reduction.prod(self, dim, keepdim)

    def lt(self, other):
        return self < other

    def le(self, other):
        return self <= other

    def gt(self, other):
        return self > other

    def ge(self, other):
        return self >= other

    def eq(self, other):
        return self == other

    def ne(self, other):
        return self != other

    # --- softmax, log_softmax, logsumexp -------------------------------------------
    def softmax(self, dim: builtins.int, dtype=None):
        return ops.softmax(self, dim, dtype)

    def log_softmax(self, dim: builtins.int, dtype=None):
        return ops.log_softmax(self, dim, dtype)

    def logsumexp(self, dim, keepdim: builtins.bool = False):
        return ops.logsumexp(self, dim, keepdim)

    # --- shape, joins and conversions (the torch surface) ----------------------------
    def view(self, *shape):
        """The same memory read in another shape (a view, never a copy); ``view(dtype)``
        reinterprets the bits.

        Refuses, as torch (RuntimeError), a shape the strides don't allow
        (a transposed or sliced tensor): use reshape, which copies then. A
        view as another dtype has no gradient (torch's isn't differentiable either).
        """
        if len(shape) == 1 and isinstance(shape[0], torch.dtype):
            if shape[0] == self._data.dtype:
                return ops.View.apply(self, tuple(self.shape))
            return Tensor._wrap(self._data.view(shape[0]))
        return ops.View.apply(self, ops.shape.sizes_argument(shape, "view()"))

    def view_as(self, other) -> Tensor:
        return self.view(tuple(other.shape))

    def reshape_as(self, other) -> Tensor:
        return self.reshape(tuple(other.shape))

    def expand_as(self, other) -> Tensor:
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
        """Remove dimensions of size 1: all of them, or those among `dim` (an int or a tuple)."""
        return ops.Squeeze.apply(self, tuple(dim) if isinstance(dim, list) else dim)

    def permute(self, *dims) -> Tensor:
        """Reorder the dimensions: dimension i of the result is dimension dims[i] (a view)."""
        return ops.Permute.apply(self, ops.shape.sizes_argument(dims, "permute()"))

    def movedim(self, source, destination) -> Tensor:
        """Move dims `source` to positions `destination`, the others keeping their order (a
        permute)."""
        if isinstance(source, list):
            source = tuple(source)
        if isinstance(destination, list):
            destination = tuple(destination)
        return ops.Permute.apply(
            self, ops.shape.movedim_order(source, destination, tuple(self.shape))
        )

    moveaxis = movedim

    def swapaxes(self, axis0: builtins.int, axis1: builtins.int) -> Tensor:
        return self.transpose(axis0, axis1)

    swapdims = swapaxes

    def narrow(self, dim: builtins.int, start: builtins.int, length: builtins.int) -> Tensor:
        """The slice start:start+length along `dim` (a view, recorded like
        x[:, start:start+length])."""
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
        """x[.., index, ..] along `dim`: that dimension removed (recorded like x[:, index])."""
        if self._data.dim() == 0:
            raise IndexError("select() cannot be applied to a 0-d tensor (as in torch)")
        d = ops.shape.normalize_dim(dim, tuple(self.shape), "select()")
        return self[(slice(None),) * d + (index,)]

    def split(self, split_size_or_sections, dim: builtins.int = 0) -> tuple:
        return ops.join.split(self, split_size_or_sections, dim)

    def chunk(self, chunks: builtins.int, dim: builtins.int = 0) -> tuple:
        return ops.join.chunk(self, chunks, dim)

    def unbind(self, dim: builtins.int = 0) -> tuple:
        return ops.join.unbind(self, dim)

    def clone(self, *, memory_format=torch.preserve_format) -> Tensor:
        """A copy in memory of its own, recorded: the gradient passes through to this tensor."""
        return ops.Clone.apply(self, memory_format)

    def contiguous(self, memory_format=torch.contiguous_format) -> Tensor:
        """This tensor if its memory already is contiguous (as torch), else a recorded copy."""
        if self._data.is_contiguous(memory_format=memory_format):
            return self
        return ops.Contiguous.apply(self, memory_format)

    def is_floating_point(self) -> builtins.bool:
        return self._data.is_floating_point()

    def is_contiguous(self, memory_format=torch.contiguous_format) -> builtins.bool:
        return self._data.is_contiguous(memory_format=memory_format)

    def stride(self, dim=None):
        return self._data.stride() if dim is None else self._data.stride(dim)

    # --- comparisons: plain values, no gradient ---------------------------
    def _compare(self, other, compare):
        other = as_operand(other)
        other = other._data if isinstance(other, Tensor) else other
        return Tensor._wrap(compare(self._data, other))

    def __lt__(self, other):
        return self._compare(other, torch.lt)

    def __le__(self, other):
        return self._compare(other, torch.le)

    def __gt__(self, other):
        return self._compare(other, torch.gt)

    def __ge__(self, other):
        return self._compare(other, torch.ge)

    def __eq__(self, other):
        return self._compare(other, torch.eq)

    def __ne__(self, other):
        return self._compare(other, torch.ne)

    # --- logic on bool (or integer) tensors: plain values, no gradient ------------
    def __and__(self, other):
        return self._compare(other, torch.bitwise_and)

    __rand__ = __and__

    def __or__(self, other):
        return self._compare(other, torch.bitwise_or)

    __ror__ = __or__

    def __xor__(self, other):
        return self._compare(other, torch.bitwise_xor)

    __rxor__ = __xor__

    def __invert__(self):
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
    the values are always copied (a tensor given keeps its own memory).
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
