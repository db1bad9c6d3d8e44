"""The closed loop of visual MPC: plan, execute the first few actions, observe, replan.

Schedule (paper §A.2): one initial action gives the second context frame, then every
`replan_every` steps a policy plans `horizon` actions from the last `context` frames and
the last `context - 1` actions, until `episode_steps` actions (the initial one included)
have run. Success is read from the simulator (the world decides when: the push world at the
end, RoboDesk after any step, as VP2 scores), never from images.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from maskvit.config import PlanConfig
from maskvit.errors import UserError
from maskvit.plan.planner import Plan, check_goal


class World(Protocol):
    """What the loop needs of an environment (`maskvit.plan.worlds`: push and RoboDesk)."""

    action_low: np.ndarray
    action_high: np.ndarray

    def reset(self, task_seed: int) -> np.ndarray: ...  # first observation (h, w, 3) uint8

    def step(self, action: np.ndarray) -> np.ndarray: ...  # next observation

    def goal_image(self) -> np.ndarray: ...

    def success(self) -> bool: ...

    def goal_distance(self) -> float: ...  # how far from the goal (push: metres; RoboDesk: the task's units)

    # Optional: `success_is_kept = True` says a solved episode stays solved whatever follows
    # (RoboDesk, VP2's protocol), so the loop stops at the first solved step; without it
    # (the push world judges the final state) every episode runs all its steps.


class Policy(Protocol):
    """A planner the loop can call: the model planner, the oracle, the random policy."""

    context: int  # frames of context it wants (>= 1); it also gets context - 1 actions

    def plan(
        self,
        context_frames: np.ndarray,
        context_actions: np.ndarray,
        goal: np.ndarray,
        rng: np.random.Generator,
    ) -> Plan: ...


@dataclass
class PlanRecord:
    """One replanning event: at which step, what was chosen, what the policy expected."""

    step: int  # number of actions executed before this plan
    actions: np.ndarray  # (H, A)
    predicted: np.ndarray | None  # (H, h, w, 3) uint8 or None (random policy)
    cost: float


@dataclass
class EpisodeResult:
    task_seed: int
    success: bool
    final_distance: float
    start_distance: float
    frames: np.ndarray  # (steps + 1, h, w, 3) uint8 observations
    actions: np.ndarray  # (steps, A)
    goal: np.ndarray  # (h, w, 3) uint8
    plans: list[PlanRecord] = field(default_factory=list)


def initial_action(config: PlanConfig, dim: int) -> np.ndarray:
    """The action run before planning (so a second context frame exists); zeros by default."""
    return np.asarray(config.initial_action or [0.0] * dim, dtype=float)


def check_action(action: np.ndarray, low: np.ndarray, high: np.ndarray) -> None:
    """An action outside the world's bounds is a caller mistake, reported in one line."""
    if action.shape != low.shape or not np.all(np.isfinite(action)):
        raise UserError(f"action {action.tolist()} must be {len(low)} finite numbers")
    if np.any(action < low - 1e-9) or np.any(action > high + 1e-9):
        raise UserError(
            f"action {np.round(action, 4).tolist()} is outside the bounds "
            f"[{np.round(low, 4).tolist()}, {np.round(high, 4).tolist()}]"
        )


def run_episode(
    world: World,
    policy: Policy,
    task_seed: int,
    config: PlanConfig,
    rng: np.random.Generator,
) -> EpisodeResult:
    """One closed-loop episode on the task of `task_seed`."""
    low, high = np.asarray(world.action_low, float), np.asarray(world.action_high, float)
    if hasattr(policy, "reset"):  # planners that carry state between replans
        policy.reset()
    frames = [world.reset(task_seed)]
    goal = world.goal_image()
    check_goal(goal, frames[0].shape)
    start_distance = world.goal_distance()
    first = initial_action(config, len(low))
    check_action(first, low, high)
    frames.append(world.step(first))
    actions = [first]
    plans: list[PlanRecord] = []
    stop_when_solved = getattr(world, "success_is_kept", False)
    while len(actions) < config.episode_steps and not (stop_when_solved and world.success()):
        context, past = _context(frames, actions, policy.context, len(low))
        plan = policy.plan(context, past, goal, rng)
        plans.append(PlanRecord(len(actions), plan.actions, plan.predicted, plan.cost))
        for action in plan.actions[: min(config.replan_every, config.episode_steps - len(actions))]:
            action = np.asarray(action, dtype=float)
            check_action(action, low, high)
            frames.append(world.step(action))
            actions.append(action)
            if stop_when_solved and world.success():
                break
    return EpisodeResult(
        task_seed=task_seed,
        success=bool(world.success()),
        final_distance=float(world.goal_distance()),
        start_distance=float(start_distance),
        frames=np.stack(frames),
        actions=np.stack(actions),
        goal=goal,
        plans=plans,
    )


def _context(
    frames: list[np.ndarray], actions: list[np.ndarray], count: int, dim: int
) -> tuple[np.ndarray, np.ndarray]:
    """The last `count` frames and the `count - 1` actions between them.

    Early in an episode there may be fewer; the first frame is repeated and zero actions
    fill in, as if the robot had stood still before the episode began.
    """
    recent = frames[-count:]
    context = [frames[0]] * (count - len(recent)) + recent
    between = actions[len(actions) - (count - 1) :] if count > 1 else []
    past = [np.zeros(dim)] * (count - 1 - len(between)) + list(between)
    return np.stack(context), np.asarray(past, dtype=float).reshape(count - 1, dim)
