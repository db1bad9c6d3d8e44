"""`maskvit demo`: collect, tokenize, train, predict, evaluate and plan, on the CPU."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="the whole chain at laptop scale (push world, ~15 min on 2 CPU cores)",
        description="Collect push-world episodes, train the tokenizer, tokenize, train the "
                    "transformer, evaluate predictions against the copy-last-frame baseline "
                    "and run closed-loop planning episodes. Finished stages are skipped when "
                    "the demo runs again; an interrupted training stage resumes.",
    )
    parser.add_argument("--out", default="maskvit-demo", help="output folder (default ./maskvit-demo)")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny version (~2 min) that checks every stage works")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from maskvit.demo import run_demo

    summary = run_demo(args.out, quick=args.quick)
    print("\n== maskvit demo finished ==")
    for key, value in summary.items():
        shown = f"{value:.4f}" if isinstance(value, float) else value
        print(f"{key:28s} {shown}")
    print("\nThis model was trained from scratch at laptop scale. For the reference model that "
          "ships with maskvit (trained for ~90 min, numbers in benchmarks/RESULTS.md), run "
          "`maskvit predict`, `evaluate` or `plan` without --model.")
    return 0
