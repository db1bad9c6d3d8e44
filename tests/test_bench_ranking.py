"""The planning-ranking proxy's metrics mean what their names say."""

import numpy as np
import pytest

from maskvit.bench.ranking import average_pool, ranking_metrics, spearman


def test_a_perfect_ranking_has_rho_one_no_regret_and_full_elite_overlap():
    true = np.array([3.0, 1.0, 4.0, 1.5, 9.0, 2.6])
    m = ranking_metrics(true * 2 + 7, true, elites=2)  # any increasing map keeps the order
    assert m == {"rho": pytest.approx(1.0), "regret": 0.0, "elite_overlap": 1.0}


def test_a_reversed_ranking_picks_the_worst_sequence():
    true = np.arange(9.0)
    m = ranking_metrics(-true, true, elites=3)
    assert m["rho"] == pytest.approx(-1.0)
    assert m["regret"] == pytest.approx(8.0 / 4.0)  # (worst − best) / (median − best)
    assert m["elite_overlap"] == 0.0


def test_regret_counts_how_far_the_pick_is_from_the_truths_best():
    true = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    model = np.array([5.0, 0.0, 6.0, 7.0, 1.0])  # picks the second best; elites {1, 4}
    m = ranking_metrics(model, true, elites=2)
    assert m["regret"] == pytest.approx(1.0 / 2.0)
    assert m["elite_overlap"] == pytest.approx(0.5)


def test_spearman_matches_the_rank_correlation_of_a_known_pair():
    # ranks (0,1,2,3,4) against (1,0,2,4,3): d² = 1+1+0+1+1 = 4, ρ = 1 − 6·4/(5·24) = 0.8
    assert spearman(np.array([1, 2, 3, 4, 5.0]), np.array([2, 1, 3, 5, 4.0])) == pytest.approx(0.8)


def test_average_pool_keeps_the_scale_and_means_blocks():
    frames = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    frames[:, :2, :2] = 200  # one 2×2 block bright
    pooled = average_pool(frames, 2)
    assert pooled.shape == (2, 2, 2, 3)
    assert pooled[0, 0, 0, 0] == 200.0 and pooled[0, 1, 1, 0] == 0.0
    frames[0, 0, 0] = 0
    assert average_pool(frames, 2)[0, 0, 0, 0] == pytest.approx(150.0)
    with pytest.raises(ValueError, match="divide"):
        average_pool(frames, 3)
