"""Learning-rate schedule: linear warm-up, then cosine decay (paper §A.1).

A pure function of the global step, so resuming needs no scheduler state: the learning
rate at step s is the same whether the run was interrupted or not.
"""

from __future__ import annotations

import math


def lr_at(step: int, *, lr: float, warmup_steps: int, total_steps: int,
          min_lr_ratio: float = 0.0) -> float:
    """Learning rate for optimizer step `step` (0-based).

    Rises linearly from lr/warmup to lr over `warmup_steps`, then follows half a cosine
    from lr down to lr * min_lr_ratio at `total_steps`; stays there afterwards.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    floor = lr * min_lr_ratio
    return floor + (lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
