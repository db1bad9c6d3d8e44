"""Make the RoboDesk benchmark instances (maskvit/sim/data/robodesk_instances_v1.npz).

    python benchmarks/make_robodesk_instances.py [--tuning 10] [--test 30] [--tasks a,b]
                                                 [--work DIR] [--out FILE]

Each task's instances are rolled from their own seeds (`desk_instances.instance_seed`) and
kept in --work per task and split as they finish, so an interrupted run resumes where it
stopped; the instance file is written (atomically) once every task is done. A task whose
scripted policy solves none of its first --give-up seeds gets no instances, and the run
says so (the instance file then lacks that task).

    python benchmarks/make_robodesk_instances.py --extend FILE --tasks open_slide,open_drawer
        --tuning 30 [--work DIR] --out NEW_FILE

keeps every instance of FILE and appends, for each of --tasks, the regenerated tuning instances
past FILE's count, only where the regenerated first ones equal FILE's bit-exactly (a task whose
scripted controller has changed since FILE was made is refused, in one line): the old indices
and every test instance stay as they were. Regenerating the whole shipped file no longer gives
the buttons' instances of v1 (their controller has since been made faster); the slide's do.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from maskvit.sim.desk_instances import (
    SHIPPED,
    Instance,
    load_instances,
    make_instances,
    save_instances,
)
from maskvit.sim.desk_world import TASKS, DeskWorld, check_task


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tuning", type=int, default=10, help="tuning instances per task (default 10)")
    parser.add_argument("--test", type=int, default=30, help="held-out test instances per task (default 30)")
    parser.add_argument("--tasks", default=",".join(TASKS), help="tasks (default: all seven)")
    parser.add_argument("--give-up", type=int, default=12,
                        help="seeds to try before deciding a task's script cannot solve it (default 12)")
    parser.add_argument("--work", default="runs/robodesk_instances", help="per-task results, for resuming")
    parser.add_argument("--out", default=str(SHIPPED), help=f"instance file (default {SHIPPED})")
    parser.add_argument("--extend", default=None,
                        help="an instance file to keep whole, with --tasks' tuning splits extended to --tuning")
    args = parser.parse_args()
    tasks = [check_task(t.strip()) for t in args.tasks.split(",")]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    world = DeskWorld()
    if args.extend is not None:
        return extend_tuning(world, args.extend, tasks, args.tuning, work, args.out)
    everything = []
    for task in tasks:
        for split, count in (("tuning", args.tuning), ("test", args.test)):
            part = work / f"{task}_{split}_{count}.npz"
            if part.is_file():
                found = load_instances(part)
            elif part.with_suffix(".none").is_file():
                found = []
            else:
                started = time.time()
                probe = make_instances(world, task, split, 1, max_seeds=args.give_up)
                found = make_instances(world, task, split, count) if probe else []
                save_instances(part, found) if found else part.with_suffix(".none").touch()
                steps = sorted(i.goal_step for i in found)
                print(f"{task} {split}: {len(found)}/{count} instances in {time.time() - started:.0f} s"
                      f"{f'; goal reached in {steps[0]}-{steps[-1]} steps' if steps else ''}", flush=True)
            if not found:
                print(f"{task} {split}: the scripted policy solved none of {args.give_up} seeds; "
                      "no instances", file=sys.stderr)
            everything += found
    save_instances(args.out, everything)
    print(f"wrote {len(everything)} instances to {args.out}")
    return 0


def same_instance(a: Instance, b: Instance) -> bool:
    return (a.task, a.split, a.seed, a.goal_step) == (b.task, b.split, b.seed, b.goal_step) and all(
        np.array_equal(getattr(a, f), getattr(b, f)) for f in ("start_state", "goal_state", "goal_image"))


def extend_tuning(world: DeskWorld, base: str, tasks: list[str], count: int, work: Path, out: str) -> int:
    """FILE's instances, with each task's tuning split extended to `count` by regenerated ones
    whose first ones equal FILE's (else that task is refused and nothing is written)."""
    if Path(out).resolve() == Path(base).resolve():
        print(f"--out {out} is the file --extend reads; write the extended file elsewhere", file=sys.stderr)
        return 2
    kept = load_instances(base)
    added = []
    for task in tasks:
        old = [i for i in kept if i.task == task and i.split == "tuning"]
        part = work / f"{task}_tuning_{count}.npz"
        fresh = load_instances(part) if part.is_file() else make_instances(world, task, "tuning", count)
        if not part.is_file():
            save_instances(part, fresh)
        if len(fresh) < max(count, len(old)):
            print(f"{task}: its scripted policy solved only {len(fresh)} tuning seeds; not extended", file=sys.stderr)
            return 2
        if not all(same_instance(a, b) for a, b in zip(old, fresh[: len(old)], strict=True)):
            print(f"{task}: its regenerated tuning instances are not {base}'s first {len(old)}; its "
                  "scripted controller changed since, so its tuning split is not extended", file=sys.stderr)
            return 2
        added += fresh[len(old):]
        print(f"{task} tuning: {len(old)} kept, {len(fresh) - len(old)} added", flush=True)
    save_instances(out, kept + added)
    print(f"wrote {len(kept) + len(added)} instances to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
