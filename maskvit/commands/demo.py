"""`maskvit demo`: collect, tokenize, train, predict, evaluate and plan, on the CPU.

Collect push-world episodes, train the tokenizer, tokenize, train the transformer, evaluate
predictions against the copy-last-frame baseline and run closed-loop planning episodes.
Finished stages are skipped when the demo runs again; an interrupted training stage resumes.
"""

from __future__ import annotations

import argparse
from typing import Any

from maskvit.commands import command_parser

SUMMARY = "the whole chain at laptop scale (push world, ~15 min on 2 CPU cores)"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = command_parser(subparsers, "demo", SUMMARY, __doc__)
    parser.add_argument("--out", default="maskvit-demo", help="output folder (default ./maskvit-demo)")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny version (~1 min) that checks every stage works")
    parser.add_argument("--minutes", type=float, default=None,
                        help="time budget of the full demo (default 15): a ~15 s probe times "
                             "the training steps on this machine and shortens both training "
                             "stages where the full scale would not fit; chosen once per --out")
    parser.set_defaults(func=run)


def print_comparison(demo: dict[str, Any], shipped: dict[str, Any] | None) -> None:
    """This demo's numbers beside the shipped reference model's, so a newcomer sees what
    full training reaches (the demo trains from scratch at laptop scale)."""
    evaluate = (shipped or {}).get("evaluate", {})
    rows = [(f"{who} {metric}", demo.get(f"{key}_{metric}"),
             evaluate.get("copy_last" if key == "baseline" else "model", {}).get(metric))
            for key, who in (("model", "model"), ("baseline", "copy last frame"))
            for metric in ("psnr", "ssim", "lpips", "fvd", "box_iou")]
    plan = (shipped or {}).get("plan", {})
    for policy in ("model", "random", "oracle"):
        rows.append((f"planning: {policy}", demo.get(f"plan_{policy}_success"), plan.get(policy)))

    def shown(value: Any) -> str:
        if value is None:
            return "-"
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    print(f"\n{'':28s} {'this demo':>12s} {'shipped model':>14s}")
    for label, ours, theirs in rows:
        if ours is not None or theirs is not None:
            print(f"{label:28s} {shown(ours):>12s} {shown(theirs):>14s}")
    if shipped:
        print(f"\nshipped model: {shipped.get('about', '')} Planning: {plan.get('settings', '')}.")
    print("\nThis demo's model was trained from scratch at laptop scale. The reference model "
          "that ships with maskvit is what `maskvit predict`, `evaluate` and `plan` use without "
          "--model (benchmarks/RESULTS.md tells how it was trained).")


def run(args: argparse.Namespace) -> int:
    from maskvit.demo_pipeline import DEFAULT_MINUTES, run_demo
    from maskvit.errors import UserError
    from maskvit.pretrained import shipped_headline

    if args.quick and args.minutes is not None:
        raise UserError("--minutes sizes the full demo; --quick always has the same tiny size")
    summary = run_demo(args.out, quick=args.quick,
                       minutes=DEFAULT_MINUTES if args.minutes is None else args.minutes)
    print("\n== maskvit demo finished ==")
    for key in ("report", "plan_report"):
        print(f"{key:12s} {summary.pop(key, '-')}")
    print_comparison(summary, shipped_headline())
    return 0
