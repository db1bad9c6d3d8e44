"""How well a cost computed on predicted frames ranks action sequences like the truth does.

Used by `benchmarks/bench_plan_ranking.py`, a cheap proxy for planning success: CEM only
needs the model to put the truly good sequences among its elites, so the agreement of
the model's costs with the costs of the simulator's true futures (same sequences) says
how much of the gap to the pixel-cost oracle the predictions themselves explain.
"""

from __future__ import annotations

import numpy as np


def ranks(values: np.ndarray) -> np.ndarray:
    """0-based ranks (ties broken by position; costs are continuous, ties are rare)."""
    return np.argsort(np.argsort(values, kind="stable"), kind="stable")


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two equally long vectors."""
    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def ranking_metrics(model_cost: np.ndarray, true_cost: np.ndarray, elites: int) -> dict[str, float]:
    """How the model's costs rank M sequences against their true costs.

    rho: Spearman's ρ. regret: the true cost of the model's pick above the true best,
    over the true costs' median minus their minimum (0: the oracle's pick; 1: a typical
    sample). elite_overlap: the fraction of the model's `elites` lowest that are among
    the truth's `elites` lowest.
    """
    model_cost, true_cost = np.asarray(model_cost, float), np.asarray(true_cost, float)
    best, typical = true_cost.min(), np.median(true_cost)
    regret = (true_cost[np.argmin(model_cost)] - best) / max(typical - best, 1e-12)
    model_elites = set(np.argsort(model_cost, kind="stable")[:elites].tolist())
    true_elites = set(np.argsort(true_cost, kind="stable")[:elites].tolist())
    return {"rho": spearman(model_cost, true_cost), "regret": float(regret),
            "elite_overlap": len(model_elites & true_elites) / elites}


def average_pool(frames: np.ndarray, factor: int) -> np.ndarray:
    """(..., h, w, 3) frames → float32 (..., h/factor, w/factor, 3), same 0–255 scale."""
    if factor == 1:
        return frames.astype(np.float32)
    *lead, h, w, c = frames.shape
    if h % factor or w % factor:
        raise ValueError(f"pool factor {factor} must divide the frame size {h}×{w}")
    x = frames.astype(np.float32).reshape(*lead, h // factor, factor, w // factor, factor, c)
    return x.mean(axis=(-4, -2))
