"""Process-group setup for `torchrun` (single or multi node) and the batch arithmetic.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; without them we are one process. The
backend follows the device: NCCL for CUDA, gloo for the CPU. We never spawn processes
ourselves.
"""

from __future__ import annotations

import datetime
import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

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
