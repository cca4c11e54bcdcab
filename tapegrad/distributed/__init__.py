"""tapegrad.distributed: data-parallel training over torch.distributed, with torch's names.

Each process (one per CPU group or GPU, started by ``torchrun``) records and
sweeps its own tape on its shard of every global batch; the parameter
gradients are then averaged across processes with bucketed
``torch.distributed.all_reduce`` calls before the optimizer step.

    import torch.distributed as dist
    from tapegrad.distributed import DistributedDataParallel, shard

    dist.init_process_group("gloo")          # torchrun sets rank, world size, address
    model = DistributedDataParallel(model)   # rank 0's weights, broadcast to all
    ...
    x, t = shard(x, t)                       # this rank's rows of the global batch
    loss = loss_fn(model(x), t)
    loss.backward()
    model.sync_gradients()                   # average p.grad over the ranks
    optimizer.step()

`torch.distributed` is torch's communication library, not its autograd:
every derivative is still the tape's own.
"""

from .buckets import Bucket, plan_buckets
from .data_parallel import DistributedDataParallel
from .shard import shard, shard_range

__all__ = ["DistributedDataParallel", "shard", "shard_range", "plan_buckets", "Bucket"]
