"""One random generator per request, spread over the request's rows of a shared batch.

`maskvit.model.decoding.generate` takes one generator for a whole batch, or one per
video. A server batches unrelated requests, and a request's frames must not depend on
its batch-mates, so each request gets its own generator, seeded with its seed, and
every row (video) of that request draws from that same generator object, in row order.
Decoding draws a row's uniforms one row after another, so a request of B videos consumes
its generator exactly as `Predictor.predict` does for those B videos alone (one
generator seeded with `seed`): same seed, same frames, whatever the batch
(tests/test_serve_api.py checks this against `Predictor.predict`).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import torch

MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes up to 64 bits; JSON-safe as an int


def fresh_seed() -> int:
    """A random seed for a request that gave none (reported back, so it can be replayed)."""
    return secrets.randbelow(2**53)  # exact in a JavaScript number too


def row_generators(sizes: Sequence[int], seeds: Sequence[int],
                   device: torch.device | str = "cpu") -> list[torch.Generator]:
    """Per-row generators for a batch made of requests of `sizes[i]` videos each.

    Request i's rows all share one generator seeded with `seeds[i]`.
    """
    if len(sizes) != len(seeds):
        raise ValueError("one seed per request is needed")
    rows: list[torch.Generator] = []
    for size, seed in zip(sizes, seeds, strict=True):
        generator = torch.Generator(device).manual_seed(int(seed))
        rows.extend([generator] * int(size))
    return rows
