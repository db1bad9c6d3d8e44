"""The pixel metrics, PSNR and SSIM, and the input handling every frame metric shares.

- `psnr`: peak signal-to-noise ratio, per image (paper §4.1: best-of-N per video, higher
  is better).
- `ssim`: structural similarity (Wang et al. 2004), per image, with the convention of
  `tf.image.ssim`, which the video-prediction literature the paper compares with (SVG,
  FitVid) uses (see `ssim`).
- `as_float64_pair` / `as_tensor`: arrays or tensors, uint8 or float, as the metrics take
  them (LPIPS and FVD use them too).
"""

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


def psnr(x: ArrayLike, y: ArrayLike, data_range: float | None = None) -> torch.Tensor:
    """PSNR in dB of each image pair: (..., H, W, C) -> (...), float64.

    10·log10(L² / MSE) with the MSE over pixels and channels; L = 255 for uint8 input and
    1.0 for float input unless `data_range` says otherwise. Identical images give +inf.
    """
    tx, ty, data_range = as_float64_pair(x, y, data_range)
    mse = (tx - ty).square().mean(dim=(-3, -2, -1))
    return 10.0 * torch.log10(data_range**2 / mse)


# ---------------------------------------------------------------- SSIM
# Structural similarity (Wang et al. 2004), per image.
#
# The convention of `tf.image.ssim`, which the video-prediction literature the paper
# compares with (SVG, FitVid) uses: an 11×11 Gaussian window with σ = 1.5, K1 = 0.01,
# K2 = 0.03, statistics over 'valid' windows only (no padding), computed per colour channel
# and averaged over channels and positions. SSIM does not depend on the pixel scale as long
# as `data_range` matches it: frames in [0, 255] with L = 255 and frames in [0, 1] with
# L = 1 give the same value. The paper's Table 1 prints SSIM × 100 (e.g. 80.5 = 0.805).

WINDOW_SIZE = 11
WINDOW_SIGMA = 1.5
K1, K2 = 0.01, 0.03


def gaussian_window(size: int = WINDOW_SIZE, sigma: float = WINDOW_SIGMA) -> torch.Tensor:
    """Normalised 1-D Gaussian of `size` taps, float64."""
    offsets = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    taps = torch.exp(-(offsets**2) / (2 * sigma**2))
    return taps / taps.sum()


def valid_filter_matrix(size: int) -> torch.Tensor:
    """(size − 10, size) matrix whose rows hold the Gaussian taps: 'valid' filtering."""
    taps = gaussian_window()
    out = size - WINDOW_SIZE + 1
    matrix = torch.zeros(out, size, dtype=torch.float64)
    for i in range(out):
        matrix[i, i : i + WINDOW_SIZE] = taps
    return matrix


def ssim(x: ArrayLike, y: ArrayLike, data_range: float | None = None) -> torch.Tensor:
    """SSIM of each image pair: (..., H, W, C) -> (...), float64; 1 for identical images."""
    tx, ty, data_range = as_float64_pair(x, y, data_range)
    *lead, height, width, channels = tx.shape
    if height < WINDOW_SIZE or width < WINDOW_SIZE:
        raise UserError(
            f"SSIM needs frames of at least {WINDOW_SIZE}×{WINDOW_SIZE}, got {height}×{width}"
        )
    # (..., H, W, C) -> (N, C, H, W)
    tx = tx.reshape(-1, height, width, channels).permute(0, 3, 1, 2)
    ty = ty.reshape(-1, height, width, channels).permute(0, 3, 1, 2)
    rows, cols = valid_filter_matrix(height), valid_filter_matrix(width)

    def blur(image: torch.Tensor) -> torch.Tensor:
        # Separable 'valid' Gaussian filter as two banded matmuls (fast in float64):
        # (N, C, H, W) -> (N, C, H-10, W-10)
        return rows @ image @ cols.T

    mu_x, mu_y = blur(tx), blur(ty)
    var_x = blur(tx * tx) - mu_x**2
    var_y = blur(ty * ty) - mu_y**2
    cov_xy = blur(tx * ty) - mu_x * mu_y
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )
    return ssim_map.mean(dim=(1, 2, 3)).reshape(lead)
