"""Scripted RoboDesk policies: one per task, plus random exploration, for data and instances.

VP2's RoboDesk data comes from noisy scripted policies (a proportional controller per task,
Gaussian noise of std 0.4 on every action, 30 steps, all tasks mixed). These are our own
controllers of the same kind: each reads the simulator (the fingertips, object positions
and sizes from the model) and steers with a proportional gain; the noise and the random
explorer are separate, so the same controller also rolls out benchmark goals without noise.

What the arm does with an action shapes them. RoboDesk moves the end-effector site by
0.01 × action per IK update, 50 updates a step, and the arm follows about a sixth of each:
one unit of action is about 8 cm a step, whatever the distance. The IK places the site
only (its orientation is whatever the arm's six joints drift to), so the hand is usually
tilted forward and the controllers steer the point between the fingertips, not the site;
the seventh joint (wrist roll, action 3) turns the fingers so the hand's narrow side is
below, or the fingers lie along the way something must move.

Every policy is `reset(world, rng)` once per episode, then `action(world)` once per step,
and returns 5 numbers in [−1, 1] (the caller clips the noisy sum again). Given the world
and the generator passed to `reset`, a policy is deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from maskvit.errors import UserError
from maskvit.sim.desk_world import ACTION_DIM, TASKS, DeskWorld, check_task

# One unit of action moves the hand about 8 cm in a step: a gain of 10 closes ~80 % of a gap.
GAIN = 10.0
OPEN, CLOSED = 1.0, -1.0  # gripper actions
_DESK_TOP = 0.76  # z of the desk's surface
_DESK_FRONT = 0.575  # y of the desk top's front edge
_DESK_RIGHT = 0.6  # x of the desk's right edge
_IK_JOINTS = 6  # RoboDesk's IK moves the arm's first six joints; the seventh is the wrist roll
_TIP = 0.045  # the fingertips' centre lies this far beyond the end-effector site, along the hand


def toward(start: np.ndarray, end: np.ndarray, gain, floor: float = 0.1) -> np.ndarray:
    """A proportional step from `start` to `end`, at least `floor` long (so it never stalls)."""
    offset = np.asarray(end, float) - np.asarray(start, float)
    step = offset * np.asarray(gain, float)
    length = float(np.linalg.norm(step))
    if 0 < length < floor:
        step *= floor / length
    return step


def reach(start: np.ndarray, end: np.ndarray, gain: float = GAIN) -> np.ndarray:
    """A proportional step from `start` to `end`, scaled down as a whole (its direction
    kept, so paths stay straight) until no axis exceeds 1."""
    step = (np.asarray(end, float) - np.asarray(start, float)) * gain
    largest = float(np.abs(step).max())
    return step / largest if largest > 1.0 else step


def fingertips(world: DeskWorld) -> np.ndarray:
    """The point between the fingertips: what touches things. The IK steers the
    end-effector site, 4.5 cm short of it along the hand, and the hand's tilt varies."""
    data = world.physics.named.data
    hand = data.xmat["panda0_link7"].reshape(3, 3)[:, 2]
    return data.site_xpos["end_effector"] + _TIP * hand


def turn_fingers(world: DeskWorld, direction, gain: float = 1.2) -> float:
    """The wrist action that turns the line through both fingers towards `direction` (its
    part across the hand); either way along it will do. One unit of wrist action turns the
    hand about 0.65 rad in a step."""
    data = world.physics.named.data
    hand = data.xmat["panda0_link7"].reshape(3, 3)[:, 2]
    fingers = data.xpos["panda0_leftfinger"] - data.xpos["panda0_rightfinger"]
    direction = np.asarray(direction, float)
    wanted = direction - np.dot(direction, hand) * hand
    if np.linalg.norm(wanted) < 0.3 or np.linalg.norm(fingers) < 1e-6:
        return 0.0  # `direction` is (nearly) along the hand: no roll helps
    angle = np.arctan2(np.dot(np.cross(wanted, fingers), hand), np.dot(wanted, fingers))
    angle = (angle + np.pi / 2) % np.pi - np.pi / 2  # the nearer of the two ways
    return float(np.clip(-gain * angle, -1.0, 1.0))


