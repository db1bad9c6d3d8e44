"""Scene layouts and pushing tasks, both pure functions of a seed.

Every scene is set up for a push: one box (the "object") has the pusher waiting just
behind it, on the far side from a push direction. A task asks for that object to be
pushed `goal_distance` along the direction; it is solved when the object's centre (read
from the simulator) ends within `threshold` of the goal. Random-action data collection
starts from the same scenes, so the training data shows the pushes that planning needs.

Why this design (benchmarks/RESULTS.md, Planning): the paper's pixel cost compares whole
images, and the arm covers many more pixels than a box. With the pusher starting anywhere,
the cheapest plan under that cost keeps the arm still, even with perfect predictions.
With the pusher starting behind the object and the goal image showing it behind the object
at its goal (where a successful push leaves it), moving the arm towards its goal-image pose
is the push itself. Push directions point away from the arm's base or sideways, so the arm
never hides the object from the camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from maskvit.sim.push_config import PushConfig


@dataclass(frozen=True)
class SceneLayout:
    """Initial placement: pusher position, box centres (n, 2) and yaws (n,); the object
    box and the direction (radians) the pusher faces it from, when the layout has them."""

    pusher_xy: np.ndarray
    box_xy: np.ndarray
    box_yaw: np.ndarray
    object_index: int = 0
    push_angle: float = 0.0


@dataclass(frozen=True)
class PushTask:
    """Push box `object_index` of the scene of `seed` to `goal_xy`; `pusher_goal_xy` is
    where the pusher rests after a successful push (drawn in the goal image)."""

    seed: int
    object_index: int
    goal_xy: tuple[float, float]
    goal_yaw: float
    threshold: float
    pusher_goal_xy: tuple[float, float]


def _direction(angle: float) -> np.ndarray:
    return np.array([np.cos(angle), np.sin(angle)])


def _inside(point: np.ndarray, config: PushConfig, margin: float) -> bool:
    (x0, x1), (y0, y1) = config.workspace_x, config.workspace_y
    return bool(x0 + margin <= point[0] <= x1 - margin and y0 + margin <= point[1] <= y1 - margin)


def _segment_distance(point: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Distance from `point` to the segment a–b (is a box in the way of a push?)."""
    t = np.clip(np.dot(point - a, b - a) / max(np.dot(b - a, b - a), 1e-12), 0.0, 1.0)
    return float(np.linalg.norm(point - (a + t * (b - a))))


def sample_layout(seed: int, config: PushConfig) -> SceneLayout:
    """Boxes apart from each other, the pusher `pusher_gap` behind the object, all inside
    the workspace, with room for a push of the longest goal distance."""
    rng = np.random.default_rng([seed, 0x5EED])
    (x0, x1), (y0, y1) = config.workspace_x, config.workspace_y
    margin = config.object_radius
    gap = 2 * config.object_radius + 0.02
    behind = config.pusher_contact + config.pusher_gap
    for _ in range(10000):
        boxes = rng.uniform([x0 + margin, y0 + margin], [x1 - margin, y1 - margin], size=(config.num_boxes, 2))
        dist = np.linalg.norm(boxes[:, None] - boxes[None], axis=-1) + np.eye(len(boxes))
        if dist.min() <= gap:
            continue
        index = int(rng.integers(config.num_boxes))
        angle = float(rng.uniform(-config.push_angle, config.push_angle))
        direction = _direction(angle)
        pusher = boxes[index] - behind * direction
        far_goal = boxes[index] + config.goal_distance[1] * direction
        others = np.delete(boxes, index, axis=0)
        clear = all(_segment_distance(o, pusher, far_goal) > 2 * config.object_radius for o in others)
        if _inside(pusher, config, 0.0) and _inside(far_goal, config, margin) and clear:
            yaw = rng.uniform(-np.pi / 4, np.pi / 4, size=config.num_boxes)
            yaw[index] = angle + rng.uniform(-0.2, 0.2)  # a face towards the pusher: straight pushes
            return SceneLayout(pusher, boxes, yaw, index, angle)
    raise RuntimeError("could not lay the scene out; the workspace is too small for num_boxes")


def make_push_task(seed: int, config: PushConfig | None = None) -> PushTask:
    """A task on the scene of `seed`: push its object 12–20 cm along the layout's direction."""
    config = config or PushConfig()
    layout = sample_layout(seed, config)
    rng = np.random.default_rng([seed, 0x7A5C])
    index = layout.object_index
    start = layout.box_xy[index]
    direction = _direction(layout.push_angle)
    goal = start + rng.uniform(*config.goal_distance) * direction  # the layout keeps this path clear
    pusher_goal = goal - (config.pusher_contact + 0.005) * direction
    return PushTask(seed, index, (float(goal[0]), float(goal[1])), float(layout.box_yaw[index]),
                    config.success_threshold, (float(pusher_goal[0]), float(pusher_goal[1])))
