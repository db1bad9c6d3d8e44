"""Play at the handles: RoboDesk episodes that also push the slide and the drawer shut.

VP2's data (noisy scripted policies for the tasks, random exploration) shows the slide and the
drawer being opened and almost never closed: 77 closing steps against 1754 opening ones in our
300-episode slide/drawer store. The model trained on such data draws a push that shuts the
drawer as nothing happening (and a slide closing at about two thirds of its size), so a planner
reading its frames shuts them without paying for it (`benchmarks/RESULTS.md`, "Does the model
draw the slide and the drawer closing?"). A play episode of a task
runs the task's scripted controller for a random number of steps, then either pushes the
task's handle back the other way (`slide_closer`; the drawer is rocked, in and out again,
`DrawerRockPolicy`) or wanders at random from there (`RandomPolicy`), so the data shows both
directions, from where the controllers leave the hand.
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
    steer,
)
from maskvit.sim.desk_world import DeskWorld

# The longest scripted stretch before a play episode turns (steps; drawn uniformly from 0).
MAX_SCRIPTED_STEPS = 15

# Bump when play changes what it does: a play store is resumed only with the play it was made
# with. v2: the drawer's play rocks it (push in, pull out a few cm, again) instead of one push.
PLAY_VERSION = 2


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


def drawer_joint(world: DeskWorld) -> float:
    """How far the drawer is open (m, ≤ 0; 0 is shut)."""
    return float(world.physics.named.data.qpos["drawer_joint"][0])


class DrawerRockPolicy(DrawerClosePolicy):
    """From the gap behind the bar, push the drawer shut, pull it out again a few cm (the
    scripted controller's pull, as far as the arm goes), push it shut again, and so on.

    One push per episode (`DrawerClosePolicy`) showed the drawer shut in 77 steps of 300 play
    episodes, and a model trained on them still drew no push-in. Rocking shows both ways many
    times an episode, over the few centimetres a planner moves the drawer from a task's start
    (RoboDesk starts it 0–9 cm open; the arm pulls it no further than that from the gap)."""

    def reset(self, world: DeskWorld, rng: np.random.Generator) -> None:
        super().reset(world, rng)
        self.rng = rng
        self.pulling = False
        self.pull_to = 0.0
        self.last_y: float | None = None
        self.last_joint: float | None = None

    def action(self, world: DeskWorld) -> np.ndarray:
        joint = drawer_joint(world)
        if self.pushing and not self.pulling:
            # Shut (within 1.5 cm: the last centimetre takes many pushes), or no longer moving in.
            stuck = self.last_joint is not None and joint - self.last_joint < 0.002
            if joint > -0.015 or stuck:
                self.pulling, self.last_y = True, None
                self.pull_to = -float(self.rng.uniform(0.03, 0.09))
        self.last_joint = joint if self.pushing and not self.pulling else None
        if self.pulling:
            tip = fingertips(world)
            stalled = self.last_y is not None and self.last_y - tip[1] < 0.008
            self.last_y = float(tip[1])
            if joint > self.pull_to and not stalled:
                g = drawer_geometry(world)
                target = np.array([g["x"] + self.lane, tip[1] - 0.1, g["bar_z"] - 0.015])
                move = steer(world, tip, target)
                move[2] = 2 * GAIN * (target[2] - tip[2]) - 0.4  # pressed down: the bar is round
                return make_action(move, gripper=CLOSED)
            self.pulling = False
        return super().action(world)


def slide_closer() -> SlidePolicy:
    """The slide's controller mirrored: from the bar's right, push it shut."""
    return SlidePolicy(direction=-1.0)


CLOSERS = {"open_slide": slide_closer, "open_drawer": DrawerRockPolicy}


class HandlePlay:
    """One play episode of `task`: its scripted controller for 0–`MAX_SCRIPTED_STEPS` steps,
    then (for the slide and the drawer, half the time) the push the other way (the drawer:
    rocked), else a random walk from where the hand is."""

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


__all__ = ["CLOSERS", "PLAY_VERSION", "DrawerClosePolicy", "DrawerRockPolicy", "HandlePlay", "drawer_joint",
           "slide_closer"]
