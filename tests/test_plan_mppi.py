"""MPPI (VP2's default optimizer): its noise, its weights, its warm start, and that repeated
updates find the optimum of a known cost."""

import numpy as np
import pytest

from maskvit.config import PlanConfig
from maskvit.errors import UserError
from maskvit.plan.cem import correlated_noise
from maskvit.plan.mppi import mppi_optimize, mppi_weights, shift_plan
from maskvit.plan.planner import MPPIPlanner, make_optimizer


def test_vp2s_noise_keeps_the_full_std_at_the_first_step_and_correlates_the_rest():
    beta, sigma = 0.5, 0.4
    noise = correlated_noise(np.full((3, 1), sigma), 200_000, beta, np.random.default_rng(0),
                             full_first_step=True)
    first, second = noise[:, 0, 0], noise[:, 1, 0]
    assert first.std() == pytest.approx(sigma, rel=0.02)
    # n_2 = β n_1 + (1 − β) u_2: Var = (β² + (1 − β)²) σ², Corr = β σ / sqrt(that)
    expected_std = sigma * np.sqrt(beta**2 + (1 - beta) ** 2)
    assert second.std() == pytest.approx(expected_std, rel=0.02)
    assert np.corrcoef(first, second)[0, 1] == pytest.approx(beta * sigma / expected_std, abs=0.01)


def test_weights_favour_low_costs_and_gamma_sets_how_much():
    costs = np.array([3.0, 1.0, 2.0])
    weights = mppi_weights(costs, 1.0)
    assert weights.sum() == pytest.approx(1.0) and np.argmax(weights) == 1
    assert list(np.argsort(-weights)) == [1, 2, 0]
    np.testing.assert_allclose(mppi_weights(costs, 1e-9), np.full(3, 1 / 3), atol=1e-6)
    assert mppi_weights(costs, 1e3)[1] == pytest.approx(1.0)


def test_repeated_updates_reach_the_optimum_of_a_quadratic():
    target = np.array([[0.3, -0.5]] * 4)
    low, high = -np.ones(2), np.ones(2)

    def cost(actions):
        return ((actions - target[None]) ** 2).sum(axis=(1, 2)) * 100.0

    rng = np.random.default_rng(0)
    mean = np.zeros((4, 2))
    for _ in range(25):
        result = mppi_optimize(cost, mean, np.full((4, 2), 0.3), samples=64, gamma=0.5, beta=0.5,
                               rng=rng, low=low, high=high)
        mean = result.mean
    assert np.abs(mean - target).max() < 0.08  # starts 0.5 away
    assert result.costs[result.best] == result.costs.min()
    assert np.all(result.samples >= low) and np.all(result.samples <= high)


def test_the_next_replan_starts_from_the_rest_of_the_plan():
    mean = np.arange(10.0).reshape(5, 2)
    np.testing.assert_array_equal(shift_plan(mean, 1), [[2, 3], [4, 5], [6, 7], [8, 9], [8, 9]])
    np.testing.assert_array_equal(shift_plan(mean, 5), np.tile([[8.0, 9.0]], (5, 1)))


def test_the_planner_warm_starts_from_its_last_mean_and_forgets_it_on_reset():
    config = PlanConfig(optimizer="mppi", horizon=3, samples=16, iterations=1, replan_every=1,
                        init_mean=(0.0, 0.0), init_std=(0.5, 0.5), noise_correlation=0.5, chunk_size=5)
    planner = make_optimizer(config, -np.ones(2), np.ones(2))
    assert isinstance(planner, MPPIPlanner)
    calls = []

    def evaluate(actions):
        calls.append(len(actions))
        return ((actions - 0.5) ** 2).sum(axis=(1, 2)), None

    plan = planner.optimise(evaluate, np.random.default_rng(0))
    assert calls == [5, 5, 5, 1]  # M = 16 in chunks of 5
    assert plan.actions.shape == (3, 2) and plan.predicted is None
    np.testing.assert_array_equal(planner.initial_mean(), shift_plan(plan.actions, 1))
    planner.reset()
    np.testing.assert_array_equal(planner.initial_mean(), np.zeros((3, 2)))


def test_an_unknown_optimizer_or_a_bad_gamma_is_one_line():
    from maskvit.config import load_preset

    with pytest.raises(UserError, match="plan.optimizer"):
        load_preset("push64", ["plan.optimizer=adam"])
    with pytest.raises(UserError, match="plan.mppi_gamma"):
        load_preset("push64", ["plan.mppi_gamma=0"])


def test_chunk_size_zero_scores_every_sample_in_one_call_and_plans_the_same():
    """plan.chunk_size 0 (the default) hands the predictor all M samples at once; the plan
    equals the chunked one's, since each sequence's cost does not depend on its chunk."""
    from maskvit.plan.planner import _chunked

    calls = []

    def score(actions):
        calls.append(len(actions))
        return (actions ** 2).sum(axis=(1, 2)), None

    actions = np.random.default_rng(0).normal(size=(10, 3, 2))
    whole = _chunked(score, 0, {})(actions)
    assert calls == [10]
    chunked = _chunked(score, 4, {})(actions)
    assert calls[1:] == [4, 4, 2] and np.array_equal(whole, chunked)
