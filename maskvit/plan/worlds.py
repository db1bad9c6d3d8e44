"""Environments the MPC loop can run in, behind the small `World` interface of `mpc.py`.

`make_world("push")` wraps `maskvit.sim.PushEnv`: a task (box, start, goal) per seed, the
goal image rendered by the simulator, success read from the simulator state. The wrapper
also exposes what the oracle needs (state snapshots, the task, the world's config).

Where the arm is in the goal image matters for a pixel cost, because the arm covers far
more pixels than a box: `goal_arm="start"` (default: the env's own goal image) shows the
pusher where the episode starts, so moving the arm raises the cost; `goal_arm="behind"`
shows it resting just behind the box at its goal (the side it was pushed from), like a
photo taken after a successful push. (benchmarks/RESULTS.md: with true futures, neither
lets the pixel cost solve these tasks; the arm's pixels dominate it.)
"""

from __future__ import annotations

import numpy as np

from maskvit.errors import UserError

WORLDS = ("push",)
GOAL_ARMS = ("start", "behind")


class PushPlanningWorld:
    """`PushEnv` with one task per seed, in the shape the MPC loop expects."""

    def __init__(self, config=None, goal_arm: str = "start"):
        from maskvit.sim import PushConfig, PushEnv  # pybullet only when a world is made

        if goal_arm not in GOAL_ARMS:
            raise UserError(f"unknown goal arm pose {goal_arm!r}; choose one of: {', '.join(GOAL_ARMS)}")
        self.goal_arm = goal_arm
        self.env = PushEnv(config or PushConfig())
        self.config = self.env.config
        self.action_low = np.asarray(self.env.action_space.low, dtype=float)
        self.action_high = np.asarray(self.env.action_space.high, dtype=float)
        self.task = None
        self._goal: np.ndarray | None = None

    def reset(self, task_seed: int) -> np.ndarray:
        from maskvit.sim import make_push_task

        self.task = make_push_task(int(task_seed), self.config)
        observation, _ = self.env.reset(options={"task": self.task})
        self._goal = self._render_goal()
        return observation

    def _behind(self, box_xy: np.ndarray, start_xy: np.ndarray) -> np.ndarray:
        """Where the pusher rests behind a box at `box_xy` pushed from `start_xy` to the goal."""
        cfg, goal = self.config, np.asarray(self.task.goal_xy)
        direction = (goal - np.asarray(start_xy)) / max(np.linalg.norm(goal - start_xy), 1e-9)
        pusher = np.asarray(box_xy) - (cfg.box_half_extent + 0.03) * direction
        return np.clip(pusher, [cfg.workspace_x[0], cfg.workspace_y[0]],
                       [cfg.workspace_x[1], cfg.workspace_y[1]])

    def _render_goal(self) -> np.ndarray:
        """The goal image of the current task (see the module docstring for `goal_arm`)."""
        if self.goal_arm == "start":
            return self.env.goal_image()
        from maskvit.sim import SceneLayout

        world, task = self.env.world, self.task
        state = self.env.get_state()
        boxes, yaws = world.box_positions(), world.box_yaws()
        goal = np.asarray(task.goal_xy)
        pusher = self._behind(goal, boxes[task.object_index])
        boxes[task.object_index], yaws[task.object_index] = goal, task.goal_yaw
        world.place(SceneLayout(pusher_xy=pusher, box_xy=boxes, box_yaw=yaws))
        image = world.render()
        self.env.set_state(state)  # back to the episode's start, untouched
        return image

    def step(self, action: np.ndarray) -> np.ndarray:
        observation, *_ = self.env.step(np.asarray(action, dtype=np.float32))
        return observation

    def goal_image(self) -> np.ndarray:
        assert self._goal is not None, "reset first"
        return self._goal

    def success(self) -> bool:
        return bool(self.env.success())

    def goal_distance(self) -> float:
        return float(self.env.goal_distance())

    def get_state(self):
        return self.env.get_state()

    def close(self) -> None:
        self.env.close()


def make_world(name: str, **kwargs) -> PushPlanningWorld:
    """The planning world called `name`; a one-line error lists the known ones."""
    if name == "push":
        return PushPlanningWorld(**kwargs)
    raise UserError(f"unknown environment {name!r}; choose one of: {', '.join(WORLDS)}")
