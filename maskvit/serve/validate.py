"""Requests -> validated jobs, before any model work; every failure is one `BadInput` line.

Two transports carry the same request: JSON (frames as base64 PNG) and a .npy body
(frames as one uint8 array, the other fields in the query string; `actions` there is
JSON text). Both end in the same checks against the model (`ModelSpec`) and the server's
limits (`ServeSettings`): video and frame counts, image sizes, action shapes, finiteness
and bounds, clip length.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError

from maskvit.config import DecodingConfig, PlanConfig
from maskvit.errors import UserError
from maskvit.serve.engine import DecodeKey, PredictJob
from maskvit.serve.errors import BadInput
from maskvit.serve.frames import check_frames, decode_png, decode_pngs, load_npy
from maskvit.serve.sampling import fresh_seed
from maskvit.serve.schemas import DecodeSettings, PlanRequest, PlanSettings, PredictRequest
from maskvit.serve.settings import ServeSettings
from maskvit.serve.spec import ModelSpec

ACTION_TOLERANCE = 1e-6  # bounds are inclusive, up to float32 rounding of the sender


# ---------------------------------------------------------------- generic helpers

def validation_message(err: ValidationError) -> str:
    """The first pydantic error as one line: where, then what."""
    errors = sorted(err.errors(), key=lambda e: e.get("type") != "extra_forbidden")
    first = errors[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "body"
    msg = first.get("msg", "invalid")
    if first.get("type") == "extra_forbidden":
        msg = "unknown field"
    return f"{where}: {msg}"


def parse_model(model: type[BaseModel], data: Any, json_text: bool = False) -> Any:
    try:
        if json_text:
            return model.model_validate_json(data)
        return model.model_validate(data)
    except ValidationError as err:
        raise BadInput(validation_message(err)) from None


def query_settings(params: dict[str, str], model: type[BaseModel], extra: tuple[str, ...]) -> tuple[Any, dict]:
    """Settings from a query string (for .npy bodies): 'null'/'none' mean null; the
    `extra` names are returned apart (raw strings), anything else unknown is an error."""
    fields, rest = {}, {}
    for name, value in params.items():
        if name in extra:
            rest[name] = value
        else:
            fields[name] = None if value.lower() in ("null", "none") else value
    return parse_model(model, fields), rest


MAX_JSON_DEPTH = 8  # arrays in the query string are at most 3 deep (B × T × A actions)


def json_array(text: str, where: str) -> Any:
    """A nested list of numbers from JSON text; nesting is bounded before parsing, since
    the parser recurses once per level (thousands of levels: a RecursionError)."""
    depth = nesting_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise BadInput(f"{where}: nested {depth} levels deep; expected a nested list of numbers "
                       f"(at most {MAX_JSON_DEPTH} levels)")
    try:
        return json.loads(text)
    except ValueError:
        raise BadInput(f"{where}: not valid JSON (expected a nested list of numbers)") from None


def nesting_depth(text: str) -> int:
    """The deepest bracket nesting in `text` (brackets inside strings count too: a list of
    numbers has none there)."""
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def check_actions(raw: Any, shape: tuple[int, ...], spec: ModelSpec, where: str) -> np.ndarray:
    """float32 actions of exactly `shape`, finite, inside the model's action bounds."""
    try:
        actions = np.asarray(raw, dtype=np.float64)
    except (ValueError, TypeError):
        raise BadInput(f"{where}: must be a rectangular nested list of numbers of shape {shape}") from None
    if actions.shape != shape:
        raise BadInput(f"{where}: must have shape {shape}; got {actions.shape}")
    if not np.isfinite(actions).all():
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(actions))[0])
        raise BadInput(f"{where}{list(index)} is {actions[index]}; actions must be finite")
    low = np.asarray(spec.action_low) - ACTION_TOLERANCE
    high = np.asarray(spec.action_high) + ACTION_TOLERANCE
    outside = (actions < low) | (actions > high)
    if outside.any():
        index = tuple(int(i) for i in np.argwhere(outside)[0])
        raise BadInput(f"{where}{list(index)} = {actions[index]:.6g} is outside the action bounds "
                       f"[{spec.action_low[index[-1]]:.6g}, {spec.action_high[index[-1]]:.6g}]")
    return actions.astype(np.float32)


