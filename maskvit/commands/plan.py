"""`maskvit plan`: closed-loop visual MPC in a simulated world, for a model and baselines.

Parses, validates and calls `maskvit.plan.closed_loop.play_policies`; prints a table.

Run visual model-predictive control (an optimizer over action sequences scored by the pixel
distance between predicted frames and a goal image; paper §4.4, Table 5) for a trained model
and the random and simulator-oracle baselines, on the same tasks:

  --env push       push tasks generated from seeds (--first-task, --episodes); CEM by
                   default (preset push64).
  --env robodesk   VP2's RoboDesk tasks on the shipped benchmark instances (--task, repeatable;
                   --split test or tuning; --first-task and --episodes pick instances of each
                   task); VP2's protocol by default (preset robodesk64: MPPI, 200 samples,
                   horizon 10, replanning every step of a 15-step episode, one zero action first);
                   --tuned: the model plays each task with the settings its tuning instances
                   chose (maskvit.plan.tuned_settings), the baselines the preset's.

The oracle runs the same optimizer but scores each candidate by simulating it from the
current state: --oracle-cost state (default) reads the simulator without rendering (push:
object distance; RoboDesk: the task's progress plus the fingertips' distance to what the task
moves), --oracle-cost pixel renders the true frames and applies the model's cost, a task
cost's classifier or reach reader included (a perfect video model read by the same cost).
On RoboDesk a simulated step costs ~0.08 CPU-s and a rendered frame ~0.26 (measured), so
VP2's 200 samples x 10 steps cost ~160 CPU-s per replan for the state oracle and ~680 for
the pixel one: pass fewer, e.g. --set plan.samples=16 --set plan.horizon=5.

Writes results.json (success rates with 95 % Wilson intervals; per episode its executed actions,
to replay it), one GIF per episode and index.html to --out (RoboDesk: a folder per task, and
an overview over all tasks).
--workers N plays the episodes in N local processes; under `torchrun --nproc-per-node N -m
maskvit plan ...` (on one or several machines) each rank plays its share. Rank 0 alone writes
--out, and the results equal a single process's, episode by episode.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import os
from pathlib import Path

import torch

from maskvit.commands import add_inference_arguments, command_parser
from maskvit.config import load_preset, preset_names
from maskvit.errors import UserError
from maskvit.inference import requests
from maskvit.inference.predictor import load_predictor
from maskvit.plan.closed_loop import play_policies
from maskvit.plan.predictor_fn import predictor_fn
from maskvit.plan.tuned_settings import task_plan_configs
from maskvit.plan.worlds import ACTION_DIMS, WORLDS
from maskvit.pretrained import pretrained_path
from maskvit.report.staging import staged_report
from maskvit.sharding import (
    Shard,
    broadcast_json,
    check_workers,
    run_local_workers,
    torchrun_session,
)

SUMMARY = "visual MPC in the push world or RoboDesk: success rates of a model and baselines"
# Each world's preset; with no --model, the shipped model of that name plans (when installed).
DEFAULT_PRESETS = {"push": "push64", "robodesk": "robodesk64"}
PUSH_EPISODES = 30


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = command_parser(subparsers, "plan", SUMMARY, __doc__)
    parser.add_argument("--model", metavar="RUN",
                        help="trained model run directory or bundle (default: the shipped reference "
                             "model for --env, when this install has one: push64 for push)")
    parser.add_argument("--tokenizer", metavar="RUN",
                        help="tokenizer run, if the model run does not record it")
    parser.add_argument("--env", default="push", help="planning world: push (default) or robodesk")
    parser.add_argument("--task", dest="tasks", action="append", metavar="TASK",
                        help="RoboDesk task, repeatable (default: every task the instance file has: "
                             "push_red, push_green, push_blue, open_slide, open_drawer, "
                             "upright_block_off_table, flat_block_off_table)")
    parser.add_argument("--split", default=None,
                        help="RoboDesk instances: test (default; for reporting) or tuning (for "
                             "choosing settings)")
    parser.add_argument("--instances", metavar="FILE",
                        help="RoboDesk instance file (default: the shipped robodesk_instances_v1.npz)")
    parser.add_argument("--episodes", type=int, default=None,
                        help=f"push: tasks per policy (default {PUSH_EPISODES}); robodesk: instances "
                             "per task (default: all of the split from --first-task on)")
    parser.add_argument("--first-task", type=int, default=0,
                        help="push: seed of the first task (tasks are seeds first..first+episodes-1); "
                             "robodesk: index of the first instance of each task's split (default 0)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument("--policy", dest="policies", action="append", choices=["model", "random", "oracle"],
                        help="policy to run, repeatable (default: model, random and oracle with "
                             "a model, else random and oracle)")
    parser.add_argument("--oracle-cost", choices=["state", "pixel"], default="state",
                        help="oracle scores true futures by the simulator state (state, default: "
                             "push: object distance; robodesk: task progress and reach, no rendering) or "
                             "by the model's cost on rendered true frames (pixel: a perfect model, "
                             "task costs read with --classifier; on robodesk ~0.2 CPU-s a frame, so "
                             "pass fewer samples, e.g. --set plan.samples=16)")
    parser.add_argument("--goal-arm", choices=["goal", "current"], default="goal",
                        help="push: where the pusher is in the goal image: resting behind the "
                             "object at its goal (goal, default) or where the episode starts (current)")
    parser.add_argument("--classifier", metavar="[TASK=]DIR", action="append", default=None,
                        help="task-success classifier (maskvit train-classifier) for "
                             "plan.cost=pixel_l2_classifier, VP2's RoboDesk cost, or a reach reader "
                             "(train-classifier --kind reach) for plan.cost=pixel_l2_reach: DIR for every "
                             "task, TASK=DIR for one (repeatable; it wins over DIR); default with the "
                             "shipped robodesk64 model: the ones shipped with it")
    parser.add_argument("--preset", default=None,
                        help=f"config preset when no --model is given (default: push64 for push, "
                             f"robodesk64 for robodesk; shipped: {', '.join(preset_names())})")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. plan.samples=64")
    parser.add_argument("--tuned", action="store_true",
                        help="robodesk: the model plays each task with the settings its tuning instances "
                             "chose (robodesk64: push_red and push_blue 128 samples and the reach cost, "
                             "push_green 64 and the pixel cost; others the preset's); --set still wins")
    add_inference_arguments(parser)
    parser.add_argument("--workers", type=int, default=1,
                        help="local processes sharing the episodes (default 1; under torchrun each "
                             "rank is one)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--no-gifs", action="store_true", help="skip the per-episode GIFs")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def check_arguments(args: argparse.Namespace) -> None:
    """One-line errors for bad flags, before anything is loaded or written; fills in the
    defaults that depend on --env."""
    if args.env not in WORLDS:
        raise UserError(f"unknown environment {args.env!r}; choose one of: {', '.join(WORLDS)}")
    if args.episodes is not None and args.episodes < 1:
        raise UserError(f"--episodes must be at least 1, got {args.episodes}")
    for flag, value in (("--first-task", args.first_task), ("--seed", args.seed)):
        if value < 0:
            raise UserError(f"{flag} must be 0 or more (seeds are non-negative), got {value}")
    check_workers(args.workers)
    if args.tuned and args.env != "robodesk":
        raise UserError("--tuned is for --env robodesk (its tasks' settings were tuned); "
                        "push settings come from the preset and --set")
    if args.tuned and args.policies is not None and "model" not in args.policies:
        raise UserError("--tuned sets the model policy's settings; add --policy model or leave --tuned out")
    if args.env == "push":
        for flag, value in (("--task", args.tasks), ("--split", args.split), ("--instances", args.instances)):
            if value is not None:
                raise UserError(f"{flag} is for --env robodesk; push tasks are seeds: "
                                "choose them with --first-task and --episodes")
        if args.episodes is None:
            args.episodes = PUSH_EPISODES
    if args.preset is None:
        args.preset = DEFAULT_PRESETS[args.env]


def check_robodesk(args: argparse.Namespace) -> None:
    """Tasks, split and instance counts against the instance file, and headless GL; fills
    in --task, --split and --episodes where they were left to their defaults."""
    # Importing maskvit.sim loads pybullet: only when RoboDesk is asked for.
    from maskvit.sim.desk_instances import SPLITS, load_instances
    from maskvit.sim.desk_world import TASKS, check_rendering

    args.split = args.split or "test"
    if args.split not in SPLITS:
        raise UserError(f"unknown --split {args.split!r}; choose from: {', '.join(SPLITS)}")
    for task in args.tasks or []:
        if task not in TASKS:
            close = difflib.get_close_matches(task, TASKS, n=1, cutoff=0.5)
            hint = f"did you mean {close[0]}? " if close else ""
            raise UserError(f"unknown RoboDesk task {task!r}; {hint}choose from: {', '.join(TASKS)}")
    instances = load_instances(args.instances, split=args.split)  # a damaged file: one line
    counts = {task: sum(i.task == task for i in instances) for task in TASKS}
    if args.tasks is None:
        args.tasks = [task for task in TASKS if counts[task]]
    args.tasks = list(dict.fromkeys(args.tasks))  # a task given twice runs once
    fewest = min(args.tasks, key=lambda task: counts[task])
    if counts[fewest] == 0:
        raise UserError(f"the instance file has no {args.split} instances of {fewest}")
    available = counts[fewest] - args.first_task
    if args.episodes is None and available >= 1:
        args.episodes = available
    if args.episodes is None or args.episodes > available:
        wanted = args.episodes or 1
        raise UserError(f"--first-task {args.first_task} --episodes {wanted} asks for {fewest}'s "
                        f"{args.split} instances {args.first_task}..{args.first_task + wanted - 1}, "
                        f"but it has {counts[fewest]} (0..{counts[fewest] - 1})")
    check_rendering()  # no headless GL: one line naming the package, before anything is written


def run(args: argparse.Namespace) -> int:
    """Check the flags, then plan in this process, in --workers local ones, or as this
    torchrun rank."""
    check_arguments(args)
    if args.env == "robodesk":
        check_robodesk(args)
    if args.workers > 1:
        run_local_workers(plan_rank, args.workers, args)
        return 0
    with torchrun_session() as shard:
        return plan_rank(shard or Shard(), args)


def plan_rank(shard: Shard, args: argparse.Namespace) -> int:
    """One process's part: load the model, play its share of the episodes; rank 0 alone
    locks --out, stages the report and writes it."""
    if args.workers > 1:  # local workers share this machine's cores
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // args.workers))
    policies, config, predict_fn, context = _policies_and_model(args, shard)
    model_plans = None
    if args.tuned and "model" in policies:
        model_plans = task_plan_configs(config, args.tasks, args.overrides)
    model_costs = {plan.cost for plan in model_plans.values()} if model_plans else {config.plan.cost}
    reads_cost = "model" in policies or (args.oracle_cost == "pixel" and "oracle" in policies)
    task_costs = ({task: plan.cost for task, plan in model_plans.items()} if model_plans
                  else {task: config.plan.cost for task in args.tasks or [args.env]})
    classifiers, classifier_sources = _classifiers(args, task_costs, reads_cost)
    for cost in model_costs:
        _check_progress_cost(args, cost)
    with contextlib.ExitStack() as stack:
        stage = _open_report(args.out, shard, stack)
        results = play_policies(
            args.env, policies, list(range(args.first_task, args.first_task + args.episodes)),
            config.plan, stage if stage is not None else Path(args.out), predict_fn=predict_fn,
            context=context, oracle_cost=args.oracle_cost, seed=args.seed, goal_arm=args.goal_arm,
            gifs=not args.no_gifs, progress=not args.no_progress, tasks=args.tasks,
            split=args.split or "test", instances_path=args.instances, shard=shard,
            classifiers=classifiers, classifier_sources=classifier_sources, model_plans=model_plans,
        )
    if shard.is_main:
        _print_results(results, args.out)
    return 0


def _open_report(out: str, shard: Shard, stack) -> Path | None:
    """Rank 0 locks --out and stages the report (held open on `stack`); every rank learns
    whether that worked and stops with rank 0's one-line error if not."""
    stage, error = None, None
    if shard.is_main:
        try:
            stage = stack.enter_context(staged_report(out, "plan"))  # a wrong --out fails here
        except UserError as err:
            error = str(err)
    error = broadcast_json(error, shard)
    if error is not None:
        raise UserError(error)
    return stage


