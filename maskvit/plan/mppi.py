"""MPPI over action sequences: VP2's default optimizer, beside CEM (`plan.optimizer`).

One MPPI update per replan, as VP2 runs it (Williams et al.; VP2's RoboDesk protocol):

1. sample M sequences around the mean with temporally correlated noise,
   n_0 = ε_0 σ_0 and n_i = β n_{i−1} + (1 − β) ε_i σ_i, clipped to the action bounds;
2. score them (lower cost is better);
3. the new mean is the exp(−γ (cost − min cost))-weighted average of the samples.

The executed plan is that mean, not a sample; the next replan starts from the rest of it,
shifted by the steps executed and padded with its last action. VP2's defaults: M = 200
(800 for open_slide and open_drawer), γ = 0.05 on a cost of summed squared pixel errors in
[0, 1] units, β = 0.5, σ = [0.5, 0.5, 0.5, 0.1, 0.1] on RoboDesk's 5-D actions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from maskvit.plan.cem import correlated_noise


@dataclass
class MPPIResult:
    mean: np.ndarray  # (H, A) the updated mean: the plan to execute
    samples: np.ndarray  # (M, H, A) the sequences scored
    costs: np.ndarray  # (M,)
    weights: np.ndarray  # (M,) normalised
    best: int  # index of the lowest-cost sample


def mppi_weights(costs: np.ndarray, gamma: float) -> np.ndarray:
    """Normalised exp(−γ (cost − min)): the best sample has weight exp(0) before normalising."""
    scaled = np.exp(-gamma * (costs - costs.min()))
    return scaled / scaled.sum()


def mppi_optimize(cost_fn: Callable[[np.ndarray], np.ndarray], mean: np.ndarray, std: np.ndarray, *,
                  samples: int, gamma: float, beta: float, rng: np.random.Generator,
                  low: np.ndarray, high: np.ndarray) -> MPPIResult:
    """One MPPI update from `mean` (H, A); `cost_fn(actions (M, H, A)) -> costs (M,)`."""
    noise = correlated_noise(std, samples, beta, rng, full_first_step=True)
    drawn = np.clip(mean[None] + noise, low, high)
    costs = np.asarray(cost_fn(drawn), dtype=float)
    weights = mppi_weights(costs, gamma)
    updated = np.clip(np.einsum("m,mha->ha", weights, drawn), low, high)
    return MPPIResult(updated, drawn, costs, weights, int(np.argmin(costs)))


def shift_plan(mean: np.ndarray, executed: int) -> np.ndarray:
    """The next replan's starting mean: the rest of `mean` after `executed` steps, padded
    with its last action (VP2's warm start)."""
    rest = mean[executed:]
    if len(rest) == 0:
        rest = mean[-1:]
    pad = np.repeat(rest[-1:], len(mean) - len(rest), axis=0)
    return np.concatenate([rest, pad])