def level_fingers(world: DeskWorld) -> float:
    """The wrist action that turns the line through the fingers level: the tilted hand's
    narrow side is then below, so it clears what lies behind its fingertips."""
    hand = world.physics.named.data.xmat["panda0_link7"].reshape(3, 3)[:, 2]
    return turn_fingers(world, np.cross(hand, [0.0, 0.0, 1.0]))


def steer(world: DeskWorld, point: np.ndarray, target: np.ndarray, gain: float = GAIN,
          margin: float = 0.05) -> np.ndarray:
    """`reach` from `point` (on the hand) to `target`, corrected for joints at their limits.

    RoboDesk's IK spreads each update over the arm's six joints as if they had no limits;
    a joint held at its limit (the elbow, folded, when the hand comes low and close to the
    base) drops its share and the hand drifts off its line, mostly upwards. This asks for
    the step whose remainder, without the held joints, is the wanted one.
    """
    import mujoco  # present whenever a DeskWorld exists

    model, data = world.physics.model, world.physics.data
    wanted = np.asarray(target, float) - np.asarray(point, float)
    jacobian = np.zeros((3, model.nv))
    mujoco.mj_jacSite(model.ptr, data.ptr, jacobian, None, model.site("end_effector").id)
    jacobian = jacobian[:, :_IK_JOINTS]
    inverse = np.linalg.pinv(jacobian)  # the IK's own least-norm split of a small step
    angles = data.qpos[:_IK_JOINTS]
    low, high = model.jnt_range[:_IK_JOINTS].T
    motion = inverse @ wanted
    held = ((angles < low + margin) & (motion < 0)) | ((angles > high - margin) & (motion > 0))
    if held.any():
        remainder = jacobian @ np.diag((~held).astype(float)) @ inverse
        if abs(np.linalg.det(remainder)) > 1e-9:
            wanted = np.linalg.solve(remainder, wanted)
    return reach(np.zeros(3), wanted, gain)


def make_action(xyz: np.ndarray, wrist: float = 0.0, gripper: float = 0.0) -> np.ndarray:
    out = np.zeros(ACTION_DIM)
    out[:3], out[3], out[4] = xyz, wrist, gripper
    return np.clip(out, -1.0, 1.0)


def clear_desk_edge(tip: np.ndarray, target: np.ndarray, clearance: float = 0.09) -> np.ndarray:
    """`target`, or, while the fingertips are in front of the desk and below its top and the
    target lies over the desk, a point above the edge, short of it (so they do not hit it)."""
    over_desk = target[1] > _DESK_FRONT - 0.02
    below = tip[2] < _DESK_TOP + clearance - 0.02
    if over_desk and below and tip[1] < _DESK_FRONT:
        return np.array([target[0], min(target[1], _DESK_FRONT - 0.03), _DESK_TOP + clearance])
    return target


def _funnel(tip: np.ndarray, target: np.ndarray, height: float = 0.1, slope: float = 1.5,
            slack: float = 0.0) -> np.ndarray:
    """`target` raised while the fingertips are still off to its side: they come down onto
    it from above, not through what stands around it."""
    lateral = float(np.linalg.norm((target - tip)[:2]))
    return target + np.array([0.0, 0.0, min(height, slope * max(0.0, lateral - slack))])


class ButtonPolicy:
    """Come down onto the button from above with the fingers closed, and press it."""

    def __init__(self, colour: str):
        self.colour = colour

    def reset(self, world: DeskWorld, rng: np.random.Generator) -> None:
        pass

    def action(self, world: DeskWorld) -> np.ndarray:
        button = world.physics.named.data.xpos[f"{self.colour}_button"]
        tip = fingertips(world)
        # The button's top is 3 cm above its body; aiming 1 cm below the top presses it.
        target = _funnel(tip, button + np.array([0.0, 0.0, 0.02]), slack=0.02)
        return make_action(reach(tip, clear_desk_edge(tip, target)), gripper=CLOSED)


