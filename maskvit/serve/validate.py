"""Requests -> validated jobs, before any model work; every failure is one 422 line.

Two transports carry the same request: JSON (frames as base64 PNG) and a .npy body
(frames as one uint8 array, the other fields in the query string; `actions` there is
JSON text). This module only unpacks them (schemas, PNG / .npy, JSON in the query); what
makes a request valid (clip space, goal slot, actions, decoding and plan settings, the
server's limits) is `maskvit.inference.requests`, the rules every caller shares.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError

from maskvit.config import PlanConfig
from maskvit.inference import requests
from maskvit.inference.batching import DecodeKey, PredictJob, fresh_seed
from maskvit.inference.requests import Limits
from maskvit.inference.spec import ModelSpec
from maskvit.serve.frames import check_frames, decode_png, decode_pngs, load_npy
from maskvit.serve.refusals import BadInput
from maskvit.serve.schemas import DecodeSettings, PlanRequest, PlanSettings, PredictRequest

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


# ---------------------------------------------------------------- /v1/predict

def _asked(settings: BaseModel, keep_if_none: tuple[str, ...]) -> dict[str, Any]:
    """The settings a request gave: a null for a field in `keep_if_none` means "the
    preset's", for the others (temperature, top_p) "none"."""
    return {name: getattr(settings, name) for name in settings.model_fields_set
            if name != "seed" and (getattr(settings, name) is not None or name not in keep_if_none)}


def _predict_job(context: np.ndarray, raw_actions: Any, goal: np.ndarray | None,
                 settings: DecodeSettings, spec: ModelSpec, limits: Limits) -> PredictJob:
    asked = _asked(settings, ("steps", "schedule", "unmask"))
    asked.pop("num_frames", None)
    b, n_context = context.shape[:2]
    requests.check_videos(b, limits)
    num = requests.frames_to_predict(spec, n_context, settings.num_frames, goal is not None)
    actions = requests.request_actions(raw_actions, spec, b, n_context, num)
    if goal is not None:
        requests.check_goal_count(goal.shape[0], b)
    decoding = requests.decoding_with(spec.eval.decoding, asked)
    key = DecodeKey(context_frames=n_context, num_frames=num, goal=goal is not None,
                    decoding=requests.batchable(decoding))
    seed = fresh_seed() if settings.seed is None else settings.seed
    return PredictJob(context, actions, goal, seed, key)


def predict_job_from_json(body: bytes, spec: ModelSpec, limits: Limits) -> PredictJob:
    request: PredictRequest = parse_model(PredictRequest, body, json_text=True)
    lengths = {len(video) for video in request.context}
    # The counts are checked before any PNG is decoded: the cheap checks come first.
    requests.check_videos(len(request.context), limits)
    if len(lengths) != 1 or 0 in lengths:
        raise BadInput("context: every video needs the same number (at least 1) of context frames")
    if request.goal is not None:
        requests.check_goal_count(len(request.goal), len(request.context))
    requests.check_context(spec, max(lengths), request.goal is not None)
    r = spec.resolution
    context = np.stack([decode_pngs(video, r, f"context[{i}]") for i, video in enumerate(request.context)])
    goal = None if request.goal is None else decode_pngs(request.goal, r, "goal")
    settings = DecodeSettings.model_validate(
        request.model_dump(include=set(DecodeSettings.model_fields), exclude_unset=True))
    return _predict_job(context, request.actions, goal, settings, spec, limits)


def predict_job_from_npy(body: bytes, params: dict[str, str], spec: ModelSpec,
                         limits: Limits) -> PredictJob:
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
    requests.check_videos(array.shape[0], limits)
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
              spec: ModelSpec, limits: Limits) -> PlanJob:
    asked = _asked(settings, requests.PLAN_FIELDS + ("decoding_steps", "schedule"))
    frames, past = requests.plan_context(spec, frames, raw_past)
    config = requests.plan_with(spec, asked, limits)
    low, high = spec.bounds
    seed = fresh_seed() if settings.seed is None else settings.seed
    return PlanJob(frames, past, goal, config, seed, low, high)


def plan_job_from_json(body: bytes, spec: ModelSpec, limits: Limits) -> PlanJob:
    request: PlanRequest = parse_model(PlanRequest, body, json_text=True)
    requests.plan_context(spec, np.zeros((len(request.context), 1)), None)  # counts, before PNGs
    frames = decode_pngs(request.context, spec.resolution, "context")
    goal = decode_png(request.goal, spec.resolution, "goal")
    settings = PlanSettings.model_validate(
        request.model_dump(include=set(PlanSettings.model_fields), exclude_unset=True))
    return _plan_job(frames, request.context_actions, goal, settings, spec, limits)


def plan_job_from_npy(body: bytes, params: dict[str, str], spec: ModelSpec,
                      limits: Limits) -> PlanJob:
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
