"""The server's settings, checked before anything is loaded or bound.

Binding anything but a loopback address exposes the model to the network, so it needs
a bearer token (`--token-file`); without one the server refuses to start. Every limit
has a default sized for the shipped push64 model on a small machine.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from maskvit.config import PLAN_RANGES
from maskvit.errors import UserError
from maskvit.inference.requests import Limits

MIN_TOKEN_CHARS = 16
TOKEN_HINT = "python -c 'import secrets; print(secrets.token_urlsafe(32))' > token.txt"


MIB = 2**20


def flag(default: Any, name: str, help: str, *, scale: float = 1.0) -> Any:
    """A setting that `maskvit serve` takes as the flag `name` (its `--help` line is `help`,
    where {default} is the default in the flag's units; the flag's value × `scale` is the
    setting's). `maskvit.commands.serve` builds its flags from these; nothing restates them."""
    return field(default=default, metadata={"flag": name, "help": help, "scale": scale})


@dataclass(frozen=True)
class ServeSettings:
    """Where to listen and how much to accept; each field is one `maskvit serve` flag."""

    host: str = flag("127.0.0.1", "--host", "address to listen on (default {default}; anything "
                                            "but loopback needs --token-file)")
    port: int = flag(8000, "--port", "port (default {default}; 0: a free one)")
    token: str | None = field(default=None, repr=False)  # never printed; from --token-file
    max_batch: int = flag(16, "--max-batch", "most videos run as one model batch (default "
                                             "{default}; 1 turns batching off)")
    max_wait_ms: float = flag(5.0, "--max-wait-ms", "how long a batch waits for more requests "
                                                    "(default {default:g})")
    queue_limit: int = flag(64, "--queue-limit", "requests queued or running at once; more get "
                                                 "503 (default {default})")
    timeout_s: float = flag(120.0, "--timeout", "seconds a request may take before it answers 504 "
                                                "(default {default:g})")
    read_timeout_s: float = flag(30.0, "--read-timeout", "seconds a request's head may take to "
                                 "arrive, and its body may pause, before it answers 408 (default "
                                 "{default:g})")
    max_connections: int = flag(512, "--max-connections", "open connections at once; past it the "
                                "longest-idle one is closed, or the new one refused (503) when all "
                                "are busy (default {default})")
    max_client_connections: int = flag(64, "--max-client-connections", "the same, per client "
                                       "address (default {default}; behind a reverse proxy every "
                                       "client has the proxy's address)")
    max_body_bytes: int = flag(8 * MIB, "--max-body-mb", "largest request body in MiB (default "
                               "{default:g})", scale=MIB)
    max_videos: int = flag(16, "--max-videos", "videos per /v1/predict request (default {default})")
    max_plan_samples: int = flag(256, "--max-plan-samples", "CEM samples per iteration a plan may "
                                 "ask for (default {default})")
    max_plan_iterations: int = flag(5, "--max-plan-iterations", "CEM iterations a plan may ask "
                                    "for (default {default})")
    plan_workers: int = flag(4, "--plan-workers", "plans whose CEM loops run at once (default "
                             "{default})")
    playground: bool = flag(True, "--no-playground", "no playground page and no simulator endpoints")
    max_sim_sessions: int = 8
    cors_origins: tuple[str, ...] = flag((), "--cors-origin", "allow browser pages of ORIGIN to "
                                         "call the API (repeatable; default: none)")
    graceful_timeout_s: float = 60.0

    @property
    def request_limits(self) -> Limits:
        """The caps on one request that the request rules enforce."""
        return Limits(max_videos=self.max_videos, max_plan_samples=self.max_plan_samples,
                      max_plan_iterations=self.max_plan_iterations, max_batch=self.max_batch)

    def check(self) -> None:
        """One-line errors for settings that cannot work (and a missing token)."""
        if not 0 <= self.port <= 65535:
            raise UserError(f"--port must be between 0 and 65535, got {self.port}")
        for name in ("max_batch", "queue_limit", "timeout_s", "read_timeout_s", "max_connections",
                     "max_client_connections", "max_body_bytes", "max_videos", "plan_workers",
                     "max_sim_sessions"):
            value = getattr(self, name)
            if not value > 0:
                raise UserError(f"{flag_of(name)} must be positive, got {value}")
        if self.max_wait_ms < 0:
            raise UserError(f"--max-wait-ms must be 0 or more, got {self.max_wait_ms}")
        PLAN_RANGES["samples"].check("--max-plan-samples", self.max_plan_samples)
        PLAN_RANGES["iterations"].check("--max-plan-iterations", self.max_plan_iterations)
        if not is_loopback(self.host) and not self.token:
            raise UserError(f"--host {self.host} is reachable from other machines: pass "
                            f"--token-file F holding a secret bearer token (make one with: "
                            f"{TOKEN_HINT}), or bind 127.0.0.1")
        if self.token is not None:
            check_token(self.token, "the token")


def flag_of(name: str) -> str:
    """The `maskvit serve` flag of setting `name` (the setting's own name if it has none)."""
    meta = next(f.metadata for f in fields(ServeSettings) if f.name == name)
    return meta.get("flag", name)


def is_loopback(host: str) -> bool:
    """Whether `host` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_token(token: str, where: str) -> None:
    if len(token) < MIN_TOKEN_CHARS:
        raise UserError(f"{where} has {len(token)} characters; use at least {MIN_TOKEN_CHARS} "
                        f"(make one with: {TOKEN_HINT})")
    if not token.isascii() or not token.isprintable() or " " in token:
        raise UserError(f"{where} must be printable ASCII without spaces (it travels in an HTTP header)")


def read_token_file(path: str | Path) -> str:
    """The bearer token in `path` (surrounding whitespace removed), checked."""
    path = Path(path)
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise UserError(f"--token-file {path} not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"--token-file {path} cannot be read: {err}") from None
    if not token:
        raise UserError(f"--token-file {path} is empty; put a secret token in it ({TOKEN_HINT})")
    check_token(token, f"--token-file {path}")
    return token
