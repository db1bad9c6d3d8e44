"""Baselines that run through the same MPC loop as the model: random and oracle.

- `RandomPolicy`: the paper's random Gaussian policy, N(init_mean, init_std) per step,
  clipped to the action bounds. It says how often a task is solved by chance.
- `OraclePolicy`: the same CEM, but every sampled sequence is simulated in a scratch copy
  of the world restored to the current state. With `cost="pixel"` it scores the true
  future frames with the model's pixel cost: what a perfect video model would achieve.
  With `cost="state"` (default) it scores object-to-goal distances read from the
  simulator, plus a pull of the pusher towards the spot behind the object: this shows
  the tasks are solvable within the episode and that success is measured right.
"""

from __future__ import annotations

import numpy as np

from maskvit.config import PlanConfig
from maskvit.errors import UserError
from maskvit.plan.planner import FrameCost, Plan, check_plan_config, get_cost, make_optimizer

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
    `state` in `scratch` (a `maskvit.sim.PushWorld`): the pixel oracle's true futures."""
    sequences = []
    for sequence in actions:
        scratch.set_state(state)
        shown = []
        for action in sequence:
            scratch.move(action)
            shown.append(scratch.render())
        sequences.append(np.stack(shown))
    return np.stack(sequences)


class OraclePolicy:
    """CEM whose samples are simulated exactly in a scratch copy of the push world."""

    context = 1

    def __init__(
        self,
        world,
        config: PlanConfig,
        cost: str = "state",
        approach_weight: float = 0.5,
        frame_cost: FrameCost | None = None,
    ):
        from maskvit.sim import PushWorld

        if cost not in ORACLE_COSTS:
            raise UserError(f"unknown oracle cost {cost!r}; choose one of: {', '.join(ORACLE_COSTS)}")
        self.world = world  # the PushPlanningWorld the loop steps
        self.optimizer = make_optimizer(config, world.action_low, world.action_high)
        self.cost = cost
        self.approach_weight = approach_weight
        self.frame_cost = frame_cost or get_cost(config.cost)
        self.scratch = PushWorld(world.config)

    def reset(self) -> None:
        self.optimizer.reset()

    def plan(self, context_frames, context_actions, goal, rng: np.random.Generator) -> Plan:
        state = self.world.get_state()
        task = self.world.task
        goal_xy = np.asarray(task.goal_xy)
        reach = self.world.config.pusher_contact  # where the pusher touches the object's back

        def score(actions: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
            if self.cost == "pixel":
                frames = simulate_frames(self.scratch, state, actions)
                return self.frame_cost(frames, goal, self.optimizer.weights), frames
            batch, horizon = actions.shape[:2]
            step_costs = np.zeros((batch, horizon))
            for b in range(batch):
                self.scratch.set_state(state)
                for i in range(horizon):
                    self.scratch.move(actions[b, i])
                    box = self.scratch.box_positions()[task.object_index]
                    away = box - goal_xy
                    behind = box + reach * away / max(np.linalg.norm(away), 1e-6)
                    pusher = self.scratch.pusher_position()[:2]
                    step_costs[b, i] = np.linalg.norm(away) + self.approach_weight * (
                        np.linalg.norm(pusher - behind)
                    )
            return step_costs @ self.optimizer.weights, None

        plan = self.optimizer.optimise(score, rng)
        if plan.predicted is None:  # show what the chosen sequence really leads to
            plan.predicted = simulate_frames(self.scratch, state, plan.actions[None])[0]
        return plan

    def close(self) -> None:
        self.scratch.close()
