"""ASGI middleware: a hard cap on request bodies, and security headers on every answer.

The body cap keeps at most `max_bytes` of a request before the app sees it, so an
oversized upload costs neither memory nor model time; the app then gets the buffered
body. A body declared or found to be over the cap is answered 413 at once, unread; the
server's lingering close (`maskvit.serve.connections`) then discards the rest the
client sends, so the client reads the 413 rather than a reset connection. A body that
pauses longer than `read_timeout_s` gets 408, so a slow sender cannot hold a connection
forever.
"""

from __future__ import annotations

import asyncio
import json

from maskvit.serve.refusals import one_line

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
