"""`maskvit demo`: the shipped model, then a model trained here, on the CPU.

Collect push-world episodes; show the shipped reference model predicting held-out clips and
planning; tokenize with the shipped tokenizer and train a transformer (--from-scratch:
train the tokenizer too); evaluate its predictions against the copy-last-frame baseline and
the shipped model, and run closed-loop planning with it. OUT/index.html shows it all.
Finished stages are skipped when the demo runs again; an interrupted training stage resumes.
"""

from __future__ import annotations

import argparse
from typing import Any

from maskvit.commands import command_parser

SUMMARY = "the shipped model, then one trained here (push world, ~15 min on 2 CPU cores)"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = command_parser(subparsers, "demo", SUMMARY, __doc__)
    parser.add_argument("--out", default="maskvit-demo", help="output folder (default ./maskvit-demo)")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny version (~1 min) that checks every stage works")
    parser.add_argument("--from-scratch", action="store_true",
                        help="train the tokenizer too (the default starts from the shipped "
                             "tokenizer and gives the transformer the whole budget)")
    parser.add_argument("--minutes", type=float, default=None,
                        help="time budget of the full demo (default 15): a short probe times "
                             "the training steps on this machine and shortens the training "
                             "where the full scale would not fit; chosen once per --out")
    parser.set_defaults(func=run)


def print_comparison(summary: dict[str, Any], shipped: dict[str, Any] | None) -> None:
    """The closing table: this demo's model, copying the last frame and the shipped model,
    on the same held-out clips and planning tasks."""
    from maskvit.report.demo_report import COLUMNS, closing_table

    rows = closing_table(summary)
    width = max(len(text) for text in [name for _, name in COLUMNS]
                + [cell for _, cells, _ in rows for cell in cells]) + 2
    print(f"\n{'':10s}" + "".join(f"{name:>{width}s}" for _, name in COLUMNS))
    for label, cells, _ in rows:
        print(f"{label:10s}" + "".join(f"{cell:>{width}s}" for cell in cells))
    plan = (shipped or {}).get("plan", {})
    if plan.get("model"):
        print(f"\nThe shipped model in its reference run planned {plan['model']} tasks "
              f"({plan.get('settings', '')}); benchmarks/RESULTS.md tells how it was "
              f"trained. `maskvit predict`, `evaluate` and `plan` use it when no --model is given.")


def run(args: argparse.Namespace) -> int:
    from maskvit.demo_pipeline import DEFAULT_MINUTES, run_demo
    from maskvit.errors import UserError
    from maskvit.pretrained import shipped_headline

    if args.quick and args.minutes is not None:
        raise UserError("--minutes sizes the full demo; --quick always has the same tiny size")
    summary = run_demo(args.out, quick=args.quick, from_scratch=args.from_scratch,
                       minutes=DEFAULT_MINUTES if args.minutes is None else args.minutes)
    print("\n== maskvit demo finished ==")
    for key in ("page", "report", "plan_report"):
        print(f"{key:12s} {summary.pop(key, '-')}")
    print_comparison(summary, shipped_headline())
    return 0
