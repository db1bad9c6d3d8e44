"""Play at the handles: RoboDesk episodes that also push the slide and the drawer shut.

VP2's data (noisy scripted policies for the tasks, random exploration) shows the slide and the
drawer being opened and almost never closed: 77 closing steps against 1754 opening ones in our
300-episode slide/drawer store. The model trained on such data draws a push that shuts the
drawer as nothing happening (and a slide closing at about two thirds of its size), so a planner
reading its frames shuts them without paying for it (`benchmarks/RESULTS.md`, "Does the model
draw the slide and the drawer closing?"). A play episode of a task
runs the task's scripted controller for a random number of steps, then either pushes the
task's handle back the other way (`slide_closer`, `DrawerClosePolicy`) or wanders at
random from there (`RandomPolicy`), so the data shows both directions, from where the
controllers leave the hand.
"""

from __future__ import annotations

import numpy as np

from maskvit.sim.desk_policies import (
    CLOSED,
    GAIN,
    RandomPolicy,
    SlidePolicy,
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


def slide_closer() -> SlidePolicy:
    """The slide's controller mirrored: from the bar's right, push it shut."""
    return SlidePolicy(direction=-1.0)


CLOSERS = {"open_slide": slide_closer, "open_drawer": DrawerClosePolicy}


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


__all__ = ["CLOSERS", "DrawerClosePolicy", "HandlePlay", "slide_closer"]
