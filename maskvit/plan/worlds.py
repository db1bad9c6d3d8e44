"""Environments the MPC loop can run in, behind the small `World` interface of `mpc.py`.

`make_world("push")` wraps `maskvit.sim.PushEnv`: a task (box, start, goal) per seed, the
goal image rendered by the simulator, success read from the simulator state.
`make_world("robodesk", task=...)` runs RoboDesk's benchmark instances (`DeskPlanningWorld`).

Each world also hands the simulator oracle a scratch copy of itself (`world.scratch()`):
a second simulator that restores any state of the first, steps without rendering
(`move`), renders on request and scores its state against the current task
(`state_cost`). The oracle (`maskvit.plan.baselines.OraclePolicy`) sees only that.

Where the arm is in the push world's goal image matters for a pixel cost, because the arm
covers far more pixels than a box: `goal_arm="goal"` (default) shows the pusher resting
behind the object at its goal, where a successful push leaves it, so moving the arm towards
its goal-image pose is the push; `goal_arm="current"` leaves the arm where the episode
starts (benchmarks/RESULTS.md: with true futures the pixel cost then prefers to keep the
arm still).
"""

from __future__ import annotations

import numpy as np

from maskvit.errors import UserError

WORLDS = ("push", "robodesk")
GOAL_ARMS = ("goal", "current")
# Action sizes, known before a simulator is built (a model is checked against them first):
# the push world's (dx, dy) and RoboDesk's (x, y, z, wrist, gripper). tests check them.
ACTION_DIMS = {"push": 2, "robodesk": 5}
# The push oracle's state cost adds this times the pusher's distance to the spot behind
# the object, so plans that approach the object score better before the object moves.
APPROACH_WEIGHT = 0.5
# The RoboDesk oracle's state cost adds this times the fingertips' distance (metres) to what
# the task moves, to its progress as a fraction of the episode's start (DeskScratch).
DESK_REACH_WEIGHT = 1.0


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

    def scratch(self) -> PushScratch:
        return PushScratch(self)

    def close(self) -> None:
        self.env.close()


class PushScratch:
    """A second push world for the oracle; `state_cost` reads the planning world's task."""

    def __init__(self, planning: PushPlanningWorld):
        from maskvit.sim import PushWorld

        self.planning = planning
        self.world = PushWorld(planning.config)

    def set_state(self, state) -> None:
        self.world.set_state(state)

    def move(self, action: np.ndarray) -> None:
        self.world.move(action)

    def render(self) -> np.ndarray:
        return self.world.render()

    def state_cost(self) -> float:
        """Metres from the object to its goal, plus `APPROACH_WEIGHT` × the pusher's
        distance to the spot behind the object (where pushing it towards the goal starts)."""
        task = self.planning.task
        box = self.world.box_positions()[task.object_index]
        away = box - np.asarray(task.goal_xy)
        behind = box + self.planning.config.pusher_contact * away / max(np.linalg.norm(away), 1e-6)
        pusher = self.world.pusher_position()[:2]
        return float(np.linalg.norm(away) + APPROACH_WEIGHT * np.linalg.norm(pusher - behind))

    def close(self) -> None:
        self.world.close()


class DeskPlanningWorld:
    """RoboDesk with one benchmark instance per seed (`maskvit.sim.desk_instances`).

    `reset(k)` restores the start state of instance k of `task`'s `split`; the goal image is
    the instance's. Success follows VP2's protocol: an episode is solved if the task's
    success predicate held after any step of it (VP2 scores the best state of the
    trajectory), and `goal_distance` is the task's own progress measure (see
    `DeskWorld.progress`), 0 once solved. Since success then stays, the loop ends an
    episode at its first solved step (`success_is_kept`): the same verdict, fewer replans.
    """

    success_is_kept = True  # once solved, solved for the rest of the episode

    def __init__(self, task: str = "push_red", split: str = "test", instances=None,
                 instances_path=None):
        from maskvit.sim.desk_instances import load_instances
        from maskvit.sim.desk_world import DeskWorld, check_task

        self.task = check_task(task)
        if instances is None:
            instances = load_instances(instances_path, task=task, split=split)
        self.instances = instances
        if not self.instances:
            raise UserError(f"no RoboDesk instances of {task} ({split}) in the instance file")
        self.world = DeskWorld()
        self.action_low, self.action_high = self.world.action_low, self.world.action_high
        self.instance = None
        self._solved = False
        self.start_remaining = 1.0  # the task's progress measure at the episode's start

    def reset(self, task_seed: int) -> np.ndarray:
        if not 0 <= task_seed < len(self.instances):
            raise UserError(f"{self.task} has {len(self.instances)} instances; "
                            f"task {task_seed} does not exist")
        self.instance = self.instances[task_seed]
        self.world.set_state(self.instance.start_state)
        self._solved = False
        self.start_remaining = self.goal_distance()
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

    def scratch(self) -> DeskScratch:
        return DeskScratch(self)

    def close(self) -> None:
        self.world.close()


