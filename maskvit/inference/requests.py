"""The rules of a valid prediction or plan request, written once.

Every caller that asks a trained model for frames or plans (`Predictor.predict`, the
`predict`, `evaluate` and `plan` commands, the server, the VP2 adapter, the demo) checks
its request here and nowhere else:

- clip space: context + predicted (+ goal) frames fit the model's clip;
- the goal slot: a goal frame fills the clip's last slot, as in training, so with a goal
  the predicted frames are exactly the room left;
- actions: shape (B, Tc + N, A), finite, inside the model's action bounds;
- decoding overrides (`decoding_with`) and planner overrides (`plan_with`), whose ranges are
  `maskvit.config`'s `DECODING_RANGES` / `PLAN_RANGES`, plus a server's caps (`Limits`);
- a command's `--set` flags (`config_with_flags`): the same decoding and plan rules, so the
  CLI and the server reach the decoder and the planner through this one module.

Every failure is one `UserError` line. `Names` says how the caller spells the fields
(the server's JSON `num_frames`, the CLI's `--frames`), so the message names what the user
typed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from maskvit.config import (
    Config,
    DecodingConfig,
    PlanConfig,
    apply_overrides,
    check_decoding,
    check_plan,
    check_plan_horizon,
)
from maskvit.errors import UserError
from maskvit.inference.spec import ModelSpec

ACTION_TOLERANCE = 1e-6  # bounds are inclusive, up to float32 rounding of the sender

# What one request may ask at most: bounds on the work a request costs, not on validity
# (a config accepts more). The server's schemas take these as their upper limits.
REQUEST_CAPS: dict[str, float] = {"num_frames": 1024, "steps": 128, "temperature": 100.0,
                                  "last_step_weight": 1e6}

# A plan request's settings: PlanConfig fields by their own names, and the plan's
# decoding fields by the request's names (flat: `decoding_steps` is plan.decoding.steps).
PLAN_FIELDS = ("samples", "iterations", "horizon", "elite_fraction", "noise_correlation",
               "last_step_weight", "cost", "init_mean", "init_std")
PLAN_DECODING_FIELDS = {"decoding_steps": "steps", "schedule": "schedule",
                        "temperature": "temperature"}


@dataclass(frozen=True)
class Names:
    """How a caller spells the request's fields in its error messages."""

    context: str = "context"
    num_frames: str = "num_frames"
    actions: str = "actions"


API_NAMES = Names()
CLI_NAMES = Names(context="--context", num_frames="--frames", actions="--actions")


@dataclass(frozen=True)
class Limits:
    """A server's caps on one request (None: no cap beyond the config's ranges)."""

    max_videos: int | None = None
    max_plan_samples: int | None = None
    max_plan_iterations: int | None = None
    max_batch: int | None = None  # a plan's prediction chunks hold at most this many


# ---------------------------------------------------------------- clip space, goal slot

def check_goal_allowed(spec: ModelSpec, goal: bool) -> None:
    if goal and not spec.goal_conditioned:
        raise UserError("this model was trained without goal frames "
                        "(transformer.goal_conditioned is false); leave the goal out")


def check_context(spec: ModelSpec, n_context: int, goal: bool, names: Names = API_NAMES) -> int:
    """The frames left to predict after `n_context` context frames (and a goal)."""
    check_goal_allowed(spec, goal)
    most = spec.clip_frames - 1 - goal
    if not 1 <= n_context <= most:
        raise UserError(f"{names.context} must be between 1 and {most}: the model's clips hold "
                        f"{spec.clip_frames} frames{', the last for the goal' if goal else ''}, "
                        f"so at most {most} can be context; got {n_context}")
    return spec.clip_frames - n_context - goal


def frames_to_predict(spec: ModelSpec, n_context: int, num_frames: int | None, goal: bool,
                      names: Names = API_NAMES) -> int:
    """How many frames to predict: `num_frames`, checked, or the default (the preset's
    predicted frames, fewer when the clip is shorter; with a goal, exactly the room left,
    because the goal sits in the clip's last slot, where training put it)."""
    room = check_context(spec, n_context, goal, names)
    if num_frames is None:
        return room if goal else min(spec.predicted_frames, room)
    if goal and num_frames != room:
        raise UserError(f"with a goal, {names.num_frames} must be {room}: predict {room} frames "
                        f"from {n_context} context frames, and the goal fills the model's "
                        f"{spec.clip_frames}-frame clips")
    if not 1 <= num_frames <= room:
        raise UserError(f"{names.num_frames} must be between 1 and {room} with {n_context} context "
                        f"frames: more would exceed the model's {spec.clip_frames}-frame clips; "
                        f"got {num_frames}")
    return num_frames


