"""Quality against training time: score every checkpoint of one transformer run.

Issue 13 asks, where a target is out of reach on 2 CPU cores, for the measured curve that
says so. This exports each checkpoint of a run (`maskvit export --step N`), evaluates it
with the reference protocol (`maskvit evaluate`, 32 held-out videos, best of 4) and
tabulates box IoU, FVD, PSNR, ... against the step, beside copy-last-frame:

    python benchmarks/training_curve.py --model RUN --data DATA --out DIR \
        [--steps 1000,2000,...] [--json benchmarks/results/training_curve_push64.json] \
        [--label NAME --compare OTHER_NAME=OTHER_RUN_CURVE.json]

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
from maskvit.metrics.protocol import headline_numbers
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


def plot_rows(rows: list[dict], out: Path, label: str = "model",
              others: dict[str, list[dict]] | None = None) -> None:
    """curve_{box_iou,fvd}.png: this run, other runs' curves (--compare) and copy-last.

    Runs share one step axis (the union of their steps); a run's line passes over the
    steps it was not scored at.
    Copy-last-frame does not depend on the step (same clips), so any row gives it.
    """
    runs = {label: rows, **(others or {})}
    steps = sorted({r["step"] for run in runs.values() for r in run})

    def series(run: list[dict], who: str, metric: str) -> list[float | None]:
        by_step = {r["step"]: r[who][metric] for r in run}
        return [by_step.get(step) for step in steps]

    every_row = [r for run in runs.values() for r in run]
    for metric in ("box_iou", "fvd"):
        curves = [Curve(name, series(run, "model", metric)) for name, run in runs.items()]
        copy_last = series(every_row, "copy_last", metric)
        curves.append(Curve("copy last frame", copy_last))
        if metric == "box_iou":
            curves.append(Curve("target: copy + 0.10",
                                [None if v is None else v + 0.10 for v in copy_last]))
        plot_curves(curves, out / f"curve_{metric}.png", f"{metric} by training step",
                    metric, x_labels=[str(step) for step in steps], xlabel="training step")


def compare_arg(text: str) -> tuple[str, Path]:
    """--compare LABEL=CURVE_JSON: another run's name and its rows (a --json file)."""
    label, sep, path = text.partition("=")
    if not sep or not label or not path:
        raise argparse.ArgumentTypeError(f"expected LABEL=CURVE_JSON, got {text!r}")
    return label, Path(path)


def read_compared(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict:
    """The --compare runs' rows by label; clashing labels and --json over one of them are
    usage errors (this script never writes over its inputs)."""
    labels = [args.label] + [label for label, _ in args.compare]
    if len(set(labels)) < len(labels):
        parser.error(f"--label and --compare labels must differ; got {labels}")
    others = {}
    for label, path in args.compare:
        if args.json is not None and args.json.resolve() == path.resolve():
            parser.error(f"--json {args.json} is --compare {label}'s input; write elsewhere")
        try:
            others[label] = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            parser.error(f"cannot read --compare curve {path}: {error}")
    return others


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
    plot_rows(rows, args.out, args.label, args.others)
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
    parser.add_argument("--label", default="model", help="this run's name in the plots")
    parser.add_argument("--compare", type=compare_arg, action="append", default=[],
                        metavar="LABEL=CURVE_JSON",
                        help="also draw another run's curve (its --json rows); repeatable")
    args = parser.parse_args()
    args.others = read_compared(parser, args)
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
