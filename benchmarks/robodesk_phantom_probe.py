"""Does the model draw the slide or drawer opening along a planned episode where it did not open?

    python benchmarks/robodesk_phantom_probe.py --model BUNDLE --report TASK_RESULTS.json
        [--report ...] [--policy model] [--samples 4] [--reader DIR] [--random-actions] [--json OUT.json]

Each `--report` is one task's `maskvit plan --env robodesk` report whose rows keep their executed
actions (`OUT/TASK/results.json`). Every episode is replayed in the simulator from its instance's
start state; at every replan step t the model is given the true context (frames t-1 and t, the
action before) and the actions the episode went on to execute, as the planner scored them, and
the joint is read (`read_drawer` / `read_slide`) from its predicted frames beside the true joint.
A *phantom opening* is a step ahead where the drawn joint is at least PHANTOM (5 cm) more open than
the true one while the true joint has not moved; a *phantom success* one where the drawn joint
reaches the task's success threshold and the true one does not (read on the samples' mean; each
row also counts the samples that draw each on their own: does the model disagree with itself
about a phantom, which a planner scoring the worst of several draws, `plan.draws`, would need?).
A planner scoring on frames picks
exactly those action sequences when the model draws them, so phantoms tell a model error that
planning exploits from a cost that misreads. With `--reader` a reach reader's distance on the
drawn frames is set beside the true way (the task's way as the reader was trained:
`desk_approach_length` with its targets). With `--random-actions` the actions ahead of every
replan are drawn uniformly in [-1, 1] instead (the truth simulated from that step's state):
how often the model draws phantoms for actions nobody chose, against how often for the ones the
planner chose. No planning, a few predictions per step.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from robodesk_cost_ranking import planning_model  # benchmarks/ is on sys.path as a script
from robodesk_handle_motion import OPENS, READERS, true_joint
from robodesk_task_report import load_task_report, refuse_output_over_reports

from maskvit.atomic import atomic_write_json
from maskvit.sim.desk_instances import load_instances
from maskvit.sim.desk_world import DRAWER_OPEN, SLIDE_OPEN, DeskWorld

PHANTOM = 0.05  # metres drawn more open than true, with the true joint still (< STILL)
STILL = 0.01
SOLVED = {"open_drawer": DRAWER_OPEN, "open_slide": SLIDE_OPEN}


def replay(world: DeskWorld, task: str, start: np.ndarray, actions: np.ndarray, reader_way=None):
    """(frames (T+1, S, S, 3), true joints (T+1,), true ways (T+1,) or None, simulator states
    (T+1, ...)) of an episode."""
    from maskvit.sim.desk_policies import fingertips

    world.set_state(start)
    frames, joints, ways, states = [], [], [], []
    for step in range(len(actions) + 1):
        frames.append(world.render())
        states.append(world.get_state())
        joints.append(true_joint(world, task))
        if reader_way is not None:
            ways.append(reader_way(world, fingertips(world)))
        if step < len(actions):
            world.advance(np.clip(actions[step], -1.0, 1.0).astype(np.float32))
    return np.stack(frames), np.asarray(joints), (np.asarray(ways) if reader_way else None), states


def random_futures(world: DeskWorld, task: str, states: list, actions: np.ndarray, horizon: int,
                   seed: int, reader_way=None):
    """Per replan step t >= 1: (uniform random actions (ahead, A) in place of the executed ones,
    the true joints they lead to from step t's state, and the true ways or None)."""
    from maskvit.sim.desk_policies import fingertips

    rng = np.random.default_rng(seed)
    out = {}
    for t in range(1, len(actions)):
        ahead = min(horizon, len(actions) - t)
        future = rng.uniform(-1.0, 1.0, (ahead, actions.shape[1])).astype(np.float32)
        world.set_state(states[t])
        joints, ways = [], []
        for action in future:
            world.advance(action)
            joints.append(true_joint(world, task))
            if reader_way is not None:
                ways.append(reader_way(world, fingertips(world)))
        out[t] = (future, np.asarray(joints), np.asarray(ways) if reader_way else None)
    return out


def probe_episode(plan, predict, task: str, frames: np.ndarray, joints: np.ndarray, actions: np.ndarray,
                  samples: int, reader=None, ways=None, randoms: dict | None = None) -> list[dict]:
    """One row per replan step t >= 1: the true and drawn (mean over samples) joints ahead, for
    the executed actions or, with `randoms` (`random_futures`), the random ones."""
    sign, solved = OPENS[task], SOLVED[task]
    rows = []
    for t in range(1, len(actions)):
        if randoms is None:
            rest = actions[t:t + plan.horizon]
            true = joints[t + 1:t + 1 + len(rest)]
            way_true = ways[t + 1:t + 1 + len(rest)] if ways is not None else None
        else:
            rest, true, way_true = randoms[t]
        future = np.zeros((plan.horizon, actions.shape[1]), np.float32)
        future[: len(rest)] = rest
        context = np.broadcast_to(frames[t - 1:t + 1][None], (samples, 2, *frames.shape[1:]))
        past = np.broadcast_to(actions[t - 1][None, None], (samples, 1, actions.shape[1])).copy()
        drawn = predict(context, past, np.broadcast_to(future[None], (samples, *future.shape)).copy())
        ahead = len(rest)
        each = READERS[task](drawn)[:, :ahead]
        read = each.mean(axis=0)
        still = np.abs(true - joints[t]) < STILL
        more_open = sign * (read - true)
        each_phantom = ((sign * (each - true) >= PHANTOM) & still).any(axis=1)
        each_success = ((sign * each >= sign * solved) & (sign * true < sign * solved)).any(axis=1)
        each_opening = (sign * (each - joints[t]) >= PHANTOM).any(axis=1)
        row = {"t": t, "true": [round(float(v), 3) for v in true], "drawn": [round(float(v), 3) for v in read],
               "phantom_steps": int(((more_open >= PHANTOM) & still).sum()),
               "phantom_success_steps": int(((sign * read >= sign * solved) & (sign * true < sign * solved)).sum()),
               "steps": ahead,
               # per sample: did it draw a phantom opening / success / any opening >= PHANTOM
               "samples_phantom": int(each_phantom.sum()), "samples_phantom_success": int(each_success.sum()),
               "samples_opening": int(each_opening.sum())}
        if reader is not None:
            row["way_true"] = [round(float(v), 3) for v in way_true]
            row["way_drawn"] = [round(float(v), 3) for v in reader.distances(drawn, task).mean(axis=0)[:ahead]]
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--report", required=True, action="append")
    parser.add_argument("--policy", default="model")
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--reader", default=None, help="a reach reader folder (optional)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--random-actions", action="store_true",
                        help="uniform random actions ahead of each replan instead of the executed ones")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    refuse_output_over_reports(args.json, args.report)
    plan, predict, _ = planning_model(args.model, args.threads)
    reader = reader_way = None
    if args.reader:
        from maskvit.plan.reach_reader import TARGET_PLACES
        from maskvit.plan.success_classifier import load_classifier
        from maskvit.plan.worlds import desk_approach_length

        reader = load_classifier(args.reader)
        if reader.targets not in TARGET_PLACES:
            sys.exit(f"--reader: {args.reader} reads distances to the objects; give one trained with "
                     f"--reach-targets {' or '.join(TARGET_PLACES)}")
    world = DeskWorld()
    world.reset(0)
    out = {"model": args.model, "samples": args.samples, "phantom_m": PHANTOM,
           "actions": "random" if args.random_actions else "executed", "reports": {}}
    try:
        for path in args.report:
            report, report_rows = load_task_report(path, args.policy)
            task = report["task"]
            if reader is not None:
                slide, drawer = TARGET_PLACES[reader.targets]
                reader_way = (lambda w, tip, task=task, slide=slide, drawer=drawer:  # noqa: E731
                              desk_approach_length(w, task, tip, slide=slide, drawer=drawer))
            instances = {i.seed: i for i in load_instances(None, task=task, split=report["split"])}
            episodes = []
            for row in report_rows:
                actions = np.asarray(row["actions"], np.float32)
                frames, joints, ways, states = replay(world, task, instances[row["instance_seed"]].start_state,
                                                      actions, reader_way)
                randoms = (random_futures(world, task, states, actions, plan.horizon, row["task_seed"], reader_way)
                           if args.random_actions else None)
                steps = probe_episode(plan, predict, task, frames, joints, actions, args.samples, reader, ways,
                                      randoms)
                episodes.append({"task_seed": row["task_seed"], "success": row["success"], "steps": steps})
                phantom = sum(s["phantom_steps"] for s in steps)
                success = sum(s["phantom_success_steps"] for s in steps)
                print(f"{task} instance {row['task_seed']:3d} {'solved' if row['success'] else 'missed'}: "
                      f"replans with a phantom opening {sum(s['phantom_steps'] > 0 for s in steps)}/{len(steps)}, "
                      f"with a phantom success {sum(s['phantom_success_steps'] > 0 for s in steps)}/{len(steps)} "
                      f"(steps ahead: {phantom} and {success} of {sum(s['steps'] for s in steps)})", flush=True)
            out["reports"][path] = {"task": task, "episodes": episodes}
    finally:
        world.close()
    every = [s for r in out["reports"].values() for e in r["episodes"] for s in e["steps"]]
    out["replans"] = len(every)
    out["replans_with_phantom_opening"] = sum(s["phantom_steps"] > 0 for s in every)
    out["replans_with_phantom_success"] = sum(s["phantom_success_steps"] > 0 for s in every)
    print(f"all: {out['replans_with_phantom_opening']}/{len(every)} replans draw a phantom opening, "
          f"{out['replans_with_phantom_success']}/{len(every)} a phantom success")
    if args.json:
        atomic_write_json(args.json, out)


if __name__ == "__main__":
    sys.exit(main())
