"""Costs that score predicted frames against a goal image (paper §A.2, the planning objective).

A cost takes predicted frames (M, H, h, w, 3) uint8, one goal image (h, w, 3) uint8 and the
per-step weights c_i (H,), and returns one number per sequence (M,), lower is better.
Register new costs in `COSTS` so the CLI (`--set plan.cost=...`) can name them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from maskvit.errors import UserError

FrameCost = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def pixel_l2_cost(frames: np.ndarray, goal: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Σ_i c_i ‖frame_i − goal‖²₂ with pixels scaled to [0, 1] (the paper's objective)."""
    diff = frames.astype(np.float32) / 255.0 - goal.astype(np.float32)[None, None] / 255.0
    per_step = np.square(diff).sum(axis=(2, 3, 4))  # (M, H)
    return per_step @ np.asarray(weights, dtype=np.float32)


def final_pixel_l2_cost(frames: np.ndarray, goal: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """‖last frame − goal‖²₂ only (the simpler objective of §4.4's main text)."""
    diff = frames[:, -1].astype(np.float32) / 255.0 - goal.astype(np.float32)[None] / 255.0
    return np.square(diff).sum(axis=(1, 2, 3))


COSTS: dict[str, FrameCost] = {
    "pixel_l2": pixel_l2_cost,
    "final_pixel_l2": final_pixel_l2_cost,
}


def get_cost(name: str) -> FrameCost:
    """Look a cost up by name; a one-line error lists the valid names."""
    if name not in COSTS:
        raise UserError(f"unknown planning cost {name!r}; choose one of: {', '.join(COSTS)}")
    return COSTS[name]
