"""The ASGI app: FastAPI routes, one-line JSON errors, limits, lifespan.

Why FastAPI on Starlette, served by uvicorn: well kept and widely deployed, async (a
waiting request costs a coroutine, not a thread, so hundreds can queue for one model
batch), and its pydantic models give both the request checks and an OpenAPI document
with every field described, from one declaration. uvicorn finishes requests in flight
on SIGTERM/Ctrl-C before the app's shutdown runs, which is the graceful stop we want.

`create_app(predictor, settings)` builds the app; nothing starts until uvicorn runs its
lifespan (batcher thread, plan workers, simulator sessions).

Two ASGI middlewares wrap it: security headers on every answer, and a hard cap on request
bodies (`BodyLimit`). The cap keeps at most `max_bytes` of a request before the app sees
it, so an oversized upload costs neither memory nor model time; the app then gets the
buffered body. A body declared or found to be over the cap is answered 413 at once,
unread; the server's lingering close (`maskvit.serve.runner`) then discards the rest
the client sends, so the client reads the 413 rather than a reset connection. A body that
pauses longer than `read_timeout_s` gets 408, so a slow sender cannot hold a connection
forever.
"""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from maskvit import __version__
from maskvit.errors import UserError
from maskvit.serve.pages import build_pages
from maskvit.serve.refusals import ApiError, one_line
from maskvit.serve.routes import build_router, build_sim_router
from maskvit.serve.schemas import PlanRequest, PredictRequest
from maskvit.serve.settings import ServeSettings
from maskvit.serve.state import ServerState

log = logging.getLogger("maskvit.serve")

DESCRIPTION = ("MaskViT video prediction and visual planning over HTTP. Frames travel as "
               "base64 PNG in JSON or as .npy bodies; concurrent requests are batched on the "
               "model without changing any result (same seed, same frames).")


def _error(status: int, detail: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"detail": one_line(detail)}, status_code=status, headers=headers)


def _validation_detail(err: RequestValidationError) -> str:
    errors = sorted(err.errors(), key=lambda e: e.get("type") != "extra_forbidden")
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    msg = "unknown field" if first.get("type") == "extra_forbidden" else first.get("msg", "invalid")
    return f"{where}: {msg}"


def create_app(predictor, settings: ServeSettings, model_name: str | Path = "model") -> FastAPI:
    """The server app for `predictor` (a `maskvit.inference.predictor.Predictor`) under `settings`."""
    settings.check()
    state = ServerState(predictor, settings, model_name)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        # uvicorn has waited for the requests in flight; finish what is queued, then stop.
        state.close()

    app = FastAPI(title="maskvit serve", version=__version__, description=DESCRIPTION,
                  lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.maskvit = state
    app.include_router(build_router(state))
    if settings.playground:
        app.include_router(build_sim_router(state))
    app.include_router(build_pages(app, settings.playground))
    _add_error_handlers(app)
    _document_bodies(app, [PredictRequest, PlanRequest])
    if settings.cors_origins:  # off unless asked for
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "Accept"])
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes,
                       read_timeout_s=settings.read_timeout_s)
    app.add_middleware(SecurityHeaders)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    """Every error answers {"detail": "<one line>"}; never a traceback."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, err: ApiError) -> JSONResponse:
        return _error(err.status, err.detail, err.headers)

    @app.exception_handler(UserError)
    async def user_error(request: Request, err: UserError) -> JSONResponse:
        return _error(422, str(err))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
        return _error(422, _validation_detail(err))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        return _error(err.status_code, str(err.detail), getattr(err, "headers", None))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, err: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        if isinstance(err, MemoryError):
            return _error(503, "out of memory; send fewer videos or frames")
        return _error(500, f"internal error {type(err).__name__} (the server log has the details)")


def _document_bodies(app: FastAPI, models: list) -> None:
    """Put the JSON request models in the OpenAPI components (the handlers read raw bodies,
    to take .npy too, so FastAPI would not list them itself)."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in models:
            definition = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in definition.pop("$defs", {}).items():
                components.setdefault(name, sub)
            components[model.__name__] = definition
        app.openapi_schema = schema
        return schema

    app.openapi = openapi


# ---------------------------------------------------------------- middleware

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}

# The playground is same-origin HTML/JS with data: images; nothing loads from elsewhere.
CSP = ("default-src 'self'; img-src 'self' data: blob:; script-src 'self'; style-src 'self'; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


async def send_json(send, status: int, detail: str, headers: list | None = None) -> None:
    body = json.dumps({"detail": one_line(detail)}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Refuse request bodies over `max_bytes` with 413, before the app runs."""

    def __init__(self, app, max_bytes: int, read_timeout_s: float = 30.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        too_big = f"request body over the limit of {limit} bytes"
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and not declared.isdigit():
            await send_json(send, 400, "malformed Content-Length header")
            return
        if declared is not None and int(declared) > limit:
            await send_json(send, 413, too_big)
            return
        chunks, total = [], 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), self.read_timeout_s)
            except asyncio.TimeoutError:
                await send_json(send, 408, f"request body not received within {self.read_timeout_s:g} s")
                return
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > limit:  # chunked (no length declared), or longer than declared
                await send_json(send, 413, too_big)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class SecurityHeaders:
    """nosniff, no framing, a strict CSP, no referrer, and no caching of API answers."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = scope.get("path", "").startswith("/v1/")

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"x-content-type-options", b"nosniff"),
                            (b"referrer-policy", b"no-referrer"),
                            (b"content-security-policy", CSP.encode())]
                if api:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
