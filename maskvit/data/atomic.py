"""Small helpers for writes that are never seen half-done (temp file + `os.replace`)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from maskvit.atomic import atomic_write_json


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write JSON to `path` so a reader sees either the old file or the whole new one."""
    atomic_write_json(path, data)


def write_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Save one array as `.npy` (callers make it visible atomically by renaming its folder)."""
    with open(path, "wb") as f:
        np.save(f, np.ascontiguousarray(array), allow_pickle=False)
