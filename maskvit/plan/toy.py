"""A tiny point world and its exact video predictor: stand-ins for the push world and a model.

The agent is a Gaussian blob on a 16×16 image (wide enough that the pixel cost changes
smoothly with position); actions move it by (dx, dy) ≤ 0.1 per step inside [0, 1]².
`point_predictor` reads the blob's position off the last context frame and renders where
the actions take it, so a planner driven by it must solve the task through images only.
"""

from __future__ import annotations

import numpy as np

SIZE = 16
BOUND = 0.1


def render_point(xy: np.ndarray) -> np.ndarray:
    """uint8 (16, 16, 3) image of a blob at xy ∈ [0, 1]² (any leading batch shape)."""
    xy = np.asarray(xy, dtype=float)
    grid = (np.arange(SIZE) + 0.5) / SIZE
    dx = grid[None, :] - xy[..., 0, None, None]  # (..., 1, W)
    dy = grid[:, None] - xy[..., 1, None, None]  # (..., H, 1)
    blob = np.exp(-(dx**2 + dy**2) / (2 * 0.15**2))
    return np.repeat((blob * 255).round().astype(np.uint8)[..., None], 3, axis=-1)


def locate_point(frame: np.ndarray) -> np.ndarray:
    """Blob centre (x, y) from an image: the brightest pixel refined by a weighted mean."""
    weight = frame[..., 0].astype(float) ** 4
    grid = (np.arange(SIZE) + 0.5) / SIZE
    total = weight.sum(axis=(-2, -1))
    x = (weight.sum(axis=-2) * grid).sum(axis=-1) / total
    y = (weight.sum(axis=-1) * grid).sum(axis=-1) / total
    return np.stack([x, y], axis=-1)


class PointWorld:
    """The `World` interface of `maskvit.plan.mpc` for the point task of a seed."""

    def __init__(self):
        self.action_low = np.full(2, -BOUND)
        self.action_high = np.full(2, BOUND)
        self.xy = np.zeros(2)
        self.goal = np.zeros(2)

    def reset(self, task_seed: int) -> np.ndarray:
        rng = np.random.default_rng(task_seed)
        self.xy = rng.uniform(0.2, 0.8, 2)
        direction = rng.normal(size=2)
        self.goal = np.clip(self.xy + 0.3 * direction / np.linalg.norm(direction), 0.1, 0.9)
        return render_point(self.xy)

    def step(self, action: np.ndarray) -> np.ndarray:
        self.xy = np.clip(self.xy + np.clip(action, -BOUND, BOUND), 0.0, 1.0)
        return render_point(self.xy)

    def goal_image(self) -> np.ndarray:
        return render_point(self.goal)

    def goal_distance(self) -> float:
        return float(np.linalg.norm(self.xy - self.goal))

    def success(self) -> bool:
        return self.goal_distance() < 0.06


def point_predictor(context_frames, context_actions, future_actions) -> np.ndarray:
    """Exact dynamics of `PointWorld`, seen through images: (B, H, 16, 16, 3) uint8."""
    start = locate_point(context_frames[:, -1])  # (B, 2)
    steps = np.clip(future_actions, -BOUND, BOUND)
    path = start[:, None]
    positions = []
    for i in range(steps.shape[1]):
        path = np.clip(path + steps[:, i : i + 1], 0.0, 1.0)
        positions.append(path[:, 0])
    return render_point(np.stack(positions, axis=1))
