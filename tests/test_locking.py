"""Output-directory locks (`maskvit.locking`): held by one process at a time, dropped on exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from maskvit.errors import UserError
from maskvit.locking import is_locked, lock_path, output_lock

# A holder process: takes the lock, says "ready", then waits until its stdin closes.
# With FORK=1 it first forks a child that outlives it (as pool workers can) and also
# waits for the end of stdin, so it ends with the test at the latest.
HOLDER = textwrap.dedent("""
    import os, sys
    from maskvit.locking import output_lock, set_job
    set_job("maskvit train")
    with output_lock(sys.argv[1]):
        child = 0
        if os.environ.get("FORK") == "1":
            child = os.fork()
            if child == 0:
                sys.stdin.read()
                os._exit(0)
        print("ready", child, flush=True)
        sys.stdin.read()
""")


class Holder:
    """A second process that holds the lock on `directory` until released or killed."""

    def __init__(self, directory: Path, fork: bool = False):
        env = {**os.environ, "FORK": "1" if fork else "0"}
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(directory)], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready, child = self.proc.stdout.readline().split()
        assert ready == "ready"
        self.child = int(child)  # a forked child's pid, or 0

    def release(self) -> None:
        self.proc.stdin.close()
        assert self.proc.wait(timeout=10) == 0

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def __enter__(self) -> Holder:
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.kill()
        if self.child:
            os.kill(self.child, signal.SIGKILL)


def locked_elsewhere(directory: Path) -> bool:
    """is_locked, asked by a fresh process (this one's own bookkeeping left out)."""
    code = "import sys; from maskvit.locking import is_locked; print(is_locked(sys.argv[1]))"
    out = subprocess.run([sys.executable, "-c", code, str(directory)], capture_output=True,
                         text=True, check=True).stdout
    return out.strip() == "True"


def test_a_second_writer_gets_one_line_naming_the_holder(tmp_path):
    out = tmp_path / "run"
    with Holder(out) as holder:
        with pytest.raises(UserError) as caught:
            with output_lock(out, "run directory"):
                pytest.fail("got a lock another process holds")
        message = str(caught.value)
        assert "\n" not in message
        assert f"pid {holder.proc.pid}" in message and "`maskvit train`" in message
        assert str(out) in message and "wait for that job" in message
        assert is_locked(out)


def test_the_lock_is_released_when_the_holder_exits(tmp_path):
    out = tmp_path / "run"
    holder = Holder(out)
    holder.release()
    assert not is_locked(out)
    with output_lock(out):
        assert locked_elsewhere(out)


def test_the_lock_is_released_when_the_holder_is_killed(tmp_path):
    out = tmp_path / "run"
    with Holder(out) as holder:
        holder.kill()
    with output_lock(out):
        pass


def test_a_child_forked_by_the_holder_does_not_keep_the_lock_after_a_kill(tmp_path):
    """A worker pool outliving a job killed with -9 must not keep its output locked."""
    out = tmp_path / "run"
    with Holder(out, fork=True) as holder:
        holder.kill()
        os.kill(holder.child, 0)  # still alive, with a copy of the lock's descriptor
        with output_lock(out):
            pass


def test_re_entrant_within_one_process(tmp_path):
    out = tmp_path / "run"
    with output_lock(out):
        with output_lock(out, "report directory"):
            assert is_locked(out)
        assert locked_elsewhere(out)  # leaving the inner block keeps the outer lock
    assert not is_locked(out) and not locked_elsewhere(out)


def test_is_locked_needs_no_lock_file_and_lets_a_starting_job_through(tmp_path):
    out = tmp_path / "never"
    assert not is_locked(out) and not lock_path(out).exists()
    with output_lock(out):
        pass
    assert lock_path(out).is_file() and not is_locked(out)  # the file stays, unlocked


def test_every_spelling_of_a_directory_shares_one_lock(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (tmp_path / "link").symlink_to(out)
    (tmp_path / "sub").mkdir()
    with Holder(out):
        for other in (tmp_path / "sub" / ".." / "run", tmp_path / "link", Path(f"{out}/")):
            with pytest.raises(UserError, match="is being written by"):
                with output_lock(other):
                    pass


def test_a_holder_that_recorded_nothing_is_described_plainly(tmp_path):
    """The holder writes who it is just after locking; a job starting in between (or a
    holder on a full disk) must not print `pid ?` and a 1970 date."""
    out = tmp_path / "run"
    fd = os.open(lock_path(out), os.O_RDWR | os.O_CREAT)
    code = ("import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('ready', flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code, str(lock_path(out))],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        with pytest.raises(UserError) as caught:
            with output_lock(out):
                pass
        assert "another maskvit job" in str(caught.value)
        assert "pid ?" not in str(caught.value) and "1970" not in str(caught.value)
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)
        os.close(fd)


class FakeClock:
    """Stands in for `time` in `maskvit.locking`: sleeping moves it on, nothing waits."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def __getattr__(self, name: str):
        return getattr(time, name)  # wall-clock dates (the holder's record) stay real


def busy_flock(monkeypatch, busy_calls: int | None) -> list[int]:
    """Make `flock` report the lock busy for its first `busy_calls` calls (None: always);
    returns the list of operations tried."""
    import fcntl

    calls = []
    real_flock = fcntl.flock

    def flock(fd, operation):
        calls.append(operation)
        if busy_calls is None or len(calls) <= busy_calls:
            raise BlockingIOError()  # what a concurrent probe (or holder) looks like
        return real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock)
    return calls


def test_a_lock_probe_does_not_fail_a_job_starting_at_that_moment(tmp_path, monkeypatch):
    """`is_locked` in another process takes the lock for an instant; a job that tries to
    lock in that instant retries instead of reporting the directory as in use."""
    import maskvit.locking as locking

    out = tmp_path / "run"
    clock = FakeClock()
    monkeypatch.setattr(locking, "time", clock)
    calls = busy_flock(monkeypatch, busy_calls=1)
    with output_lock(out):
        assert locked_elsewhere(out)
    assert len(calls) >= 2 and 0 < clock.now < 1.0  # it waited, briefly


def test_a_lock_that_stays_busy_is_refused_within_a_fraction_of_a_second(tmp_path, monkeypatch):
    import maskvit.locking as locking

    out = tmp_path / "run"
    clock = FakeClock()
    monkeypatch.setattr(locking, "time", clock)
    calls = busy_flock(monkeypatch, busy_calls=None)
    with pytest.raises(UserError, match="is being written by another maskvit job"):
        with output_lock(out):
            pytest.fail("got a lock that stayed busy")
    # It retried for longer than a probe's instant, then gave up: a job never hangs here.
    assert len(calls) >= 2 and 0 < clock.now < 1.0


def test_an_unwritable_place_for_the_lock_is_one_line(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system", str(lock_path(tmp_path / "run")))

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(UserError) as caught:
        with output_lock(tmp_path / "run"):
            pass
    message = str(caught.value)
    assert "\n" not in message and "Read-only file system" in message and "run" in message


def test_the_lock_lives_beside_the_directory(tmp_path):
    out = tmp_path / "report"
    with output_lock(out):
        out.mkdir()
        os.rename(out, tmp_path / "aside")  # a report swapped in whole keeps its lock
        assert lock_path(out).parent == tmp_path and is_locked(out)
