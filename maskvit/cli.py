"""The `maskvit` command line: a thin layer that parses, calls the library and prints.

Each subcommand lives in `maskvit.commands.<name>` and exposes `register(subparsers)`,
which adds its parser and sets `func` to a callable taking the parsed namespace.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator

from maskvit.errors import UserError
from maskvit.locking import set_job

DEBUG_ENV = "MASKVIT_DEBUG"

# Subcommand modules, in the order `maskvit --help` lists them.
COMMAND_MODULES = [
    "maskvit.commands.info",
    "maskvit.commands.collect",
    "maskvit.commands.convert",
    "maskvit.commands.train_tokenizer",
    "maskvit.commands.tokenize",
    "maskvit.commands.reconstruct",
    "maskvit.commands.train",
    "maskvit.commands.train_classifier",
    "maskvit.commands.predict",
    "maskvit.commands.evaluate",
    "maskvit.commands.plan",
    "maskvit.commands.export",
    "maskvit.commands.serve",
    "maskvit.commands.bench",
    "maskvit.commands.demo",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="maskvit",
        description="MaskViT: masked visual pre-training for video prediction.",
    )
    parser.add_argument("--debug", action="store_true",
                        help=f"show the full traceback of an error (also: {DEBUG_ENV}=1); "
                             "may be given anywhere on the line")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def describe_os_error(err: OSError) -> str:
    """One line for a failed file operation: what, where, and what to do."""
    where = f" {err.filename}" if err.filename else ""
    if err.filename2:
        where += f" -> {err.filename2}"
    reason = err.strerror or str(err)
    hint = {
        errno.ENOSPC: "free some space or choose another output",
        errno.EDQUOT: "free some space or choose another output",
        errno.EROFS: "the file system is read-only; choose another output",
        errno.EACCES: "check the permissions or choose another output",
        errno.EPERM: "check the permissions or choose another output",
        errno.ENOENT: "check the path",
    }.get(err.errno or -1, "")
    return f"{reason}:{where}" + (f" ({hint})" if hint else "")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so cleanup runs as for Ctrl-C (temp files, pools)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While a command runs, SIGTERM unwinds it like Ctrl-C instead of killing it mid-write."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _name_output(err: OSError, args: argparse.Namespace) -> OSError:
    """A failed write() or fsync() names no file: name the command's --out instead."""
    out = getattr(args, "out", None)
    if out and not err.filename:
        err.filename = str(out)
    return err


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    prefix = f"maskvit {args.command}: error:"
    set_job(f"maskvit {args.command}")
    try:
        with terminate_as_interrupt():
            result = args.func(args)
    except KeyboardInterrupt as err:
        if debug:
            traceback.print_exc()
        how = "terminated" if isinstance(err, Terminated) else "interrupted"
        # A command that keeps something else (or nothing) says so in the exception.
        kept = str(err) or "finished outputs are kept, rerun the same command to continue"
        print(f"maskvit {args.command}: {how}; {kept}", file=sys.stderr)
        return 128 + (signal.SIGTERM if isinstance(err, Terminated) else signal.SIGINT)
    except Exception as err:  # noqa: BLE001 - the boundary: one line unless --debug
        if debug:
            traceback.print_exc()
        if isinstance(err, UserError):
            print(f"{prefix} {err}", file=sys.stderr)
            return 2
        if isinstance(err, OSError):
            print(f"{prefix} {describe_os_error(_name_output(err, args))}", file=sys.stderr)
            return 1
        if isinstance(err, MemoryError):
            print(f"{prefix} out of memory; use a smaller batch or model", file=sys.stderr)
            return 1
        summary = str(err).splitlines()[0] if str(err) else ""
        print(f"{prefix} internal error {type(err).__name__}: {summary} "
              f"(rerun with --debug for the traceback, and please report it)", file=sys.stderr)
        return 1
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
