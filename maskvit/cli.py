"""The `maskvit` command line: a thin layer that parses, calls the library and prints.

Each subcommand lives in `maskvit.commands.<name>` and exposes `register(subparsers)`,
which adds its parser and sets `func` to a callable taking the parsed namespace.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from maskvit.errors import UserError

# Subcommand modules, in the order `maskvit --help` lists them.
COMMAND_MODULES = [
    "maskvit.commands.info",
    "maskvit.commands.collect",
    "maskvit.commands.convert",
    "maskvit.commands.train_tokenizer",
    "maskvit.commands.tokenize",
    "maskvit.commands.reconstruct",
    "maskvit.commands.train",
    "maskvit.commands.predict",
    "maskvit.commands.evaluate",
    "maskvit.commands.plan",
    "maskvit.commands.export",
    "maskvit.commands.bench",
    "maskvit.commands.demo",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="maskvit",
        description="MaskViT: masked visual pre-training for video prediction.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except UserError as err:
        print(f"maskvit {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"maskvit {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