class SlidePolicy:
    """Get the fingertips left of the slide's handle bar (in front of it first, then level
    with it) and push it right, to the slide's open end. Fingers that slip off the bar line
    up again. `direction` −1 is the mirror image: from the bar's right, push it shut (play
    data, `maskvit.sim.desk_play`).

    The arm pushes the slide (5 N of friction) at only ~3.5 cm a step this way, against ~8 cm
    in free air: opening it takes 15–25 steps. Pushing the panel itself is faster
    (`PanelSlidePolicy`).
    """

    def __init__(self, direction: float = 1.0):
        self.direction = direction  # +1 opens (right), −1 shuts (left)

    def reset(self, world: DeskWorld, rng: np.random.Generator) -> None:
        self.height = rng.uniform(-0.03, 0.03)  # where on the handle bar to push
        self.pushing = False

    def action(self, world: DeskWorld) -> np.ndarray:
        tip = fingertips(world)
        behind = slide_push_point(world, self.height, self.direction)
        error = behind - tip
        # Start pushing once in place; keep on while still roughly behind the bar.
        loose = 1.6 if self.pushing else 1.0
        self.pushing = (-0.07 * loose < self.direction * error[0] < 0.03 * loose
                        and abs(error[1]) < 0.03 * loose and abs(error[2]) < 0.04 * loose)
        if self.pushing:
            hold = error * GAIN
            return make_action(np.array([self.direction, hold[1], hold[2]]), gripper=CLOSED)
        target = slide_route(world, tip, self.height, self.direction)[0]
        return make_action(reach(tip, clear_desk_edge(tip, target)), gripper=CLOSED)


class PanelSlidePolicy:
    """Open the slide fast: from behind and above its handle bar, where the hand bears on the
    sliding panel itself, push right and into the desk at full speed.

    Found by the simulator oracle (its solved open_slide episodes, `benchmarks/RESULTS.md`):
    pushed there the panel moves 12–24 cm a step; from the 10 tuning instances' starts this
    policy opens 6 in 6–10 steps, where `SlidePolicy`'s push on the bar's side (~3 cm a step)
    takes 18–28. Data made with `SlidePolicy` alone shows no
    such fast opening, so a model trained on it cannot draw the plans that open the slide within
    VP2's 15 steps. The place is drawn per episode around the one the oracle used. With the slide
    shut tight (joint below ~0.02) the hand stalls against the cabinet: such episodes show that too.
    """

    def reset(self, world: DeskWorld, rng: np.random.Generator) -> None:
        self.offset = np.array([rng.uniform(0.25, 0.29), rng.uniform(0.07, 0.09), rng.uniform(0.09, 0.11)])
        self.pushing = False

    def action(self, world: DeskWorld) -> np.ndarray:
        tip = fingertips(world)
        target = panel_push_point(world, self.offset)
        error = target - tip
        loose = 1.6 if self.pushing else 1.0
        self.pushing = bool(np.all(np.abs(error) < np.array([0.05, 0.03, 0.04]) * loose))
        if self.pushing:
            return make_action(np.array([1.0, 1.0, error[2] * GAIN]), gripper=CLOSED)
        way = panel_route(world, tip, self.offset)[0]
        return make_action(reach(tip, clear_desk_edge(tip, way)), gripper=CLOSED)


