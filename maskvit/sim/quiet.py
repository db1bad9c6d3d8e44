"""Silence what native libraries print straight to file descriptors 1 and 2."""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections.abc import Iterator


def _flush_c_stdio() -> None:
    """Flush C's stdio buffers, so what C code printed leaves while it is redirected."""
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


@contextlib.contextmanager
def quiet_native_output() -> Iterator[None]:
    """Send fds 1 and 2 to /dev/null for the block: C code's banners bypass `sys.stdout`.

    Our own errors must stay one line on stderr; pybullet prints "pybullet build time: ..."
    when imported and "argv[0]=" when a client connects.
    """
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]
    except (OSError, ValueError, AttributeError):  # no real fds (e.g. captured by a harness)
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 1)
            os.dup2(devnull.fileno(), 2)
            try:
                yield
            finally:
                _flush_c_stdio()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        for fd in saved:
            os.close(fd)
