"""`shard`: this process's part of a global batch.

Every rank draws the same global batch (same data, same seed, same
shuffle) and keeps a contiguous slice of it, so that P processes together
see exactly the batch that one process would:

    global batch of 10 rows, 3 ranks    rank 0: rows 0-3   rank 1: rows 4-6   rank 2: rows 7-9

The sizes differ by at most one (the first N mod P ranks get one more row),
as `torch.tensor_split` splits. Pass each rank's size to
``DistributedDataParallel.sync_gradients(num_samples=...)`` when they can
differ, to keep the gradient exactly that of the global batch.
"""

from __future__ import annotations

import torch.distributed as dist


def shard_range(n: int, rank: int, world_size: int) -> range:
    """The rows of a batch of `n` rows that `rank` (of `world_size`) keeps."""
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    return range(start, start + base + (1 if rank < extra else 0))


def shard(*tensors, rank: int | None = None, world_size: int | None = None, group=None):
    """This rank's rows (dimension 0) of each tensor of a global batch: ``x, t = shard(x, t)``.

    Works on tapegrad Tensors and torch tensors (a slice is a view, no copy).
    `rank` and `world_size` default to this process's in `group` (the world).
    Returns one tensor for one argument, else a tuple.
    """
    if not tensors:
        raise TypeError("shard() takes at least one tensor: shard(x) or shard(x, t)")
    if rank is None or world_size is None:
        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError(
                "shard(): torch.distributed is not initialised, so this process's "
                "rank is unknown; call torch.distributed.init_process_group first, "
                "or pass rank= and world_size="
            )
        rank = dist.get_rank(group) if rank is None else rank
        world_size = dist.get_world_size(group) if world_size is None else world_size
    if not (
        isinstance(world_size, int)
        and world_size > 0
        and isinstance(rank, int)
        and 0 <= rank < world_size
    ):
        raise ValueError(
            f"shard(): need 0 <= rank < world_size, got rank={rank!r}, world_size={world_size!r}"
        )
    n = len(tensors[0])
    for position, t in enumerate(tensors):
        if len(t) != n:
            raise ValueError(
                f"shard(): tensor {position} has {len(t)} rows but tensor 0 has {n}; "
                "the tensors of one batch must have the same number of rows"
            )
    rows = shard_range(n, rank, world_size)
    parts = tuple(t[rows.start : rows.stop] for t in tensors)
    return parts[0] if len(parts) == 1 else parts
