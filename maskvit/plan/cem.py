"""The cross-entropy method over action sequences (paper §A.2, Table 5), as pure functions.

Nothing here knows about images or models: `cem_optimize` takes any batched cost function
`cost_fn(actions (M, H, A)) -> costs (M,)` so the same optimiser serves the video model,
the oracle (a simulator copy) and the quadratic used in the tests.

Sampling follows the paper: per time step i, u_i ~ N(0, diag(std_i^2)) i.i.d. per sequence,
then the time-correlated noise n_i = (1 - β)·u_i + β·n_{i-1}, with n_0 = 0 before the first
step, added to the mean μ_i. What this recursion really gives (constant std σ):

    Var(n_i)            = σ² (1-β)² S_i,         S_i = Σ_{k<i} β^{2k} = (1 - β^{2i}) / (1 - β²)
    Corr(n_{i-1}, n_i)  = β · sqrt(S_{i-1} / S_i)

So the lag-1 correlation is β only in the limit of long sequences (0.287 between the first
two steps for β = 0.3, then 0.2997, 0.29997, ...), and the marginal std is *smaller* than σ:
(1-β)·sqrt(S_i) → sqrt((1-β)/(1+β)) ≈ 0.73 σ for β = 0.3. We keep the paper's recursion
unchanged (the refit from the elites sets the next σ anyway) and state these facts in
`lag1_correlation` / `noise_std_factor`, which the tests check against samples.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from maskvit.config import PLAN_RANGES

CostFn = Callable[[np.ndarray], np.ndarray]


def lag1_correlation(beta: float, step: int) -> float:
    """Exact Corr(n_{step-1}, n_step) of the recursion with n_0 = 0 (steps counted from 1).

    Needs step >= 2 (the first pair is (n_1, n_2)). Tends to β as `step` grows.
    """
    if step < 2:
        raise ValueError("lag-1 correlation needs step >= 2")
    return beta * math.sqrt(_geometric_sum(beta, step - 1) / _geometric_sum(beta, step))


def noise_std_factor(beta: float, step: int) -> float:
    """Std of n_step divided by σ (the std of u): (1 - β)·sqrt(S_step); ≤ 1 for 0 ≤ β < 1."""
    return (1.0 - beta) * math.sqrt(_geometric_sum(beta, step))


def _geometric_sum(beta: float, n: int) -> float:
    # S_n = Σ_{k=0}^{n-1} β^{2k}
    return float(sum(beta ** (2 * k) for k in range(n)))


def correlated_noise(
    std: np.ndarray, num: int, beta: float, rng: np.random.Generator, full_first_step: bool = False
) -> np.ndarray:
    """Noise (num, H, A) with per-step std `std` (H, A), correlated across time by β.

    `full_first_step`: the first step is u_1 itself instead of (1 − β)·u_1 (VP2's MPPI
    sampler; the paper's recursion starts from n_0 = 0).
    """
    horizon, dim = std.shape
    u = rng.standard_normal((num, horizon, dim)) * std[None]  # u_i ~ N(0, Σ_i)
    noise = np.empty_like(u)
    previous = np.zeros((num, dim))  # n_0 = 0
    for i in range(horizon):
        scale = 1.0 if (full_first_step and i == 0) else 1.0 - beta
        previous = scale * u[:, i] + beta * previous
        noise[:, i] = previous
    return noise


def sample_actions(
    mean: np.ndarray,
    std: np.ndarray,
    num: int,
    beta: float,
    rng: np.random.Generator,
    low: np.ndarray | None = None,
    high: np.ndarray | None = None,
    round_gripper: bool = False,
) -> np.ndarray:
    """Draw `num` action sequences (num, H, A) around `mean` (H, A).

    Sequences are clipped to [low, high] (what the robot would execute anyway), and with
    `round_gripper` the last action dimension is rounded to -1 or +1, whichever is closer.
    """
    actions = mean[None] + correlated_noise(std, num, beta, rng)
    if low is not None or high is not None:
        actions = np.clip(actions, low, high)
    if round_gripper:
        actions[..., -1] = np.where(actions[..., -1] >= 0.0, 1.0, -1.0)
    return actions


def num_elites(samples: int, fraction: float) -> int:
    """Elites kept per iteration: ceil(fraction·M), at least 2 so a variance can be refit."""
    return min(samples, max(2, math.ceil(fraction * samples - 1e-9)))


def refit(elites: np.ndarray, min_std: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-step mean and std (H, A) of the elites: the next iteration's sampling distribution."""
    return elites.mean(axis=0), np.maximum(elites.std(axis=0), min_std)


def step_weights(horizon: int, last_step_weight: float) -> np.ndarray:
    """Cost weights c_i (H,): 1 for every step but the last, `last_step_weight` for the last."""
    weights = np.ones(horizon)
    weights[-1] = last_step_weight
    return weights


@dataclass
class CEMResult:
    """Outcome of one CEM optimisation."""

    actions: np.ndarray  # (H, A) best sequence of the final iteration
    cost: float  # its cost
    index: int  # its row in the final iteration's samples (to fetch side outputs)
    mean: np.ndarray  # (H, A) final sampling mean (after the last refit)
    std: np.ndarray  # (H, A) final sampling std
    best_costs: list[float] = field(default_factory=list)  # lowest cost per iteration
    elite_costs: list[float] = field(default_factory=list)  # mean elite cost per iteration


def cem_optimize(
    cost_fn: CostFn,
    init_mean: np.ndarray,
    init_std: np.ndarray,
    *,
    samples: int,
    iterations: int,
    elite_fraction: float,
    beta: float,
    rng: np.random.Generator,
    low: np.ndarray | None = None,
    high: np.ndarray | None = None,
    round_gripper: bool = False,
) -> CEMResult:
    """Minimise `cost_fn` over action sequences with K iterations of sample → score → refit.

    `init_mean`, `init_std` are (H, A). Returns the best sequence of the *last* iteration
    (paper: "after K iterations, we execute the best scoring action sequence"), so with a
    stochastic model the choice is made among samples from the most refined distribution.
    """
    PLAN_RANGES["samples"].check("samples", samples)
    PLAN_RANGES["iterations"].check("iterations", iterations)
    mean, std = np.asarray(init_mean, float), np.asarray(init_std, float)
    count = num_elites(samples, elite_fraction)
    result = None
    best_costs, elite_costs = [], []
    for _ in range(iterations):
        actions = sample_actions(mean, std, samples, beta, rng, low, high, round_gripper)
        costs = np.asarray(cost_fn(actions), dtype=float)
        if costs.shape != (samples,):
            raise ValueError(f"cost_fn returned shape {costs.shape}, expected ({samples},)")
        order = np.argsort(costs, kind="stable")
        elites = actions[order[:count]]
        mean, std = refit(elites)
        best = int(order[0])
        best_costs.append(float(costs[best]))
        elite_costs.append(float(costs[order[:count]].mean()))
        result = (actions[best].copy(), float(costs[best]), best)
    assert result is not None
    return CEMResult(result[0], result[1], result[2], mean, std, best_costs, elite_costs)
