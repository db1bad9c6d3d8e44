"""How well does a reach reader read the hand in the frames of planned episodes?

    python benchmarks/robodesk_reader_on_episodes.py --reader DIR [--reader DIR ...]
        --report TASK_RESULTS.json:POLICY [--report ...] [--json OUT.json]

A reader's val score is taken on its store's frames; a planner reads it elsewhere: on the
frames the simulator oracle passes through while it pulls a drawer open, and on those a
model-planned hand hovers in. Each `--report` (a `maskvit plan --env robodesk` report whose rows
keep their executed actions, with the policy to read) is replayed in the simulator, every true
frame read by every reader, and set beside the true way (`desk_approach_length` to the reader's
targets). Printed per reader: the mean absolute error where the true way is under NEAR (6 cm:
where the oracle pulls), from NEAR to 15 cm (the hand near but not there: the case a gate on
the reading, `plan.progress_gate`, must refuse) and beyond, and the reading at which a gate
would open for the near frames but for few of the others (the fraction of each read under
a few thresholds). Replays only: no model, no planning.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from robodesk_phantom_probe import replay  # benchmarks/ is on sys.path as a script
from robodesk_task_report import load_task_report, refuse_output_over_reports

from maskvit.atomic import atomic_write_json

NEAR = 0.06  # metres of true way: where the oracle's fingertips are while its drawers open
HOVER = 0.15
THRESHOLDS = (0.04, 0.06, 0.08, 0.10, 0.12)


def band_scores(read: np.ndarray, truth: np.ndarray) -> dict:
    """Per band of true way: frames, mean absolute error, mean reading, and the fraction read
    under each threshold (what a gate at that reading would let through)."""
    out = {}
    for name, low, high in (("near", 0.0, NEAR), ("hover", NEAR, HOVER), ("far", HOVER, np.inf)):
        inside = (truth >= low) & (truth < high)
        if not inside.any():
            out[name] = {"frames": 0}
            continue
        out[name] = {"frames": int(inside.sum()),
                     "mean_absolute_error": round(float(np.abs(read - truth)[inside].mean()), 4),
                     "mean_read": round(float(read[inside].mean()), 4),
                     "read_under": {f"{t:.2f}": round(float((read[inside] <= t).mean()), 3) for t in THRESHOLDS}}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reader", required=True, action="append")
    parser.add_argument("--report", required=True, action="append", metavar="RESULTS.json:POLICY")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    refuse_output_over_reports(args.json, [spec.rpartition(":")[0] for spec in args.report])
    from maskvit.plan.reach_reader import TARGET_PLACES
    from maskvit.plan.success_classifier import load_classifier
    from maskvit.plan.worlds import desk_approach_length
    from maskvit.sim.desk_instances import load_instances
    from maskvit.sim.desk_world import DeskWorld

    readers = {path: load_classifier(path) for path in args.reader}
    targets = {r.targets for r in readers.values()}
    if len(targets) != 1 or next(iter(targets)) not in TARGET_PLACES:
        sys.exit("--reader: give readers of one kind of target, trained with --reach-targets "
                 f"{' or '.join(TARGET_PLACES)}")
    slide, drawer = TARGET_PLACES[targets.pop()]
    readings, truth_all, rows = {p: [] for p in readers}, [], []
    world = DeskWorld()
    world.reset(0)
    try:
        for spec in args.report:
            path, _, policy = spec.rpartition(":")
            if not path:
                sys.exit(f"--report {spec}: name the policy to read after a colon (RESULTS.json:oracle)")
            report, report_rows = load_task_report(path, policy)
            task = report["task"]
            instances = {i.seed: i for i in load_instances(None, task=task, split=report["split"])}
            way = (lambda w, tip, task=task: desk_approach_length(w, task, tip, slide=slide, drawer=drawer))  # noqa: E731
            for row in report_rows:
                frames, _, ways, _ = replay(world, task, instances[row["instance_seed"]].start_state,
                                            np.asarray(row["actions"], np.float32), way)
                truth_all.append(ways)
                for name, reader in readers.items():
                    readings[name].append(reader.distances(frames, task))
                rows.append({"report": path, "policy": policy, "task_seed": row["task_seed"],
                             "success": row["success"], "true_way": np.round(ways, 3).tolist(),
                             **{f"read:{n}": np.round(readings[n][-1], 3).tolist() for n in readers}})
    finally:
        world.close()
    truth = np.concatenate(truth_all)
    out = {"near_m": NEAR, "hover_m": HOVER, "episodes": rows, "readers": {}}
    for name in readers:
        scores = band_scores(np.concatenate(readings[name]), truth)
        out["readers"][name] = scores
        print(name)
        for band, s in scores.items():
            if s["frames"]:
                print(f"  {band:5s} {s['frames']:4d} frames: error {s['mean_absolute_error']:.3f} m, "
                      f"mean read {s['mean_read']:.3f}; read under " +
                      ", ".join(f"{t}: {v:.2f}" for t, v in s["read_under"].items()))
    if args.json:
        atomic_write_json(args.json, out)


if __name__ == "__main__":
    sys.exit(main())