class OffTablePolicy:
    """Get the block off the desk: below z = 0.6 counts.

    A block that stands up (narrower than the open gripper, taller than twice its width)
    topples when pushed, however low, so it is grasped 4.5 cm below its top, carried right
    and let go past the desk's right edge. A lying block is drawn towards the arm, over
    the desk's front edge, by fingertips that come down behind it (far enough behind that
    the tilted hand clears its top) and scrape along the desk: a 6–13 cm trip, where
    pushing it right would be 15–45 cm and turns it.
    """

    def __init__(self, block: str):
        self.block = block

    def reset(self, world: DeskWorld, rng: np.random.Generator) -> None:
        self.lane = rng.uniform(-0.01, 0.01)  # where along the block to take it
        self.holding = False
        self.pull_lane: float | None = None  # the x of the fingertips while they draw the block

    def action(self, world: DeskWorld) -> np.ndarray:
        data, model = world.physics.named.data, world.physics.model
        geom = model.body_geomadr[model.body(self.block).id]
        extent = np.abs(data.geom_xmat[geom].reshape(3, 3)) @ model.geom_size[geom]  # world half-sizes
        block = data.geom_xpos[geom]
        tip = fingertips(world)
        standing = extent[2] > 2 * extent[0] and 2 * max(extent[:2]) < 0.06
        if standing or self.holding:
            return self._grasp_and_carry(world, block, extent, tip)
        return self._draw_forward(world, block, extent, tip)

    def _grasp_and_carry(self, world: DeskWorld, block, extent, tip) -> np.ndarray:
        grip = block + np.array([0.0, 0.0, extent[2] - 0.045])
        error = grip - tip
        wrist = level_fingers(world)  # the fingers either side of the block, along x
        if not self.holding:
            if np.linalg.norm(error[:2]) < 0.012 and abs(error[2]) < 0.015:
                self.holding = True
                return make_action(np.zeros(3), wrist, CLOSED)
            target = _funnel(tip, grip, height=0.08)
            return make_action(reach(tip, clear_desk_edge(tip, target)), wrist, OPEN)
        if np.linalg.norm(error) > 0.05:  # it slipped out: start again
            self.holding = False
            return make_action(np.array([0.0, 0.0, 0.5]), wrist, OPEN)
        if block[0] - extent[0] > _DESK_RIGHT:  # wholly past the edge: let go
            return make_action(np.zeros(3), wrist, OPEN)
        carry = np.array([_DESK_RIGHT + extent[0] + 0.05, block[1], _DESK_TOP + 2 * extent[2] + 0.02])
        return make_action(reach(tip, carry + (tip - block)), wrist, CLOSED)

    def _draw_forward(self, world: DeskWorld, block, extent, tip) -> np.ndarray:
        beyond = np.array([block[0] + self.lane, block[1] + extent[1] + 0.05, _DESK_TOP + 0.012])
        error = beyond - tip
        wrist = level_fingers(world)
        if self.pull_lane is None:
            if abs(error[0]) < 0.04 and abs(error[2]) < 0.025 and -0.05 < error[1] < 0.04:
                self.pull_lane = tip[0]
        elif tip[1] < block[1] or abs(error[2]) > 0.05 or abs(tip[0] - block[0]) > extent[0] + 0.01:
            self.pull_lane = None  # the block is no longer in front of the fingertips
        if self.pull_lane is not None:
            # Straight towards the arm; the hand tilts as it comes, so hold the height firmly.
            hold_x, hold_z = GAIN * (self.pull_lane - tip[0]), 2 * GAIN * error[2]
            return make_action(np.array([hold_x, -1.0, hold_z]), wrist, CLOSED)
        return make_action(reach(tip, clear_desk_edge(tip, _funnel(tip, beyond))), wrist, CLOSED)


class DrawerPolicy:
    """Hook the handle's bar and pull, then push the drawer's front wall from inside.

    The drawer opens along −y, towards the arm, but this low the hand gets no closer to the
    arm's base than y ≈ 0.42–0.47 (RoboDesk's IK folds the elbow to its limit and tilts
    the hand forward to its wrist's limit), while the bar must reach y ≈ 0.29 for success.
    So: (1) closed fingers down into the gap between the bar and the front wall, (2) pull
    as far as the arm goes, (3) lift over the front wall and come down inside the drawer
    near its side (the arm reaches 2–3 cm closer there), (4) open the gripper, whose front
    finger then pushes the wall's inner face on, and push on towards the arm. The fingers
    stay side by side along y, the way the drawer moves. If a pull leaves no room inside,
    pull again. The wall's inner face must come to y = 0.41.

    How far inside counts as room decides most of it. Controllers v2 went in only where the
    fingers stayed 3.5 cm short of the desk's front edge, which a pull rarely allows: 11 of 40
    fresh scenes solved without noise. The simulator oracle goes in right at the edge, and so
    does v3 (`room_margin` 0): 20 of 40 (`benchmarks/RESULTS.md`, "What the data shows").
    """

    def __init__(self, room_margin: float = 0.0):
        self.room_margin = room_margin  # how far short of the desk's front edge the fingers go in

    def reset(self, world: DeskWorld, rng: np.random.Generator) -> None:
        self.stage = "hook"
        self.lane = rng.uniform(-0.03, 0.03)  # where along the bar to hook it
        self.side = 1.0 if rng.uniform() < 0.5 else -1.0  # which side of the drawer to push
        self.last_y: float | None = None

    def action(self, world: DeskWorld) -> np.ndarray:
        g = drawer_geometry(world)
        tip = fingertips(world)
        wrist = turn_fingers(world, [0.0, 1.0, 0.0])
        inside = drawer_inside_point(world, g["x"] + self.side * (g["half_width"] - 0.035), g)
        room = inside[1] + self.room_margin < _DESK_FRONT
        if self.stage == "hook" and room:
            self.stage = "over"
        if self.stage == "hook":
            gap = drawer_hook_point(world, self.lane, g)
            error = gap - tip
            if abs(error[0]) < 0.03 and abs(error[1]) < 0.015 and abs(error[2]) < 0.015:
                self.stage, self.last_y = "pull", None
            else:
                return make_action(reach(tip, drawer_route(world, tip, self.lane, g)[0]), wrist, CLOSED)
        if self.stage == "pull":
            stalled = self.last_y is not None and self.last_y - tip[1] < 0.008
            self.last_y = tip[1]
            if not stalled:
                # The bar is round: pulled, it lifts the fingers over itself unless they
                # are pressed down hard.
                target = np.array([g["x"] + self.lane, tip[1] - 0.1, g["bar_z"] - 0.015])
                move = steer(world, tip, target)
                move[2] = 2 * GAIN * (target[2] - tip[2]) - 0.4
                return make_action(move, wrist, CLOSED)
            self.stage = "over" if room else "hook"
            if not room:
                return make_action(np.array([0.0, 0.3, 0.5]), wrist, CLOSED)  # off the bar, to hook again
        if self.stage == "over":
            error = inside - tip
            if abs(error[0]) < 0.03 and abs(error[1]) < 0.015 and abs(error[2]) < 0.015:
                self.stage = "push"
            else:
                return make_action(reach(tip, over_the_wall(tip, inside, g)), wrist, CLOSED)
        target = np.array([inside[0], tip[1] - 0.1, inside[2]])
        return make_action(steer(world, tip, target), wrist, OPEN)


