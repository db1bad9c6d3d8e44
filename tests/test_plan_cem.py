"""The pure CEM parts: correlated sampling, elites, refit, and optimisation of a known cost."""

import numpy as np
import pytest

from maskvit.plan.cem import (
    cem_optimize,
    correlated_noise,
    lag1_correlation,
    noise_std_factor,
    num_elites,
    refit,
    sample_actions,
    step_weights,
)


def test_lag1_correlation_formula_tends_to_beta_from_below():
    # First pair: β / sqrt(1 + β²); it is β only in the long-sequence limit.
    assert lag1_correlation(0.3, 2) == pytest.approx(0.3 / np.sqrt(1.09))
    values = [lag1_correlation(0.3, i) for i in range(2, 11)]
    assert all(a < b for a, b in zip(values, values[1:], strict=False))
    assert values[-1] == pytest.approx(0.3, abs=1e-6)
    assert noise_std_factor(0.3, 1) == pytest.approx(0.7)
    assert noise_std_factor(0.3, 50) == pytest.approx(np.sqrt(0.7 / 1.3))


def test_sampled_noise_has_the_derived_lag1_correlation_and_std():
    beta, num = 0.3, 200_000
    noise = correlated_noise(np.ones((4, 1)), num, beta, np.random.default_rng(0))[..., 0]
    for step in range(2, 5):  # pairs (n_1, n_2), (n_2, n_3), (n_3, n_4)
        measured = np.corrcoef(noise[:, step - 2], noise[:, step - 1])[0, 1]
        assert measured == pytest.approx(lag1_correlation(beta, step), abs=0.006)
    # The first pair's correlation differs measurably from β itself (0.287 vs 0.3)...
    first = np.corrcoef(noise[:, 0], noise[:, 1])[0, 1]
    assert abs(first - 0.3) > 0.006
    # ...and the marginal std is shrunk by (1-β)·sqrt(S_i), not equal to σ.
    for step in range(1, 5):
        assert noise[:, step - 1].std() == pytest.approx(noise_std_factor(beta, step), rel=0.01)


def test_zero_beta_gives_independent_steps_with_full_std():
    noise = correlated_noise(np.full((3, 2), 2.0), 100_000, 0.0, np.random.default_rng(1))
    assert abs(np.corrcoef(noise[:, 0, 0], noise[:, 1, 0])[0, 1]) < 0.02
    assert noise.std() == pytest.approx(2.0, rel=0.02)


def test_per_step_std_scales_the_noise_of_that_step():
    std = np.array([[1.0], [0.0], [0.0]])
    noise = correlated_noise(std, 10_000, 0.5, np.random.default_rng(2))[..., 0]
    # Step 2 and 3 draw no new noise: they only carry β times the previous step.
    np.testing.assert_allclose(noise[:, 1], 0.5 * noise[:, 0])
    np.testing.assert_allclose(noise[:, 2], 0.25 * noise[:, 0])


def test_sampled_actions_respect_bounds_and_round_the_gripper():
    rng = np.random.default_rng(3)
    mean, std = np.zeros((5, 3)), np.full((5, 3), 4.0)
    low, high = np.array([-1.0, -0.5, -10]), np.array([1.0, 0.5, 10])
    actions = sample_actions(mean, std, 500, 0.3, rng, low, high, round_gripper=True)
    assert actions.shape == (500, 5, 3)
    assert actions[..., 0].min() >= -1 and actions[..., 0].max() <= 1
    assert actions[..., 1].min() >= -0.5 and actions[..., 1].max() <= 0.5
    assert set(np.unique(actions[..., 2])) == {-1.0, 1.0}


def test_elites_are_the_lowest_cost_sequences_and_refit_matches_them():
    # The optimiser's own path: one iteration, a cost that is known per sample.
    seen = {}

    def cost_fn(actions):
        seen["actions"] = actions.copy()
        return np.abs(actions).sum(axis=(1, 2))

    result = cem_optimize(cost_fn, np.zeros((2, 1)), np.ones((2, 1)), samples=10,
                          iterations=1, elite_fraction=0.3, beta=0.0,
                          rng=np.random.default_rng(0))
    actions, costs = seen["actions"], np.abs(seen["actions"]).sum(axis=(1, 2))
    elites = actions[np.argsort(costs)[:3]]
    np.testing.assert_allclose(result.mean, elites.mean(axis=0))
    np.testing.assert_allclose(result.std, elites.std(axis=0))
    assert result.index == int(np.argmin(costs)) and result.cost == pytest.approx(costs.min())
    assert result.elite_costs[0] == pytest.approx(np.sort(costs)[:3].mean())
    mean, std = refit(np.array([[[3.0]], [[1.0]], [[7.0]]]))
    assert mean[0, 0] == pytest.approx(11 / 3)
    assert std[0, 0] == pytest.approx(np.std([3, 1, 7]))
    assert num_elites(256, 0.05) == 13
    assert num_elites(10, 0.05) == 2  # at least two, so a variance exists


def test_step_weights_weigh_the_last_step_ten_times():
    np.testing.assert_array_equal(step_weights(4, 10.0), [1, 1, 1, 10])


def _quadratic(target, weights):
    return lambda a: (weights[None, :, None] * (a - target[None]) ** 2).sum(axis=(1, 2))


def test_cem_finds_the_minimum_of_a_quadratic_in_low_dimension():
    rng = np.random.default_rng(4)
    target = np.array([[0.03], [-0.04]])
    cost = _quadratic(target, np.ones(2))
    result = cem_optimize(cost, np.zeros((2, 1)), np.full((2, 1), 0.05), samples=256,
                          iterations=6, elite_fraction=0.05, beta=0.3, rng=rng)
    np.testing.assert_allclose(result.actions, target, atol=0.003)
    np.testing.assert_allclose(result.mean, target, atol=0.003)
    assert result.cost == pytest.approx(cost(result.actions[None])[0])


def test_cem_with_paper_settings_cuts_a_horizon_10_quadratic_cost_tenfold():
    rng = np.random.default_rng(5)
    target = rng.uniform(-0.05, 0.05, (1, 2)) * np.ones((10, 2))  # a straight push
    cost = _quadratic(target, step_weights(10, 10.0))
    start = cost(np.zeros((1, 10, 2)))[0]
    result = cem_optimize(cost, np.zeros((10, 2)), np.full((10, 2), 0.05), samples=256,
                          iterations=3, elite_fraction=0.05, beta=0.3, rng=rng)
    assert len(result.best_costs) == 3
    assert result.best_costs[0] > result.best_costs[1] > result.best_costs[2]
    assert result.cost < 0.1 * start
    assert np.abs(result.mean - target).max() < np.abs(target).max()
