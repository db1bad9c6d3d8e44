"""Fréchet Video Distance (Unterthiner et al. 2018), following the reference protocol.

Frames are resized to 224×224 with TF1's `resize_bilinear` (align_corners=False, no
half-pixel centres: source = target · in/out), scaled to [-1, 1], and embedded by the
Kinetics-400 I3D into its 400 logits. FVD is the Fréchet distance between Gaussians fit
to the two feature sets, computed in float64 with the unbiased (n − 1) covariance as
TF-GAN does. Lower is better.
"""

from __future__ import annotations

import numpy as np
import torch

from maskvit.errors import UserError
from maskvit.metrics.i3d import I3D
from maskvit.metrics.pixel import ArrayLike, as_tensor

FVD_RESOLUTION = 224


def tf_bilinear_matrix(in_size: int, out_size: int) -> torch.Tensor:
    """(out, in) interpolation weights of TF1 `resize_bilinear` along one axis."""
    source = torch.arange(out_size, dtype=torch.float64) * (in_size / out_size)
    lower = source.floor().long().clamp(max=in_size - 1)
    upper = (lower + 1).clamp(max=in_size - 1)
    frac = source - lower
    matrix = torch.zeros(out_size, in_size, dtype=torch.float64)
    rows = torch.arange(out_size)
    matrix[rows, lower] += 1 - frac
    matrix[rows, upper] += frac
    return matrix


def preprocess_for_i3d(videos: torch.Tensor, resolution: int = FVD_RESOLUTION) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) -> float32 (B, T, res, res, 3) in [-1, 1], resized as TF1 does."""
    _, _, height, width, _ = videos.shape
    rows = tf_bilinear_matrix(height, resolution).float().to(videos.device)
    cols = tf_bilinear_matrix(width, resolution).float().to(videos.device)
    resized = torch.einsum("yh,bthwc,xw->btyxc", rows, videos.float(), cols)
    return resized * (2.0 / 255.0) - 1.0


@torch.no_grad()
def i3d_features(
    model: I3D, videos: ArrayLike, batch_size: int = 16, resolution: int = FVD_RESOLUTION
) -> np.ndarray:
    """I3D logits of uint8 videos (B, T, H, W, 3) -> float64 (B, 400)."""
    tv = as_tensor(videos)
    if tv.ndim != 5 or tv.shape[-1] != 3 or tv.dtype != torch.uint8:
        raise UserError(f"FVD needs uint8 videos (B, T, H, W, 3), got {tv.dtype} {tuple(tv.shape)}")
    device = next(model.parameters()).device
    out = []
    for start in range(0, tv.shape[0], batch_size):
        batch = preprocess_for_i3d(tv[start : start + batch_size].to(device), resolution)
        out.append(model(batch).double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 400))


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of (n, d) features, float64."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise UserError(
            f"FVD needs at least 2 videos per set, got features of shape {features.shape}"
        )
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(
    mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray
) -> float:
    """‖μa − μb‖² + tr(Σa) + tr(Σb) − 2 tr((Σa Σb)^½), in float64.

    tr((Σa Σb)^½) = Σ √λ over the eigenvalues λ of the symmetric PSD matrix
    Σa^½ Σb Σa^½ (same spectrum as Σa Σb), which is stable where a general sqrtm is not.
    """
    mu_a, mu_b = np.asarray(mu_a, np.float64), np.asarray(mu_b, np.float64)
    cov_a, cov_b = np.asarray(cov_a, np.float64), np.asarray(cov_b, np.float64)
    sqrt_a = _psd_sqrt(cov_a)
    middle = sqrt_a @ cov_b @ sqrt_a
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = np.sqrt(np.clip(eigenvalues, 0.0, None)).sum()
    distance = np.square(mu_a - mu_b).sum() + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_sqrt
    return float(max(distance, 0.0))


def fvd_from_features(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """FVD between two sets of I3D features (n, 400) and (m, 400)."""
    return frechet_distance(*gaussian_stats(features_a), *gaussian_stats(features_b))


def fvd(model: I3D, videos_a: ArrayLike, videos_b: ArrayLike, batch_size: int = 16) -> float:
    """FVD between two sets of uint8 videos (n, T, H, W, 3) and (m, T, H, W, 3)."""
    return fvd_from_features(
        i3d_features(model, videos_a, batch_size), i3d_features(model, videos_b, batch_size)
    )


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    eigenvalues, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ vectors.T
