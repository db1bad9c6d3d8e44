"""/v1/sim: the playground's simulator sessions (the push world, stepped by a browser).

Not part of the model API proper: they let the page show the simulator's real frames
("reality") beside the model's predictions ("dream") and execute planned actions.
Actions are range-checked like the model's; frames travel as base64 PNG.
"""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from maskvit.inference.requests import ACTION_TOLERANCE
from maskvit.serve.frames import encode_png
from maskvit.serve.refusals import BadInput
from maskvit.serve.routes import ERRORS, token_dependencies
from maskvit.serve.schemas import _Strict
from maskvit.serve.state import ServerState


class StartSession(_Strict):
    kind: str = Field("task", description="task: a push task with a goal image rendered by the "
                                          "simulator; episode: a held-out recorded episode")
    seed: int = Field(0, ge=0, description="task seed, or the held-out episode's index")


class StepSession(_Strict):
    action: list[float] = Field(..., description="the action to execute, e.g. [dx, dy] in metres")


def build_sim_router(state: ServerState) -> APIRouter:
    router = APIRouter(prefix="/v1/sim", tags=["playground simulator"])
    sessions = state.sessions
    authorised = token_dependencies(state.settings.token)

    @router.get("", dependencies=authorised, responses=ERRORS,
                summary="what the simulator offers (kinds, held-out episodes, action bounds)")
    async def describe() -> dict:
        return sessions.describe()

    @router.post("/sessions", dependencies=authorised, responses=ERRORS,
                 summary="start a session: first two frames, the action between them, goal")
    async def start(body: StartSession) -> dict:
        out = await run_in_threadpool(sessions.start, body.kind, body.seed)
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
        if (action < low - ACTION_TOLERANCE).any() or (action > high + ACTION_TOLERANCE).any():
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
