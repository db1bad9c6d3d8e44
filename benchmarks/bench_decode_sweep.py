"""Decoding steps × mask schedule → quality, planning success and latency (issue 16, item 2).

For every setting (steps in --steps, schedule in --schedules; "random" is the cosine
schedule with random instead of confidence-based unmasking) on one model:
  - quality: `maskvit evaluate`'s protocol (best of --trials samples per test clip for
    PSNR / SSIM / LPIPS, FVD over all samples, box IoU and centroid error on push data);
  - latency: seconds per predicted clip at batch 1 and at a planning batch (median);
  - planning (optional, --plan-tasks > 0): success on a fixed task subset with CEM at
    --plan-set settings, the model's policy only.
Results go to --out (JSON, one entry per setting, written after each so an interrupted
sweep resumes where it stopped), a Markdown table (--out with .md) and plots (PNG) beside.
--parts splits the work: quality and planning may share the machine, latency wants it idle;
each part resumes on its own.

    python benchmarks/bench_decode_sweep.py --data runs/data --out sweep.json \\
        [--model BUNDLE] [--steps 1,2,3,4,5,6,8,12,16] [--schedules cosine,square,linear,random]
        [--num-videos 32 --trials 4] [--plan-tasks 10] [--latency-batches 1,64]

The full grid (9 × 4 settings, 32 × 4 clips each, no planning) takes about 1.5 h on
2 CPU cores for push64; planning adds ~30 s per task and setting at M = 32, K = 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from maskvit.atomic import atomic_write_json, atomic_write_text
from maskvit.config import DecodingConfig, apply_overrides
from maskvit.data import EpisodeStore
from maskvit.inference.predictor import load_predictor
from maskvit.metrics import MetricNetworks, Protocol
from maskvit.plan.closed_loop import play_policies
from maskvit.plan.predictor_fn import predictor_fn
from maskvit.prediction_eval import evaluate_predictor, test_clips
from maskvit.pretrained import pretrained_path
from maskvit.report.plots import Curve, plot_curves

QUALITY = ("psnr", "ssim", "lpips", "fvd", "box_iou", "box_centroid_error_px")


def decoding_for(steps: int, schedule: str, base: DecodingConfig) -> DecodingConfig:
    """The setting's decoding: `random` = cosine with random unmasking."""
    if schedule == "random":
        return dataclasses.replace(base, steps=steps, schedule="cosine", unmask="random")
    return dataclasses.replace(base, steps=steps, schedule=schedule, unmask="confidence")


def quality(predictor, store, protocol, networks, metrics, decoding) -> dict:
    output = evaluate_predictor(predictor, store, protocol, "test", networks, metrics,
                                progress=False, decoding=decoding, show_videos=1)
    row = {m: v.get("mean", v.get("value")) for m, v in output.result["metrics"].items()}
    if output.result.get("objects"):
        row["box_iou"] = output.result["objects"]["iou"]["mean"]
        row["box_centroid_error_px"] = output.result["objects"]["centroid_error_px"]["mean"]
    return row


def latency(predictor, context, actions, predicted, decoding, batch, repeats) -> float:
    """Median seconds per clip for one `predict` call on `batch` clips."""
    index = np.arange(batch) % len(context)
    ctx, act = context[index], None if actions is None else actions[index]
    predictor.predict(ctx[:1], actions=None if act is None else act[:1], num_frames=predicted,
                      decoding=decoding)  # warm-up: first-call allocations are not decoding
    times = []
    for r in range(repeats):
        start = time.perf_counter()
        predictor.predict(ctx, actions=act, num_frames=predicted, decoding=decoding, seed=r)
        times.append((time.perf_counter() - start) / batch)
    return statistics.median(times)


def planning(predictor, decoding, tasks: int, overrides: list[str]) -> dict:
    config = apply_overrides(predictor.config, overrides)
    plan_config = dataclasses.replace(config.plan, decoding=decoding)
    with tempfile.TemporaryDirectory() as folder:
        results = play_policies("push", ["model"], list(range(tasks)), plan_config,
                                    Path(folder), predict_fn=predictor_fn(predictor, decoding),
                                    context=config.transformer.context_frames, gifs=False,
                                    progress=False)
    model = results["policies"]["model"]
    return {"plan_solved": model["successes"], "plan_tasks": model["episodes"],
            "plan_s_per_episode": model["seconds_per_episode"]}


def done(row: dict, part: str, batches: list[int]) -> bool:
    """Whether `row` already holds `part` (so a resumed sweep skips it)."""
    if part == "quality":
        return "psnr" in row
    if part == "latency":
        return all(f"latency_{b}" in row for b in batches)
    return "plan_solved" in row


