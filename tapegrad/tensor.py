"""`Tensor`: a torch tensor (`.data`) plus what reverse mode needs to know about it.

A tensor that needs a gradient is either a *leaf* (made by the user, e.g. a
parameter: its gradient accumulates in `.grad`) or the output of an op (it
points at the tape node that made it, and at that tape). Arithmetic on
tensors runs the ops of `tapegrad.ops`, which record onto the tape.
"""

from __future__ import annotations

import torch

from .tape import _check_no_torch_grad, resolve


class Tensor:
    """A torch tensor that knows how it was computed.

    data            the torch.Tensor holding the values (never tracked by torch autograd)
    requires_grad   does a gradient flow back to this tensor
    grad            dL/d(this), after backward(): accumulated for leaves; for
                    op outputs only after retain_grad() or backward(keep_grads=True)
    tape, node      the tape that recorded this tensor and its entry (None for leaves)
    """

    __slots__ = ("data", "requires_grad", "_grad", "_node", "_tape", "__weakref__")
    __hash__ = object.__hash__          # like torch: == is elementwise, hashing by identity
    __array_priority__ = 1000           # so that numpy defers to our reflected operators

    def __init__(self, data, requires_grad: bool = False):
        if isinstance(data, Tensor):
            data = data.data
        if not isinstance(data, torch.Tensor):
            raise TypeError(f"Tensor(data): data must be a torch.Tensor, got {type(data).__name__}; "
                            "use tapegrad.tensor(...) to build one from a list or a number")
        if requires_grad and not (data.is_floating_point() or data.is_complex()):
            raise TypeError(f"only floating-point tensors can require gradients, got {data.dtype}; "
                            "build it with dtype=torch.float32 (or float64)")
        self.data = _check_no_torch_grad(data)
        self.requires_grad = bool(requires_grad)
        self._grad = None
        self._node = None
        self._tape = None

    @classmethod
    def _wrap(cls, data: torch.Tensor) -> Tensor:
        """A tensor that needs no gradient (the fast path of ops that record nothing)."""
        t = object.__new__(Tensor)
        t.data = data
        t.requires_grad = False
        t._grad = None
        t._node = None
        t._tape = None
        return t

    @classmethod
    def _recorded(cls, data: torch.Tensor, node, tape) -> Tensor:
        """The output of a recorded op."""
        t = object.__new__(Tensor)
        t.data = data
        t.requires_grad = True
        t._grad = None
        t._node = node
        t._tape = tape
        return t

    # --- what torch users reach for ------------------------------------
    @property
    def grad(self):
        node = self._node
        return self._grad if node is None else node.grad

    @grad.setter
    def grad(self, value):
        if self._node is not None:
            raise RuntimeError("only a leaf tensor's .grad can be set; this tensor is the output "
                               f"of {self._node.describe()}")
        if value is not None:
            value = value.data if isinstance(value, Tensor) else value
            if not isinstance(value, torch.Tensor) or value.shape != self.data.shape:
                raise ValueError(f"grad must be a torch.Tensor of shape {tuple(self.shape)}, "
                                 f"got {getattr(value, 'shape', type(value).__name__)}")
            if value.dtype != self.data.dtype or value.device != self.data.device:
                # else an optimizer step would fail half-way, some parameters already updated
                raise TypeError(f"grad must be {self.data.dtype} on {self.data.device} like the "
                                f"tensor, got {value.dtype} on {value.device}; convert it with "
                                ".to(tensor.dtype)")
        self._grad = value

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def node(self):
        """The tape entry that produced this tensor (torch calls it `grad_fn`); None for leaves."""
        return self._node

    grad_fn = node

    @property
    def tape(self):
        """The Tape that recorded this tensor (None for leaves and untracked tensors)."""
        tape = self._tape
        if tape is not None and tape._merged_into is not None:
            tape = self._tape = resolve(tape)
        return tape

    @property
    def shape(self) -> torch.Size:
        return self.data.shape

    @property
    def dtype(self) -> torch.dtype:
        return self.data.dtype

    @property
    def device(self) -> torch.device:
        return self.data.device

    @property
    def ndim(self) -> int:
        return self.data.dim()

    def size(self, dim=None):
        return self.data.size() if dim is None else self.data.size(dim)

    def dim(self) -> int:
        return self.data.dim()

    def numel(self) -> int:
        return self.data.numel()

    def __len__(self):
        return len(self.data)

    def item(self):
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def numpy(self):
        return self.data.numpy()

    def __float__(self):
        return float(self.data)

    def __bool__(self):
        return bool(self.data)

    def detach(self) -> Tensor:
        """The same values, cut from the tape (shares storage, like torch)."""
        return Tensor._wrap(self.data)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if self._node is not None:
            raise RuntimeError("requires_grad_() is for leaf tensors; this tensor is the output of "
                               f"{self._node.describe()}. Use .detach().requires_grad_() for a new leaf")
        if requires_grad and not (self.data.is_floating_point() or self.data.is_complex()):
            raise TypeError(f"only floating-point tensors can require gradients, got {self.dtype}; "
                            "convert it first with .float() or .double()")
        self.requires_grad = requires_grad
        return self

    def retain_grad(self) -> None:
        """Keep this op output's gradient in `.grad` after backward() (leaves always keep it)."""
        if self._node is not None:
            self._node.retains_grad = True
        elif not self.requires_grad:
            raise RuntimeError("retain_grad() on a tensor that does not require grad")

    def backward(self, grad=None, retain_graph: bool = False, keep_grads: bool = False) -> None:
        """Sweep the tape backwards from this tensor, accumulating dL/d(leaf) into leaves' .grad.

        grad: dL/d(this tensor); may be omitted for a single-element tensor.
        retain_graph: keep the saved tensors, to sweep the same tape again.
        keep_grads: keep every node's gradient (``node.grad``), for pictures and teaching.
        """
        sweep.backward(self, grad, retain_graph=retain_graph, keep_grads=keep_grads)

    def __repr__(self):
        body = repr(self.data)
        if body.startswith("tensor("):
            body = body[len("tensor("):-1]
        extra = ""
        if self._node is not None:
            extra = f", grad_fn=<{self._node.describe()}>"
        elif self.requires_grad:
            extra = ", requires_grad=True"
        return f"tensor({body}{extra})"

    # --- conversions (recorded, so gradients flow through them) ---------
    def to(self, *args, **kwargs) -> Tensor:
        return ops.To.apply(self, args, kwargs)

    def float(self) -> Tensor:
        return self.to(torch.float32)

    def double(self) -> Tensor:
        return self.to(torch.float64)

    # --- arithmetic -------------------------------------------------------
    def __add__(self, other):
        return ops.Add.apply(self, other)

    def __radd__(self, other):
        return ops.Add.apply(other, self)

    def __sub__(self, other):
        return ops.Sub.apply(self, other)

    def __rsub__(self, other):
        return ops.Sub.apply(other, self)

    def __mul__(self, other):
        return ops.Mul.apply(self, other)

    def __rmul__(self, other):
        return ops.Mul.apply(other, self)

    def __truediv__(self, other):
        return ops.Div.apply(self, other)

    def __rtruediv__(self, other):
        return ops.Div.apply(other, self)

    def __neg__(self):
        return ops.Neg.apply(self)

    def __pow__(self, exponent):
        return ops.Pow.apply(self, exponent)

    def __rpow__(self, base):
        raise TypeError("number ** Tensor is not supported: ** takes a Tensor base and a number "
                        "exponent. Write exp(log(base) * x) for base ** x")

    def __matmul__(self, other):
        return ops.MatMul.apply(self, other)

    def __rmatmul__(self, other):
        return ops.MatMul.apply(other, self)

    def matmul(self, other):
        return ops.MatMul.apply(self, other)

    def sum(self, dim=None, keepdim: bool = False):
        return ops.Sum.apply(self, dim, keepdim)

    def mean(self, dim=None, keepdim: bool = False):
        return ops.Mean.apply(self, dim, keepdim)

    def exp(self):
        return ops.Exp.apply(self)

    def log(self):
        return ops.Log.apply(self)

    def relu(self):
        return ops.ReLU.apply(self)

    def tanh(self):
        return ops.Tanh.apply(self)

    def sigmoid(self):
        return ops.Sigmoid.apply(self)

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list, torch.Size)):
            shape = tuple(shape[0])
        return ops.Reshape.apply(self, shape)

    view = reshape

    def transpose(self, dim0: int, dim1: int):
        return ops.Transpose.apply(self, dim0, dim1)

    @property
    def T(self):
        if self.data.dim() > 2:
            raise ValueError(f".T is for tensors of at most 2 dimensions, this one has shape "
                             f"{tuple(self.shape)}; use .transpose(dim0, dim1)")
        if self.data.dim() < 2:
            return self
        return ops.Transpose.apply(self, 0, 1)

    def __getitem__(self, index):
        return ops.GetItem.apply(self, index)

    # --- comparisons: plain values, no gradient ---------------------------
    def _compare(self, other, compare):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor._wrap(compare(self.data, other))

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


def tensor(data, requires_grad: bool = False, dtype=None, device=None) -> Tensor:
    """Build a Tensor from a number, a (nested) list, a numpy array or a torch tensor.

    Like torch.tensor: lists of Python floats become float32, of ints int64.
    A torch tensor is used as is when dtype and device already match.
    """
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, torch.Tensor):
        data = data.detach().to(dtype=dtype, device=device)
    else:
        try:
            data = torch.tensor(data, dtype=dtype, device=device)
        except (TypeError, ValueError, RuntimeError) as error:
            raise TypeError(f"tapegrad.tensor(): cannot build a tensor from {type(data).__name__} "
                            f"({error}); pass a number, a nested list of numbers or a torch.Tensor") from error
    return Tensor(data, requires_grad=requires_grad)


from . import ops, sweep  # noqa: E402  (the ops need Tensor defined first)
