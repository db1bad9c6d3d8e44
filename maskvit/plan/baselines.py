"""Baselines that run through the same MPC loop as the model: random and oracle.

- `RandomPolicy`: the paper's random Gaussian policy, N(init_mean, init_std) per step,
  clipped to the action bounds. It says how often a task is solved by chance.
- `OraclePolicy`: the same optimizer as the model's (CEM or MPPI, `plan.optimizer`), but
  every sampled sequence is simulated in the world's scratch copy (`world.scratch()`)
  restored to the current state: a perfect video model. With `cost="pixel"` it renders
  the true future frames and scores them with the model's pixel cost; with `cost="state"`
  (default) it reads the simulator instead of rendering (`scratch.state_cost()`): in the
  push world the object's distance to its goal plus a pull of the pusher towards the spot
  behind the object, in RoboDesk the task's own progress measure plus a pull of the
  fingertips towards what the task moves (`maskvit.plan.worlds.DeskScratch`), summed over
  the horizon with the plan's step weights and expressed in the pixel cost's units (so
  MPPI's γ means the same). This shows the tasks are solvable within the episode and that
  success is measured right; on RoboDesk it is also the affordable oracle, as rendering
  costs ~0.26 CPU-s a frame and stepping ~0.08 (measured, process time).
"""

from __future__ import annotations

import numpy as np

from maskvit.config import PlanConfig
from maskvit.errors import UserError
from maskvit.plan.planner import (
    FrameCost,
    Plan,
    check_plan_config,
    get_cost,
    make_optimizer,
    observe,
    pixel_cost_name,
    standing_still_cost,
)

ORACLE_COSTS = ("state", "pixel")


class RandomPolicy:
    """i.i.d. Gaussian actions around `init_mean` with `init_std`, clipped to the bounds."""

    context = 1

    def __init__(self, config: PlanConfig, low: np.ndarray, high: np.ndarray):
        self.low, self.high = np.asarray(low, float), np.asarray(high, float)
        check_plan_config(config, self.low, self.high)
        self.config = config

    def plan(self, context_frames, context_actions, goal, rng: np.random.Generator) -> Plan:
        cfg = self.config
        shape = (cfg.horizon, len(self.low))
        actions = rng.normal(cfg.init_mean, cfg.init_std, size=shape)
        actions = np.clip(actions, self.low, self.high)
        if cfg.round_gripper:
            actions[:, -1] = np.where(actions[:, -1] >= 0.0, 1.0, -1.0)
        return Plan(actions, None, float("nan"))


def simulate_frames(scratch, state, actions: np.ndarray) -> np.ndarray:
    """(B, H, h, w, 3) uint8: what each action sequence (B, H, A) really shows, run from
    `state` in `scratch` (anything with `set_state`, `move` and `render`: a world's
    `scratch()`, or a `maskvit.sim.PushWorld`): the pixel oracle's true futures."""
    sequences = []
    for sequence in actions:
        scratch.set_state(state)
        shown = []
        for action in sequence:
            scratch.move(action)
            shown.append(scratch.render())
        sequences.append(np.stack(shown))
    return np.stack(sequences)


def simulate_state_costs(scratch, state, actions: np.ndarray) -> np.ndarray:
    """(B, H): `scratch.state_cost()` after each step of each sequence (B, H, A), run from
    `state` without rendering."""
    costs = np.zeros(actions.shape[:2])
    for b, sequence in enumerate(actions):
        scratch.set_state(state)
        for i, action in enumerate(sequence):
            scratch.move(action)
            costs[b, i] = scratch.state_cost()
    return costs


class OraclePolicy:
    """The configured optimizer whose samples are simulated exactly in a scratch copy of
    the world (push or RoboDesk: anything whose `scratch()` keeps the contract above)."""

    context = 1

    def __init__(self, world, config: PlanConfig, cost: str = "state",
                 frame_cost: FrameCost | None = None):
        if cost not in ORACLE_COSTS:
            raise UserError(f"unknown oracle cost {cost!r}; choose one of: {', '.join(ORACLE_COSTS)}")
        self.world = world  # the planning world the loop steps
        self.optimizer = make_optimizer(config, world.action_low, world.action_high)
        self.cost = cost
        # A latent cost names a model's code space, which a simulator has not: pixel_l2 instead.
        self.frame_cost = frame_cost or get_cost(pixel_cost_name(config.cost))
        self.scratch = world.scratch()
        # The state cost renders nothing to score; the chosen plan's frames are rendered for
        # the GIFs only, and a GIF shows the steps that run before the next replan: rendering
        # those alone saves 9 of 10 renders per replan on RoboDesk (~0.26 CPU-s each).
        self.shown_steps = config.replan_every

    def reset(self) -> None:
        self.optimizer.reset()

    def plan(self, context_frames, context_actions, goal, rng: np.random.Generator) -> Plan:
        state = self.world.get_state()
        weights = self.optimizer.weights
        unit = self._pixel_units(context_frames[-1], goal, state) if self.cost == "state" else 1.0
        if self.cost == "pixel":
            observe(self.frame_cost, context_frames[-1])

        def score(actions: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
            if self.cost == "pixel":
                frames = simulate_frames(self.scratch, state, actions)
                return self.frame_cost(frames, goal, weights), frames
            return unit * (simulate_state_costs(self.scratch, state, actions) @ weights), None

        plan = self.optimizer.optimise(score, rng)
        if plan.predicted is None:  # show what the chosen sequence really leads to
            plan.predicted = simulate_frames(self.scratch, state, plan.actions[None, : self.shown_steps])[0]
        return plan

    def _pixel_units(self, frame: np.ndarray, goal: np.ndarray, state) -> float:
        """The pixel cost of standing still here over the state cost of standing still here.

        MPPI's γ is set for the pixel cost (`plan.mppi_gamma`); state costs in these units
        are weighed by it as a model's pixel costs are. CEM ranks samples, so for CEM the
        scale changes nothing.
        """
        weights = self.optimizer.weights
        self.scratch.set_state(state)
        still = self.scratch.state_cost() * float(weights.sum())
        pixels = standing_still_cost(self.frame_cost, frame, goal, weights)
        return pixels / still if still > 0 and pixels > 0 else 1.0

    def close(self) -> None:
        self.scratch.close()