def markdown(rows: list[dict], batches: list[int]) -> str:
    columns = ["steps", "schedule", *QUALITY, *(f"s/clip @{b}" for b in batches), "planning"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [str(row["steps"]), row["schedule"]]
        cells += [f"{row[m]:.4g}" if isinstance(row.get(m), float) else "—" for m in QUALITY]
        cells += [f"{row[f'latency_{b}']:.3f}" if f"latency_{b}" in row else "—" for b in batches]
        cells.append(f"{row['plan_solved']}/{row['plan_tasks']}" if "plan_solved" in row else "—")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plots(rows: list[dict], steps: list[int], schedules: list[str], out: Path) -> None:
    for metric in ("fvd", "psnr", "box_iou", "latency_1"):
        curves = [Curve(s, [next((r.get(metric) for r in rows
                                  if r["steps"] == n and r["schedule"] == s), None)
                            for n in steps]) for s in schedules]
        plot_curves(curves, out.with_name(f"{out.stem}_{metric}.png"),
                    f"{metric} by decoding steps", metric,
                    x_labels=[str(n) for n in steps], xlabel="decoding steps")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="run or bundle (default: shipped push64)")
    parser.add_argument("--data", required=True, help="episode store with a test split")
    parser.add_argument("--out", required=True, help="results JSON (resumed if it exists)")
    parser.add_argument("--steps", default="1,2,3,4,5,6,8,12,16")
    parser.add_argument("--schedules", default="cosine,square,linear,random")
    parser.add_argument("--num-videos", type=int, default=32)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--metrics", default="psnr,ssim,lpips,fvd")
    parser.add_argument("--latency-batches", default="1,64")
    parser.add_argument("--latency-repeats", type=int, default=3)
    parser.add_argument("--plan-tasks", type=int, default=0, help="tasks 0..N-1 (0: no planning)")
    parser.add_argument("--parts", default="quality,latency,planning",
                        help="what to measure (latency alone on an idle machine, the rest anywhere)")
    parser.add_argument("--plan-settings", default="",
                        help="plan only these settings, e.g. cosine:4,cosine:8 (default: all)")
    parser.add_argument("--plan-set", action="append", default=[],
                        help="planning override, e.g. plan.samples=32 (repeatable)")
    args = parser.parse_args()

    model = args.model or pretrained_path()
    if model is None:
        raise SystemExit("no --model given and this install ships no reference model")
    steps = [int(s) for s in args.steps.split(",")]
    schedules = args.schedules.split(",")
    batches = [int(b) for b in args.latency_batches.split(",")]
    metrics = tuple(args.metrics.split(","))
    parts = args.parts.split(",")
    predictor = load_predictor(str(model))
    store = EpisodeStore.open(args.data)
    protocol = dataclasses.replace(Protocol.from_config(predictor.config),
                                   trials=args.trials, num_videos=args.num_videos)
    networks = MetricNetworks.load(metrics)
    truth, actions = test_clips(store, protocol, "test", protocol.num_videos)
    context = truth[:, :protocol.context_frames]
    clip_actions = (actions[:, :protocol.context_frames + protocol.predicted_frames]
                    if predictor.config.transformer.action_dim else None)

    out = Path(args.out)
    rows: list[dict] = json.loads(out.read_text())["rows"] if out.exists() else []
    plan_only = {tuple(item.split(":")) for item in args.plan_settings.split(",")} if args.plan_settings else None
    for schedule in schedules:
        for n in steps:
            row = next((r for r in rows if (r["steps"], r["schedule"]) == (n, schedule)), None)
            if row is None:
                decoding = decoding_for(n, schedule, predictor.config.eval.decoding)
                row = {**dataclasses.asdict(decoding), "steps": n, "schedule": schedule}
                rows.append(row)
            decoding = decoding_for(n, schedule, predictor.config.eval.decoding)
            todo = [part for part in parts if not done(row, part, batches)]
            if "planning" in todo and (not args.plan_tasks or (
                    plan_only is not None and (schedule, str(n)) not in plan_only)):
                todo.remove("planning")
            if not todo:
                continue
            if "quality" in todo:
                row.update(quality(predictor, store, protocol, networks, metrics, decoding))
            if "latency" in todo:
                for batch in batches:
                    row[f"latency_{batch}"] = latency(predictor, context, clip_actions,
                                                      protocol.predicted_frames, decoding, batch,
                                                      args.latency_repeats if batch == 1 else 1)
            if "planning" in todo:
                row.update(planning(predictor, decoding, args.plan_tasks, args.plan_set))
            atomic_write_json(out, {"model": str(model), "num_videos": args.num_videos,
                                    "trials": args.trials, "plan_set": args.plan_set,
                                    "rows": rows})
            print(json.dumps(row), flush=True)
    atomic_write_text(out.with_suffix(".md"), markdown(rows, batches))
    plots(rows, steps, schedules, out)
    print(f"wrote {out}, {out.with_suffix('.md')} and plots beside them")


if __name__ == "__main__":
    main()
