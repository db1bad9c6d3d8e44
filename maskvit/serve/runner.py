"""Running the app under uvicorn: on a socket we bind ourselves, with our connection rules.

Binding first (then handing the socket to uvicorn) lets `--port 0` pick a free port and
report it, and turns "address in use" into a one-line error before the model loads.
`ThreadedServer` runs the same server in a background thread: tests and benchmarks use
it to get a real HTTP server on a random loopback port and stop it cleanly.

Connections: a deadline for request heads, caps per client and in all, lingering close.
Why in uvicorn's h11 protocol (subclassed, `GuardedH11Protocol`), and not in uvicorn's
settings or the app: uvicorn's `limit_concurrency` counts every open connection, idle ones
included, and answers 503 to every request past it, so a few hundred connections that send
half a request and stop shut everyone out, /v1/health too; and uvicorn sets no deadline on
a request's head, so they stay forever. The app (ASGI) cannot help: it sees a request only
once its head is complete. So the rules live where connections are:

- A request head must arrive within `read_timeout_s` of the connection being ready for
  it (opened, or its previous answer sent): a half-sent head then gets 408, a silent
  connection is closed. A trickle does not restart the clock.
- One client (IP address) holds at most `max_client_connections`, the server at most
  `max_connections`. A connection past either cap first closes the longest-waiting
  connection of that client (or of anyone) that has no request in progress, as nginx
  reuses idle connections when it runs out; so a new request, a health check say, still
  gets in. Only when all of them are busy is the new one refused with 503.
- An answer sent before its request body was read (413, 408) is followed by a lingering
  close: the server stops writing, then reads and discards what the client still sends
  (for at most LINGER_S), so the client gets to read the answer instead of a reset.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import functools
import itertools
import json
import os
import socket
import threading
import time
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from maskvit.errors import UserError
from maskvit.serve.settings import ServeSettings


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            raise UserError(f"port {port} on {host} is in use; choose another --port "
                            "(0 picks a free one)") from None
        if err.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) or isinstance(err, socket.gaierror):
            raise UserError(f"cannot listen on {host}: {err.strerror or err}; pass an address of "
                            "this machine (127.0.0.1, 0.0.0.0, ...)") from None
        if err.errno == errno.EACCES:
            raise UserError(f"no permission to listen on port {port}; use a port above 1023") from None
        raise
    # Listen now: clients that connect before uvicorn has started wait in the backlog
    # instead of being refused (the start line is printed before uvicorn runs).
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def uvicorn_config(app, settings: ServeSettings, log_level: str = "info") -> uvicorn.Config:
    """uvicorn settings: our app on h11 under our connection rules (`GuardedH11Protocol`;
    they replace uvicorn's `limit_concurrency`, which counts idle connections), and the
    graceful-stop timeout. Work is bounded by the app's own admission (`queue_limit`)."""
    http = guarded_h11(settings.max_connections, settings.max_client_connections,
                       settings.read_timeout_s)
    return uvicorn.Config(app, log_level=log_level, http=http, ws="none", lifespan="on",
                          timeout_graceful_shutdown=int(max(1, settings.graceful_timeout_s)),
                          timeout_keep_alive=5, server_header=False)


class ThreadedServer:
    """A real uvicorn server in a daemon thread, on a socket bound to (host, port), set up
    as `maskvit serve` sets it up (`app` is one `create_app` made)."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        self.sock = bind_socket(host, port)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn_config(app, app.state.maskvit.settings, log_level))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True, name="maskvit-uvicorn")

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 30.0) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        self.sock.close()

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas for this process (a no-op elsewhere; False then).

    The server's many threads (uvicorn's pool, the plan workers) each get an arena, and
    arenas keep freed pages: in a 480 s soak the default let the server's resident size
    creep up (minimum 694 -> 788 MB), with 2 arenas it went up and down (ending 110 MB
    lower than halfway). benchmarks/RESULTS.md, "Serving". MALLOC_ARENA_MAX, when set,
    wins.
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = getattr(libc, "mallopt", None)
    except OSError:
        return False
    if mallopt is None:
        return False
    m_arena_max = -8  # glibc's M_ARENA_MAX
    return bool(mallopt(m_arena_max, arenas))


# ---------------------------------------------------------------- connections

LINGER_S = 30.0  # longest a lingering close reads and discards (nginx's lingering_time)
REFUSED_LINGER_S = 2.0  # a refused connection: long enough to read its request, no longer


class ConnectionGuard:
    """Which client holds which connections; closes idle ones when a cap is reached.

    A connection is idle while it waits for a request head (or lingers after its last
    answer); `idle_since` orders them, oldest first. Runs on the event loop only.
    """

    def __init__(self, max_connections: int, max_client_connections: int) -> None:
        self.max_connections = max_connections
        self.max_client_connections = max_client_connections
        self.by_client: dict[str, list[GuardedH11Protocol]] = {}
        self.ticks = itertools.count()  # an order for idle_since without clock ties

    def admit(self, conn: GuardedH11Protocol) -> str | None:
        """Count `conn` in, closing an idle connection when a cap is full; or say why not."""
        host = conn.client_host
        mine = self.by_client.setdefault(host, [])
        if len(mine) >= self.max_client_connections and not self._evict_oldest_idle(mine):
            return (f"too many connections from {host}, all with requests in progress (at most "
                    f"{self.max_client_connections} per client); retry when one has finished")
        everyone = [c for held in self.by_client.values() for c in held]
        if len(everyone) >= self.max_connections and not self._evict_oldest_idle(everyone):
            return (f"the server holds {self.max_connections} connections, all with requests in "
                    "progress; retry shortly")
        mine.append(conn)
        return None

    def forget(self, conn: GuardedH11Protocol) -> None:
        held = self.by_client.get(conn.client_host, [])
        if conn in held:
            held.remove(conn)
        if not held:
            self.by_client.pop(conn.client_host, None)

    def _evict_oldest_idle(self, candidates: list[GuardedH11Protocol]) -> bool:
        idle = [c for c in candidates if c.idle_since is not None]
        if not idle:
            return False
        oldest = min(idle, key=lambda c: c.idle_since)
        self.forget(oldest)
        oldest.close_now()
        return True


def guarded_h11(max_connections: int, max_client_connections: int, read_timeout_s: float):
    """The `http=` protocol factory for `uvicorn.Config`: one guard per server."""
    guard = ConnectionGuard(max_connections, max_client_connections)
    return functools.partial(GuardedH11Protocol, guard=guard, read_timeout_s=read_timeout_s)


def raw_answer(status: int, reason: str, detail: str, extra: bytes = b"") -> bytes:
    """A complete HTTP/1.1 answer that closes the connection, for use outside h11's cycle."""
    body = json.dumps({"detail": detail}).encode()
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n").encode() + extra + b"\r\n" + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol under a `ConnectionGuard`, a head deadline and lingering close."""

    def __init__(self, *args: Any, guard: ConnectionGuard, read_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard = guard
        self.read_timeout_s = read_timeout_s
        self.client_host = ""
        self.idle_since: int | None = None  # a guard tick while idle, else None
        self.head_timer: asyncio.TimerHandle | None = None
        self.linger_timer: asyncio.TimerHandle | None = None
        self.lingering = False
        self.lost = False
        self.raw_transport: asyncio.Transport | None = None

    # ------------------------------------------------------------------ uvicorn's hooks

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.raw_transport = transport
        super().connection_made(_LingeringCloseTransport(transport, self))
        self.client_host = self.client[0] if self.client else ""
        self._note_state()
        refusal = self.guard.admit(self)
        if refusal is not None:
            transport.write(raw_answer(503, "Service Unavailable", refusal, b"retry-after: 1\r\n"))
            self.linger(REFUSED_LINGER_S)  # not counted: it closes soon whatever comes

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            return  # read and thrown away: the answer is already sent
        super().data_received(data)
        self._note_state()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._note_state()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._cancel_timers()
        self.guard.forget(self)
        super().connection_lost(exc)

    def shutdown(self) -> None:
        if self.lingering:
            self.close_now()
        else:
            super().shutdown()

    # ------------------------------------------------------------------ our rules

    def _waiting_for_head(self) -> bool:
        return (self.conn.their_state is h11.IDLE
                and (self.cycle is None or self.cycle.response_complete))

    def _note_state(self) -> None:
        """Start the head deadline when the connection begins waiting; stop it when busy."""
        if self.lingering or self.raw_transport is None or self.raw_transport.is_closing():
            return
        if self._waiting_for_head():
            if self.idle_since is None:
                self.idle_since = next(self.guard.ticks)
                self.head_timer = self.loop.call_later(self.read_timeout_s, self._head_timed_out)
        elif self.idle_since is not None:
            self.idle_since = None
            self._cancel_timers()

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if self.raw_transport is None or self.raw_transport.is_closing():
            return
        if self.conn.trailing_data[0]:  # part of a head came: say why it is cut off
            self.raw_transport.write(raw_answer(
                408, "Request Timeout",
                f"request head not received within {self.read_timeout_s:g} s"))
        self.close_now()

    def close_lingering(self) -> None:
        """Close, but while the client is still sending its body: stop writing, discard
        what still comes, close when the client does or after LINGER_S."""
        transport = self.raw_transport
        if self.lingering or transport is None:
            return
        if (self.lost or transport.is_closing() or self.conn.their_state is not h11.SEND_BODY
                or not transport.can_write_eof()):
            transport.close()
            return
        self.linger(LINGER_S)
        self.idle_since = next(self.guard.ticks)  # a lingering connection may be closed for a new one

    def linger(self, seconds: float) -> None:
        """Stop writing (the client reads our answer, then EOF) and discard what comes."""
        self.lingering = True
        self._cancel_timers()
        self.raw_transport.write_eof()
        self.flow.resume_reading()
        self.linger_timer = self.loop.call_later(seconds, self.close_now)

    def close_now(self) -> None:
        self._cancel_timers()
        if self.raw_transport is not None:
            self.raw_transport.close()

    def _cancel_timers(self) -> None:
        for timer in (self.head_timer, self.linger_timer):
            if timer is not None:
                timer.cancel()
        self.head_timer = self.linger_timer = None


class _LingeringCloseTransport:
    """The transport uvicorn's protocol writes to, whose close() may linger (see above)."""

    def __init__(self, transport: asyncio.Transport, protocol: GuardedH11Protocol) -> None:
        self._transport = transport
        self._protocol = protocol

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def close(self) -> None:
        self._protocol.close_lingering()

    def is_closing(self) -> bool:
        return self._protocol.lingering or self._transport.is_closing()
