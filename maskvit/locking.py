"""Exclusive locks on output directories, held for the whole of a job.

Two jobs writing one directory corrupt it (two trainings interleave their checkpoints and
logs; two collects mark a store complete with the wrong episode count). Every command that
writes an output directory holds `output_lock(dir)` for as long as it writes; a second
writer gets a one-line `UserError` naming the holder instead of starting.

The lock is an advisory `flock` on a small file *beside* the directory
(`PARENT/.NAME.maskvit-lock`), not inside it, so it survives the directory being created,
or swapped in whole as reports and bundles are. The kernel drops the lock when its process
dies (kill -9 included), so a crash never leaves a directory locked; the file stays and
is reused by the next job. Processes forked while a lock is held (worker pools) close
their copy at once, so they do not keep the directory locked after the holder died.
Readers take no lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from maskvit.errors import UserError

LOCK_SUFFIX = ".maskvit-lock"

# A lock probe (`is_locked`, or another job's failed attempt) holds the lock for a few
# microseconds; retrying this long keeps such a probe from failing a real job.
_RETRY_SECONDS = 0.2

# Locks this process already holds (path of the lock file -> depth), so a command that
# locks its output and then calls library code that locks the same directory does not
# deadlock on itself.
_held: dict[str, int] = {}
_handles: dict[str, int] = {}
_job: str | None = None


def set_job(description: str) -> None:
    """Name the running job (e.g. "maskvit train") as a second writer will be told it."""
    global _job
    _job = description


def _job_description() -> str:
    return _job or " ".join(["maskvit", *sys.argv[1:2]])


def lock_path(directory: str | os.PathLike) -> Path:
    """The lock file guarding `directory` (beside it, hidden).

    The path is resolved (symlinks, `..`), so every spelling of one directory shares a lock.
    """
    directory = Path(directory).resolve()
    return directory.parent / f".{directory.name}{LOCK_SUFFIX}"


def _holder_description(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return "another maskvit job"  # it has not recorded itself yet (or could not)
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("started", 0)))
    return (f"`{info.get('command', 'maskvit')}` (pid {info['pid']} on "
            f"{info.get('host', '?')}, since {since})")


def _open_lock_file(path: Path, what: str, directory: str | os.PathLike) -> int:
    """Open (creating) the lock file; read-only when it exists but is not ours to write."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        if isinstance(err, PermissionError) and path.exists():
            with contextlib.suppress(OSError):
                return os.open(path, os.O_RDONLY)  # flock works on a read-only descriptor
        raise UserError(f"cannot lock {what} {directory}: {err.strerror or err} ({path}); "
                        "choose another output") from None


def _acquire(fd: int, what: str, directory: str | os.PathLike) -> None:
    deadline = time.monotonic() + _RETRY_SECONDS
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() < deadline:
                time.sleep(0.02)
                continue
            raise UserError(f"{what} {directory} is being written by "
                            f"{_holder_description(fd)}; wait for that job to finish or "
                            "choose another output") from None
        except OSError as err:
            raise UserError(f"cannot lock {what} {directory}: {err.strerror}") from None


def _record_holder(fd: int) -> None:
    info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
            "command": _job_description()}
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
    except OSError:
        pass  # the lock holds even if we cannot record who holds it (read-only, full disk)


@contextlib.contextmanager
def output_lock(directory: str | os.PathLike, what: str = "output directory") -> Iterator[Path]:
    """Hold an exclusive lock on `directory` for the duration of the `with` block.

    Raises `UserError` at once (never waits beyond a fraction of a second) when another
    process holds it. Re-entrant within one process.
    """
    path = lock_path(directory)
    key = str(path)
    if key in _held:  # re-entrant within one process
        _held[key] += 1
        try:
            yield Path(directory)
        finally:
            if key in _held:  # (a forked child forgot it)
                _held[key] -= 1
        return
    fd = _open_lock_file(path, what, directory)
    _handles[key] = fd
    try:
        _acquire(fd, what, directory)
        _record_holder(fd)
        _held[key] = 1
        yield Path(directory)
    finally:
        _held.pop(key, None)
        if _handles.get(key) == fd:  # not if a forked child already closed its copy
            del _handles[key]
            os.close(fd)  # closing the last descriptor releases the lock


def is_locked(directory: str | os.PathLike) -> bool:
    """Whether some process (this one included) holds the lock on `directory` now."""
    path = lock_path(directory)
    if str(path) in _held:
        return True
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _forget_locks_in_child() -> None:
    """After fork: close the inherited lock descriptors, so only the holder keeps the lock.

    The child's copies would otherwise keep the lock alive after the holder died (a worker
    pool outliving a killed job). Closing a copy does not release the parent's lock.
    """
    for fd in _handles.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    _handles.clear()
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_locks_in_child)
