"""`maskvit export`: pack a trained transformer run and its tokenizer into an inference bundle.

Write a bundle directory (tokenizer/ and transformer/ runs holding only config.yaml and one
checkpoint's weights, the latest unless --step, EMA preferred, without optimizer state) that
--model of predict, evaluate and plan accepts. The shipped default model
(maskvit/pretrained/push64) is such a bundle.
"""

from __future__ import annotations

import argparse

from maskvit.commands import command_parser

SUMMARY = "pack a trained model and its tokenizer into a small inference bundle"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = command_parser(subparsers, "export", SUMMARY, __doc__)
    parser.add_argument("--model", required=True, help="transformer run directory (maskvit train)")
    parser.add_argument("--tokenizer", default=None,
                        help="tokenizer run directory (default: the one the model was trained on)")
    parser.add_argument("--out", required=True,
                        help="bundle directory to write: must not exist, or be a bundle an earlier "
                             "export wrote (which is replaced)")
    parser.add_argument("--step", type=int, default=None,
                        help="transformer checkpoint to export (default: the latest)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from maskvit.pretrained import export_bundle

    out = export_bundle(args.model, args.out, args.tokenizer, step=args.step)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"wrote {out} ({size / 1e6:.1f} MB)")
    return 0
