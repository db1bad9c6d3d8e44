"""Quality against training time: score every checkpoint of one transformer run.

Issue 13 asks, where a target is out of reach on 2 CPU cores, for the measured curve that
says so. This exports each checkpoint of a run (`maskvit export --step N`), evaluates it
with the reference protocol (`maskvit evaluate`, 32 held-out videos, best of 4) and
tabulates box IoU, FVD, PSNR, ... against the step, beside copy-last-frame:

    python benchmarks/training_curve.py --model RUN --data DATA --out DIR \
        [--steps 1000,2000,...] [--json benchmarks/results/training_curve_push64.json]

Resumable: a step whose `DIR/eval{N}/metrics.json` exists is not evaluated again. Writes
DIR/curve.json and DIR/curve_{box_iou,fvd}.png. Mid-run checkpoints were taken at a higher
learning rate than the end of a shorter run's schedule would be, so the curve is a lower
bound on what a run of that length reaches.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from maskvit.atomic import atomic_write_json
from maskvit.cli import main as maskvit
from maskvit.errors import UserError
from maskvit.locking import output_lock
from maskvit.prediction_eval import headline_numbers
from maskvit.report.plots import Curve, plot_curves
from maskvit.run_dir import checkpoint_dirs, checkpoint_step
from maskvit.train import read_metrics

METRICS = ("psnr", "ssim", "lpips", "fvd")


def curve_row(step: int, metrics: dict, val_accuracy: float | None) -> dict:
    """One step's numbers from an evaluate report's metrics.json (model and copy-last)."""
    row: dict = {"step": step, "val_accuracy": val_accuracy}
    for who, key in (("model", "model"), ("copy_last", "baseline")):
        row[who] = headline_numbers(metrics[key])
        row[who]["box_iou_se"] = metrics[key]["objects"]["iou"]["se"]
    return row


def markdown(rows: list[dict]) -> str:
    lines = ["| step | val accuracy | PSNR | SSIM | LPIPS | FVD | box IoU | centroid px |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        m = r["model"]
        acc = "—" if r["val_accuracy"] is None else f"{r['val_accuracy']:.3f}"
        lines.append(f"| {r['step']} | {acc} | {m['psnr']:.2f} | {m['ssim']:.3f} | "
                     f"{m['lpips']:.3f} | {m['fvd']:.0f} | {m['box_iou']:.3f} ± "
                     f"{m['box_iou_se']:.3f} | {m['box_centroid_error_px']:.2f} |")
    return "\n".join(lines)


def score_steps(args: argparse.Namespace, steps: list[int]) -> list[dict]:
    """Export and evaluate each step not scored yet; write the table and plots to --out."""
    accuracy = {r["step"]: r["accuracy"] for r in read_metrics(args.model, "val")}
    rows = []
    for step in steps:
        bundle, report = args.out / f"b{step}", args.out / f"eval{step}"
        if not (report / "metrics.json").is_file():
            if not bundle.is_dir():
                export = ["export", "--model", str(args.model), "--step", str(step),
                          "--out", str(bundle)]
                if args.tokenizer:
                    export += ["--tokenizer", args.tokenizer]
                if maskvit(export):
                    raise SystemExit(f"export of step {step} failed")
            if maskvit(["evaluate", "--model", str(bundle), "--data", args.data, "--out",
                        str(report), "--num-videos", str(args.num_videos), "--trials",
                        str(args.trials), "--metrics", ",".join(METRICS), "--no-progress"]):
                raise SystemExit(f"evaluation of step {step} failed")
        metrics = json.loads((report / "metrics.json").read_text())
        rows.append(curve_row(step, metrics, accuracy.get(step)))
    atomic_write_json(args.out / "curve.json", rows)
    if args.json:
        atomic_write_json(args.json, rows)
    for metric in ("box_iou", "fvd"):
        curves = [Curve("model", [r["model"][metric] for r in rows]),
                  Curve("copy last frame", [r["copy_last"][metric] for r in rows])]
        if metric == "box_iou":
            curves.append(Curve("issue 13 target: copy last + 0.10",
                                [r["copy_last"][metric] + 0.10 for r in rows]))
        plot_curves(curves, args.out / f"curve_{metric}.png", f"{metric} by training step",
                    metric, x_labels=[str(r["step"]) for r in rows], xlabel="training step")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path, help="transformer run directory")
    parser.add_argument("--tokenizer", default=None, help="its tokenizer run (default: recorded)")
    parser.add_argument("--data", required=True, help="episode store (push world)")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--steps", default=None,
                        help="comma-separated checkpoint steps (default: every checkpoint kept)")
    parser.add_argument("--num-videos", type=int, default=32)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    try:
        steps = ([int(s) for s in args.steps.split(",")] if args.steps
                 else [checkpoint_step(p) for p in checkpoint_dirs(args.model)])
    except ValueError:
        raise SystemExit(f"--steps must be comma-separated integers; got {args.steps!r}") from None
    if not steps:
        raise SystemExit(f"{args.model} has no checkpoints to score (is it a `maskvit train` run?)")
    try:
        with output_lock(args.out, "training curve"):
            rows = score_steps(args, steps)
    except UserError as error:
        raise SystemExit(str(error)) from None
    print(markdown(rows))


if __name__ == "__main__":
    main()