# ---------------------------------------------------------------- /v1/predict

def batchable(decoding: DecodingConfig) -> DecodingConfig:
    """`decoding` with temperature 0 spelled None (no noise either way), so requests that
    decode alike compare equal and share batches."""
    return dataclasses.replace(decoding, temperature=decoding.temperature or None)


def _decode_settings(settings: DecodeSettings, spec: ModelSpec, n_context: int,
                     goal: bool) -> tuple[DecodeKey, int]:
    room = spec.clip_frames - n_context - goal
    if n_context < 1 or room < 1:
        raise BadInput(f"{n_context} context frames{' + 1 goal' if goal else ''} leave no room to "
                       f"predict in the model's {spec.clip_frames}-frame clips")
    if goal and not spec.goal_conditioned:
        raise BadInput("this model was trained without goal frames; send no goal")
    given = settings.model_fields_set
    num = settings.num_frames if settings.num_frames is not None else min(spec.predicted_frames, room)
    if goal and settings.num_frames is None:
        num = room  # the goal fills the clip's last slot, as in training
    if goal and num != room:
        raise BadInput(f"with a goal, num_frames must be {room}: {n_context} context + "
                       f"{room} predicted + the goal fill the model's {spec.clip_frames}-frame clips")
    if num > room:
        raise BadInput(f"num_frames {num} too large: {n_context} context"
                       f"{' + 1 goal' if goal else ''} + {num} frames exceed the model's "
                       f"{spec.clip_frames}-frame clips (at most {room})")
    asked = {name: getattr(settings, name) for name in ("steps", "schedule", "unmask")
             if getattr(settings, name) is not None}
    asked.update({name: getattr(settings, name) for name in ("temperature", "top_p")
                  if name in given})
    decoding = dataclasses.replace(spec.eval.decoding, **asked)
    key = DecodeKey(context_frames=n_context, num_frames=num, goal=goal,
                    decoding=batchable(decoding))
    seed = fresh_seed() if settings.seed is None else settings.seed
    return key, seed


def _predict_job(context: np.ndarray, raw_actions: Any, goal: np.ndarray | None,
                 settings: DecodeSettings, spec: ModelSpec, limits: ServeSettings) -> PredictJob:
    b, n_context = context.shape[:2]
    if b > limits.max_videos:
        raise BadInput(f"{b} videos in one request; this server takes at most {limits.max_videos}")
    key, seed = _decode_settings(settings, spec, n_context, goal is not None)
    actions = None
    if spec.action_dim:
        if raw_actions is None:
            raise BadInput(f"actions: this model is action-conditioned; send B × (Tc + num_frames) "
                           f"× A = {b} × {n_context + key.num_frames} × {spec.action_dim} actions")
        actions = check_actions(raw_actions, (b, n_context + key.num_frames, spec.action_dim), spec,
                                "actions")
    elif raw_actions is not None:
        raise BadInput("actions: this model is not action-conditioned; leave them out")
    if goal is not None and goal.shape[0] != b:
        raise BadInput(f"goal: one goal frame per video is needed ({b}); got {goal.shape[0]}")
    return PredictJob(context, actions, goal, seed, key)


