"""The endpoints: /v1/predict, /v1/plan, /v1/health, /v1/info, and the playground's /v1/sim.

Handlers read the raw body so one endpoint takes JSON (frames as base64 PNG) or a .npy
body (frames as one uint8 array, other fields in the query string), and answer JSON or
.npy as the Accept header asks. Order of work: token, body checks (all of them, cheap),
admission (503 when full), then the model, under the request timeout (504).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import fields

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer

from maskvit.inference import requests
from maskvit.serve.frames import NPY_TYPE, dump_npy, encode_png
from maskvit.serve.refusals import ApiError, BadInput, check_bearer
from maskvit.serve.schemas import (
    DecodeSettings,
    ErrorBody,
    Health,
    Info,
    PlanResponse,
    PlanSettings,
    PredictResponse,
    StartSession,
    StepSession,
)
from maskvit.serve.state import PlanAbandoned, PlanOutcome, ServerState, run_plan
from maskvit.serve.validate import (
    plan_job_from_json,
    plan_job_from_npy,
    predict_job_from_json,
    predict_job_from_npy,
)

bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <token> "
                                                  "(needed when the server has a token)")
JSON_TYPES = ("application/json", "")
NPY_TYPES = (NPY_TYPE, "application/octet-stream")

ERRORS = {status: {"model": ErrorBody, "description": text} for status, text in (
    (401, "missing or wrong bearer token"), (413, "body over the size limit"),
    (415, "unsupported Content-Type"), (422, "bad input: the one-line detail says what"),
    (503, "queue full, retry later"), (504, "timed out"))}


class Timeout(ApiError):
    status = 504


class UnsupportedType(ApiError):
    status = 415


def _query_param(name: str, description: str, kind: str = "string") -> dict:
    return {"name": name, "in": "query", "required": False,
            "description": f"(.npy bodies only) {description}", "schema": {"type": kind}}


def _route_doc(summary: str, description: str, schema: str, npy_body: str, npy_answer: str,
               settings: type, extra: list[dict]) -> dict:
    """The OpenAPI keywords of a model endpoint that takes JSON (`schema`) or a .npy body
    with `settings`' fields and `extra` in the query string, and answers JSON or .npy."""
    params = [_query_param(name, field.description) for name, field in settings.model_fields.items()]
    return {
        "summary": summary, "description": description,
        "responses": {**ERRORS, 200: {"content": {NPY_TYPE: {"schema": {"type": "string", "format": "binary"}}},
                                      "description": npy_answer}},
        "openapi_extra": {
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}},
                NPY_TYPE: {"schema": {"type": "string", "format": "binary", "description": npy_body}}}},
            "parameters": params + extra},
    }


PREDICT_DOC = _route_doc(
    "predict future frames from context frames (+ actions, goal)",
    "JSON body (PredictRequest, frames as base64 PNG), or a .npy body of uint8 context frames "
    "(B, Tc, H, W, 3) with the settings, `actions` (JSON) and `goal=true` (the last frame of "
    f"each video is its goal) in the query string. Send `Accept: {NPY_TYPE}` to get the frames "
    "(B, N, H, W, 3) as .npy (settings then come in X-Maskvit-* headers).",
    "PredictRequest", "uint8 context frames (B, Tc[+1], H, W, 3)", "predicted frames", DecodeSettings,
    [_query_param("actions", "JSON of the B × (Tc + num_frames) × A actions"),
     _query_param("goal", "true: each video's last frame is its goal frame", "boolean")])
PLAN_DOC = _route_doc(
    "choose actions that reach a goal image (CEM through the model)",
    "JSON body (PlanRequest), or a .npy body of uint8 frames (T + 1, H, W, 3): the latest T "
    "observations, then the goal image, with the settings and `context_actions`, `init_mean`, "
    f"`init_std` (JSON) in the query string. With `Accept: {NPY_TYPE}` the answer is the "
    "predicted frames (H, h, w, 3) as .npy, the actions (JSON) and cost in X-Maskvit-* headers.",
    "PlanRequest", "uint8 frames (T + 1, H, W, 3): observations, goal",
    "predicted frames of the chosen plan", PlanSettings,
    [_query_param("context_actions", "JSON of the T − 1 actions between the observations")])


def body_kind(request: Request) -> str:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in JSON_TYPES:
        return "json"
    if content_type in NPY_TYPES:
        return "npy"
    raise UnsupportedType(f"Content-Type {content_type!r} not supported: send application/json "
                          f"or {NPY_TYPE}")


def wants_npy(request: Request) -> bool:
    return NPY_TYPE in request.headers.get("accept", "").lower()


