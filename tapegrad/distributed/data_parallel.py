"""`DistributedDataParallel`: one model per process, each on its shard of the batch, gradients
averaged.

Data-parallel training with P processes (ranks), as torch does it:

    start      every rank builds the model; rank 0's parameters and buffers are
               broadcast, so all ranks start from the same weights
    forward    rank 0's buffers (BatchNorm's running statistics) are broadcast
               again before each forward in training mode, as torch's DDP does
               with broadcast_buffers=True
    each step  rank r runs forward and backward on its shard of the global
               batch, on its own tape, filling p.grad with g_r
               sync_gradients(): p.grad = (g_0 + ... + g_{P-1}) / P on every rank
               optimizer.step(): the same update everywhere, so the replicas
               stay identical without ever sending the weights again

Why the average is the single-process gradient: with a mean loss over a
global batch of N samples split into shards of n_r samples,

    L = (1/N) sum_i l_i = sum_r (n_r / N) L_r      so      dL/dθ = sum_r (n_r / N) g_r

which is the plain average (1/P) sum_r g_r when every shard has n_r = N / P.
When the shards differ (a last batch that does not split evenly), pass
``sync_gradients(num_samples=n_r)`` to weight each rank's gradient by its
share; the total N travels in the first bucket, so this costs no extra
collective.

Gradients go through `torch.distributed.all_reduce` bucketed (see
`buckets.py`): one collective per bucket, not one per parameter. Unlike
torch's DDP we do not overlap communication with the backward sweep: the
sweep finishes, then the buckets are reduced, all in flight at once.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from ..nn.module import Module
from .buckets import plan_buckets


class DistributedDataParallel(Module):
    """Wrap `module` for data-parallel training; call `sync_gradients()` between backward and step.

        dist.init_process_group("gloo")              # or "nccl", with the model on its GPU
        model = DistributedDataParallel(build_model(), bucket_cap_mb=25)
        for x, t in global_batches:
            x, t = shard(x, t)                       # this rank's part of the batch
            loss = loss_fn(model(x), t)
            optimizer.zero_grad()
            loss.backward()                          # this rank's tape, this rank's gradients
            model.sync_gradients()                   # the average over all ranks, in place
            optimizer.step()

    module          the model; ``model.module`` (its parameters are named
                    ``module.<name>`` in ``state_dict()``, as in torch)
    bucket_cap_mb   the most megabytes of gradients one collective carries
    process_group   the group to average over (default: the whole world)
    broadcast_buffers  send rank 0's buffers to every rank before each training forward
    """

    def __init__(
        self,
        module: Module,
        bucket_cap_mb: float = 25.0,
        process_group=None,
        broadcast_buffers: bool = True,
    ):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(
                f"DistributedDataParallel wraps a tapegrad.nn.Module, got {type(module).__name__}"
            )
        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError(
                "DistributedDataParallel: torch.distributed is not initialised; "
                "call torch.distributed.init_process_group('gloo') (CPU) or "
                "('nccl') (GPU) first, in a process started by torchrun"
            )
        self.module = module
        self.process_group = process_group
        self.bucket_cap_mb = bucket_cap_mb
        self.broadcast_buffers = broadcast_buffers
        params = [p for p in module.parameters() if p.requires_grad]
        if not params:
            raise ValueError(
                "DistributedDataParallel: the module has no parameter that requires "
                "grad, so there is nothing to average"
            )
        self._check_backend(params)
        self.buckets = plan_buckets(params, bucket_cap_mb)
        self._check_same_parameters(params)
        self._broadcast_parameters()
        self._broadcast_module_buffers()

    def forward(self, *inputs, **kwargs):
        if self.broadcast_buffers and self.training:
            self._broadcast_module_buffers()
        return self.module(*inputs, **kwargs)

    @property
    def world_size(self) -> int:
        return dist.get_world_size(self.process_group)

    @property
    def rank(self) -> int:
        return dist.get_rank(self.process_group)

    # --- the one thing a training loop adds ----------------------------------------
    def sync_gradients(self, num_samples: int | None = None) -> None:
        """Replace every parameter's .grad with its average over all ranks (see the module
        docstring).

        num_samples: this rank's number of samples in the step. Given (on every
        rank), gradients are weighted by each rank's share of the global batch,
        which is exact for mean losses even when the shards differ in size.
        A parameter with no gradient on some rank counts as zeros there (so
        afterwards every parameter has a .grad).
        """
        if num_samples is not None and (
            isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 0
        ):
            raise ValueError(
                f"sync_gradients(num_samples=...) takes this rank's number of "
                f"samples, an int >= 0, got {num_samples!r}"
            )
        weighted = num_samples is not None
        flats, works = [], []
        for index, bucket in enumerate(self.buckets):
            extra = 1 if weighted and index == 0 else 0
            flat = bucket.flatten_grads(extra)
            if num_samples is not None:
                flat[: bucket.numel].mul_(num_samples)
                if extra:
                    flat[-1] = num_samples  # summed across ranks: the global batch size N
            # Every bucket in flight at once (async); ranks issue them in the same order.
            works.append(dist.all_reduce(flat, group=self.process_group, async_op=True))
            flats.append(flat)
        for work in works:
            work.wait()
        if weighted:
            total = flats[0][-1].item()
            if total == 0:
                raise RuntimeError(
                    "sync_gradients(num_samples=...): every rank passed 0 samples, "
                    "so there is no gradient to average"
                )
        else:
            total = self.world_size
        for bucket, flat in zip(self.buckets, flats):
            flat.div_(total)
            for p, grad in zip(bucket.params, bucket.views(flat)):
                p._grad = grad

    # --- start: everyone begins from rank 0's weights -------------------------------
    def _broadcast_parameters(self) -> None:
        """Copy rank 0's parameter values into every rank's parameters, one broadcast per bucket."""
        group = self.process_group
        source = 0 if group is None else dist.get_global_rank(group, 0)
        for bucket in self.buckets:
            flat = bucket.flatten_values()
            dist.broadcast(flat, src=source, group=group)
            for p, value in zip(bucket.params, bucket.views(flat)):
                p.data.copy_(value)  # in place: an optimizer holding p sees the new values

    def _broadcast_module_buffers(self) -> None:
        """Copy rank 0's buffers (running statistics, ...) into every rank's, in place."""
        group = self.process_group
        source = 0 if group is None else dist.get_global_rank(group, 0)
        for buffer in self.module.buffers():
            data = buffer.data if hasattr(buffer, "requires_grad") else buffer
            dist.broadcast(data, src=source, group=group)

    def _check_same_parameters(self, params) -> None:
        """Refuse to start when ranks built different models (a collective would hang or mix
        them)."""
        count = sum(p.data.numel() for p in params)
        device = params[0].data.device
        # max over ranks of (count, -count): both equal count only if every rank has count
        seen = torch.tensor(
            [count, -count, len(self.buckets), -len(self.buckets)], dtype=torch.int64, device=device
        )
        dist.all_reduce(seen, op=dist.ReduceOp.MAX, group=self.process_group)
        most, fewest = seen[0].item(), -seen[1].item()
        if most != count or fewest != count or seen[2].item() != -seen[3].item():
            raise ValueError(
                f"DistributedDataParallel: the ranks' models differ (rank "
                f"{self.rank} has {count} parameter elements in "
                f"{len(self.buckets)} buckets; across ranks the counts range from "
                f"{fewest} to {most}). Build the same model, with the same "
                "bucket_cap_mb, on every rank"
            )

    def _check_backend(self, params) -> None:
        if dist.get_backend(self.process_group) == "nccl":
            elsewhere = sorted({str(p.data.device) for p in params if p.data.device.type != "cuda"})
            if elsewhere:
                raise ValueError(
                    f"DistributedDataParallel: the nccl backend reduces CUDA tensors "
                    f"only, but parameters are on {', '.join(elsewhere)}. Move the "
                    "model first: model.to(f'cuda:{local_rank}'), or use the gloo "
                    "backend for CPU training"
                )

    def extra_repr(self) -> str:
        # no collective call here: a repr must work after the process group is gone
        return f"buckets={len(self.buckets)}, bucket_cap_mb={self.bucket_cap_mb}"
