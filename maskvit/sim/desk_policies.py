"""Scripted RoboDesk policies: one per task, plus random exploration, for data and instances.

VP2's RoboDesk data comes from noisy scripted policies (a proportional controller per task,
Gaussian noise of std 0.4 on every action, 30 steps, all tasks mixed). These are our own
controllers of the same kind: each reads the simulator (end effector and object
positions) and steers the end effector with a proportional gain; the noise and the random
explorer are separate, so the same controller also rolls out benchmark goals without noise.

Every policy is `reset(world, rng)` once per episode, then `action(world)` once per step,
and returns 5 numbers in [−1, 1] (the caller clips the noisy sum again).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from maskvit.sim.desk_world import ACTION_DIM, TASKS, DeskWorld, check_task


def toward(start: np.ndarray, end: np.ndarray, gain, floor: float = 0.1) -> np.ndarray:
    """A proportional step from `start` to `end`, at least `floor` long (so it never stalls)."""
    offset = np.asarray(end, float) - np.asarray(start, float)
    step = offset * np.asarray(gain, float)
    length = float(np.linalg.norm(step))
    if 0 < length < floor:
        step *= floor / length
    return step


def _action(xyz: np.ndarray, wrist: float = 0.0, gripper: float = 0.0) -> np.ndarray:
    out = np.zeros(ACTION_DIM)
    out[:3], out[3], out[4] = xyz, wrist, gripper
    return np.clip(out, -1.0, 1.0)


class ButtonPolicy:
    """Drive the end effector onto the button: the straight line down presses it."""

    def __init__(self, colour: str):
        self.colour = colour

    def reset(self, world: DeskWorld, rng: np.random.Generator) -> None:
        pass

    def action(self, world: DeskWorld) -> np.ndarray:
        button = world.physics.named.data.xpos[f"{self.colour}_button"]
        return _action(toward(world.end_effector(), button, 5.0))


class SlidePolicy:
    """Reach a point left of the slide's handle (jittered per episode), then push it right."""

    def reset(self, world: DeskWorld, rng: np.random.Generator) -> None:
        self.shift = np.array([rng.uniform(-0.1, 0.1), 0.0, rng.uniform(-0.05, 0.05)])
        self.reached = False

    def action(self, world: DeskWorld) -> np.ndarray:
        data = world.physics.named.data
        target = data.site_xpos["slide_handle"] - np.array([0.15, 0.0, 0.0]) + self.shift
        effector = world.end_effector()
        far = np.linalg.norm(target - effector) > 0.1 or abs(target[1] - effector[1]) > 0.05
        if not self.reached and far:
            return _action(toward(effector, target, [5.0, 3.75, 5.0]))
        self.reached = True
        return _action(np.array([2.0 * (1.0 - data.qpos["slide_joint"][0]), 0.1, 0.0]))


class DrawerPolicy:
    """Come down in front of the drawer's handle, hook it from below and pull towards the robot.

    The drawer opens along −y (towards the arm). Phase 0 moves over a point in front of the
    handle with the wrist turned flat, phase 1 lowers to the handle's height, phase 2 pulls.
    """

    def reset(self, world: DeskWorld, rng: np.random.Generator) -> None:
        self.phase = 0
        self.offset = np.array([rng.uniform(-0.03, 0.03), -0.06, -0.02])

    def action(self, world: DeskWorld) -> np.ndarray:
        data = world.physics.named.data
        target = data.geom_xpos["drawer_handle"] + self.offset
        effector = world.end_effector()
        if self.phase == 0 and np.linalg.norm((target - effector)[:2]) < 0.04:
            self.phase = 1
        if self.phase == 1 and abs(target[2] - effector[2]) < 0.03:
            self.phase = 2
        if self.phase == 0:
            above = target + np.array([0.0, 0.0, 0.08])
            return _action(toward(effector, above, [4.0, 4.0, 2.0]))
        if self.phase == 1:
            return _action(toward(effector, target, [3.0, 3.0, 3.0], floor=0.3))
        return _action(np.array([0.0, -0.6, 0.05]))


class OffTablePolicy:
    """Get behind the block (−x of it, at its height) and push it over the desk's +x edge."""

    def __init__(self, block: str):
        self.block = block

    def reset(self, world: DeskWorld, rng: np.random.Generator) -> None:
        low = -0.005 if self.block == "flat_block" else -0.05
        self.offset = np.array([-0.15, rng.uniform(-0.02, 0.02), low])
        self.reached = False

    def action(self, world: DeskWorld) -> np.ndarray:
        block = world.physics.named.data.xpos[self.block]
        target = block + self.offset
        effector = world.end_effector()
        far = np.linalg.norm(target - effector) > 0.1 or abs(target[2] - effector[2]) > 0.05
        if not self.reached and far:
            return _action(toward(effector, target, [5.0, 3.75, 5.0]))
        self.reached = True
        if block[2] <= 0.1:  # already on the floor
            return _action(np.zeros(3))
        return _action(toward(effector, block - 2.0 * self.offset, 3.0))


class RandomPolicy:
    """Exploration: smooth random end-effector motion (an AR(1) walk), wrist and gripper too."""

    def reset(self, world: DeskWorld, rng: np.random.Generator) -> None:
        self.rng = rng
        self.current = rng.uniform(-1.0, 1.0, ACTION_DIM)

    def action(self, world: DeskWorld) -> np.ndarray:
        self.current = np.clip(0.7 * self.current + 0.3 * self.rng.uniform(-1.0, 1.0, ACTION_DIM), -1, 1)
        return self.current.copy()


def scripted_policy(task: str):
    """The scripted controller of `task` (no noise)."""
    check_task(task)
    if task.startswith("push_"):
        return ButtonPolicy(task.removeprefix("push_"))
    if task == "open_slide":
        return SlidePolicy()
    if task == "open_drawer":
        return DrawerPolicy()
    return OffTablePolicy(task.removesuffix("_off_table"))


# Bump when a controller changes: a collection resumed with other controllers is refused.
CONTROLLERS_VERSION = 1


@dataclass(frozen=True)
class NoisyMix:
    """How collected episodes are made: a task's scripted policy plus Gaussian noise, or random.

    `noise_std` is VP2's (0.4 on every action dimension); `random_fraction` of the episodes
    explore at random instead, so the data also shows motions no script makes.
    """

    noise_std: float = 0.4
    random_fraction: float = 0.15

    def choose(self, tasks: tuple[str, ...], rng: np.random.Generator) -> tuple[str, str]:
        """(task, kind) of one episode; kind is "scripted" or "random"."""
        task = tasks[int(rng.integers(len(tasks)))]
        return task, "random" if rng.uniform() < self.random_fraction else "scripted"


__all__ = ["CONTROLLERS_VERSION", "TASKS", "NoisyMix", "RandomPolicy", "scripted_policy", "toward"]
