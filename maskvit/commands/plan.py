"""`maskvit plan`: closed-loop visual MPC in a simulated world, for a model and baselines.

Parses, validates and calls `maskvit.plan.closed_loop.evaluate_policies`; prints a table.

Run visual model-predictive control (CEM over action sequences scored by the pixel distance
between predicted frames and a goal image; paper §4.4, Table 5) on push tasks generated from
seeds, for a trained model and the random and oracle baselines. Writes results.json (success
rates with 95%% Wilson intervals), one GIF per episode and index.html to --out.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from maskvit.commands import add_inference_arguments, command_parser
from maskvit.config import load_preset, preset_names
from maskvit.errors import UserError

SUMMARY = "visual MPC with CEM in the push world: success rates of a model and baselines"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = command_parser(subparsers, "plan", SUMMARY, __doc__)
    parser.add_argument("--model", metavar="RUN",
                        help="trained model run directory or bundle (default: the shipped push64 "
                             "reference model, when this install has one)")
    parser.add_argument("--tokenizer", metavar="RUN",
                        help="tokenizer run, if the model run does not record it")
    parser.add_argument("--env", default="push", help="planning world (default push)")
    parser.add_argument("--episodes", type=int, default=30, help="tasks per policy (default 30)")
    parser.add_argument("--first-task", type=int, default=0,
                        help="seed of the first task; tasks are seeds first..first+episodes-1 (default 0)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument("--policy", dest="policies", action="append", choices=["model", "random", "oracle"],
                        help="policy to run, repeatable (default: model, random and oracle with "
                             "--model, else random and oracle)")
    parser.add_argument("--oracle-cost", choices=["state", "pixel"], default="state",
                        help="oracle scores true futures by object distance (state, default) or "
                             "by the model's pixel cost on true frames (pixel: a perfect model)")
    parser.add_argument("--goal-arm", choices=["goal", "current"], default="goal",
                        help="where the pusher is in the goal image: resting behind the object "
                             "at its goal (goal, default) or where the episode starts (current)")
    parser.add_argument("--preset", default="push64",
                        help=f"config preset when no --model is given (default push64; shipped: "
                             f"{', '.join(preset_names())})")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. plan.samples=64")
    add_inference_arguments(parser)
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--no-gifs", action="store_true", help="skip the per-episode GIFs")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def check_arguments(args: argparse.Namespace) -> None:
    """One-line errors for bad flags, before any model is loaded."""
    from maskvit.plan.worlds import WORLDS

    if args.env not in WORLDS:
        raise UserError(f"unknown environment {args.env!r}; choose one of: {', '.join(WORLDS)}")
    if args.env == "robodesk":  # the world and its instances exist; its planner does not yet
        raise UserError("maskvit plan --env robodesk is not available yet: the RoboDesk world, data "
                        "and instances are in (maskvit collect --env robodesk), its model and MPPI planner are not")
    if args.episodes < 1:
        raise UserError(f"--episodes must be at least 1, got {args.episodes}")
    for flag, value in (("--first-task", args.first_task), ("--seed", args.seed)):
        if value < 0:
            raise UserError(f"{flag} must be 0 or more (seeds are non-negative), got {value}")


def run(args: argparse.Namespace) -> int:
    """Lock --out for the whole job; the report replaces an older plan report whole."""
    from maskvit.locking import output_lock
    from maskvit.report.staging import check_report_dir

    check_arguments(args)
    with output_lock(args.out, "report directory"):
        check_report_dir(args.out, "plan")  # a wrong --out fails before the work
        return _plan(args)


def _plan(args: argparse.Namespace) -> int:
    from maskvit.inference.predictor import load_predictor
    from maskvit.plan.closed_loop import evaluate_policies
    from maskvit.plan.predictor_fn import predictor_fn
    from maskvit.pretrained import pretrained_path
    from maskvit.report.staging import staged_report

    if args.model is None and (args.policies is None or "model" in args.policies):
        shipped = pretrained_path()
        if shipped is not None and args.env == "push":
            args.model = str(shipped)
            print(f"maskvit plan: using the shipped reference model {shipped}")
    policies = args.policies or (["model", "random", "oracle"] if args.model else ["random", "oracle"])
    if "model" in policies and not args.model:
        raise UserError("--policy model needs --model RUN (this install ships no reference model)")

    predict_fn, context = None, 2
    if args.model:
        predictor = load_predictor(args.model, args.tokenizer, device=args.device,
                                   precision=args.precision, overrides=args.overrides)
        config = predictor.config  # the model's own, with --set applied
        if "model" in policies:
            predict_fn = predictor_fn(predictor, config.plan.decoding, seed=args.seed)
            context = config.transformer.context_frames
    else:
        config = load_preset(args.preset, args.overrides)

    seeds = list(range(args.first_task, args.first_task + args.episodes))
    with staged_report(args.out, "plan") as stage:  # swapped in whole once complete
        results = evaluate_policies(
            args.env, policies, seeds, config.plan, stage, predict_fn=predict_fn,
            context=context, oracle_cost=args.oracle_cost, seed=args.seed,
            goal_arm=args.goal_arm, gifs=not args.no_gifs, progress=not args.no_progress,
        )
    print(f"{'policy':8s} {'solved':>8s} {'rate':>7s}  95% CI (Wilson)   s/episode")
    for name, data in results["policies"].items():
        lo, hi = data["ci95"]
        print(f"{name:8s} {data['successes']:>4d}/{data['episodes']:<3d} {data['success_rate']:>7.1%}  "
              f"[{lo:.1%}, {hi:.1%}]   {data['seconds_per_episode']:.1f}")
    print(f"wrote {Path(args.out) / 'results.json'} and {Path(args.out) / 'index.html'}")
    return 0