class DrawerPullbackPolicy:
    """Take the hand to near where the drawer is pulled from inside, then pull it back hard
    towards the arm, touching the drawer or not.

    Why: planning with the shipped model, the hand came near the drawer and then pulled back
    towards the arm with nothing in its fingers, and the model drew the drawer following it
    open (`benchmarks/robodesk_phantom_probe.py`, `benchmarks/RESULTS.md`): its data shows
    such pulls only where the fingers are behind the drawer's front wall and the drawer comes
    along. Here the place the pull starts from is drawn, a third each, at the inside point
    (behind the wall), in front of the wall or above it, and the pull is a planner's kind of
    action: −y at 0.5–1.0 with x and z at random, so the data shows pulls that leave the drawer
    where it is. Behind the wall the hand often does not get in within APPROACH_STEPS, and where
    it does the random pull drags the drawer 1–2 cm before lifting out (7 scenes by hand): the
    sustained pulls that open it stay `DrawerPolicy`'s.
    """

    APPROACH_STEPS = 12  # the pull begins here at the latest, wherever the hand got to
    # where the pull starts from, relative to the inside point: (low, high) of x, y, z offsets
    STARTS = {"inside": ((-0.03, 0.0, -0.01), (0.03, 0.02, 0.01)),
              "front": ((-0.04, -0.10, -0.02), (0.04, -0.05, 0.04)),
              "above": ((-0.04, -0.03, 0.06), (0.04, 0.03, 0.12))}

    def reset(self, world: DeskWorld, rng: np.random.Generator) -> None:
        self.rng = rng
        self.start = list(self.STARTS)[int(rng.integers(len(self.STARTS)))]
        self.offset = rng.uniform(*self.STARTS[self.start])
        self.steps = 0
        self.pulling = False

    def action(self, world: DeskWorld) -> np.ndarray:
        self.steps += 1
        tip = fingertips(world)
        start = drawer_inside_point(world) + self.offset
        if not self.pulling:
            error = start - tip
            self.pulling = bool(np.all(np.abs(error) < 0.03)) or self.steps > self.APPROACH_STEPS
        if self.pulling:
            x, z = self.rng.uniform(-0.7, 0.7, 2)
            return make_action(np.array([x, -self.rng.uniform(0.5, 1.0), z]), gripper=CLOSED)
        g = drawer_geometry(world)
        if start[2] < g["wall_top"] + 0.02 and start[1] > g["wall_front"]:  # behind the wall
            return make_action(reach(tip, over_the_wall(tip, start, g)), gripper=CLOSED)
        return make_action(reach(tip, clear_desk_edge(tip, start)), gripper=CLOSED)