def frame_indices(frames: Sequence[int], num_frames: int) -> list[int]:
    """Indices into `num_frames` predicted frames (negative ones count from the end),
    checked: a one-line error for an empty list or one out of range."""
    picked = [int(i) for i in frames]
    if not picked or any(not -num_frames <= i < num_frames for i in picked):
        raise UserError(f"frames to decode must be 1 or more indices into the {num_frames} "
                        f"predicted frames (−{num_frames} … {num_frames - 1}); got {list(frames)}")
    return [i % num_frames for i in picked]


def check_videos(count: int, limits: Limits) -> None:
    if limits.max_videos is not None and count > limits.max_videos:
        raise UserError(f"{count} videos in one request; this server takes at most "
                        f"{limits.max_videos}")


def check_goal_count(goals: int, videos: int) -> None:
    if goals != videos:
        raise UserError(f"goal: one goal frame per video is needed ({videos}); got {goals}")


# ---------------------------------------------------------------- actions

def check_actions(raw: Any, shape: tuple[int, ...], spec: ModelSpec, where: str = "actions",
                  bounded: bool = True) -> np.ndarray:
    """float32 actions of exactly `shape`, finite and (`bounded`) inside the model's bounds."""
    try:
        actions = np.asarray(raw, dtype=np.float64)
    except (ValueError, TypeError):
        raise UserError(f"{where}: must be a rectangular nested list of numbers of shape "
                        f"{shape}") from None
    if actions.shape != shape:
        raise UserError(f"{where}: must have shape {shape}; got {actions.shape}")
    if not np.isfinite(actions).all():
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(actions))[0])
        raise UserError(f"{where}{list(index)} is {actions[index]}; actions must be finite")
    if bounded:
        low, high = spec.bounds
        outside = (actions < low - ACTION_TOLERANCE) | (actions > high + ACTION_TOLERANCE)
        if outside.any():
            index = tuple(int(i) for i in np.argwhere(outside)[0])
            raise UserError(f"{where}{list(index)} = {actions[index]:.6g} is outside the action "
                            f"bounds [{low[index[-1]]:.6g}, {high[index[-1]]:.6g}]")
    return actions.astype(np.float32)


def request_actions(raw: Any, spec: ModelSpec, videos: int, n_context: int, num_frames: int,
                 names: Names = API_NAMES, bounded: bool = True) -> np.ndarray | None:
    """The (B, Tc + N, A) actions an action-conditioned model needs (None for one without)."""
    if not spec.action_dim:
        if raw is not None:
            raise UserError(f"{names.actions}: this model is not action-conditioned; leave them out")
        return None
    shape = (videos, n_context + num_frames, spec.action_dim)
    if raw is None:
        raise UserError(f"{names.actions}: this model is action-conditioned; send B × (Tc + "
                        f"num_frames) × A = {' × '.join(map(str, shape))} actions")
    return check_actions(raw, shape, spec, names.actions, bounded)


# ---------------------------------------------------------------- decoding and plan overrides

def decoding_with(base: DecodingConfig, asked: dict[str, Any], where: str = "decoding") -> DecodingConfig:
    """`base` with the fields in `asked` replaced (temperature / top_p None: none), checked."""
    unknown = sorted(set(asked) - {f.name for f in dataclasses.fields(DecodingConfig)})
    if unknown:
        raise UserError(f"unknown decoding setting {unknown[0]!r}")
    decoding = dataclasses.replace(base, **asked)
    check_decoding(decoding, where)
    return decoding


def batchable(decoding: DecodingConfig) -> DecodingConfig:
    """`decoding` with temperature 0 spelled None (no noise either way), so requests that
    decode alike compare equal and share batches."""
    return dataclasses.replace(decoding, temperature=decoding.temperature or None)