def token_dependencies(token: str | None) -> list:
    """Route dependencies: the bearer scheme (for the OpenAPI page) and the check itself."""
    async def require_token(request: Request) -> None:
        check_bearer(request.headers.get("authorization"), token)

    return [Depends(bearer), Depends(require_token)]


def build_router(state: ServerState) -> APIRouter:
    """The /v1 model endpoints bound to `state`."""
    router = APIRouter(prefix="/v1")
    authorised = token_dependencies(state.settings.token)
    router.add_api_route("/health", _health(state), methods=["GET"], response_model=Health,
                         summary="liveness and queue depth (no token needed)")
    router.add_api_route("/info", _info(state), methods=["GET"], response_model=Info,
                         dependencies=authorised, responses=ERRORS,
                         summary="the model, its geometry, action bounds, defaults and limits")
    router.add_api_route("/predict", _predict(state), methods=["POST"],
                         response_model=PredictResponse, dependencies=authorised, **PREDICT_DOC)
    router.add_api_route("/plan", _plan(state), methods=["POST"], response_model=PlanResponse,
                         dependencies=authorised, **PLAN_DOC)
    return router


def _timing(started: float, queue_s: float, model_s: float, videos: int, requests_: int) -> dict:
    """Where a request's time went (the `timing` of every answer)."""
    return {"latency_ms": round((time.monotonic() - started) * 1000, 2),
            "queue_ms": round(queue_s * 1000, 2), "model_ms": round(model_s * 1000, 2),
            "batch_videos": videos, "batch_requests": requests_}


def _health(state: ServerState):
    async def health() -> Health:
        return Health(status="stopping" if state.stopping else "ok", queued=state.batcher.queued(),
                      in_flight=state.in_flight, batches=state.batcher.stats.batches,
                      uptime_s=round(time.monotonic() - state.started, 3))

    return health


def _info(state: ServerState):
    spec, settings = state.spec, state.settings
    # The limits are the numeric `maskvit serve` flags (the port is no limit).
    limits = {f.name: getattr(settings, f.name) for f in fields(settings)
              if "flag" in f.metadata and f.name != "port"
              and isinstance(f.default, int | float) and not isinstance(f.default, bool)}

    async def info() -> Info:
        return Info(
            model=spec.name, preset=spec.preset, resolution=spec.resolution,
            clip_frames=spec.clip_frames, context_frames=spec.context_frames,
            tokens=list(spec.tokens), codebook_size=spec.codebook_size, action_dim=spec.action_dim,
            goal_conditioned=spec.goal_conditioned,
            action_low=list(spec.action_low), action_high=list(spec.action_high),
            device=str(state.predictor.device), precision=state.predictor.precision,
            predict_defaults=requests.predict_defaults(spec),
            plan_defaults=requests.plan_defaults(spec), limits=limits,
            auth=settings.token is not None, playground=settings.playground)

    return info


def _predict(state: ServerState):
    settings = state.settings

    async def predict(request: Request):
        started = time.monotonic()
        job = await _read_job(state, request, predict_job_from_json, predict_job_from_npy)
        state.admit()
        try:
            future = state.submit(job)
            try:
                result = await asyncio.wait_for(asyncio.wrap_future(future), settings.timeout_s)
            except asyncio.TimeoutError:
                job.abandoned.set()  # a running batch of abandoned jobs stops at its next step
                raise Timeout(f"prediction did not finish within {settings.timeout_s:g} s") from None
        finally:
            state.release()
        d = job.key.decoding
        used = {"num_frames": job.key.num_frames, "steps": d.steps, "schedule": d.schedule,
                "temperature": d.temperature, "top_p": d.top_p, "unmask": d.unmask, "seed": job.seed}
        times = _timing(started, result.queue_s, result.model_s, result.batch_videos, result.batch_jobs)
        return await _answer(request, result.value, used, times)

    return predict


def _plan(state: ServerState):

    async def plan(request: Request):
        started = time.monotonic()
        job = await _read_job(state, request, plan_job_from_json, plan_job_from_npy)
        outcome = await _run_plan(state, job)
        chosen, cfg = outcome.plan, job.config
        times = _timing(started, outcome.queue_s, outcome.model_s, outcome.batch_videos,
                        outcome.batch_requests)
        meta = {"actions": np.asarray(chosen.actions).tolist(), "cost": float(chosen.cost),
                "best_costs": list(chosen.cem.best_costs), "elite_costs": list(chosen.cem.elite_costs),
                "samples": cfg.samples, "iterations": cfg.iterations, "horizon": cfg.horizon,
                "seed": job.seed, "model_calls": outcome.model_calls}
        return await _answer(request, chosen.predicted, meta, times)

    return plan