def over_the_wall(tip: np.ndarray, point: np.ndarray, geometry: dict[str, float]) -> np.ndarray:
    """Where fingertips at `tip` make for next on their way to `point` behind the drawer's
    front wall: up over the wall's top first, then along, then down behind it."""
    error = point - tip
    over = geometry["wall_top"] + 0.035
    if error[1] > 0.015 and tip[2] < over - 0.015:
        return np.array([tip[0], tip[1], over])
    if error[1] > 0.015 or abs(error[0]) > 0.03:
        return np.array([point[0], point[1], over])
    return point


def slide_push_point(world: DeskWorld, height: float = 0.0, direction: float = 1.0) -> np.ndarray:
    """(3,) where the fingertips start pushing the slide open: 5 cm left of its handle bar,
    `height` above its axis and 2.5 cm deeper (the fingers then press on the bar's side
    rather than slip off in front of it). `direction` −1: 5 cm right of it, to push it shut."""
    handle = world.physics.named.data.site_xpos["slide_handle"]
    return handle + np.array([-0.05 * direction, 0.025, height])


def slide_route(world: DeskWorld, tip: np.ndarray, height: float = 0.0,
                direction: float = 1.0) -> list[np.ndarray]:
    """The points the fingertips at `tip` make for, in order, to push the slide open: the
    pushing point once lined up with it; before that, a point in front of the bar (−y) and
    left of it first, so the fingers do not hit the bar (or push it shut) on the way.
    `direction` −1 mirrors it: the way to push the slide shut from the bar's right."""
    behind = slide_push_point(world, height, direction)
    error = behind - tip
    if -0.07 < direction * error[0] < 0.03 and abs(error[2]) < 0.04:
        return [behind]
    return [behind - np.array([0.02 * direction, 0.08, 0.0]), behind]


# Where `PanelSlidePolicy` bears on the slide's panel, from the handle, on average (metres):
# right of it, behind it and above it (the simulator oracle's own place, drawn per episode).
PANEL_OFFSET = np.array([0.27, 0.08, 0.10])


def panel_push_point(world: DeskWorld, offset: np.ndarray = PANEL_OFFSET) -> np.ndarray:
    """(3,) where the fingertips bear on the slide's panel to push it open fast."""
    return world.physics.named.data.site_xpos["slide_handle"] + offset


def panel_route(world: DeskWorld, tip: np.ndarray, offset: np.ndarray = PANEL_OFFSET) -> list[np.ndarray]:
    """The points the fingertips at `tip` make for, in order, to push the slide's panel: the
    panel's pushing point once level with it or lined up across the desk; before that, a
    point in front of it (−y) and a little above, so the hand comes at it from the front."""
    target = panel_push_point(world, offset)
    if tip[1] > target[1] - 0.04 or abs(target[0] - tip[0]) < 0.04:
        return [target]
    return [target + np.array([0.0, -0.1, 0.03]), target]


def drawer_route(world: DeskWorld, tip: np.ndarray, lane: float = 0.0,
                 geometry: dict[str, float] | None = None) -> list[np.ndarray]:
    """The points the fingertips at `tip` make for, in order, to hook the drawer's bar: above
    the gap behind the bar while still off to its side (they come down into it, not through
    the bar, which would push the drawer shut), then the gap."""
    gap = drawer_hook_point(world, lane, geometry)
    return [_funnel(tip, gap, height=0.08, slope=2.0), gap]


def drawer_hook_point(world: DeskWorld, lane: float = 0.0,
                      geometry: dict[str, float] | None = None) -> np.ndarray:
    """(3,) where the fingertips hook the drawer's bar to pull it: down in the gap between
    the bar and the front wall, `lane` along the bar from its middle."""
    g = geometry or drawer_geometry(world)
    return np.array([g["x"] + lane, 0.5 * (g["bar_back"] + g["wall_front"]), g["bar_z"] - 0.015])


def drawer_inside_point(world: DeskWorld, x: float | None = None,
                        geometry: dict[str, float] | None = None) -> np.ndarray:
    """(3,) where the fingertips pull the drawer from inside: 3.5 cm behind its front wall and
    3 cm below the wall's top, at `x` (default: the drawer's middle). Where the drawer is
    open enough for fingers to go in, this is where the simulator oracle opens it fast (it
    pulls the wall's inner face; it never hooks the bar) and where `DrawerPolicy` pushes on."""
    g = geometry or drawer_geometry(world)
    return np.array([g["x"] if x is None else x, g["wall_back"] + 0.035, g["wall_top"] - 0.03])