def predict_job_from_json(body: bytes, spec: ModelSpec, limits: ServeSettings) -> PredictJob:
    request: PredictRequest = parse_model(PredictRequest, body, json_text=True)
    lengths = {len(video) for video in request.context}
    if len(request.context) > limits.max_videos:
        raise BadInput(f"{len(request.context)} videos in one request; this server takes at most "
                       f"{limits.max_videos}")
    if len(lengths) != 1 or 0 in lengths:
        raise BadInput("context: every video needs the same number (at least 1) of context frames")
    if max(lengths) >= spec.clip_frames:
        raise BadInput(f"context: {max(lengths)} frames per video; the model's clips hold "
                       f"{spec.clip_frames}, so at most {spec.clip_frames - 1} can be context")
    r = spec.resolution
    context = np.stack([decode_pngs(video, r, f"context[{i}]") for i, video in enumerate(request.context)])
    goal = None
    if request.goal is not None:
        if len(request.goal) != len(request.context):
            raise BadInput(f"goal: one goal frame per video is needed ({len(request.context)}); "
                           f"got {len(request.goal)}")
        goal = decode_pngs(request.goal, r, "goal")
    settings = DecodeSettings.model_validate(
        request.model_dump(include=set(DecodeSettings.model_fields), exclude_unset=True))
    return _predict_job(context, request.actions, goal, settings, spec, limits)


def predict_job_from_npy(body: bytes, params: dict[str, str], spec: ModelSpec,
                         limits: ServeSettings) -> PredictJob:
    settings, rest = query_settings(params, DecodeSettings, ("actions", "goal"))
    goal_flag = rest.get("goal", "false").lower()
    if goal_flag not in ("true", "false", "1", "0"):
        raise BadInput("goal: must be true or false (true: the last frame of each video is its goal)")
    array = check_frames(load_npy(body), spec.resolution, "body", ndim=5)
    has_goal = goal_flag in ("true", "1")
    goal = None
    if has_goal:
        if array.shape[1] < 2:
            raise BadInput("body: with goal=true each video needs context frames and then its goal")
        array, goal = array[:, :-1], np.ascontiguousarray(array[:, -1])
    if array.shape[0] > limits.max_videos:
        raise BadInput(f"{array.shape[0]} videos in one request; this server takes at most "
                       f"{limits.max_videos}")
    if array.shape[1] >= spec.clip_frames:
        raise BadInput(f"body: {array.shape[1]} context frames per video; the model's clips hold "
                       f"{spec.clip_frames}, so at most {spec.clip_frames - 1} can be context")
    raw_actions = json_array(rest["actions"], "actions") if "actions" in rest else None
    return _predict_job(np.ascontiguousarray(array), raw_actions, goal, settings, spec, limits)


# ---------------------------------------------------------------- /v1/plan

@dataclass
class PlanJob:
    """A validated planning request: Tc context frames, Tc−1 actions, goal, CEM config."""

    context: np.ndarray  # (Tc, H, W, 3) uint8
    past: np.ndarray  # (Tc - 1, A) float
    goal: np.ndarray  # (H, W, 3) uint8
    config: PlanConfig  # its `decoding` is what each prediction of the plan uses
    seed: int
    low: np.ndarray
    high: np.ndarray


