"""The model endpoints: /v1/predict, /v1/plan, /v1/health, /v1/info.

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

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer

from maskvit.serve.auth import check_bearer
from maskvit.serve.errors import ApiError
from maskvit.serve.frames import NPY_TYPE, dump_npy, encode_png
from maskvit.serve.planning import PlanAbandoned, run_plan
from maskvit.serve.schemas import (
    DecodeSettings,
    ErrorBody,
    Health,
    Info,
    PlanResponse,
    PlanSettings,
    PredictResponse,
)
from maskvit.serve.state import ServerState
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


def _query_doc(model, extra: list[dict]) -> list[dict]:
    """OpenAPI query parameters for .npy bodies: the settings model's fields, plus extras."""
    params = []
    for name, field in model.model_fields.items():
        params.append({"name": name, "in": "query", "required": False,
                       "description": f"(.npy bodies only) {field.description}",
                       "schema": {"type": "string"}})
    return params + extra


def _body_doc(schema: str, npy: str) -> dict:
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}},
        NPY_TYPE: {"schema": {"type": "string", "format": "binary", "description": npy}}}}}


def _npy_response_doc(text: str) -> dict:
    return {"content": {NPY_TYPE: {"schema": {"type": "string", "format": "binary"}}},
            "description": text}


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
    settings = state.settings
    authorised = token_dependencies(settings.token)

    def timing(started: float, result) -> dict:
        total = time.monotonic() - started
        return {"latency_ms": round(total * 1000, 2), "queue_ms": round(result.queue_s * 1000, 2),
                "model_ms": round(result.model_s * 1000, 2),
                "batch_videos": result.batch_videos, "batch_requests": result.batch_jobs}

    @router.get("/health", response_model=Health, summary="liveness and queue depth (no token needed)")
    async def health() -> Health:
        return Health(status="stopping" if state.stopping else "ok", queued=state.batcher.queued(),
                      in_flight=state.in_flight, batches=state.batcher.stats.batches,
                      uptime_s=round(time.monotonic() - state.started, 3))

    @router.get("/info", response_model=Info, dependencies=authorised,
                responses=ERRORS, summary="the model, its geometry, action bounds, defaults and limits")
    async def info() -> Info:
        spec = state.spec
        return Info(
            model=spec.name, preset=spec.preset, resolution=spec.resolution,
            clip_frames=spec.clip_frames, context_frames=spec.context_frames,
            tokens=list(spec.tokens), codebook_size=spec.codebook_size, action_dim=spec.action_dim,
            goal_conditioned=spec.goal_conditioned,
            action_low=list(spec.action_low), action_high=list(spec.action_high),
            device=str(state.predictor.device), precision=state.predictor.precision,
            predict_defaults=spec.predict_defaults(), plan_defaults=spec.plan_defaults(),
            limits={"max_batch": settings.max_batch, "max_wait_ms": settings.max_wait_ms,
                    "queue_limit": settings.queue_limit, "timeout_s": settings.timeout_s,
                    "read_timeout_s": settings.read_timeout_s,
                    "max_connections": settings.max_connections,
                    "max_client_connections": settings.max_client_connections,
                    "max_body_bytes": settings.max_body_bytes, "max_videos": settings.max_videos,
                    "max_plan_samples": settings.max_plan_samples,
                    "max_plan_iterations": settings.max_plan_iterations,
                    "plan_workers": settings.plan_workers},
            auth=settings.token is not None, playground=settings.playground)

    @router.post(
        "/predict", response_model=PredictResponse, dependencies=authorised,
        summary="predict future frames from context frames (+ actions, goal)",
        description="JSON body (PredictRequest, frames as base64 PNG), or a .npy body of uint8 "
                    "context frames (B, Tc, H, W, 3) with the settings, `actions` (JSON) and "
                    "`goal=true` (the last frame of each video is its goal) in the query string. "
                    f"Send `Accept: {NPY_TYPE}` to get the frames (B, N, H, W, 3) as .npy "
                    "(settings then come in X-Maskvit-* headers).",
        responses={**ERRORS, 200: _npy_response_doc("predicted frames")},
        openapi_extra={**_body_doc("PredictRequest", "uint8 context frames (B, Tc[+1], H, W, 3)"),
                       "parameters": _query_doc(DecodeSettings, [
                           {"name": "actions", "in": "query", "required": False,
                            "description": "(.npy bodies only) JSON of the B × (Tc + num_frames) "
                                           "× A actions", "schema": {"type": "string"}},
                           {"name": "goal", "in": "query", "required": False,
                            "description": "(.npy bodies only) true: each video's last frame is "
                                           "its goal frame", "schema": {"type": "boolean"}}])})
    async def predict(request: Request):
        started = time.monotonic()
        body = await request.body()
        if body_kind(request) == "json":
            job = predict_job_from_json(body, state.spec, settings)
        else:
            job = predict_job_from_npy(body, dict(request.query_params), state.spec, settings)
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
        key = job.key
        d = key.decoding
        used = {"num_frames": key.num_frames, "steps": d.steps, "schedule": d.schedule,
                "temperature": d.temperature, "top_p": d.top_p, "unmask": d.unmask,
                "seed": job.seed}
        times = timing(started, result)
        if wants_npy(request):
            return Response(dump_npy(result.value), media_type=NPY_TYPE,
                            headers=_npy_headers({**used, **times}))
        frames = await run_in_threadpool(lambda: [[encode_png(f) for f in video] for video in result.value])
        return JSONResponse({"frames": frames, **used, "timing": times})

    @router.post(
        "/plan", response_model=PlanResponse, dependencies=authorised,
        summary="choose actions that reach a goal image (CEM through the model)",
        description="JSON body (PlanRequest), or a .npy body of uint8 frames (T + 1, H, W, 3): "
                    "the latest T observations, then the goal image, with the settings and "
                    "`context_actions`, `init_mean`, `init_std` (JSON) in the query string. "
                    f"With `Accept: {NPY_TYPE}` the answer is the predicted frames (H, h, w, 3) "
                    "as .npy, the actions (JSON) and cost in X-Maskvit-* headers.",
        responses={**ERRORS, 200: _npy_response_doc("predicted frames of the chosen plan")},
        openapi_extra={**_body_doc("PlanRequest", "uint8 frames (T + 1, H, W, 3): observations, goal"),
                       "parameters": _query_doc(PlanSettings, [
                           {"name": "context_actions", "in": "query", "required": False,
                            "description": "(.npy bodies only) JSON of the T − 1 actions between "
                                           "the observations", "schema": {"type": "string"}}])})
    async def plan(request: Request):
        started = time.monotonic()
        body = await request.body()
        if body_kind(request) == "json":
            job = plan_job_from_json(body, state.spec, settings)
        else:
            job = plan_job_from_npy(body, dict(request.query_params), state.spec, settings)
        state.admit()
        stop = threading.Event()
        try:
            loop = asyncio.get_running_loop()
            work = loop.run_in_executor(state.plan_pool, run_plan, job, state.submit, stop)
            try:
                outcome = await asyncio.wait_for(work, settings.timeout_s)
            except asyncio.TimeoutError:
                stop.set()
                raise Timeout(f"plan did not finish within {settings.timeout_s:g} s; ask for fewer "
                              "samples or iterations") from None
            except PlanAbandoned:
                raise Timeout("plan abandoned: the server is stopping") from None
        finally:
            stop.set()
            state.release()
        chosen = outcome.plan
        cfg = job.config
        cem = chosen.cem
        total = time.monotonic() - started
        times = {"latency_ms": round(total * 1000, 2), "queue_ms": round(outcome.queue_s * 1000, 2),
                 "model_ms": round(outcome.model_s * 1000, 2), "batch_videos": outcome.batch_videos,
                 "batch_requests": outcome.batch_requests}
        meta = {"actions": np.asarray(chosen.actions).tolist(), "cost": float(chosen.cost),
                "best_costs": list(cem.best_costs), "elite_costs": list(cem.elite_costs),
                "samples": cfg.samples, "iterations": cfg.iterations, "horizon": cfg.horizon,
                "seed": job.seed, "model_calls": outcome.model_calls}
        if wants_npy(request):
            return Response(dump_npy(chosen.predicted), media_type=NPY_TYPE,
                            headers=_npy_headers({**meta, **times}))
        frames = await run_in_threadpool(lambda: [encode_png(f) for f in chosen.predicted])
        return JSONResponse({**meta, "frames": frames, "timing": times})

    return router


def _npy_headers(values: dict) -> dict[str, str]:
    """Response metadata of .npy answers, one X-Maskvit-<Name> header per value (JSON)."""
    return {"X-Maskvit-" + "-".join(p.capitalize() for p in k.split("_")): json.dumps(v)
            for k, v in values.items()}

