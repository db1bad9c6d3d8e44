"""Deterministic train/val/test assignment from an episode id.

The split of an episode depends only on its id (a CRC32 hash), never on the order in
which episodes were written, so a resumed or parallel conversion gives the same split.
"""

from __future__ import annotations

import zlib

SPLITS = ("train", "val", "test")


def split_for(episode_id: str, fractions: tuple[float, float, float] = (0.9, 0.05, 0.05)) -> str:
    """The split of `episode_id` for (train, val, test) fractions summing to 1."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    u = zlib.crc32(episode_id.encode()) / 2**32  # uniform in [0, 1)
    if u < fractions[0]:
        return "train"
    if u < fractions[0] + fractions[1]:
        return "val"
    return "test"
