"""Scene layouts and pushing tasks, both pure functions of a seed.

A task names one box and a goal position for its centre; it is solved when the box's
centre (read from the simulator) ends within `threshold` of the goal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from maskvit.sim.config import PushConfig


@dataclass(frozen=True)
class SceneLayout:
    """Initial placement: pusher position, box centres (n, 2) and yaws (n,)."""

    pusher_xy: np.ndarray
    box_xy: np.ndarray
    box_yaw: np.ndarray


@dataclass(frozen=True)
class PushTask:
    """Push box `object_index` of the scene of `seed` to `goal_xy` (yaw is for the goal image)."""

    seed: int
    object_index: int
    goal_xy: tuple[float, float]
    goal_yaw: float
    threshold: float


def sample_layout(seed: int, config: PushConfig) -> SceneLayout:
    """Boxes apart from each other and from the pusher, all inside the workspace."""
    rng = np.random.default_rng([seed, 0x5EED])
    (x0, x1), (y0, y1) = config.workspace_x, config.workspace_y
    margin = config.object_radius
    gap = 2 * config.object_radius + 0.02
    for _ in range(1000):
        pusher = rng.uniform([x0, y0], [x1, y1])
        boxes = rng.uniform([x0 + margin, y0 + margin], [x1 - margin, y1 - margin], size=(config.num_boxes, 2))
        points = np.concatenate([pusher[None], boxes])
        dist = np.linalg.norm(points[:, None] - points[None], axis=-1) + np.eye(len(points))
        if dist.min() > gap:  # the pusher (about as wide as a box) counts as one more object
            yaw = rng.uniform(-np.pi / 4, np.pi / 4, size=config.num_boxes)
            return SceneLayout(pusher, boxes, yaw)
    raise RuntimeError("could not place the boxes apart; the workspace is too small for num_boxes")


def make_push_task(seed: int, config: PushConfig | None = None) -> PushTask:
    """A task on the scene of `seed`: a box and a reachable goal 8–15 cm from where it starts."""
    config = config or PushConfig()
    layout = sample_layout(seed, config)
    rng = np.random.default_rng([seed, 0x7A5C])
    index = int(rng.integers(config.num_boxes))
    start = layout.box_xy[index]
    (x0, x1), (y0, y1) = config.workspace_x, config.workspace_y
    margin = config.object_radius
    for _ in range(1000):
        angle = rng.uniform(-np.pi, np.pi)
        distance = rng.uniform(*config.goal_distance)
        goal = start + distance * np.array([np.cos(angle), np.sin(angle)])
        others = np.delete(layout.box_xy, index, axis=0)
        clear = all(np.linalg.norm(goal - o) > 2 * config.object_radius for o in others)
        if x0 + margin <= goal[0] <= x1 - margin and y0 + margin <= goal[1] <= y1 - margin and clear:
            yaw = float(layout.box_yaw[index] + rng.uniform(-0.3, 0.3))
            return PushTask(seed, index, (float(goal[0]), float(goal[1])), yaw, config.success_threshold)
    raise RuntimeError(f"no reachable goal for the scene of seed {seed}")
