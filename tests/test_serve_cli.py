"""`maskvit serve` as a real process: it starts, serves, and stops gracefully on SIGTERM,
finishing the request in flight; bad flags are one-line errors before the model loads."""

import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest
from stand_ins import save_tiny_bundle

from maskvit.cli import main
from maskvit.serve.frames import encode_png


def _start(args, env_extra=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    proc = subprocess.Popen([sys.executable, "-m", "maskvit", "serve", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()  # printed once the model is loaded and the port bound
    if "http://" not in line:
        proc.kill()
        raise AssertionError(f"no start line: {line!r} {proc.stderr.read()}")
    return proc, line.split("http://")[1].split(" ")[0]


def test_sigterm_finishes_the_request_in_flight_then_exits_cleanly(tmp_path):
    bundle = save_tiny_bundle(tmp_path / "bundle")
    # A long batching wait keeps the request queued when SIGTERM arrives.
    proc, address = _start(["--model", str(bundle), "--port", "0", "--max-wait-ms", "1500",
                            "--max-batch", "64", "--log-level", "warning"])
    try:
        url = f"http://{address}"
        assert address.startswith("127.0.0.1:")
        with httpx.Client(base_url=url, timeout=60) as client:
            assert client.get("/v1/health").json()["status"] == "ok"
            frames = np.zeros((2, 64, 64, 3), np.uint8)
            body = {"context": [[encode_png(f) for f in frames]], "actions": [[[0.0, 0.0]] * 4],
                    "num_frames": 2}
            answer = {}
            sender = threading.Thread(target=lambda: answer.update(r=client.post("/v1/predict", json=body)))
            sender.start()
            deadline = time.monotonic() + 10
            while httpx.get(url + "/v1/health").json()["in_flight"] < 1:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            proc.send_signal(signal.SIGTERM)
            sender.join(30)
            assert answer["r"].status_code == 200, answer["r"].text
            assert len(answer["r"].json()["frames"][0]) == 2
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "stopped" in out and "Traceback" not in err
        with pytest.raises(httpx.ConnectError):
            httpx.get(url + "/v1/health", timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_bad_flags_are_one_line_errors(tmp_path, capsys):
    assert main(["serve", "--port", "70000"]) == 2
    assert "--port must be between 0 and 65535" in capsys.readouterr().err
    assert main(["serve", "--max-batch", "0"]) == 2
    assert "--max-batch must be positive" in capsys.readouterr().err
    assert main(["serve", "--max-client-connections", "0"]) == 2
    assert "--max-client-connections must be positive" in capsys.readouterr().err
    assert main(["serve", "--host", "0.0.0.0", "--token-file", str(tmp_path / "missing")]) == 2
    assert "not found" in capsys.readouterr().err
    (tmp_path / "empty").write_text("\n")
    assert main(["serve", "--token-file", str(tmp_path / "empty")]) == 2
    assert "is empty" in capsys.readouterr().err


def test_a_busy_port_is_a_one_line_error(tmp_path, capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--model", str(tmp_path / "nothing"), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"port {port} on 127.0.0.1 is in use" in err and "\n" == err[-1] and err.count("\n") == 1


def test_the_server_caps_malloc_arenas_unless_the_environment_says(monkeypatch):
    from maskvit.serve.runner import limit_malloc_arenas

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False  # the user's setting wins
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    assert limit_malloc_arenas() is (sys.platform.startswith("linux"))


ARENA_COUNT = """
import ctypes, re, sys, tempfile, threading
if sys.argv[1] == "cap":
    from maskvit.serve.runner import limit_malloc_arenas
    assert limit_malloc_arenas()
start = threading.Barrier(8)
def allocate():
    start.wait()
    for _ in range(20):
        blocks = [ctypes.create_string_buffer(200) for _ in range(500)]
        del blocks
threads = [threading.Thread(target=allocate) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL("libc.so.6")
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
with tempfile.NamedTemporaryFile("r") as out:
    f = libc.fopen(out.name.encode(), b"w"); libc.malloc_info(0, f); libc.fclose(f)
    print(len(re.findall(r'<heap nr="[0-9]+">', out.read())))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc arenas")
def test_capped_threads_share_two_malloc_arenas_where_uncapped_ones_take_one_each():
    """The behaviour, not the return value: glibc gives each new thread an arena of its own
    up to its limit (8 per core), so 8 allocating threads make 9 heaps; capped, 2."""
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    heaps = {mode: int(subprocess.run([sys.executable, "-c", ARENA_COUNT, mode], env=env, check=True,
                                      capture_output=True, text=True).stdout.split()[-1])
             for mode in ("cap", "default")}
    assert heaps["cap"] <= 2 < heaps["default"]
