"""A RoboDesk planning cost with the oracle's reach term, read from predicted frames.

Where VP2's pixel cost fails on RoboDesk ("Where RoboDesk planning fails", RESULTS.md): on
open_slide and open_drawer it does not prefer going for the handle even on the simulator's
own frames, and `pixel_l2_progress` cannot help while no sample moves the handle (nothing
to read). The simulator oracle, which does open them, scores what is left of the task
*plus the hand's distance to what the task moves* (`maskvit.plan.worlds.DeskScratch`).
`ReachNet` reads that distance from a frame: the success classifier's small conv net with
one regression output per task, trained on an episode store whose frames carry their
simulator states (`maskvit train-classifier --kind reach`). `plan.cost=pixel_l2_reach`:

    Σ_i c_i (‖frame_i − goal‖² + PROGRESS_WEIGHT × remaining_i + REACH_WEIGHT × reach_i)

with remaining_i the progress reading of `pixel_l2_progress` and reach_i the net's reading,
in metres, of the end effector's distance to the button top, the slide's handle or the
drawer's bar.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from maskvit.config import PlanConfig
from maskvit.errors import UserError
from maskvit.plan.desk_progress_cost import PROGRESS_WEIGHT, remaining_progress
from maskvit.plan.planner import pixel_l2_cost
from maskvit.plan.success_classifier import SuccessNet

# Pixel-cost units per metre of reach by default (`plan.reach_weight`, where they are explained).
REACH_WEIGHT = PlanConfig.reach_weight
# The tasks a reach reader knows by default: those with a reach target and a progress reading.
REACH_TASKS = ("push_red", "push_green", "push_blue", "open_slide", "open_drawer")
# What a reader's distances are measured to (`train-classifier --reach-targets`): "object",
# the end effector to what the task moves (`desk_task_target`; readers from before the choice);
# "approach", the length of the fingertips' way to where the scripted controller begins the
# task, by its own route (`desk_approach_length`); "panel", the same but the slide's way ends
# where the fast panel push bears on it (`PanelSlidePolicy`), not at the bar's side; "inside",
# the same but the drawer's way ends inside it behind its front wall, where the simulator
# oracle pulls it open (`drawer_inside_route`), not at the gap behind its bar; "inside_clear",
# the same but a hand on the desk top goes out over the gap before down, not through the desk.
REACH_TARGETS = ("object", "approach", "panel", "inside", "inside_clear")
# Each way-measuring target's places: (the slide's, the drawer's) in `desk_approach_length`.
TARGET_PLACES = {"approach": ("bar", "hook"), "panel": ("panel", "hook"), "inside": ("bar", "inside"),
                 "inside_clear": ("bar", "inside_clear")}


class ReachNet(SuccessNet):
    """uint8 frames (N, S, S, 3) → the end effector's distance in metres to each task's
    target (N, len(tasks)). The success classifier's architecture; its outputs are distances."""

    kind = "reach"
    targets = "object"  # one of REACH_TARGETS, set from the file by `load_classifier`

    @torch.no_grad()
    def distances(self, frames: np.ndarray, task: str, batch: int = 1024) -> np.ndarray:
        """float32 metres for uint8 frames of any leading shape (..., S, S, 3), never below 0."""
        return np.maximum(self.logits(frames, task, batch), 0.0)


def reach_labels(states: np.ndarray, tasks: tuple[str, ...]) -> np.ndarray:
    """float32 (N, len(tasks)): for each `state_vector` row, the end effector's distance in
    metres to each task's target (`maskvit.plan.worlds.desk_task_target`), the slide's handle
    and the drawer's bar placed by the row's joints in a RoboDesk scene of our own."""
    from maskvit.plan.worlds import desk_task_target
    from maskvit.sim.desk_world import STATE_COLUMNS, DeskWorld

    _check_reach_tasks(tasks)
    states = np.asarray(states, np.float64)
    column = {name: STATE_COLUMNS.index(name) for name in ("ee_x", "slide", "drawer")}
    end_effector = states[:, column["ee_x"]:column["ee_x"] + 3]
    world = DeskWorld()
    try:
        world.reset(0)
        named, physics = world.physics.named.data, world.physics
        targets = np.empty((len(states), len(tasks), 3))
        for row, state in enumerate(states):
            named.qpos["slide_joint"] = state[column["slide"]]
            named.qpos["drawer_joint"] = state[column["drawer"]]
            physics.forward()
            for i, task in enumerate(tasks):
                targets[row, i] = desk_task_target(world, task)
    finally:
        world.close()
    return np.linalg.norm(targets - end_effector[:, None], axis=-1).astype(np.float32)


def approach_labels(sim_states: np.ndarray, tasks: tuple[str, ...], slide: str = "bar",
                    drawer: str = "hook") -> np.ndarray:
    """float32 (N, len(tasks)): for each saved simulator state (`DeskWorld.get_state`), the
    length in metres of the fingertips' way to where each task is begun (`desk_approach_length`;
    `slide` picks the slide's pushing place, "bar" or "panel"; `drawer` the drawer's pulling
    place, "hook", "inside" or "inside_clear")."""
    from maskvit.plan.worlds import desk_approach_length
    from maskvit.sim.desk_policies import fingertips
    from maskvit.sim.desk_world import DeskWorld

    _check_reach_tasks(tasks)
    world = DeskWorld()
    try:
        world.reset(0)
        out = np.empty((len(sim_states), len(tasks)), np.float32)
        for row, state in enumerate(np.asarray(sim_states, np.float64)):
            world.set_state(state)
            tip = fingertips(world)
            out[row] = [desk_approach_length(world, task, tip, slide, drawer) for task in tasks]
    finally:
        world.close()
    return out


def _check_reach_tasks(tasks: tuple[str, ...]) -> None:
    for task in tasks:
        if task not in REACH_TASKS:
            raise UserError(f"a reach reader reads {', '.join(REACH_TASKS)}, not {task!r}")


@dataclass
class ReachCost:
    """`plan.cost=pixel_l2_reach` for one RoboDesk task: a `FrameCost` (`maskvit.plan.planner`)
    over frames (M, H, S, S, 3) uint8."""

    net: ReachNet
    task: str
    progress_weight: float = PROGRESS_WEIGHT
    reach_weight: float = REACH_WEIGHT
    progress_gate: float = 0.0  # metres; 0: progress always counts (`plan.progress_gate`)
    gate_open: bool = field(default=True, init=False)  # set per replan by `observe`

    def __post_init__(self) -> None:
        if self.net.kind != "reach":
            raise UserError("plan.cost=pixel_l2_reach needs a reach reader (maskvit train-classifier "
                            "--kind reach), not a success classifier")
        self.net.task_index(self.task)
        self.gate_open = self.progress_gate <= 0  # shut until a replan's observed frame opens it
        remaining_progress(np.zeros((0, 64, 64, 3), np.uint8), self.task)  # no reading: one line now

    def observe(self, frame: np.ndarray) -> None:
        """Open the progress term for this replan iff the reader reads the hand in the observed
        frame (S, S, 3) within `progress_gate` metres of its target (always, without a gate)."""
        if self.progress_gate > 0:
            self.gate_open = bool(self.net.distances(frame[None], self.task)[0] <= self.progress_gate)

    def __call__(self, frames: np.ndarray, goal: np.ndarray, weights: np.ndarray) -> np.ndarray:
        weights = np.asarray(weights, np.float32)
        state = self.reach_weight * self.net.distances(frames, self.task)  # (M, H)
        if self.gate_open:
            state = state + self.progress_weight * remaining_progress(frames, self.task)
        return pixel_l2_cost(frames, goal, weights) + state @ weights
