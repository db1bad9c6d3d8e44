"""`PushEnv`: the push world as a gymnasium environment, with goal-reaching tasks.

Observation: uint8 RGB image (S, S, 3) from a fixed camera. Action: (dx, dy) in metres,
a shift of the pusher's target, clipped to ±`config.max_step` per axis. `reset(seed=s)`
always builds the same scene for the same seed; `reset(options={"task": task})` builds the
scene of `task.seed` and scores the task (reward = −distance of the object to its goal).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from maskvit.sim.push_config import PushConfig
from maskvit.sim.scenes import PushTask, SceneLayout, sample_layout
from maskvit.sim.world import PushState, PushWorld


class PushEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 5}  # one action per 0.2 s of simulated time

    def __init__(self, config: PushConfig | None = None, render_mode: str | None = "rgb_array"):
        self.config = config or PushConfig()
        self.render_mode = render_mode
        size = self.config.image_size
        self.observation_space = gym.spaces.Box(0, 255, (size, size, 3), np.uint8)
        bound = self.config.max_step
        self.action_space = gym.spaces.Box(-bound, bound, (2,), np.float32)
        self.world = PushWorld(self.config)
        self.task: PushTask | None = None
        self.layout: SceneLayout | None = None
        self.seed_used: int | None = None

    # -- gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        task = (options or {}).get("task")
        if task is not None:
            seed = task.seed
        elif seed is None:
            seed = int(self.np_random.integers(2**31))
        self.task = task
        self.seed_used = int(seed)
        self.layout = sample_layout(self.seed_used, self.config)
        self.world.place(self.layout)
        return self.world.render(), self._info()

    def step(self, action):
        self.world.move(np.asarray(action, dtype=np.float64).reshape(2))
        info = self._info()
        reward = -info["goal_distance"] if self.task is not None else 0.0
        terminated = False  # episodes end by length (truncation), decided by the caller
        return self.world.render(), reward, terminated, False, info

    def render(self) -> np.ndarray:
        return self.world.render()

    def close(self) -> None:
        self.world.close()

    # -- tasks
    def goal_image(self, arm: str = "goal") -> np.ndarray:
        """The scene as it is now but with the task's object at its goal pose.

        `arm="goal"`: the pusher rests behind the object at its goal, where a successful
        push leaves it (the photo a user would take of the goal); `arm="current"`: the arm
        stays where it is now. The world itself is left unchanged.
        """
        task = self._require_task()
        if arm == "current":
            return self.world.render_with_box_at(task.object_index, task.goal_xy, task.goal_yaw)
        if arm != "goal":
            raise ValueError(f"arm must be 'goal' or 'current', not {arm!r}")
        state = self.world.get_state()
        boxes, yaws = self.world.box_positions(), self.world.box_yaws()
        boxes[task.object_index], yaws[task.object_index] = task.goal_xy, task.goal_yaw
        self.world.place(SceneLayout(np.asarray(task.pusher_goal_xy), boxes, yaws))
        image = self.world.render()
        self.world.set_state(state)
        return image

    def goal_distance(self) -> float:
        """Distance (m) from the task object's centre to the goal, from the simulator."""
        task = self._require_task()
        return float(np.linalg.norm(self.world.box_positions()[task.object_index] - np.array(task.goal_xy)))

    def success(self) -> bool:
        return self.goal_distance() <= self._require_task().threshold

    def _require_task(self) -> PushTask:
        if self.task is None:
            raise RuntimeError("no task: reset with options={'task': make_push_task(seed)}")
        return self.task

    # -- state for planners and data
    def get_state(self) -> PushState:
        return self.world.get_state()

    def set_state(self, state: PushState) -> None:
        """Restore a `get_state` snapshot; stepping from it is reproducible."""
        self.world.set_state(state)

    def state_vector(self) -> np.ndarray:
        """float32 [pusher x, y, z, then x, y, yaw of each box]: the `states` of collected episodes."""
        boxes = np.concatenate([self.world.box_positions(), self.world.box_yaws()[:, None]], axis=1)
        return np.concatenate([self.world.pusher_position(), boxes.reshape(-1)]).astype(np.float32)

    def _info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "pusher_xyz": self.world.pusher_position(),
            "box_xy": self.world.box_positions(),
            "steps": self.world.steps,
        }
        if self.task is not None:
            info["goal_distance"] = self.goal_distance()
            info["success"] = info["goal_distance"] <= self.task.threshold
        return info
