"""Errors the server answers with a status code and one line of reason.

Handlers raise these (or a `maskvit.errors.UserError`, answered 422); the app turns them
into `{"detail": "<one line>"}` JSON, never a traceback.
"""

from __future__ import annotations


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
