"""Where did the hand go in a planned slide or drawer episode, and did the joint move?

    python benchmarks/robodesk_episode_trace.py --report TASK_RESULTS.json [--policy model]
        [--json OUT.json]

`TASK_RESULTS.json` is one task's `maskvit plan --env robodesk` report (`OUT/TASK/results.json`)
whose rows keep their executed actions. Each episode is replayed in the simulator from its
instance's start state; per step it prints the fingertips' way to where the task is begun
(`desk_approach_length`: for open_slide both to the bar's pushing side and to the panel push's
place, `slide="bar"` / `"panel"`; for open_drawer both to the gap behind its bar and inside it
behind its front wall, `drawer="hook"` / `"inside"` / `"inside_clear"`) and the task's joint;
for open_drawer also where the fingertips rest on the desk top behind its front edge (1, else
0: a hand pressing down there towards the drawer's inside, which lies under the desk top, stays
put). It tells a planner that never went for the handle from one that went there and pushed
nothing, or pushed the wrong way, or got stuck on the desk top.
"""

from __future__ import annotations

import argparse

import numpy as np
from robodesk_handle_motion import true_joint  # benchmarks/ is on sys.path as a script
from robodesk_task_report import load_task_report, refuse_output_over_reports

from maskvit.atomic import atomic_write_json
from maskvit.plan.worlds import desk_approach_length
from maskvit.sim.desk_instances import load_instances
from maskvit.sim.desk_policies import fingertips, on_desk_top
from maskvit.sim.desk_world import DeskWorld

# Per task, the ways traced: name -> `desk_approach_length` keywords (the buttons: one way).
ROUTES = {"open_slide": {"bar": {"slide": "bar"}, "panel": {"slide": "panel"}},
          "open_drawer": {"hook": {"drawer": "hook"}, "inside": {"drawer": "inside"},
                          "inside_clear": {"drawer": "inside_clear"}}}


def trace(world: DeskWorld, task: str, start: np.ndarray, actions: np.ndarray) -> dict[str, list[float]]:
    """Per step (T+1 values each): the task's joint and the fingertips' ways to where it is begun."""
    routes = ROUTES.get(task, {"bar": {}})
    world.set_state(start)
    out: dict[str, list[float]] = {"joint": [], **{f"way_{r}": [] for r in routes}}
    if task == "open_drawer":
        out["on_desk_top"] = []
    for step in range(len(actions) + 1):
        out["joint"].append(float(true_joint(world, task)))
        tip = fingertips(world)
        if task == "open_drawer":
            out["on_desk_top"].append(float(on_desk_top(tip)))
        for route, place in routes.items():
            out[f"way_{route}"].append(desk_approach_length(world, task, tip, **place))
        if step < len(actions):
            world.advance(np.clip(actions[step], -1.0, 1.0).astype(np.float32))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", required=True, help="one task's plan report whose rows keep actions")
    parser.add_argument("--policy", default="model")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    refuse_output_over_reports(args.json, [args.report])
    report, report_rows = load_task_report(args.report, args.policy)
    task = report["task"]
    instances = {i.seed: i for i in load_instances(None, task=task, split=report["split"])}
    world = DeskWorld()
    world.reset(0)
    rows = []
    try:
        for row in report_rows:
            steps = trace(world, task, instances[row["instance_seed"]].start_state, np.asarray(row["actions"]))
            rows.append({"task_seed": row["task_seed"], "success": row["success"], **steps})
            ways = [k for k in steps if k.startswith("way_") or k == "on_desk_top"]
            print(f"instance {row['task_seed']:3d} {'solved' if row['success'] else 'missed'}  joint "
                  + " ".join(f"{j:.2f}" for j in steps["joint"]))
            for way in ways:
                print(f"{'':20s}{way:9s} " + " ".join(f"{d:.2f}" for d in steps[way]))
    finally:
        world.close()
    if rows and "on_desk_top" in rows[0]:
        stuck = [int(sum(r["on_desk_top"])) for r in rows]
        print(f"on the desk top: {sum(s > 0 for s in stuck)}/{len(rows)} episodes, {sum(stuck)} steps")
    if args.json:
        atomic_write_json(args.json, {"report": args.report, "task": task, "policy": args.policy, "episodes": rows})


if __name__ == "__main__":
    main()
