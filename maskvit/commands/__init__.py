"""The `maskvit` subcommands, one module each: `register(subparsers)` adds its flags,
`run(args)` parses nothing more, calls the library and prints."""

from __future__ import annotations

import argparse


def command_parser(subparsers: argparse._SubParsersAction, name: str, summary: str,
                   doc: str | None) -> argparse.ArgumentParser:
    """The parser of subcommand `name`: `summary` in `maskvit --help`, the command module's
    docstring `doc` as its own `--help` text."""
    return subparsers.add_parser(name, help=summary, description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
