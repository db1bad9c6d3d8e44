"""Random generators for the rows of a shared batch: each request's videos get their own.

A server batches unrelated requests, and a request's frames must not depend on its
batch-mates. Row j of a request seeded with `seed` gets the generator that
`Predictor.predict(..., seed=seed)` gives its video j (`maskvit.model.sampling.
video_generators`: a CPU generator seeded from (seed, j)), and decoding draws each row's
numbers from its own generator. So a request's frames equal `Predictor.predict` on that
request alone, whatever else shares the batch and on any device
(tests/test_serve_api.py, tests/test_gpu_readiness.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import torch

from maskvit.model.sampling import video_generators

MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes up to 64 bits; JSON-safe as an int


def fresh_seed() -> int:
    """A random seed for a request that gave none (reported back, so it can be replayed)."""
    return secrets.randbelow(2**53)  # exact in a JavaScript number too


def row_generators(sizes: Sequence[int], seeds: Sequence[int],
                   device: torch.device | str | None = None) -> list[torch.Generator]:
    """Per-row generators for a batch made of requests of `sizes[i]` videos each.

    Request i's videos get `video_generators(seeds[i], range(sizes[i]))`. `device` is
    accepted for callers that pass the model's: the generators are CPU generators on any
    device, so that a seed gives the same numbers on a GPU as on the CPU.
    """
    if len(sizes) != len(seeds):
        raise ValueError("one seed per request is needed")
    rows: list[torch.Generator] = []
    for size, seed in zip(sizes, seeds, strict=True):
        rows.extend(video_generators(int(seed), range(int(size))))
    return rows
