"""The `maskvit` subcommands, one module each: `register(subparsers)` adds its flags,
`run(args)` parses nothing more, calls the library and prints."""

from __future__ import annotations

import argparse
import sys


def command_parser(subparsers: argparse._SubParsersAction, name: str, summary: str,
                   doc: str | None) -> argparse.ArgumentParser:
    """The parser of subcommand `name`: `summary` in `maskvit --help`, the command module's
    docstring `doc` as its own `--help` text."""
    return subparsers.add_parser(name, help=summary, description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)


class RenamedFlag(argparse.Action):
    """An old spelling of a renamed flag: it still works, into the new flag's value, and
    says once on stderr what to write instead (scripts keep running)."""

    def __init__(self, option_strings: list[str], dest: str, new: str, **kwargs) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.new = new

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"maskvit {parser.prog.split()[-1]}: {option_string} is deprecated; use {self.new}",
              file=sys.stderr)
        setattr(namespace, self.dest, values)