class DeskScratch:
    """A second RoboDesk for the oracle; `state_cost` is the task's progress, and reach."""

    def __init__(self, planning: DeskPlanningWorld):
        from maskvit.sim.desk_world import DeskWorld

        self.planning = planning
        self.world = DeskWorld()

    def set_state(self, state: np.ndarray) -> None:
        self.world.set_state(state)

    def move(self, action: np.ndarray) -> None:
        self.world.advance(np.asarray(action, dtype=np.float32))

    def render(self) -> np.ndarray:
        return self.world.render()

    def state_cost(self) -> float:
        """What is left to do of the task, as a fraction of what the episode started with
        (`DeskWorld.progress(task).remaining`, 0 once solved), plus `DESK_REACH_WEIGHT` × the
        fingertips' distance in metres to what the task moves.

        The reach term is needed: the progress measure alone is flat until the object
        moves (a button's light does not change before the button is pressed), and an
        optimizer scoring flat costs moves at random (measured: the progress measure alone
        solved no episode of push_red even from 2 scripted steps short of the press).
        """
        from maskvit.sim.desk_policies import fingertips

        task = self.planning.task
        left = self.world.progress(task).remaining / max(self.planning.start_remaining, 1e-9)
        reach = np.linalg.norm(fingertips(self.world) - desk_task_target(self.world, task))
        return float(left + DESK_REACH_WEIGHT * reach)

    def close(self) -> None:
        self.world.close()


def desk_task_target(world, task: str) -> np.ndarray:
    """(3,) where the fingertips act for `task`: the button's top, the slide's handle, the
    drawer's handle bar, the block."""
    from maskvit.sim.desk_policies import drawer_geometry

    data = world.physics.named.data
    if task.startswith("push_"):
        return data.xpos[f"{task.removeprefix('push_')}_button"] + np.array([0.0, 0.0, 0.02])
    if task == "open_slide":
        return data.site_xpos["slide_handle"].copy()
    if task == "open_drawer":  # the scripted controller's reading of the bar (sim/desk_policies)
        bar = drawer_geometry(world)
        return np.array([bar["x"], bar["bar_back"], bar["bar_z"]])
    return data.xpos[task.removesuffix("_off_table")].copy()


def desk_approach_length(world, task: str, tip: np.ndarray, slide: str = "bar", drawer: str = "hook") -> float:
    """Metres left on the fingertips' way from `tip` to where `task` is begun: straight to a
    button's top; for the drawer, with `drawer="hook"`, down into the gap behind its bar from
    above, with `drawer="inside"`, over its front wall and down behind it, where the oracle
    pulls it (the hook gap while it is shut too far to go in), with `drawer="inside_clear"` the
    same but from on the desk top out over the gap before going down; for the slide, with
    `slide="bar"`, to its bar's pushing side by way of a point in front of and left of the bar
    until lined up, with `slide="panel"`, to where the fast panel push bears on it, from the
    front (the scripted controllers' own routes, `maskvit.sim.desk_policies`). Reaching the
    slide's handle itself, or the drawer's bar from the front, can push them shut; these
    routes go around."""
    from maskvit.sim.desk_policies import (
        drawer_inside_route,
        drawer_route,
        panel_route,
        slide_route,
    )

    if slide not in ("bar", "panel"):
        raise ValueError(f"slide is 'bar' or 'panel', not {slide!r}")
    if drawer not in ("hook", "inside", "inside_clear"):
        raise ValueError(f"drawer is 'hook', 'inside' or 'inside_clear', not {drawer!r}")
    tip = np.asarray(tip, float)
    if task == "open_slide":
        route = panel_route(world, tip) if slide == "panel" else slide_route(world, tip)
    elif task == "open_drawer":
        route = (drawer_route(world, tip) if drawer == "hook"
                 else drawer_inside_route(world, tip, clear_desk_top=drawer == "inside_clear"))
    else:
        route = [desk_task_target(world, task)]
    points = [tip, *route]
    return float(sum(np.linalg.norm(b - a) for a, b in zip(points[:-1], points[1:], strict=True)))


def make_world(name: str, **kwargs) -> PushPlanningWorld | DeskPlanningWorld:
    """The planning world called `name`; a one-line error lists the known ones."""
    if name == "push":
        return PushPlanningWorld(**kwargs)
    if name == "robodesk":
        return DeskPlanningWorld(**kwargs)
    raise UserError(f"unknown environment {name!r}; choose one of: {', '.join(WORLDS)}")
