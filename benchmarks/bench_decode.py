"""The full decoding benchmark (issue 16): MaskViT vs a KV-cached causal decoder and a
factorised GENIE-style transformer, with the paper's Table 3 pass counts beside them.

One run, rounds interleaved over every configuration and decoder:
push64 at batch 1 and at a planning batch of 64 (at the preset's evaluation steps and at
`maskvit plan`'s), bair64 at batch 1; fp32 and bf16 each.
Run it on an idle machine; the tables go to stdout (and raw seconds to --json):

    python benchmarks/bench_decode.py [--rounds 3] [--threads N] [--json decode.json] [--quick]

`--quick` times push64 at batch 1 only (a smoke test, ~10 s).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess

import torch

from maskvit.bench.decode import format_report, time_plan
from maskvit.config import load_preset

# push64 at a planning batch also runs at the steps `maskvit plan` decodes with.
PLAN_STEPS = load_preset("push64").plan.decoding.steps
FULL_PLAN = [(preset, batch, precision)
             for preset, batches in (("push64", (1, 64)), ("bair64", (1,)))
             for batch in batches for precision in ("fp32", "bf16")]
FULL_PLAN[4:4] = [("push64", 64, precision, PLAN_STEPS) for precision in ("fp32", "bf16")]
QUICK_PLAN = [("push64", 1, "fp32"), ("push64", 1, "bf16")]


def parse_entry(text: str) -> tuple:
    """`push64:64:fp32[:3]` → ("push64", 64, "fp32"[, 3]), an entry of `time_plan`."""
    parts = text.split(":")
    if len(parts) not in (3, 4) or parts[2] not in ("fp32", "bf16"):
        raise argparse.ArgumentTypeError(f"expected PRESET:BATCH:fp32|bf16[:STEPS], got {text!r}")
    try:
        return (parts[0], int(parts[1]), parts[2], *(int(x) for x in parts[3:]))
    except ValueError:
        raise argparse.ArgumentTypeError(f"BATCH and STEPS must be integers in {text!r}") from None


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines()
                    if line.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--factorised-steps", type=int, default=2)
    parser.add_argument("--ar-passes", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", default=None, help="also write every round's seconds here")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--entry", action="append", default=[], type=parse_entry,
                        help="time only PRESET:BATCH:PRECISION[:STEPS] (repeatable)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    plan = args.entry or (QUICK_PLAN if args.quick else FULL_PLAN)
    header = (f"{cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads, device {args.device}")
    print(header, flush=True)
    rows = time_plan(plan, args.device, None, args.factorised_steps, args.ar_passes, args.rounds,
                     progress=lambda line: print(line, flush=True))
    print()
    print(format_report(rows, args.device, args.rounds))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": header, "rows": [dataclasses.asdict(r) for r in rows]}, f, indent=1)


if __name__ == "__main__":
    main()
