"""Environments the MPC loop can run in, behind the small `World` interface of `mpc.py`.

`make_world("robodesk", task=...)` runs RoboDesk's benchmark instances (`DeskPlanningWorld`).

`make_world("push")` wraps `maskvit.sim.PushEnv`: a task (box, start, goal) per seed, the
goal image rendered by the simulator, success read from the simulator state. The wrapper
also exposes what the oracle needs (state snapshots, the task, the world's config).

Where the arm is in the goal image matters for a pixel cost, because the arm covers far
more pixels than a box: `goal_arm="goal"` (default) shows the pusher resting behind the
object at its goal, where a successful push leaves it, so moving the arm towards its
goal-image pose is the push; `goal_arm="current"` leaves the arm where the episode starts
(benchmarks/RESULTS.md: with true futures the pixel cost then prefers to keep the arm still).
"""

from __future__ import annotations

import numpy as np

from maskvit.errors import UserError

WORLDS = ("push", "robodesk")
GOAL_ARMS = ("goal", "current")


class PushPlanningWorld:
    """`PushEnv` with one task per seed, in the shape the MPC loop expects."""

    def __init__(self, config=None, goal_arm: str = "goal"):
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

    def _render_goal(self) -> np.ndarray:
        return self.env.goal_image(arm=self.goal_arm)

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


class DeskPlanningWorld:
    """RoboDesk with one benchmark instance per seed (`maskvit.sim.desk_instances`).

    `reset(k)` restores the start state of instance k of `task`'s `split`; the goal image is
    the instance's. Success follows VP2's protocol: an episode is solved if the task's
    success predicate held after any step of it (VP2 scores the best state of the
    trajectory), and `goal_distance` is the task's own progress measure (see
    `DeskWorld.progress`), 0 once solved.
    """

    def __init__(self, task: str = "push_red", split: str = "test", instances=None):
        from maskvit.sim.desk_instances import load_instances
        from maskvit.sim.desk_world import DeskWorld, check_task

        self.task = check_task(task)
        self.instances = instances if instances is not None else load_instances(task=task, split=split)
        if not self.instances:
            raise UserError(f"no RoboDesk instances of {task} ({split}) in the instance file")
        self.world = DeskWorld()
        self.action_low, self.action_high = self.world.action_low, self.world.action_high
        self.instance = None
        self._solved = False

    def reset(self, task_seed: int) -> np.ndarray:
        if not 0 <= task_seed < len(self.instances):
            raise UserError(f"{self.task} has {len(self.instances)} instances; "
                            f"task {task_seed} does not exist")
        self.instance = self.instances[task_seed]
        self.world.set_state(self.instance.start_state)
        self._solved = False
        return self.world.render()

    def step(self, action: np.ndarray) -> np.ndarray:
        frame = self.world.step(np.asarray(action, dtype=np.float32))
        self._solved = self._solved or self.world.progress(self.task).solved
        return frame

    def goal_image(self) -> np.ndarray:
        assert self.instance is not None, "reset first"
        return self.instance.goal_image

    def success(self) -> bool:
        return bool(self._solved)

    def goal_distance(self) -> float:
        return float(self.world.progress(self.task).remaining)

    def get_state(self) -> np.ndarray:
        return self.world.get_state()

    def close(self) -> None:
        self.world.close()


def make_world(name: str, **kwargs) -> PushPlanningWorld | DeskPlanningWorld:
    """The planning world called `name`; a one-line error lists the known ones."""
    if name == "push":
        return PushPlanningWorld(**kwargs)
    if name == "robodesk":
        return DeskPlanningWorld(**kwargs)
    raise UserError(f"unknown environment {name!r}; choose one of: {', '.join(WORLDS)}")
