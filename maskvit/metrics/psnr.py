"""Peak signal-to-noise ratio, per image (paper §4.1: best-of-N per video, higher is better)."""

from __future__ import annotations

import torch

from maskvit.metrics._images import ArrayLike, as_float64_pair


def psnr(x: ArrayLike, y: ArrayLike, data_range: float | None = None) -> torch.Tensor:
    """PSNR in dB of each image pair: (..., H, W, C) -> (...), float64.

    10·log10(L² / MSE) with the MSE over pixels and channels; L = 255 for uint8 input and
    1.0 for float input unless `data_range` says otherwise. Identical images give +inf.
    """
    tx, ty, data_range = as_float64_pair(x, y, data_range)
    mse = (tx - ty).square().mean(dim=(-3, -2, -1))
    return 10.0 * torch.log10(data_range**2 / mse)
