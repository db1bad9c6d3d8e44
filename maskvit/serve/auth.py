"""Bearer-token checks: constant-time comparison, the same answer for any wrong token.

With a token configured, every /v1 endpoint but /v1/health needs
`Authorization: Bearer <token>`; the comparison uses `hmac.compare_digest` on bytes so
its time does not reveal how much of a guess was right.
"""

from __future__ import annotations

import hmac

from maskvit.serve.errors import ApiError

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
