"""Gradient buckets: many parameters' tensors packed into one flat tensor, for one collective.

A collective (all_reduce, broadcast) has a fixed cost per call on top of the
cost per byte, so sending a network's tensors one call per parameter wastes
the first part. torch's DistributedDataParallel packs them into buckets of
up to ``bucket_cap_mb`` megabytes; so do we:

    parameters   [W1 b1 W2 b2 W3 b3]          (same device and dtype)
    buckets      [W1 b1 W2] [b2 W3 b3]        each at most the cap (a bigger
                                              tensor gets a bucket of its own)
    one bucket   flat = cat(W1.reshape(-1), b1.reshape(-1), W2.reshape(-1))
                 all_reduce(flat), then each parameter's part is a view of flat

A flat tensor holds one dtype on one device, so parameters are grouped by
(device, dtype) first, keeping their order within each group.
"""

from __future__ import annotations

import torch

MB = 1024 * 1024


class Bucket:
    """Parameters whose tensors travel together in one flat tensor.

    params      the parameters, in order
    numel       the number of elements of all of them together
    """

    __slots__ = ("params", "numel", "_offsets")

    def __init__(self, params: list):
        self.params = params
        offsets = [0]
        for p in params:
            offsets.append(offsets[-1] + p.data.numel())
        self._offsets = offsets
        self.numel = offsets[-1]

    @property
    def nbytes(self) -> int:
        return self.numel * self.params[0].data.element_size()

    def flatten(self, tensors, extra: int = 0) -> torch.Tensor:
        """One new flat tensor holding `tensors` (one per parameter) end to end, plus `extra`
        free slots."""
        first = self.params[0].data
        flat = torch.empty(self.numel + extra, dtype=first.dtype, device=first.device)
        torch.cat([t.reshape(-1) for t in tensors], out=flat[: self.numel])
        return flat

    def flatten_values(self) -> torch.Tensor:
        return self.flatten([p.data for p in self.params])

    def flatten_grads(self, extra: int = 0) -> torch.Tensor:
        """The parameters' gradients, flat; a parameter with no gradient yet counts as zeros."""
        grads = [
            p.data.new_zeros(p.data.shape) if p._grad is None else p._grad for p in self.params
        ]
        return self.flatten(grads, extra)

    def views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """Each parameter's part of `flat`, shaped like the parameter (views, no copies)."""
        offsets = self._offsets
        return [
            flat[offsets[i] : offsets[i + 1]].view(p.data.shape) for i, p in enumerate(self.params)
        ]

    def __repr__(self):
        return f"<Bucket of {len(self.params)} parameters, {self.numel} elements>"


def plan_buckets(params, bucket_cap_mb: float = 25.0) -> list[Bucket]:
    """Split `params` into buckets of at most `bucket_cap_mb` megabytes each (one device and
    dtype per bucket).

    Parameters stay in their order within a (device, dtype) group; a new bucket
    starts when the next parameter would push the current one past the cap.
    A parameter larger than the cap gets a bucket of its own.
    """
    if (
        isinstance(bucket_cap_mb, bool)
        or not isinstance(bucket_cap_mb, (int, float))
        or not bucket_cap_mb > 0
    ):
        raise ValueError(
            f"bucket_cap_mb must be a positive number of megabytes, got {bucket_cap_mb!r}"
        )
    cap = bucket_cap_mb * MB
    groups: dict[tuple, list[list]] = {}  # (device, dtype) -> buckets being filled, in order
    sizes: dict[tuple, int] = {}  # bytes in the last bucket of each group
    for p in params:
        data = p.data
        key = (data.device, data.dtype)
        nbytes = data.numel() * data.element_size()
        buckets = groups.setdefault(key, [])
        if not buckets or sizes[key] + nbytes > cap:
            buckets.append([])
            sizes[key] = 0
        buckets[-1].append(p)
        sizes[key] += nbytes
    return [Bucket(members) for buckets in groups.values() for members in buckets]