def _policies_and_model(args: argparse.Namespace, shard: Shard):
    """(policies, config, predict_fn, context frames): the model loaded and checked against
    the world's actions when a policy needs it."""
    if args.model is None and (args.policies is None or "model" in args.policies):
        shipped = pretrained_path(DEFAULT_PRESETS[args.env])
        if shipped is not None:
            args.model = str(shipped)
            if shard.is_main:
                print(f"maskvit plan: using the shipped reference model {shipped}")
    policies = args.policies or (["model", "random", "oracle"] if args.model else ["random", "oracle"])
    policies = list(dict.fromkeys(policies))
    if "model" in policies and not args.model:
        raise UserError(f"--policy model needs --model RUN (this install ships no {args.env} model; "
                        f"train one with --preset {DEFAULT_PRESETS[args.env]})")
    if not args.model:
        return policies, requests.config_with_flags(load_preset(args.preset), args.overrides), None, 2
    predictor = load_predictor(args.model, args.tokenizer, device=args.device,
                               precision=args.precision, overrides=args.overrides)
    config = predictor.config  # the model's own, with --set applied
    have, need = config.transformer.action_dim, ACTION_DIMS[args.env]
    if have != need:
        world = "RoboDesk" if args.env == "robodesk" else "the push world"
        raise UserError(f"{config.name} has {have}-D actions; {world} needs {need}-D: train one "
                        f"with --preset {DEFAULT_PRESETS[args.env]}")
    if "model" not in policies:
        return policies, config, None, 2
    return (policies, config, predictor_fn(predictor, config.plan.decoding, seed=args.seed),
            config.transformer.context_frames)


