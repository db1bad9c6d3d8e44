"""What a caller of a trained model must know about it: geometry, action bounds, defaults.

Built from the model's `Config` (`ModelSpec.from_config`); the predictor, the request
rules (`maskvit.inference.requests`), the server's /v1/info and the VP2 adapter all read
the same one. Action bounds come from the world the model was trained on: the push
world's ±max_step per axis for push models; other datasets record no bounds, so a
generous ±ACTION_LIMIT only keeps absurd numbers out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from maskvit.config import Config, EvalConfig, PlanConfig

ACTION_LIMIT = 100.0  # for datasets whose action bounds the config does not record


@dataclass(frozen=True)
class ModelSpec:
    """Geometry, bounds and defaults of one trained model."""

    name: str
    preset: str
    resolution: int
    clip_frames: int
    context_frames: int
    predicted_frames: int
    tokens: tuple[int, int]
    codebook_size: int
    action_dim: int
    goal_conditioned: bool  # a goal frame may fill the clip's last slot
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]
    eval: EvalConfig
    plan: PlanConfig

    @classmethod
    def from_config(cls, config: Config, name: str = "") -> ModelSpec:
        tc, ev = config.transformer, config.eval
        low, high = action_bounds(config.data.dataset, tc.action_dim)
        context = min(max(ev.context_frames, 1), tc.num_frames - 1)
        return cls(
            name=name, preset=config.name, resolution=config.tokenizer.resolution,
            clip_frames=tc.num_frames, context_frames=context,
            predicted_frames=max(1, min(ev.predicted_frames, tc.num_frames - context)),
            tokens=(tc.tokens_h, tc.tokens_w), codebook_size=tc.codebook_size,
            action_dim=tc.action_dim, goal_conditioned=tc.goal_conditioned,
            action_low=tuple(float(v) for v in low), action_high=tuple(float(v) for v in high),
            eval=ev, plan=config.plan,
        )

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """The action bounds as float arrays (low, high), one entry per action dimension."""
        return np.asarray(self.action_low, float), np.asarray(self.action_high, float)


def action_bounds(dataset: str, action_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension [low, high] of the actions the model may be given."""
    if dataset == "push" and action_dim == 2:
        # Inside: the maskvit.sim package imports gymnasium (~45 ms, `python -X importtime`),
        # which only push models need.
        from maskvit.sim.push_config import PushConfig

        bound = PushConfig().max_step
        return np.full(2, -bound), np.full(2, bound)
    if dataset == "robodesk" and action_dim == 5:  # RoboDesk's own bounds (maskvit.sim.desk_world)
        return np.full(5, -1.0), np.full(5, 1.0)
    return np.full(action_dim, -ACTION_LIMIT), np.full(action_dim, ACTION_LIMIT)
