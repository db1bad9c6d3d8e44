"""Exclusive locks on output directories, held for the whole of a job.

Two jobs writing one directory corrupt it (two trainings interleave their checkpoints and
logs; two collects mark a store complete with the wrong episode count). Every command that
writes an output directory holds `output_lock(dir)` for as long as it writes; a second
writer gets a one-line `UserError` naming the holder instead of starting.

The lock is an advisory `flock` on a small file *beside* the directory
(`PARENT/.NAME.maskvit-lock`), not inside it, so it survives the directory being created,
or swapped in whole as reports and bundles are. The kernel drops the lock when its process
dies (kill -9 included), so a crash never leaves a directory locked; the file stays and
is reused by the next job. Readers take no lock.
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

# Locks this process already holds (path of the lock file -> depth), so a command that
# locks its output and then calls library code that locks the same directory does not
# deadlock on itself.
_held: dict[str, int] = {}
_handles: dict[str, int] = {}


def lock_path(directory: str | os.PathLike) -> Path:
    """The lock file guarding `directory` (beside it, hidden)."""
    directory = Path(directory).absolute()
    return directory.parent / f".{directory.name}{LOCK_SUFFIX}"


def _holder_description(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096).decode() or "{}")
    except (OSError, ValueError):
        return "another maskvit job"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("started", 0)))
    return (f"`{info.get('command', 'maskvit')}` (pid {info.get('pid', '?')} on "
            f"{info.get('host', '?')}, since {since})")


@contextlib.contextmanager
def output_lock(directory: str | os.PathLike, what: str = "output directory") -> Iterator[Path]:
    """Hold an exclusive lock on `directory` for the duration of the `with` block.

    Raises `UserError` at once (never waits) when another process holds it.
    """
    path = lock_path(directory)
    key = str(path)
    if key in _held:  # re-entrant within one process
        _held[key] += 1
        try:
            yield Path(directory)
        finally:
            _held[key] -= 1
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise UserError(f"cannot lock {what} {directory}: {err.strerror} ({path})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder_description(fd)
        os.close(fd)
        raise UserError(f"{what} {directory} is being written by {holder}; wait for that job "
                        "to finish or choose another output") from None
    except OSError as err:
        os.close(fd)
        raise UserError(f"cannot lock {what} {directory}: {err.strerror}") from None
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                "command": " ".join(["maskvit", *sys.argv[1:3]])}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
    except OSError:
        pass  # the lock holds even if we cannot record who holds it (e.g. a full disk)
    _held[key], _handles[key] = 1, fd
    try:
        yield Path(directory)
    finally:
        del _held[key]
        _handles.pop(key, None)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def is_locked(directory: str | os.PathLike) -> bool:
    """Whether some process (this one included) holds the lock on `directory` now."""
    path = lock_path(directory)
    if str(path) in _held:
        return True
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
