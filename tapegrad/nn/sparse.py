"""`Embedding`: a lookup table, one row of the weight per id; one fused node.

    y[..., :] = W[ids[...], :]

The derivative adds each output row's gradient into the row of W it came
from, so an id used twice collects both (`EmbeddingBackward`, aten's
``embedding_dense_backward`` in the ordinary sweep). The row `padding_idx`
gets no gradient (it stays what it was, zeros by default). That scatter is
linear, and its own derivative is the lookup again.
"""

from __future__ import annotations

import torch

from .. import _kernels
from ..errors import DtypeError
from ..function import Function
from ..ops.select import where
from . import init
from ._utils import data_of
from .module import Module
from .parameter import Parameter

_embedding = _kernels.aten("embedding")
_embedding_dense_backward = _kernels.aten("embedding_dense_backward")


class EmbeddingFunction(Function):
    """y = W[ids]   (one row of W per id: ids (*) -> y (*, embedding_dim))

    dL/dW = zeros, with each row of dL/dy added into row ids[...]
            (repeated ids add; none into padding_idx; divided by the id's count with
            scale_grad_by_freq)
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, weight, indices, padding_idx=-1, scale_grad_by_freq=False):
        ctx.rows = weight.shape[0]
        ctx.padding_idx, ctx.scale_grad_by_freq = padding_idx, scale_grad_by_freq
        ctx.save_for_backward(indices)
        return _embedding(weight, indices, padding_idx, scale_grad_by_freq)

    @staticmethod
    def backward(ctx, grad):
        (indices,) = ctx.saved_tensors
        if isinstance(grad, torch.Tensor):
            return (
                _embedding_dense_backward(
                    grad, indices, ctx.rows, ctx.padding_idx, ctx.scale_grad_by_freq
                ),
                None,
                None,
                None,
            )
        return (
            EmbeddingBackward.apply(
                grad, indices, ctx.rows, ctx.padding_idx, ctx.scale_grad_by_freq
            ),
            None,
            None,
            None,
        )


class EmbeddingBackward(Function):
    """z = zeros (rows, dim), with each row of g added into row ids[...]
           (Embedding's weight gradient as an op: g is y's gradient)

    dL/dg = dL/dz[ids]
        (0 where ids == padding_idx; divided by the id's count with scale_grad_by_freq)
    """

    check_grad_shapes = False
    fresh_grads = True

    @staticmethod
    def forward(ctx, g, indices, rows, padding_idx=-1, scale_grad_by_freq=False):
        ctx.padding_idx, ctx.scale_grad_by_freq = padding_idx, scale_grad_by_freq
        ctx.save_for_backward(indices)
        return _embedding_dense_backward(g, indices, rows, padding_idx, scale_grad_by_freq)

    @staticmethod
    def backward(ctx, grad):
        (indices,) = ctx.saved_tensors
        plain = data_of(indices)
        if isinstance(grad, torch.Tensor):
            rows = _embedding(grad, plain, -1, False)
        else:
            rows = EmbeddingFunction.apply(grad, plain)
        if ctx.scale_grad_by_freq:
            counts = torch.bincount(plain.reshape(-1), minlength=data_of(grad).shape[0])
            rows = rows * (1 / counts[plain].to(data_of(grad).dtype)).unsqueeze(-1)
        if ctx.padding_idx >= 0:
            rows = where((plain != ctx.padding_idx).unsqueeze(-1), rows, 0.0)
        return rows, None, None, None, None


# --- the function --------------------------------------------------------------------------


def embedding(
    input,
    weight,
    padding_idx=None,
    max_norm=None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
):
    """torch.nn.functional.embedding: the rows of `weight` at the ids in `input`."""
    return _embedding_call(
        input, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse, "embedding"
    )


def _padding_index(padding_idx, rows: int, owner: str) -> int:
    """torch's rule: a negative padding_idx counts from the end; None is -1 for aten."""
    if padding_idx is None:
        return -1
    if not -rows <= padding_idx < rows:
        raise ValueError(
            f"{owner}: padding_idx must be within num_embeddings ({rows}), got {padding_idx}"
        )
    return padding_idx % rows


def _embedding_call(
    ids, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse, owner
):
    if sparse:
        raise NotImplementedError(
            f"{_name(owner)}: sparse gradients are not implemented in "
            "tapegrad; use sparse=False (a dense gradient)"
        )
    rows = data_of(weight).shape[0]
    padding = _padding_index(padding_idx, rows, _name(owner))
    plain = data_of(ids)
    try:
        if max_norm is not None:
            # torch renormalises the looked-up rows in place, outside the tape
            torch.embedding_renorm_(data_of(weight), plain.contiguous(), max_norm, norm_type)
        return EmbeddingFunction.apply(weight, plain, padding, scale_grad_by_freq)
    except (TypeError, ValueError, RuntimeError, IndexError):
        _check_ids(owner, ids, rows)
        raise


def _name(owner) -> str:
    return owner if isinstance(owner, str) else repr(owner)


def _check_ids(owner, ids, rows: int) -> None:
    owner = _name(owner)
    plain = data_of(ids)
    if not isinstance(plain, torch.Tensor):
        raise TypeError(
            f"{owner} takes a tensor of ids, got {type(ids).__name__}; build one with "
            "torch.tensor([...]) (int64)"
        ) from None
    if plain.dtype not in (torch.int64, torch.int32):
        raise DtypeError(
            f"{owner}: ids must be an integer tensor (int64 or int32), got "
            f"{plain.dtype}; convert them with ids.long()"
        ) from None
    if plain.numel():
        low, high = int(plain.min()), int(plain.max())
        if low < 0 or high >= rows:
            bad = low if low < 0 else high
            raise IndexError(
                f"{owner}: id {bad} is out of range: the table has {rows} rows "
                f"(num_embeddings), so ids must be in [0, {rows - 1}]; enlarge "
                "num_embeddings or map the ids into range"
            ) from None


# --- the layer ---------------------------------------------------------------------------


class Embedding(Module):
    """A lookup table of `num_embeddings` vectors of size `embedding_dim` (torch's arguments).

    The weight starts N(0, 1), its `padding_idx` row zeros. `_freeze=True`
    (or ``from_pretrained(..., freeze=True)``) makes it need no gradient.
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        _weight=None,
        _freeze: bool = False,
        device=None,
        dtype=None,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        for name, value in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"Embedding: {name} must be a positive int, got {value!r}")
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = (
            None
            if padding_idx is None
            else _padding_index(padding_idx, num_embeddings, "Embedding")
        )
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        if sparse:
            raise NotImplementedError(
                "Embedding: sparse gradients are not implemented in "
                "tapegrad; use sparse=False (a dense gradient)"
            )
        self.sparse = sparse
        if _weight is None:
            self.weight = Parameter(
                torch.empty(
                    num_embeddings,
                    embedding_dim,
                    device=device,
                    dtype=dtype or torch.get_default_dtype(),
                ),
                requires_grad=not _freeze,
            )
            self.reset_parameters(generator)
        else:
            if tuple(data_of(_weight).shape) != (num_embeddings, embedding_dim):
                raise ValueError(
                    f"Embedding: _weight has shape {tuple(data_of(_weight).shape)}, "
                    f"expected ({num_embeddings}, {embedding_dim})"
                )
            self.weight = Parameter(data_of(_weight), requires_grad=not _freeze)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        init.normal_(self.weight, generator=generator)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx].zero_()

    def forward(self, ids):
        return _embedding_call(
            ids,
            self.weight,
            self.padding_idx,
            self.max_norm,
            self.norm_type,
            self.scale_grad_by_freq,
            self.sparse,
            self,
        )

    @classmethod
    def from_pretrained(
        cls,
        embeddings,
        freeze: bool = True,
        padding_idx=None,
        max_norm=None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
    ) -> Embedding:
        """An Embedding holding `embeddings` (rows, dim) as its weight (frozen by default)."""
        data = data_of(embeddings)
        if data.dim() != 2:
            raise ValueError(
                f"Embedding.from_pretrained: embeddings must be 2-D (rows, dim), got "
                f"shape {tuple(data.shape)}"
            )
        return cls(
            data.shape[0],
            data.shape[1],
            padding_idx,
            max_norm,
            norm_type,
            scale_grad_by_freq,
            sparse,
            _weight=data,
            _freeze=freeze,
        )

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            text += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            text += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            text += ", scale_grad_by_freq=True"
        return text
