"""Make the RoboDesk benchmark instances (maskvit/sim/data/robodesk_instances_v1.npz).

    python benchmarks/make_robodesk_instances.py [--tuning 10] [--test 30] [--tasks a,b]
                                                 [--work DIR] [--out FILE]

Each task's instances are rolled from their own seeds (`desk_instances.instance_seed`) and
kept in --work per task and split as they finish, so an interrupted run resumes where it
stopped; the instance file is written (atomically) once every task is done. A task whose
scripted policy solves none of its first --give-up seeds gets no instances, and the run
says so (the instance file then lacks that task).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from maskvit.sim.desk_instances import SHIPPED, load_instances, make_instances, save_instances
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
    args = parser.parse_args()
    tasks = [check_task(t.strip()) for t in args.tasks.split(",")]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    world = DeskWorld()
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


if __name__ == "__main__":
    sys.exit(main())
