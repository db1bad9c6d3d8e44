"""PSNR and SSIM against straightforward numpy references (Wang et al. 2004)."""

import numpy as np
import pytest
import torch

from maskvit.errors import UserError
from maskvit.metrics import psnr, ssim


def reference_psnr(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(data_range**2 / mse)


def reference_ssim(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    """Direct formula: 11×11 Gaussian (σ 1.5) weights over every valid window, per channel."""
    coords = np.arange(11) - 5.0
    g = np.exp(-(coords**2) / (2 * 1.5**2))
    window = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    values = []
    for c in range(a.shape[-1]):
        pa = np.lib.stride_tricks.sliding_window_view(a[..., c].astype(np.float64), (11, 11))
        pb = np.lib.stride_tricks.sliding_window_view(b[..., c].astype(np.float64), (11, 11))
        mu_a = np.einsum("ijkl,kl->ij", pa, window)
        mu_b = np.einsum("ijkl,kl->ij", pb, window)
        var_a = np.einsum("ijkl,kl->ij", (pa - mu_a[..., None, None]) ** 2, window)
        var_b = np.einsum("ijkl,kl->ij", (pb - mu_b[..., None, None]) ** 2, window)
        cov = np.einsum(
            "ijkl,kl->ij", (pa - mu_a[..., None, None]) * (pb - mu_b[..., None, None]), window
        )
        ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
            (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
        )
        values.append(ssim_map.mean())
    return float(np.mean(values))


def image_pairs():
    rng = np.random.default_rng(0)
    noise_a = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    noise_b = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:32, 0:40]
    gradient = np.stack([xx * 6, yy * 7, (xx + yy) * 3], axis=-1).clip(0, 255).astype(np.uint8)
    checker = (((yy // 4 + xx // 4) % 2) * 255).astype(np.uint8)[..., None].repeat(3, -1)
    shifted = np.roll(gradient, 3, axis=1)
    noisy = np.clip(gradient.astype(int) + rng.integers(-20, 21, gradient.shape), 0, 255).astype(
        np.uint8
    )
    return [(noise_a, noise_b), (gradient, shifted), (gradient, noisy), (checker, gradient)]


@pytest.mark.parametrize("index", range(4))
def test_psnr_and_ssim_match_numpy_reference_on_uint8(index):
    a, b = image_pairs()[index]
    assert abs(psnr(a, b).item() - reference_psnr(a, b, 255.0)) < 1e-4
    assert abs(ssim(a, b).item() - reference_ssim(a, b, 255.0)) < 1e-4


def test_float_frames_in_unit_range_give_the_same_scores_as_uint8():
    a, b = image_pairs()[2]
    fa, fb = a / 255.0, b / 255.0
    assert abs(psnr(fa, fb).item() - reference_psnr(fa, fb, 1.0)) < 1e-4
    assert abs(ssim(fa, fb).item() - reference_ssim(fa, fb, 1.0)) < 1e-4
    assert abs(ssim(fa, fb).item() - ssim(a, b).item()) < 1e-9
    assert abs(psnr(fa, fb).item() - psnr(a, b).item()) < 1e-9


def test_scores_are_per_image_over_leading_axes():
    pairs = image_pairs()
    a = np.stack([p[0] for p in pairs]).reshape(2, 2, 32, 40, 3)
    b = np.stack([p[1] for p in pairs]).reshape(2, 2, 32, 40, 3)
    scores = ssim(a, b)
    assert scores.shape == (2, 2)
    assert abs(scores[1, 0].item() - reference_ssim(pairs[2][0], pairs[2][1], 255.0)) < 1e-4
    assert psnr(torch.from_numpy(a), torch.from_numpy(b)).shape == (2, 2)


def test_identical_images_score_perfectly():
    a = image_pairs()[1][0]
    assert psnr(a, a).item() == float("inf")
    assert ssim(a, a).item() == pytest.approx(1.0, abs=1e-12)


def test_mismatched_or_too_small_images_are_user_errors():
    a = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(UserError, match="same shape"):
        psnr(a, np.zeros((16, 17, 3), np.uint8))
    with pytest.raises(UserError, match="at least 11"):
        ssim(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8))