async def _read_job(state: ServerState, request: Request, from_json, from_npy):
    """The request's validated job, from a JSON body or a .npy body with a query string."""
    body = await request.body()
    limits = state.settings.request_limits
    if body_kind(request) == "json":
        return from_json(body, state.spec, limits)
    return from_npy(body, dict(request.query_params), state.spec, limits)


async def _answer(request: Request, frames: np.ndarray, meta: dict, times: dict) -> Response:
    """Frames (..., H, W, 3) uint8 and what made them: .npy with X-Maskvit-* headers when the
    Accept header asks for it, else JSON with the frames as base64 PNGs (nested as given)."""
    if wants_npy(request):
        return Response(dump_npy(frames), media_type=NPY_TYPE, headers=_npy_headers({**meta, **times}))

    def pngs(array: np.ndarray):
        return encode_png(array) if array.ndim == 3 else [pngs(a) for a in array]

    encoded = await run_in_threadpool(pngs, frames)
    return JSONResponse({"frames": encoded, **meta, "timing": times})


async def _run_plan(state: ServerState, job) -> PlanOutcome:
    """Admit the plan, run it on a plan worker under the request timeout (504), and stop it
    when the request gives up."""
    state.admit()
    stop = threading.Event()
    try:
        work = asyncio.get_running_loop().run_in_executor(state.plan_pool, run_plan, job,
                                                          state.submit, stop)
        try:
            return await asyncio.wait_for(work, state.settings.timeout_s)
        except asyncio.TimeoutError:
            stop.set()
            raise Timeout(f"plan did not finish within {state.settings.timeout_s:g} s; ask for "
                          "fewer samples or iterations") from None
        except PlanAbandoned:
            raise Timeout("plan abandoned: the server is stopping") from None
    finally:
        stop.set()
        state.release()


def _npy_headers(values: dict) -> dict[str, str]:
    """Response metadata of .npy answers, one X-Maskvit-<Name> header per value (JSON)."""
    return {"X-Maskvit-" + "-".join(p.capitalize() for p in k.split("_")): json.dumps(v)
            for k, v in values.items()}



def build_sim_router(state: ServerState) -> APIRouter:
    """/v1/sim: the playground's simulator sessions (the push world or RoboDesk, as the
    served model's world; stepped by a browser).

    Not part of the model API proper: they let the page show the simulator's real frames
    ("reality") beside the model's predictions ("dream") and execute planned actions.
    Actions are range-checked like the model's; frames travel as base64 PNG.
    """
    router = APIRouter(prefix="/v1/sim", tags=["playground simulator"])
    sessions = state.sessions
    authorised = token_dependencies(state.settings.token)

    @router.get("", dependencies=authorised, responses=ERRORS,
                summary="what the simulator offers (world, kinds, tasks or held-out episodes, "
                        "action bounds, keys)")
    async def describe() -> dict:
        return await run_in_threadpool(sessions.describe)  # RoboDesk reads its instance file once

    @router.post("/sessions", dependencies=authorised, responses=ERRORS,
                 summary="start a session: first two frames, the action between them, goal")
    async def start(body: StartSession) -> dict:
        out = await run_in_threadpool(sessions.start, body.kind, body.seed, body.task)
        out["frames"] = [encode_png(f) for f in out["frames"]]
        out["goal"] = encode_png(out["goal"]) if out.get("goal") is not None else None
        return out

    @router.post("/sessions/{session_id}/step", dependencies=authorised,
                 responses=ERRORS, summary="execute one action; the new real frame")
    async def step(session_id: str, body: StepSession) -> dict:
        action = np.asarray(body.action, dtype=np.float64)
        low, high = np.asarray(sessions.action_low), np.asarray(sessions.action_high)
        if action.shape != low.shape or not np.isfinite(action).all():
            raise BadInput(f"action: must be {len(low)} finite numbers; got {body.action}")
        tolerance = requests.ACTION_TOLERANCE
        if (action < low - tolerance).any() or (action > high + tolerance).any():
            raise BadInput(f"action {body.action} is outside the bounds [{low.tolist()}, {high.tolist()}]")
        out = await run_in_threadpool(sessions.step, session_id, np.clip(action, low, high))
        out["frame"] = encode_png(out["frame"])
        return out

    @router.delete("/sessions/{session_id}", dependencies=authorised,
                   responses=ERRORS, summary="close a session")
    async def close(session_id: str) -> dict:
        await run_in_threadpool(sessions.close, session_id)
        return {"closed": session_id}

    return router
