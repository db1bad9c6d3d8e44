"""Does a model draw the fast opening move (the slide's panel push, the drawer pulled from
inside), just before the joint moves?

    python benchmarks/robodesk_panel_probe.py --model BUNDLE [--model BUNDLE ...]
        [--task open_slide|open_drawer] [--instances 10] [--samples 8] [--threads 2] [--json OUT.json]

From each tuning instance's start, the task's fast scripted controller (`PanelSlidePolicy`;
for the drawer `DrawerPolicy`, which goes inside the drawer where it can; seeded by the
instance's index) runs 25 steps in the simulator. Where it first opens the joint (> 2 cm in a
step), the model is given the true context 3, 1 and 0 steps before that move and the policy's
own next actions, and the joint is read from its predicted frames (the progress cost's reader)
six steps on, `--samples` decodings each, beside the simulator's joint. A model that a planner
can steer into the move must draw it here, where the hand is already in place. Tuning
instances only; the instances whose joint the policy never opens are listed and skipped.
"""

from __future__ import annotations

import argparse

import numpy as np
from robodesk_cost_ranking import planning_model  # benchmarks/ is on sys.path as a script
from robodesk_handle_motion import OPENS, READERS, true_joint

from maskvit.atomic import atomic_write_json
from maskvit.sim.desk_instances import load_instances
from maskvit.sim.desk_policies import DrawerPolicy, PanelSlidePolicy
from maskvit.sim.desk_world import DeskWorld

STEPS = 25  # the policy's steps from each start
LEADS = (3, 1, 0)  # context this many steps before the slide's first move
AHEAD = 6  # the joint read this many predicted steps on
POLICIES = {"open_slide": PanelSlidePolicy, "open_drawer": DrawerPolicy}
# (a true opening over the AHEAD steps, a drawn one: the mean read this far past the start), metres
OPENING = {"open_slide": (0.30, 0.15), "open_drawer": (0.08, 0.04)}


def panel_episode(world: DeskWorld, start: np.ndarray, seed: int,
                  task: str = "open_slide") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames (STEPS+1, S, S, 3), actions (STEPS, 5) and the task's joint (STEPS+1,) of its
    fast scripted opening from `start`."""
    world.set_state(start)
    policy = POLICIES[task]()
    policy.reset(world, np.random.default_rng(seed))
    frames, actions, joints = [world.render()], [], [true_joint(world, task)]
    for _ in range(STEPS):
        action = policy.action(world)
        world.advance(action)
        actions.append(action)
        frames.append(world.render())
        joints.append(true_joint(world, task))
    return np.stack(frames), np.asarray(actions, np.float32), np.asarray(joints)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", required=True, help="a bundle (repeat for several)")
    parser.add_argument("--task", choices=sorted(POLICIES), default="open_slide")
    parser.add_argument("--instances", type=int, default=10)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    task, sign = args.task, OPENS[args.task]
    reader = READERS[task]
    true_open, drawn_open = OPENING[task]
    world = DeskWorld()
    world.reset(0)
    cases = []
    try:
        for index, instance in enumerate(load_instances(None, task=task, split="tuning")[: args.instances]):
            frames, actions, joints = panel_episode(world, instance.start_state, index, task)
            moves = [t for t in range(STEPS) if sign * (joints[t + 1] - joints[t]) > 0.02]
            if not moves:
                print(f"instance {index}: the policy never opens it (start {joints[0]:.2f}); skipped")
                continue
            cases += [(index, lead, moves[0] - lead, frames, actions, joints) for lead in LEADS
                      if moves[0] - lead >= 1]
    finally:
        world.close()
    report = {"task": task, "instances": args.instances, "samples": args.samples, "ahead": AHEAD, "models": {}}
    for model in args.model:
        plan, predict, _ = planning_model(model, args.threads)
        rows = []
        for index, lead, t, frames, actions, joints in cases:
            future = np.zeros((plan.horizon, actions.shape[1]), np.float32)
            rest = actions[t:t + plan.horizon]
            future[: len(rest)] = rest
            n = args.samples
            context = np.broadcast_to(frames[t - 1:t + 1][None], (n, 2, *frames.shape[1:]))
            past = np.broadcast_to(actions[t - 1][None, None], (n, 1, actions.shape[1])).copy()
            predicted = predict(context, past, np.broadcast_to(future[None], (n, *future.shape)).copy())
            read = reader(predicted)[:, AHEAD - 1]
            rows.append({"instance": index, "lead": lead, "true_from": round(float(joints[t]), 4),
                         "true_to": round(float(joints[t + AHEAD]), 4), "model_mean": round(float(read.mean()), 4),
                         "model_min": round(float(read.min()), 4), "model_max": round(float(read.max()), 4)})
        opened = [r for r in rows if sign * (r["true_to"] - r["true_from"]) > true_open]
        drawn = sum(sign * (r["model_mean"] - r["true_from"]) > drawn_open for r in opened)
        report["models"][model] = {"cases": rows, "true_openings": len(opened), "drawn_openings": drawn}
        print(f"{model}: draws {drawn} of the {len(opened)} cases where {task}'s joint opens > "
              f"{100 * true_open:.0f} cm in {AHEAD} steps (mean read > {100 * drawn_open:.0f} cm past the start)")
        for r in rows:
            print(f"  instance {r['instance']} lead {r['lead']}: true {r['true_from']:.2f} -> {r['true_to']:.2f}  "
                  f"model {r['model_mean']:.2f} [{r['model_min']:.2f}, {r['model_max']:.2f}]")
    if args.json:
        atomic_write_json(args.json, report)


if __name__ == "__main__":
    main()
