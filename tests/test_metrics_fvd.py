"""Fréchet distance, TF-style preprocessing and the I3D network (random weights)."""

import numpy as np
import pytest
import torch

from maskvit.errors import UserError
from maskvit.metrics import I3D, frechet_distance, fvd_from_features, i3d_features
from maskvit.metrics.fvd import gaussian_stats, preprocess_for_i3d, tf_bilinear_matrix
from maskvit.metrics.i3d import max_pool_same, same_padding


def reference_frechet(mu1, s1, mu2, s2) -> float:
    """Textbook formula; tr sqrt(S1 S2) from the eigenvalues of the (non-symmetric) product."""
    eigenvalues = np.linalg.eigvals(s1.astype(np.float64) @ s2.astype(np.float64))
    trace_sqrt = np.sqrt(np.clip(eigenvalues.real, 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt)


def random_features(seed: int, n: int = 50, d: int = 12, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(d, d))
    return rng.normal(size=(n, d)) @ mixing + shift


def test_frechet_distance_matches_float64_reference():
    a, b = random_features(0), random_features(1, shift=0.7)
    mu_a, cov_a = a.mean(0), np.cov(a, rowvar=False)
    mu_b, cov_b = b.mean(0), np.cov(b, rowvar=False)
    ours = frechet_distance(mu_a, cov_a, mu_b, cov_b)
    assert ours == pytest.approx(reference_frechet(mu_a, cov_a, mu_b, cov_b), rel=1e-9)
    assert ours > 1.0


def test_fvd_of_a_set_against_itself_is_zero_and_fvd_is_symmetric():
    a, b = random_features(2), random_features(3, n=70, shift=-0.3)
    assert abs(fvd_from_features(a, a)) < 1e-6
    assert fvd_from_features(a, b) == pytest.approx(fvd_from_features(b, a), rel=1e-9)


def test_fvd_uses_unbiased_covariance_and_needs_two_videos():
    a = random_features(4, n=5)
    _, cov = gaussian_stats(a)
    np.testing.assert_allclose(cov, np.cov(a, rowvar=False, ddof=1))
    with pytest.raises(UserError, match="at least 2 videos"):
        fvd_from_features(a[:1], a)


def test_fvd_between_constant_sets_is_squared_mean_distance():
    a = np.zeros((4, 3))
    b = np.ones((6, 3)) * 2
    assert fvd_from_features(a, b) == pytest.approx(12.0)


def test_tf_bilinear_resize_uses_top_left_aligned_sampling():
    matrix = tf_bilinear_matrix(4, 8)  # source = target * 0.5, clamped at the last pixel
    expected = np.zeros((8, 4))
    for i in range(8):
        src = i * 0.5
        lo = min(int(np.floor(src)), 3)
        hi = min(lo + 1, 3)
        expected[i, lo] += 1 - (src - lo)
        expected[i, hi] += src - lo
    np.testing.assert_allclose(matrix.numpy(), expected)
    np.testing.assert_allclose(matrix.sum(1).numpy(), 1.0)


def test_preprocessing_resizes_to_224_and_scales_to_minus_one_one():
    videos = torch.zeros(1, 2, 16, 16, 3, dtype=torch.uint8)
    videos[..., 0] = 255
    out = preprocess_for_i3d(videos)
    assert out.shape == (1, 2, 224, 224, 3)
    assert torch.allclose(out[..., 0], torch.ones(())) and torch.allclose(
        out[..., 1], -torch.ones(())
    )


def test_tf_same_padding_puts_the_extra_cell_after():
    assert same_padding(224, 7, 2) == (2, 3)
    assert same_padding(15, 7, 2) == (3, 3)
    assert same_padding(8, 1, 1) == (0, 0)
    x = torch.arange(4.0).view(1, 1, 1, 1, 4) - 10  # all negative: -inf padding must never win
    out = max_pool_same(x, (1, 1, 3), (1, 1, 2))
    assert out.flatten().tolist() == [-8.0, -7.0]  # windows (x0..x2), (x2, x3, pad)


def test_i3d_maps_videos_to_400_logits():
    torch.manual_seed(0)
    model = I3D().eval()
    videos = np.random.default_rng(0).integers(0, 256, (2, 4, 24, 24, 3), dtype=np.uint8)
    features = i3d_features(model, videos, resolution=32)
    assert features.shape == (2, 400) and features.dtype == np.float64
    assert np.all(np.isfinite(features)) and not np.allclose(features[0], features[1])
