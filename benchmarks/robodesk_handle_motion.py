"""Does the model draw the slide and the drawer moving when the hand moves them?

    python benchmarks/robodesk_handle_motion.py --model BUNDLE [--tasks open_slide open_drawer]
        [--instances 4] [--advance 6] [--random 12] [--json OUT.json]

The planner pushes the slide shut (and the drawer in) in most open_slide / open_drawer
episodes while its cost charges for closing them: either the model does not draw such small
moves, or the cost does not weigh them. This measures the first. For the first tuning
instances of each task it replans where the scripted controller has just brought the hand to
the handle (`--advance` steps from the start) and rolls, for 10 steps,

* the scripted controller's next actions (they open it),
* the same actions with x and y negated (they push it the other way),
* standing still, and `--random` sequences drawn as MPPI's first iteration draws them,

in the simulator and in the model. Per sequence it records the joint's true opening over the 10
steps (metres, the simulator's state), the change read from the simulator's frames by the
object readers (`maskvit.metrics.desk_objects`, what the planner's progress term reads) and the
change read from the model's predicted frames (all signed so that opening is positive). A model that draws what happens gives model
changes that follow the true ones, closings included. Tuning instances only.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from robodesk_cost_ranking import (  # benchmarks/ is on sys.path when run as a script
    context_after,
    expert_actions,
    planning_model,
)

from maskvit.atomic import atomic_write_json
from maskvit.metrics.desk_objects import read_drawer, read_slide
from maskvit.sim.desk_instances import load_instances
from maskvit.sim.desk_world import DRAWER_OPEN, SLIDE_OPEN, DeskWorld

READERS = {"open_slide": read_slide, "open_drawer": read_drawer}
OPENS = {"open_slide": 1.0, "open_drawer": -1.0}  # the sign of an opening move of the joint


def true_joint(world: DeskWorld, task: str) -> float:
    """The task's joint (m) in the world's current state (exact while the task is unsolved)."""
    left = world.progress(task).remaining
    return SLIDE_OPEN - left if task == "open_slide" else DRAWER_OPEN + left


def roll_with_joint(world: DeskWorld, task: str, state: np.ndarray,
                    actions: np.ndarray) -> tuple[np.ndarray, float]:
    """The frames (H, 64, 64, 3) the actions (H, A) show from `state` (as `roll`), and the
    joint's true change over them, from the simulator's state: one simulation for both."""
    world.set_state(state)
    before = true_joint(world, task)
    frames = []
    for action in actions:
        world.advance(np.clip(action, -1.0, 1.0).astype(np.float32))
        frames.append(world.render())
    return np.stack(frames), true_joint(world, task) - before


def summarise(rows: list[dict], task: str, threshold: float) -> dict:
    """Over all sequences of `task`: how often a true move of more than `threshold` m either way
    shows in the model's frames with the right sign and at least half its size."""
    true = np.concatenate([r["true_change"] for r in rows if r["task"] == task])
    model = np.concatenate([r["model_change"] for r in rows if r["task"] == task])
    read = np.concatenate([r["read_change"] for r in rows if r["task"] == task])
    out = {"sequences": int(len(true)), "corr_true_model": float(np.corrcoef(true, model)[0, 1]),
           "corr_true_read": float(np.corrcoef(true, read)[0, 1])}
    for name, moved in (("opened", true > threshold), ("closed", true < -threshold)):
        shown = np.sign(model[moved]) == np.sign(true[moved])
        shown &= np.abs(model[moved]) >= 0.5 * np.abs(true[moved])
        out[name] = {"count": int(moved.sum()), "model_shows": int(shown.sum()),
                     "mean_true": float(true[moved].mean()) if moved.any() else None,
                     "mean_model": float(model[moved].mean()) if moved.any() else None,
                     "mean_read_true_frames": float(read[moved].mean()) if moved.any() else None}
    still = np.abs(true) <= threshold
    out["unmoved"] = {"count": int(still.sum()),
                      "model_mean_abs_change": float(np.abs(model[still]).mean()) if still.any() else None}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--tasks", nargs="+", default=["open_slide", "open_drawer"])
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--advance", type=int, default=6)
    parser.add_argument("--random", type=int, default=12)
    parser.add_argument("--threshold", type=float, default=0.01, help="a move (m) that counts")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    plan, predict, std = planning_model(args.model, args.threads)
    world, rows = DeskWorld(), []
    for task in args.tasks:
        reader = READERS[task]
        for index, instance in enumerate(load_instances(None, task=task, split="tuning")[: args.instances]):
            first, second, last_action, state = context_after(world, task, instance.start_state,
                                                              args.advance, len(std))
            scripted, _ = expert_actions(world, task, state, plan.horizon)
            reverse = scripted.copy()
            reverse[:, :2] *= -1.0
            rng = np.random.default_rng([index, len(task), 7])
            random = np.clip(rng.normal(0.0, std, (args.random, plan.horizon, len(std))), -1.0, 1.0)
            sequences = np.concatenate([scripted[None], reverse[None], np.zeros_like(scripted)[None],
                                        random]).astype(np.float32)
            rolled = [roll_with_joint(world, task, state, s) for s in sequences]
            true_frames, changes = np.stack([f for f, _ in rolled]), np.array([c for _, c in rolled])
            context = np.broadcast_to(np.stack([first, second])[None], (len(sequences), 2, *first.shape))
            past = np.broadcast_to(last_action, (len(sequences), 1, len(std))).copy()
            predicted = predict(context, past, sequences)
            start_read, sign = float(reader(second)), OPENS[task]
            row = {"task": task, "instance": index,
                   "true_change": (sign * changes).round(4).tolist(),
                   "read_change": (sign * (reader(true_frames[:, -1]) - start_read)).round(4).tolist(),
                   "model_change": (sign * (reader(predicted[:, -1]) - start_read)).round(4).tolist()}
            rows.append(row)
            print(json.dumps({k: (v[:3] if isinstance(v, list) else v) for k, v in row.items()}), flush=True)
    summary = {task: summarise(rows, task, args.threshold) for task in args.tasks}
    print(json.dumps(summary, indent=1))
    if args.json:
        atomic_write_json(args.json, {"model": args.model, "advance": args.advance, "random": args.random,
                                      "threshold": args.threshold, "summary": summary, "rows": rows})


if __name__ == "__main__":
    main()
