"""Play at the handles: RoboDesk episodes that also push the slide and the drawer shut.

VP2's data (noisy scripted policies for the tasks, random exploration) shows the slide and the
drawer being opened and almost never closed: 77 closing steps against 1754 opening ones in our
300-episode slide/drawer store. A model trained on it draws a push that shuts them as nothing
happening, and a planner reading its frames shuts them without paying for it
(`benchmarks/RESULTS.md`, "Does the model draw the slide closing?"). A play episode of a task
runs the task's scripted controller for a random number of steps, then either pushes the
task's handle back the other way (`SlideClosePolicy`, `DrawerClosePolicy`) or wanders at
random from there (`RandomPolicy`), so the data shows both directions, from where the
controllers leave the hand.
"""

from __future__ import annotations

import numpy as np

from maskvit.sim.desk_policies import (
    CLOSED,
    GAIN,
    RandomPolicy,
    clear_desk_edge,
    drawer_geometry,
    drawer_hook_point,
    drawer_route,
    fingertips,
    make_action,
    reach,
    scripted_policy,
)
from maskvit.sim.desk_world import DeskWorld

# The longest scripted stretch before a play episode turns (steps; drawn uniformly from 0).
MAX_SCRIPTED_STEPS = 15


def slide_close_point(world: DeskWorld, height: float = 0.0) -> np.ndarray:
    """(3,) where the fingertips start pushing the slide shut: 5 cm right of its handle bar
    (the mirror of `slide_push_point`)."""
    handle = world.physics.named.data.site_xpos["slide_handle"]
    return handle + np.array([0.05, 0.025, height])


class SlideClosePolicy:
    """Get the fingertips right of the slide's handle bar (in front of it first) and push it
    left, shut."""

    def reset(self, world: DeskWorld, rng: np.random.Generator) -> None:
        self.height = rng.uniform(-0.03, 0.03)
        self.pushing = False

    def action(self, world: DeskWorld) -> np.ndarray:
        tip = fingertips(world)
        behind = slide_close_point(world, self.height)
        error = behind - tip
        loose = 1.6 if self.pushing else 1.0
        self.pushing = (-0.03 * loose < error[0] < 0.07 * loose and abs(error[1]) < 0.03 * loose
                        and abs(error[2]) < 0.04 * loose)
        if self.pushing:
            hold = error * GAIN
            return make_action(np.array([-1.0, hold[1], hold[2]]), gripper=CLOSED)
        lined_up = -0.03 < error[0] < 0.07 and abs(error[2]) < 0.04
        target = behind if lined_up else behind + np.array([0.02, -0.08, 0.0])
        return make_action(reach(tip, clear_desk_edge(tip, target)), gripper=CLOSED)


class DrawerClosePolicy:
    """Get the fingertips down into the gap behind the drawer's handle bar (the scripted
    controller's own way there) and push the front wall away from the arm, shut. (In front of
    the bar is out of the arm's reach this low: RoboDesk's IK gets the hand no nearer the
    arm's base than y ≈ 0.42 there.)"""

    def reset(self, world: DeskWorld, rng: np.random.Generator) -> None:
        self.lane = rng.uniform(-0.03, 0.03)
        self.pushing = False

    def action(self, world: DeskWorld) -> np.ndarray:
        g = drawer_geometry(world)
        tip = fingertips(world)
        gap = drawer_hook_point(world, self.lane, g)
        error = gap - tip
        loose = 1.6 if self.pushing else 1.0
        self.pushing = (abs(error[0]) < 0.03 * loose and abs(error[2]) < 0.02 * loose
                        and abs(error[1]) < 0.03 * loose)
        if self.pushing:
            hold = error * GAIN
            return make_action(np.array([hold[0], 1.0, hold[2] - 0.2]), gripper=CLOSED)
        return make_action(reach(tip, drawer_route(world, tip, self.lane, g)[0]), gripper=CLOSED)


CLOSERS = {"open_slide": SlideClosePolicy, "open_drawer": DrawerClosePolicy}


class HandlePlay:
    """One play episode of `task`: its scripted controller for 0–`MAX_SCRIPTED_STEPS` steps,
    then (for the slide and the drawer, half the time) the push the other way, else a random
    walk from where the hand is."""

    def __init__(self, task: str):
        self.task = task

    def reset(self, world: DeskWorld, rng: np.random.Generator) -> None:
        self.scripted = scripted_policy(self.task)
        self.scripted.reset(world, rng)
        self.turn = int(rng.integers(0, MAX_SCRIPTED_STEPS + 1))
        closer = CLOSERS.get(self.task)
        self.then = closer() if closer is not None and rng.uniform() < 0.5 else RandomPolicy()
        self.then.reset(world, rng)
        self.step = 0

    def action(self, world: DeskWorld) -> np.ndarray:
        policy = self.scripted if self.step < self.turn else self.then
        self.step += 1
        return policy.action(world)


__all__ = ["CLOSERS", "DrawerClosePolicy", "HandlePlay", "SlideClosePolicy", "slide_close_point"]
