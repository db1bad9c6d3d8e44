"""Write a bundle's headline.json from its `maskvit evaluate` and `maskvit plan` outputs.

`maskvit demo` prints these numbers beside its own so a newcomer sees what full training
reaches; `benchmarks/reference_push64.sh` calls this after evaluating and planning:

    python benchmarks/headline.py --bundle maskvit/pretrained/push64 \
        --eval runs/reference_push64/eval --plan runs/reference_push64/plan --plan-settings "..."
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from maskvit.atomic import atomic_write_json
from maskvit.metrics.protocol import headline_numbers
from maskvit.pretrained import HEADLINE


def evaluate_numbers(metrics: dict) -> dict:
    return {who: headline_numbers(metrics.get(key) or {})
            for who, key in (("model", "model"), ("copy_last", "baseline"))}


def plan_numbers(results: dict) -> dict:
    return {policy: f"{r['successes']}/{r['episodes']}"
            for policy, r in results.get("policies", results).items()
            if isinstance(r, dict) and "successes" in r}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--eval", required=True, help="maskvit evaluate report folder")
    parser.add_argument("--plan", required=True, action="append",
                        help="maskvit plan output folder (repeatable: policies planned in "
                             "separate runs at the same settings are merged)")
    parser.add_argument("--plan-settings", default="", help="how planning was run, in words")
    parser.add_argument("--about", default="held-out push episodes; benchmarks/RESULTS.md")
    args = parser.parse_args()
    metrics = json.loads((Path(args.eval) / "metrics.json").read_text())
    plan: dict = {}
    for folder in args.plan:
        plan.update(plan_numbers(json.loads((Path(folder) / "results.json").read_text())))
    atomic_write_json(Path(args.bundle) / HEADLINE, {
        "about": args.about, "evaluate": evaluate_numbers(metrics),
        "plan": {"settings": args.plan_settings, **plan}})


if __name__ == "__main__":
    main()
