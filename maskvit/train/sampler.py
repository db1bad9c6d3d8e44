"""A resumable, distributed batch sampler whose position is a function of the step.

Every optimizer step consumes one *global* batch of `global_batch` dataset indices,
drawn from a per-epoch permutation (seeded by seed + epoch). That global batch is cut
into world_size × grad_accum equal micro-batches; process r takes micro-batches
r, r + world, r + 2·world, ... So 1 process × accum 2 and 2 processes × accum 1 see
exactly the same examples at every step, and the data position after step s is just
(epoch, index) = divmod(s, batches_per_epoch): resuming needs no sampler state beyond
the step, though we save the position anyway to check it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.utils.data import Sampler

from maskvit.errors import UserError


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
        self.micro = global_batch // (world_size * grad_accum)
        assert self.micro * world_size * grad_accum == global_batch
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
