"""Running the app under uvicorn on a socket we bind ourselves.

Binding first (then handing the socket to uvicorn) lets `--port 0` pick a free port and
report it, and turns "address in use" into a one-line error before the model loads.
`ThreadedServer` runs the same server in a background thread: tests and benchmarks use
it to get a real HTTP server on a random loopback port and stop it cleanly.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import socket
import threading
import time

import uvicorn

from maskvit.errors import UserError
from maskvit.serve.connections import guarded_h11
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
    """uvicorn settings: our app on h11 under the connection rules of `maskvit.serve.connections`
    (they replace uvicorn's `limit_concurrency`, which counts idle connections), and the
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
