"""How training spreads over processes: process-group setup for `torchrun` (single or
multi node), the batch arithmetic, and the sampler that hands each process its micro-batches.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; without them we are one process. The
backend follows the device: NCCL for CUDA, gloo for the CPU. We never spawn processes
ourselves.

The sampler's position is a function of the step. Every optimizer step consumes one
*global* batch of `global_batch` dataset indices, drawn from a per-epoch permutation
(seeded by seed + epoch). That global batch is cut into world_size × grad_accum equal
micro-batches; process r takes micro-batches r, r + world, r + 2·world, ... So 1 process ×
accum 2 and 2 processes × accum 1 see exactly the same examples at every step, and the
data position after step s is just (epoch, index) = divmod(s, batches_per_epoch): resuming
needs no sampler state beyond the step, though we save the position anyway to check it.
"""

from __future__ import annotations

import datetime
import gc
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from maskvit.devices import enable_tf32, process_device
from maskvit.errors import UserError


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistEnv:
    """Join the torchrun process group if there is one; otherwise a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = process_device(device)  # LOCAL_RANK's GPU for a plain "cuda"
    enable_tf32(dev)
    if world_size > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=30))
    return DistEnv(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)


def shutdown_distributed() -> None:
    """Destroy the process group while the interpreter is fully alive.

    Collect garbage first so no DDP reducer still holds the group: gloo aborts the
    process when a group is freed during interpreter shutdown.
    """
    if dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


def micro_batch_size(global_batch: int, world_size: int, grad_accum: int) -> int:
    """Per-process, per-forward batch such that world × accum × micro == global batch."""
    shards = world_size * grad_accum
    if global_batch % shards:
        raise UserError(
            f"train.batch_size={global_batch} is not divisible by {world_size} process(es) × "
            f"grad_accum={grad_accum}; change --set train.grad_accum or the process count"
        )
    return global_batch // shards


def all_reduce_sum(values: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """Sum a tensor over all processes (identity for one process)."""
    if env.distributed:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def all_gather_objects(obj: object, env: DistEnv) -> list:
    """Every process's `obj`, in rank order (a one-element list for one process)."""
    if not env.distributed:
        return [obj]
    out: list = [None] * env.world_size
    dist.all_gather_object(out, obj)
    return out


# ---------------------------------------------------------------- the sampler

@dataclass(frozen=True)
class DataPosition:
    """Where the next global batch comes from."""

    epoch: int
    index: int  # global batch within the epoch


class GlobalBatchSampler(Sampler[list[int]]):
    """Yields this process's micro-batches (lists of indices) from `start_step` on, forever.

    Incomplete global batches at the end of an epoch are dropped, so every step sees the
    same number of examples.
    """

    def __init__(self, dataset_len: int, global_batch: int, *, rank: int = 0,
                 world_size: int = 1, grad_accum: int = 1, seed: int = 0,
                 shuffle: bool = True, start_step: int = 0) -> None:
        if dataset_len < global_batch:
            raise UserError(
                f"the dataset has {dataset_len} clips, fewer than one global batch "
                f"(train.batch_size={global_batch}); add data or lower the batch size"
            )
        self.dataset_len = dataset_len
        self.global_batch = global_batch
        self.rank, self.world_size, self.grad_accum = rank, world_size, grad_accum
        self.micro = micro_batch_size(global_batch, world_size, grad_accum)
        self.seed, self.shuffle, self.start_step = seed, shuffle, start_step
        self.batches_per_epoch = dataset_len // global_batch

    def position(self, step: int) -> DataPosition:
        epoch, index = divmod(step, self.batches_per_epoch)
        return DataPosition(epoch, index)

    def _order(self, epoch: int) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.dataset_len)
        gen = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        return torch.randperm(self.dataset_len, generator=gen)

    def global_batch_indices(self, step: int) -> list[int]:
        """All indices the whole job uses at `step` (for tests and checks)."""
        pos = self.position(step)
        start = pos.index * self.global_batch
        return self._order(pos.epoch)[start:start + self.global_batch].tolist()

    def micro_batches(self, step: int) -> list[list[int]]:
        """This process's grad_accum micro-batches for `step`, in order."""
        chunk = self.global_batch_indices(step)
        out = []
        for m in range(self.grad_accum):
            k = m * self.world_size + self.rank
            out.append(chunk[k * self.micro:(k + 1) * self.micro])
        return out

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start_step
        order, epoch = None, -1
        while True:
            pos = self.position(step)
            if pos.epoch != epoch:
                order, epoch = self._order(pos.epoch), pos.epoch
            start = pos.index * self.global_batch
            chunk = order[start:start + self.global_batch].tolist()
            for m in range(self.grad_accum):
                k = m * self.world_size + self.rank
                yield chunk[k * self.micro:(k + 1) * self.micro]
            step += 1

    def __len__(self) -> int:  # per epoch, for progress displays only
        return self.batches_per_epoch * self.grad_accum


def eval_micro_batches(dataset_len: int, micro: int, *, rank: int, world_size: int,
                       max_batches: int) -> list[list[int]]:
    """Fixed, unshuffled validation micro-batches for this process (same every time).

    Uses at most `max_batches` batches of world_size × micro examples from the start of
    the split; each process takes its own slice.
    """
    per_round = micro * world_size
    rounds = min(max_batches, dataset_len // per_round)
    return [list(range(r * per_round + rank * micro, r * per_round + (rank + 1) * micro))
            for r in range(rounds)]
