"""What the server needs to know about its model: geometry, action bounds, defaults.

Built once from the `Predictor`'s config. Action bounds come from the world the model was
trained on: the push world's ±max_step per axis for push models; other datasets have no
recorded bounds, so a generous ±ACTION_LIMIT only keeps absurd numbers out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

ACTION_LIMIT = 100.0  # for datasets whose action bounds the config does not record


@dataclass(frozen=True)
class ModelSpec:
    """Geometry, bounds and defaults of the served model."""

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
    eval: Any  # EvalConfig
    plan: Any  # PlanConfig

    @classmethod
    def from_predictor(cls, predictor, name: str) -> ModelSpec:
        config = predictor.config
        tc, ev = config.transformer, config.eval
        low, high = action_bounds(config.data.dataset, tc.action_dim)
        context = min(max(ev.context_frames, 1), tc.num_frames - 1)
        return cls(
            name=name, preset=config.name, resolution=predictor.resolution,
            clip_frames=tc.num_frames, context_frames=context,
            predicted_frames=max(1, min(ev.predicted_frames, tc.num_frames - context)),
            tokens=(tc.tokens_h, tc.tokens_w), codebook_size=tc.codebook_size,
            action_dim=tc.action_dim, goal_conditioned=tc.goal_conditioned,
            action_low=tuple(low), action_high=tuple(high),
            eval=ev, plan=config.plan,
        )

    def predict_defaults(self) -> dict[str, Any]:
        d = self.eval.decoding
        return {"num_frames": self.predicted_frames, "steps": d.steps, "schedule": d.schedule,
                "temperature": d.temperature, "top_p": d.top_p, "unmask": d.unmask, "seed": 0}

    def plan_defaults(self) -> dict[str, Any]:
        plan = asdict(self.plan) if hasattr(self.plan, "__dataclass_fields__") else dict(self.plan)
        keep = ("samples", "iterations", "horizon", "elite_fraction", "noise_correlation",
                "last_step_weight", "cost", "init_mean", "init_std")
        out = {k: plan[k] for k in keep}
        out["horizon"] = min(out["horizon"], self.clip_frames - self.context_frames)
        # The API's names for the plan's DecodingConfig (flat, as before it was one object).
        decoding = plan["decoding"]
        out.update(decoding_steps=decoding["steps"], schedule=decoding["schedule"],
                   temperature=decoding["temperature"])
        out["seed"] = 0
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def action_bounds(dataset: str, action_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension [low, high] of the actions the model may be given."""
    if dataset == "push" and action_dim == 2:
        from maskvit.sim.config import PushConfig

        bound = PushConfig().max_step
        return np.full(2, -bound), np.full(2, bound)
    return np.full(action_dim, -ACTION_LIMIT), np.full(action_dim, ACTION_LIMIT)
