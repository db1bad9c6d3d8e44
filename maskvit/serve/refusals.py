"""What the server refuses, and how: a status code and one line of reason.

Handlers raise these (or a `maskvit.errors.UserError`, answered 422); the app turns them
into `{"detail": "<one line>"}` JSON, never a traceback. Bearer tokens are checked here
too: with a token configured, every /v1 endpoint but /v1/health needs
`Authorization: Bearer <token>`, compared with `hmac.compare_digest` on bytes so its time
does not reveal how much of a guess was right.
"""

from __future__ import annotations

import hmac


class ApiError(Exception):
    """A request the server refuses: HTTP `status` and a one-line `detail`."""

    status = 400

    def __init__(self, detail: str, status: int | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = one_line(detail)
        if status is not None:
            self.status = status
        self.headers = headers or {}


class BadInput(ApiError):
    """Malformed or out-of-range input (422)."""

    status = 422


class Busy(ApiError):
    """The queue is full (503, with Retry-After)."""

    status = 503


def one_line(text: str, limit: int = 500) -> str:
    """Collapse whitespace to one line and cap its length (an error never spans lines)."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


CHALLENGE = {"WWW-Authenticate": "Bearer"}


class Unauthorized(ApiError):
    status = 401


def check_bearer(header: str | None, token: str | None) -> None:
    """Raise `Unauthorized` unless `header` is "Bearer <token>" (no token configured: pass)."""
    if token is None:
        return
    if not header:
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'", headers=CHALLENGE)
    scheme, _, supplied = header.partition(" ")
    if scheme.lower() != "bearer" or not supplied:
        raise Unauthorized("malformed Authorization header: send 'Authorization: Bearer <token>'",
                           headers=CHALLENGE)
    if not hmac.compare_digest(supplied.strip().encode("utf-8", "surrogateescape"),
                               token.encode("utf-8")):
        raise Unauthorized("wrong bearer token", headers=CHALLENGE)