def over_desk_top(tip: np.ndarray) -> bool:
    """Whether fingertips at `tip` are behind the desk top's front edge and above its surface."""
    return bool(tip[1] > _DESK_FRONT and tip[2] > _DESK_TOP)


def on_desk_top(tip: np.ndarray, band: float = 0.03) -> bool:
    """Whether fingertips at `tip` rest on the desk top behind its front edge (their centre within
    `band` of its surface, above or below: the fingers' tilt puts it a little under the surface at
    times), where planned hands pressing down towards the drawer's inside stay put. Fingertips
    in the drawer, under the desk top, are 7 cm lower or more."""
    return bool(tip[1] > _DESK_FRONT and abs(tip[2] - _DESK_TOP) < band)


def drawer_inside_route(world: DeskWorld, tip: np.ndarray, geometry: dict[str, float] | None = None,
                        clear_desk_top: bool = False) -> list[np.ndarray]:
    """The points the fingertips at `tip` make for, in order, to pull the drawer from inside,
    at the place along its front wall nearest them: from in front of the wall, over its top
    first (raised while still off to the side), then down behind it; from behind the wall's
    front face (over the drawer, or in it), straight there. Where the drawer is shut too far
    to let fingers in (the inside point lies under the desk top), the way to hook its bar
    instead (`drawer_route`).

    With `clear_desk_top`, fingertips on or above the desk top behind its front edge first go
    out over the gap between the wall and the edge, then down: the drawer's inside lies under
    the desk top, and the straight way runs through it. Planned hands rested on the desk top
    pressing down towards the inside place in 7 of 15 tuning drawers that leave room
    (`benchmarks/RESULTS.md`, "The desk top in the way")."""
    g = geometry or drawer_geometry(world)
    reach = g["half_width"] - 0.035
    inside = drawer_inside_point(world, float(np.clip(tip[0], g["x"] - reach, g["x"] + reach)), g)
    if inside[1] >= _DESK_FRONT:
        return drawer_route(world, tip, 0.0, g)
    if clear_desk_top and over_desk_top(tip):
        return [np.array([inside[0], inside[1], tip[2]]), inside]
    if tip[1] >= g["wall_front"]:
        return [inside]
    return [_funnel(tip, inside, height=0.065, slope=2.0), inside]


def drawer_geometry(world: DeskWorld) -> dict[str, float]:
    """Where the drawer's handle bar and front wall are now (world frame), read from the
    model: the bar is the drawer's foremost capsule, the front wall its foremost thin box."""
    model, data = world.physics.model, world.physics.data
    body = model.body("drawer").id
    geoms = range(model.body_geomadr[body], model.body_geomadr[body] + model.body_geomnum[body])
    solid = [g for g in geoms if model.geom_contype[g]]
    bar = min((g for g in solid if model.geom_type[g] == 3), key=lambda g: model.geom_pos[g][1])
    wall = min((g for g in solid if model.geom_type[g] == 6 and model.geom_size[g][1] < 0.05),
               key=lambda g: model.geom_pos[g][1])
    radius, thickness = model.geom_size[bar][0], model.geom_size[wall][1]
    return {"x": float(data.geom_xpos[bar][0]), "bar_z": float(data.geom_xpos[bar][2]),
            "half_width": float(model.geom_size[wall][0] - thickness),
            "bar_back": float(data.geom_xpos[bar][1] + radius),
            "wall_front": float(data.geom_xpos[wall][1] - thickness),
            "wall_back": float(data.geom_xpos[wall][1] + thickness),
            "wall_top": float(data.geom_xpos[wall][2] + model.geom_size[wall][2])}


class RandomPolicy:
    """Exploration: smooth random end-effector motion (an AR(1) walk), wrist and gripper too."""

    def reset(self, world: DeskWorld, rng: np.random.Generator) -> None:
        self.rng = rng
        self.current = rng.uniform(-1.0, 1.0, ACTION_DIM)

    def action(self, world: DeskWorld) -> np.ndarray:
        self.current = np.clip(0.7 * self.current + 0.3 * self.rng.uniform(-1.0, 1.0, ACTION_DIM), -1, 1)
        return self.current.copy()


