"""The server's settings, checked before anything is loaded or bound.

Binding anything but a loopback address exposes the model to the network, so it needs
a bearer token (`--token-file`); without one the server refuses to start. Every limit
has a default sized for the shipped push64 model on a small machine.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from maskvit.errors import UserError

MIN_TOKEN_CHARS = 16
TOKEN_HINT = "python -c 'import secrets; print(secrets.token_urlsafe(32))' > token.txt"


@dataclass(frozen=True)
class ServeSettings:
    """Where to listen and how much to accept; see `maskvit serve --help`."""

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = field(default=None, repr=False)  # never printed
    max_batch: int = 16  # videos per model batch
    max_wait_ms: float = 5.0  # how long a batch waits for companions
    queue_limit: int = 64  # requests admitted at once (queued or running); more: 503
    timeout_s: float = 120.0  # a request running longer answers 504
    read_timeout_s: float = 30.0  # a request head slower than this, or a body pausing longer: 408
    max_connections: int = 512  # open at once; past it an idle one is closed, or the new one refused
    max_client_connections: int = 64  # the same, per client address
    max_body_bytes: int = 8 * 2**20
    max_videos: int = 16  # videos per /v1/predict request
    max_plan_samples: int = 256  # CEM samples per iteration (M)
    max_plan_iterations: int = 5  # CEM iterations (K)
    plan_workers: int = 4  # plans that run their CEM loop at once
    playground: bool = True  # the page at / and the simulator endpoints it uses
    max_sim_sessions: int = 8
    cors_origins: tuple[str, ...] = ()  # none unless asked for
    graceful_timeout_s: float = 60.0

    def check(self) -> None:
        """One-line errors for settings that cannot work (and a missing token)."""
        if not 0 <= self.port <= 65535:
            raise UserError(f"--port must be between 0 and 65535, got {self.port}")
        positive = {"--max-batch": self.max_batch, "--queue-limit": self.queue_limit,
                    "--timeout": self.timeout_s, "--read-timeout": self.read_timeout_s,
                    "--max-connections": self.max_connections,
                    "--max-client-connections": self.max_client_connections,
                    "--max-body-mb": self.max_body_bytes,
                    "--max-videos": self.max_videos, "--plan-workers": self.plan_workers,
                    "--max-sim-sessions": self.max_sim_sessions}
        for flag, value in positive.items():
            if not value > 0:
                raise UserError(f"{flag} must be positive, got {value}")
        if self.max_wait_ms < 0:
            raise UserError(f"--max-wait-ms must be 0 or more, got {self.max_wait_ms}")
        if self.max_plan_samples < 2 or self.max_plan_iterations < 1:
            raise UserError("--max-plan-samples must be >= 2 and --max-plan-iterations >= 1")
        if not is_loopback(self.host) and not self.token:
            raise UserError(f"--host {self.host} is reachable from other machines: pass "
                            f"--token-file F holding a secret bearer token (make one with: "
                            f"{TOKEN_HINT}), or bind 127.0.0.1")
        if self.token is not None:
            check_token(self.token, "the token")


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
