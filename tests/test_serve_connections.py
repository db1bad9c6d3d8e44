"""The server under idle and half-sent connections: a real uvicorn server on loopback,
raw sockets. Health keeps answering while hundreds of half-sent requests are open;
half-sent heads are closed after the read timeout; a client whose connections are all
busy is refused in one line; an oversized upload reads its 413 instead of a reset.

Every wait is on an event (an answer, a close); timeouts are only failure bounds.
"""

import selectors
import socket

import httpx
import pytest
from stand_ins import tiny_predictor

from maskvit.serve import ServeSettings, create_app
from maskvit.serve.runner import ConnectionGuard, ThreadedServer

TOKEN = "test-token-0123456789abcdef"
HALF_HEAD = b"GET /v1/health HTTP/1.1\r\nHost: x\r\n"  # the blank line that ends it never comes
BOUND_S = 60  # failure bound for any single wait


@pytest.fixture(scope="module")
def predictor():
    return tiny_predictor()


def _serve(predictor, host="127.0.0.1", **settings):
    app = create_app(predictor, ServeSettings(host=host, port=0, max_wait_ms=1.0, **settings), "tiny")
    return ThreadedServer(app, host=host).start()


def _open_half_sent(port: int, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        sock = socket.create_connection(("127.0.0.1", port), timeout=BOUND_S)
        sock.sendall(HALF_HEAD)
        socks.append(sock)
    return socks


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(BOUND_S)
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _wait_until_closed(socks: list[socket.socket], count: int) -> set[int]:
    """Indices of the sockets the server closed, once `count` of them are."""
    selector = selectors.DefaultSelector()
    for i, sock in enumerate(socks):
        selector.register(sock, selectors.EVENT_READ, i)
    closed: set[int] = set()
    while len(closed) < count:
        ready = selector.select(timeout=BOUND_S)
        assert ready, f"only {len(closed)} of {count} connections were closed"
        for key, _ in ready:
            try:
                data = key.fileobj.recv(65536)
            except ConnectionResetError:  # closed before the server read what came
                data = b""
            if data == b"":
                closed.add(key.data)
                selector.unregister(key.fileobj)
    selector.close()
    return closed


def _still_open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        sock.recv(1)  # b"": closed; data: an answer nobody asked for
    except BlockingIOError:
        return True  # nothing to read, and not closed
    except ConnectionResetError:
        return False
    finally:
        sock.setblocking(True)
    return False


@pytest.mark.parametrize("host,token", [("127.0.0.1", None), ("0.0.0.0", TOKEN)],
                         ids=["loopback", "all-interfaces-with-token"])
def test_health_answers_while_hundreds_of_half_sent_requests_are_open(predictor, host, token):
    # A read timeout far beyond the test: only the connection rules can let health in.
    srv = _serve(predictor, host=host, token=token, read_timeout_s=3600.0)
    cap = ServeSettings().max_client_connections
    socks = _open_half_sent(srv.port, 330)
    try:
        with httpx.Client(base_url=srv.url, timeout=BOUND_S) as client:  # one connection
            health = client.get("/v1/health")
            assert health.status_code == 200 and health.json()["status"] == "ok", health.text
            if token:
                info = client.get("/v1/info", headers={"Authorization": f"Bearer {TOKEN}"})
                assert info.status_code == 200, info.text
        # The oldest half-sent connections made room, one for each connection past the
        # cap; the newest stay open (their head still has an hour to arrive).
        evicted = 330 + 1 - cap
        assert _wait_until_closed(socks, evicted) == set(range(evicted))
        assert all(_still_open(s) for s in socks[evicted:])
    finally:
        for sock in socks:
            sock.close()
        srv.stop()


def test_half_sent_and_silent_connections_are_closed_after_the_read_timeout(predictor):
    srv = _serve(predictor, read_timeout_s=0.2)
    try:
        (half,) = _open_half_sent(srv.port, 1)
        silent = socket.create_connection(("127.0.0.1", srv.port), timeout=BOUND_S)
        with half, silent:
            answer = _read_until_closed(half).decode()
            assert answer.startswith("HTTP/1.1 408") and "request head not received within 0.2 s" in answer
            assert _read_until_closed(silent) == b""  # nothing was asked: closed without a word
        assert httpx.get(srv.url + "/v1/health", timeout=BOUND_S).status_code == 200
    finally:
        srv.stop()


def _busy_connection(port: int) -> socket.socket:
    """A connection with a request in progress: its head is in, its body still coming.
    The server's "100 Continue" shows the app is reading the body."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=BOUND_S)
    sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000\r\nExpect: 100-continue\r\n\r\n")
    assert sock.recv(4096).startswith(b"HTTP/1.1 100")
    sock.sendall(b'{"context": ')
    return sock


def test_a_client_past_its_cap_closes_its_oldest_idle_connection_or_is_refused(predictor):
    srv = _serve(predictor, max_client_connections=2, read_timeout_s=3600.0)
    try:
        busy = _busy_connection(srv.port)
        (idle,) = _open_half_sent(srv.port, 1)
        # A third connection: the idle one makes room; the busy one is never closed for it.
        assert httpx.get(srv.url + "/v1/health", timeout=BOUND_S).status_code == 200
        assert _wait_until_closed([idle], 1) == {0}
        assert _still_open(busy)
        # Both held connections busy: the next one is refused, in one line.
        second_busy = _busy_connection(srv.port)
        with socket.create_connection(("127.0.0.1", srv.port), timeout=BOUND_S) as refused:
            refused.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = _read_until_closed(refused).decode()
        assert answer.startswith("HTTP/1.1 503"), answer
        assert ("too many connections from 127.0.0.1, all with requests in progress "
                "(at most 2 per client)") in answer
        assert "retry-after: 1" in answer.lower()
        for sock in (busy, second_busy, idle):
            sock.close()
    finally:
        srv.stop()


class FakeConnection:
    def __init__(self, guard, host, idle):
        self.client_host = host
        self.idle_since = next(guard.ticks) if idle else None
        self.closed = False

    def close_now(self):
        self.closed = True


def test_past_the_server_wide_cap_the_longest_idle_connection_of_anyone_makes_room():
    guard = ConnectionGuard(max_connections=3, max_client_connections=3)
    old_idle, new_idle = FakeConnection(guard, "10.0.0.1", True), FakeConnection(guard, "10.0.0.1", True)
    busy = FakeConnection(guard, "10.0.0.2", False)
    assert [guard.admit(c) for c in (old_idle, new_idle, busy)] == [None, None, None]
    newcomer = FakeConnection(guard, "10.0.0.3", False)
    assert guard.admit(newcomer) is None
    assert (old_idle.closed, new_idle.closed, busy.closed) == (True, False, False)
    new_idle.idle_since = None  # now every held connection is busy
    refusal = guard.admit(FakeConnection(guard, "10.0.0.4", False))
    assert refusal == "the server holds 3 connections, all with requests in progress; retry shortly"
    guard.forget(busy)
    assert guard.admit(FakeConnection(guard, "10.0.0.4", False)) is None