def scripted_policy(task: str, controllers: int | None = None):
    """The scripted controller of `task` (no noise), as of `controllers` (default: the current
    `CONTROLLERS_VERSION`; older ones where a shipped file was made with them)."""
    check_task(task)
    if controllers not in (None, 2, CONTROLLERS_VERSION):
        raise ValueError(f"scripted controllers v{controllers} are not kept; v2 and v{CONTROLLERS_VERSION} are")
    if task.startswith("push_"):
        return ButtonPolicy(task.removeprefix("push_"))
    if task == "open_slide":
        return SlidePolicy()
    if task == "open_drawer":
        return DrawerPolicy(room_margin=0.035 if controllers == 2 else 0.0)
    return OffTablePolicy(task.removesuffix("_off_table"))


# Bump when a controller changes: a collection resumed with other controllers is refused.
# v3: the drawer's fingers go inside it right at the desk's edge (v2: 3.5 cm short of it).
CONTROLLERS_VERSION = 3


@dataclass(frozen=True)
class NoisyMix:
    """How collected episodes are made: a task's scripted policy plus Gaussian noise, or random.

    `noise_std` is VP2's by default (0.4 on every action dimension). It may also be several
    levels, one drawn per scripted episode: at 0.4 the controllers rarely finish the fine
    tasks (open_slide 0/12 scenes against 10/12 at 0.2, `benchmarks/RESULTS.md`), so data made
    at 0.4 alone shows almost no opened slide or drawer for a model to learn. `random_fraction`
    of the episodes explore at random instead, so the data also shows motions no script makes.
    `play_fraction` of the other episodes are play at the task's handle (`maskvit.sim.desk_play`:
    the controller for a while, then the push the other way or a random walk), so the data
    also shows the slide and the drawer being shut; 0 (VP2's mix) draws nothing for it.
    `panel_slide_fraction` of the scripted open_slide episodes push the slide's panel fast
    (`PanelSlidePolicy`, kind "panel") instead of its bar; 0 draws nothing for it either.
    `drawer_pullback_fraction` of the scripted open_drawer episodes pull the hand back from
    near the drawer's inside (`DrawerPullbackPolicy`, kind "pullback"); 0 draws nothing either.
    """

    noise_std: float | tuple[float, ...] = 0.4
    random_fraction: float = 0.15
    play_fraction: float = 0.0
    panel_slide_fraction: float = 0.0
    drawer_pullback_fraction: float = 0.0

    def __post_init__(self) -> None:
        levels = self.noise_std if isinstance(self.noise_std, tuple) else (self.noise_std,)
        if not levels or not all(isinstance(v, int | float) and math.isfinite(v) and v >= 0 for v in levels):
            raise UserError(f"the scripted policies' noise is one or more numbers >= 0, got {self.noise_std!r}")
        for name in ("random_fraction", "play_fraction", "panel_slide_fraction", "drawer_pullback_fraction"):
            share = getattr(self, name)
            if not (isinstance(share, int | float) and 0.0 <= share <= 1.0):
                raise UserError(f"{name} is a share in [0, 1], got {share!r}")

    def choose(self, tasks: tuple[str, ...], rng: np.random.Generator) -> tuple[str, str]:
        """(task, kind) of one episode; kind is "scripted", "random", "play", "panel" or
        "pullback". Without play, panel pushes and pullbacks the draws are the ones the mix made
        before they existed (stores resume identically)."""
        task = tasks[int(rng.integers(len(tasks)))]
        if rng.uniform() < self.random_fraction:
            return task, "random"
        if self.play_fraction and rng.uniform() < self.play_fraction:
            return task, "play"
        if task == "open_slide" and self.panel_slide_fraction and rng.uniform() < self.panel_slide_fraction:
            return task, "panel"
        if task == "open_drawer" and self.drawer_pullback_fraction and rng.uniform() < self.drawer_pullback_fraction:
            return task, "pullback"
        return task, "scripted"

    def episode_noise(self, rng: np.random.Generator) -> float:
        """The noise std of one scripted episode. A single level draws nothing from `rng`: its
        episodes are the ones a single std made before levels existed."""
        if not isinstance(self.noise_std, tuple):
            return float(self.noise_std)
        return float(self.noise_std[int(rng.integers(len(self.noise_std)))])


__all__ = ["CONTROLLERS_VERSION", "TASKS", "DrawerPullbackPolicy", "NoisyMix", "PanelSlidePolicy", "RandomPolicy", "scripted_policy", "toward"]