def _classifiers(args: argparse.Namespace, task_costs: dict[str, str], reads_cost: bool):
    """(task -> the classifier or reach reader its model cost reads, task -> where it came
    from), or (None, None) where no task's cost reads one or no policy reads the costs (the
    model, the pixel oracle); `--classifier [TASK=]DIR`, else the ones shipped with the
    shipped model (`--tuned`: the reader its tuning chose for the task)."""
    from maskvit.plan.planner import CLASSIFIER_COSTS
    from maskvit.plan.task_readers import load_task_readers, parse_classifier_flags
    from maskvit.plan.tuned_settings import tuned_reader
    from maskvit.pretrained import shipped_classifier

    flags = parse_classifier_flags(args.classifier, args.tasks or [])
    costs = set(task_costs.values())
    reading = costs & set(CLASSIFIER_COSTS)
    if flags.given and not reading:
        raise UserError(f"--classifier is read by plan.cost={' or '.join(CLASSIFIER_COSTS)} only (this "
                        f"run's cost is {', '.join(sorted(costs))}); add --set plan.cost={CLASSIFIER_COSTS[0]}")
    if not reads_cost or not reading:
        return None, None
    preset = DEFAULT_PRESETS[args.env]
    shipped = pretrained_path(preset)
    is_shipped = shipped is not None and args.model and Path(args.model).resolve() == shipped.resolve()

    def default_folder(task: str, kind: str):
        if not is_shipped:
            return None
        # trained on the shipped model's store; per task where its tuning chose one
        return (tuned_reader(preset, task, kind) if args.tuned else None) or shipped_classifier(preset, kind)

    return load_task_readers(task_costs, flags, default_folder)


