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


# ---------------------------------------------------------------- a trained model's flags

def add_inference_arguments(parser: argparse.ArgumentParser) -> None:
    """--device and --precision for running a trained model."""
    parser.add_argument("--device", default="auto",
                        help="auto, cpu, cuda or cuda:N (default auto: a GPU when there is one)")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                        help="inference precision (default auto: bf16 on a GPU with bf16, a CPU with "
                             "AMX or an AMD CPU with avx512_bf16, where it was measured faster, else "
                             "fp32; benchmarks/RESULTS.md)")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None,
                        help="transformer run directory (maskvit train), or a bundle holding "
                             "transformer/ and tokenizer/ runs (default: the shipped push64 "
                             "reference model)")
    parser.add_argument("--tokenizer", default=None,
                        help="tokenizer run directory (default: the one the model was trained on)")
    add_inference_arguments(parser)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override an eval/plan setting of the model's config, "
                             "e.g. eval.decoding.steps=12")


def predictor_from_args(args: argparse.Namespace):
    """The Predictor the arguments name (`maskvit.inference.predictor.load_predictor`)."""
    from maskvit.inference.predictor import load_predictor

    return load_predictor(args.model, args.tokenizer, device=args.device,
                          precision=args.precision, overrides=args.overrides)
