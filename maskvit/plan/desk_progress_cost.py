"""A RoboDesk planning cost that also rewards the task's progress as read from predicted frames.

With VP2's pixel cost alone the planner moves the arm to where the goal image shows it and
never opens the slide or the drawer (0 of 24 held-out episodes with the shipped model): the
pixel cost does not say that the handle, not the arm, is what has to move. The simulator
oracle, which scores the distance of the task's joint to RoboDesk's threshold, opens them.
`pixel_l2_progress` gives the model planner the oracle's signal where it can get it without
a simulator: the task's joint read from each predicted frame by the object readers of
`maskvit.metrics.desk_objects` (slide and drawer positions, button lights; validated against
the simulator to ~0.001), added to the pixel cost:

    Σ_i c_i (‖frame_i − goal‖² + PROGRESS_WEIGHT × remaining_i)

where remaining_i is the fraction of the way still to go to the task's success threshold
(1 at the closed slide or drawer, 0 once open; for a button, 1 − its light's strength over
the lit level). Samples that do not move the joint all get the same progress term, so the
cost falls back to VP2's pixel cost where no sample does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from maskvit.config import PlanConfig
from maskvit.errors import UserError
from maskvit.metrics.desk_objects import LIGHT_ON, LIGHTS, light_strength, read_drawer, read_slide
from maskvit.plan.planner import pixel_l2_cost

# The progress term's default weight (`plan.progress_weight`, where its units are explained).
PROGRESS_WEIGHT = PlanConfig.progress_weight


def remaining_progress(frames: np.ndarray, task: str) -> np.ndarray:
    """float32 (...): the fraction of the way to `task`'s success still to go in each uint8
    frame (..., 64, 64, 3), read from pixels alone; 0 where the frame shows it solved.
    The slide and the drawer count from closed (joint 0) to the world's success thresholds."""
    # Here, not at the top: importing maskvit.sim loads pybullet, which only RoboDesk runs need.
    from maskvit.sim.desk_world import DRAWER_OPEN, SLIDE_OPEN

    if task == "open_slide":
        return _fraction_left(read_slide(frames), 0.0, SLIDE_OPEN)
    if task == "open_drawer":
        return _fraction_left(read_drawer(frames), 0.0, DRAWER_OPEN)
    colour = task.removeprefix("push_")
    if task.startswith("push_") and colour in LIGHTS:
        strength = light_strength(frames)[..., LIGHTS.index(colour)]
        return np.clip(1.0 - strength / LIGHT_ON, 0.0, 1.0).astype(np.float32)
    raise UserError(f"plan.cost=pixel_l2_progress reads the button lights, the slide and the drawer "
                    f"from frames; it has no reading for {task!r}: use plan.cost=pixel_l2")


def _fraction_left(value: np.ndarray, closed: float, solved: float) -> np.ndarray:
    return np.clip((solved - value) / (solved - closed), 0.0, 1.0).astype(np.float32)


@dataclass
class ProgressCost:
    """`pixel_l2_progress` for one RoboDesk task: a `FrameCost` (`maskvit.plan.planner`) over
    frames (M, H, 64, 64, 3) uint8."""

    task: str
    weight: float = PROGRESS_WEIGHT

    def __post_init__(self) -> None:
        remaining_progress(np.zeros((0, 64, 64, 3), np.uint8), self.task)  # no reading: one line now

    def __call__(self, frames: np.ndarray, goal: np.ndarray, weights: np.ndarray) -> np.ndarray:
        remaining = remaining_progress(frames, self.task)  # (M, H)
        return pixel_l2_cost(frames, goal, weights) + self.weight * (remaining @ np.asarray(weights, np.float32))