def _plan_job(frames: np.ndarray, raw_past: Any, goal: np.ndarray, settings: PlanSettings,
              spec: ModelSpec, limits: ServeSettings) -> PlanJob:
    if not spec.action_dim:
        raise BadInput("this model is not action-conditioned; it cannot plan actions")
    tc, a = spec.context_frames, spec.action_dim
    given = len(frames)
    if given > tc:
        raise BadInput(f"context: {given} frames; this model plans from at most {tc} (send the latest)")
    past = np.zeros((given - 1, a))
    if raw_past is not None:
        past = check_actions(raw_past, (given - 1, a), spec, "context_actions").astype(float)
    # Fewer frames than the model's context: the first repeats, as if the robot stood still.
    frames = np.concatenate([np.repeat(frames[:1], tc - given, axis=0), frames])
    past = np.concatenate([np.zeros((tc - given, a)), past]).reshape(tc - 1, a)
    base, given_fields = spec.plan, settings.model_fields_set
    overrides = {name: getattr(settings, name) for name in
                 ("samples", "iterations", "horizon", "elite_fraction", "noise_correlation",
                  "last_step_weight", "cost")
                 if getattr(settings, name) is not None}
    asked = {name: getattr(settings, name) for name in ("decoding_steps", "schedule")
             if getattr(settings, name) is not None}
    if "temperature" in given_fields:
        asked["temperature"] = settings.temperature
    overrides["decoding"] = batchable(dataclasses.replace(
        base.decoding, **{"steps" if k == "decoding_steps" else k: v for k, v in asked.items()}))
    for name in ("init_mean", "init_std"):
        if getattr(settings, name) is not None:
            overrides[name] = tuple(getattr(settings, name))
    horizon = overrides.get("horizon", min(base.horizon, spec.clip_frames - tc))
    if tc + horizon > spec.clip_frames:
        raise BadInput(f"horizon {horizon} too long: {tc} context + {horizon} frames exceed the "
                       f"model's {spec.clip_frames}-frame clips (at most {spec.clip_frames - tc})")
    samples = overrides.get("samples", base.samples)
    iterations = overrides.get("iterations", base.iterations)
    if samples > limits.max_plan_samples:
        raise BadInput(f"samples {samples}: this server takes at most {limits.max_plan_samples}")
    if iterations > limits.max_plan_iterations:
        raise BadInput(f"iterations {iterations}: this server takes at most {limits.max_plan_iterations}")
    overrides.update(horizon=horizon, replan_every=min(base.replan_every, horizon),
                     chunk_size=min(samples, limits.max_batch))
    config = dataclasses.replace(base, **overrides)
    low, high = np.asarray(spec.action_low, float), np.asarray(spec.action_high, float)
    from maskvit.plan.planner import check_plan_config

    try:
        check_plan_config(config, low, high)
    except UserError as err:
        raise BadInput(str(err).replace("plan.", "")) from None
    seed = fresh_seed() if settings.seed is None else settings.seed
    return PlanJob(frames, past, goal, config, seed, low, high)


def plan_job_from_json(body: bytes, spec: ModelSpec, limits: ServeSettings) -> PlanJob:
    request: PlanRequest = parse_model(PlanRequest, body, json_text=True)
    if len(request.context) > spec.context_frames:
        raise BadInput(f"context: {len(request.context)} frames; this model plans from at most "
                       f"{spec.context_frames} (send the latest)")
    frames = decode_pngs(request.context, spec.resolution, "context")
    goal = decode_png(request.goal, spec.resolution, "goal")
    settings = PlanSettings.model_validate(
        request.model_dump(include=set(PlanSettings.model_fields), exclude_unset=True))
    return _plan_job(frames, request.context_actions, goal, settings, spec, limits)


def plan_job_from_npy(body: bytes, params: dict[str, str], spec: ModelSpec,
                      limits: ServeSettings) -> PlanJob:
    list_fields = ("init_mean", "init_std")
    settings_params = {k: v for k, v in params.items() if k not in list_fields}
    settings, rest = query_settings(settings_params, PlanSettings, ("context_actions",))
    for name in list_fields:  # JSON lists in the query string
        if name in params:
            settings = parse_model(PlanSettings, {**settings.model_dump(exclude_unset=True),
                                                  name: json_array(params[name], name)})
    array = check_frames(load_npy(body), spec.resolution, "body", ndim=4)
    if len(array) < 2:
        raise BadInput("body: send the latest observation(s) and then the goal image: (T + 1, H, W, 3)")
    if len(array) - 1 > spec.context_frames:
        raise BadInput(f"body: {len(array) - 1} observations; this model plans from at most "
                       f"{spec.context_frames} (send the latest, then the goal)")
    raw_past = json_array(rest["context_actions"], "context_actions") if "context_actions" in rest else None
    return _plan_job(np.ascontiguousarray(array[:-1]), raw_past, np.ascontiguousarray(array[-1]),
                     settings, spec, limits)
