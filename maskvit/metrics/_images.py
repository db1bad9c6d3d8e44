"""Shared input handling for the frame metrics: arrays or tensors, uint8 or float."""

from __future__ import annotations

import numpy as np
import torch

from maskvit.errors import UserError

ArrayLike = np.ndarray | torch.Tensor


def as_float64_pair(
    x: ArrayLike, y: ArrayLike, data_range: float | None
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Two (..., H, W, C) images as float64 tensors, and their data range.

    `data_range=None` means 255 for uint8 inputs and 1.0 for float inputs.
    """
    tx, ty = as_tensor(x), as_tensor(y)
    if tx.shape != ty.shape:
        raise UserError(
            f"images must have the same shape, got {tuple(tx.shape)} and {tuple(ty.shape)}"
        )
    if tx.ndim < 3:
        raise UserError(f"images must be (..., H, W, C), got shape {tuple(tx.shape)}")
    if data_range is None:
        data_range = 255.0 if tx.dtype == torch.uint8 else 1.0
    return tx.to(torch.float64), ty.to(torch.float64), float(data_range)


def as_tensor(a: ArrayLike) -> torch.Tensor:
    """A numpy array or tensor as a tensor (sharing memory where possible)."""
    return a if isinstance(a, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(a))