def plan_with(spec: ModelSpec, asked: dict[str, Any], limits: Limits = Limits()) -> PlanConfig:
    """The model's `plan` config with a request's settings (`PLAN_FIELDS`,
    `PLAN_DECODING_FIELDS`) in place, checked against the plan's rules, the clip and `limits`."""
    base = spec.plan
    changes = {name: tuple(v) if isinstance(v, list) else v
               for name, v in asked.items() if name in PLAN_FIELDS}
    changes["decoding"] = batchable(decoding_with(base.decoding, {
        PLAN_DECODING_FIELDS[name]: v for name, v in asked.items() if name in PLAN_DECODING_FIELDS}))
    room = spec.clip_frames - spec.context_frames
    horizon = changes.setdefault("horizon", min(base.horizon, room))  # longer: check_plan_fits
    samples = changes.get("samples", base.samples)
    for name, value, cap in (("samples", samples, limits.max_plan_samples),
                             ("iterations", changes.get("iterations", base.iterations),
                              limits.max_plan_iterations)):
        if cap is not None and value > cap:
            raise UserError(f"{name} {value}: this server takes at most {cap}")
    cap = limits.max_batch or base.chunk_size  # 0: the predictor's device decides
    changes.update(replan_every=min(base.replan_every, horizon),
                   chunk_size=min(samples, cap) if cap else 0)
    config = dataclasses.replace(base, **changes)
    try:
        check_plan_fits(spec, config)
    except UserError as err:  # a request names its fields without the config's section
        raise UserError(str(err).replace("plan.", "")) from None
    return config


def check_plan_fits(spec: ModelSpec, plan: PlanConfig) -> None:
    """A plan's settings against the plan's rules, the model's clip and its action bounds:
    what a server's plan request and a command's `--set plan.*` flags must both pass."""
    check_plan_horizon(plan.horizon, spec.clip_frames, spec.context_frames)
    check_plan(plan, *spec.bounds)


def config_with_flags(config: Config, flags: Sequence[str]) -> Config:
    """A model's config with a command's `--set section.key=value` flags, parsed and
    range-checked as every config override is (`apply_overrides`: decoding and plan ranges
    included); its plan then checked against the clip and the action bounds as a server's
    plan request is (`check_plan_fits`). The CLI's door to the server's rules."""
    if not flags:
        return config
    config = apply_overrides(config, list(flags))
    spec = ModelSpec.from_config(config)
    if spec.action_dim:
        check_plan_fits(spec, config.plan)
    return config


def plan_context(spec: ModelSpec, frames: np.ndarray, past: Any) -> tuple[np.ndarray, np.ndarray]:
    """A plan's Tc context frames and Tc − 1 actions from the latest 1..Tc observations and
    the actions between them (default zeros); fewer frames repeat the first, as if the
    robot had stood still."""
    if not spec.action_dim:
        raise UserError("this model is not action-conditioned; it cannot plan actions")
    tc, a, given = spec.context_frames, spec.action_dim, len(frames)
    if not 1 <= given <= tc:
        raise UserError(f"context: {given} frames; this model plans from at most {tc} (send the latest)")
    actions = np.zeros((given - 1, a))
    if past is not None:
        actions = check_actions(past, (given - 1, a), spec, "context_actions").astype(float)
    frames = np.concatenate([np.repeat(frames[:1], tc - given, axis=0), frames])
    actions = np.concatenate([np.zeros((tc - given, a)), actions]).reshape(tc - 1, a)
    return frames, actions


# ---------------------------------------------------------------- what a request leaves out

def predict_defaults(spec: ModelSpec) -> dict[str, Any]:
    """The settings a prediction uses for each one a request leaves out."""
    d = spec.eval.decoding
    return {"num_frames": spec.predicted_frames, "steps": d.steps, "schedule": d.schedule,
            "temperature": d.temperature, "top_p": d.top_p, "unmask": d.unmask, "seed": 0}


def plan_defaults(spec: ModelSpec) -> dict[str, Any]:
    """The settings a plan uses for each one a request leaves out, by the request's names."""
    plan = spec.plan
    out: dict[str, Any] = {name: getattr(plan, name) for name in PLAN_FIELDS}
    out["horizon"] = min(out["horizon"], spec.clip_frames - spec.context_frames)
    out.update({name: getattr(plan.decoding, field) for name, field in PLAN_DECODING_FIELDS.items()})
    out["seed"] = 0
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}