def _check_progress_cost(args: argparse.Namespace, cost: str) -> None:
    """A progress cost reads RoboDesk frames, and has readings for some tasks only: one line
    before any episode where the world or a task has none."""
    from maskvit.plan.desk_progress_cost import ProgressCost
    from maskvit.plan.planner import PROGRESS_COSTS, REACH_COSTS

    if cost not in (*PROGRESS_COSTS, *REACH_COSTS):
        return
    if args.env != "robodesk":
        raise UserError(f"plan.cost={cost} reads RoboDesk frames; with --env {args.env} use plan.cost=pixel_l2")
    for task in args.tasks or []:
        ProgressCost(task)


def _print_results(results: dict, out: str) -> None:
    header = f"{'policy':8s} {'solved':>8s} {'rate':>7s}  95% CI (Wilson)   s/episode  CPU-s/episode"
    sections = [(None, results["policies"])]  # push: one table; RoboDesk: one per task, then all
    if "per_task" in results:
        sections = [*results["per_task"].items(), ("all tasks", results["policies"])]
    for title, policies in sections:
        if title:
            print(title)
        print(header)
        for name, data in policies.items():
            lo, hi = data["ci95"]
            print(f"{name:8s} {data['successes']:>4d}/{data['episodes']:<3d} {data['success_rate']:>7.1%}  "
                  f"[{lo:.1%}, {hi:.1%}]   {data.get('seconds_per_episode', float('nan')):9.1f}  "
                  f"{data.get('cpu_seconds_per_episode', float('nan')):13.1f}")
    print(f"wrote {Path(out) / 'results.json'} and {Path(out) / 'index.html'}")
