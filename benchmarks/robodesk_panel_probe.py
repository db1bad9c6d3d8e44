"""Does a model draw the fast panel push opening the slide, just before the slide moves?

    python benchmarks/robodesk_panel_probe.py --model BUNDLE [--model BUNDLE ...]
        [--instances 10] [--samples 8] [--threads 2] [--json OUT.json]

From each open_slide tuning instance's start, `PanelSlidePolicy` (seeded by the instance's
index) runs 25 steps in the simulator. Where it moves the slide (> 2 cm in a step), the model
is given the true context 3, 1 and 0 steps before that first move and the policy's own next
actions, and the slide is read from its predicted frames (the progress cost's reader) six
steps on, `--samples` decodings each, beside the simulator's joint. A model that a planner can
steer into the panel push must draw it here, where the hand is already at the panel. Tuning
instances only; the instances whose slide the policy never moves are listed and skipped.
"""

from __future__ import annotations

import argparse

import numpy as np
from robodesk_cost_ranking import planning_model  # benchmarks/ is on sys.path as a script
from robodesk_handle_motion import READERS, true_joint

from maskvit.atomic import atomic_write_json
from maskvit.sim.desk_instances import load_instances
from maskvit.sim.desk_policies import PanelSlidePolicy
from maskvit.sim.desk_world import DeskWorld

STEPS = 25  # the policy's steps from each start
LEADS = (3, 1, 0)  # context this many steps before the slide's first move
AHEAD = 6  # the slide read this many predicted steps on


def panel_episode(world: DeskWorld, start: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames (STEPS+1, S, S, 3), actions (STEPS, 5) and the slide's joint (STEPS+1,) of the
    panel push from `start`."""
    world.set_state(start)
    policy = PanelSlidePolicy()
    policy.reset(world, np.random.default_rng(seed))
    frames, actions, joints = [world.render()], [], [true_joint(world, "open_slide")]
    for _ in range(STEPS):
        action = policy.action(world)
        world.advance(action)
        actions.append(action)
        frames.append(world.render())
        joints.append(true_joint(world, "open_slide"))
    return np.stack(frames), np.asarray(actions, np.float32), np.asarray(joints)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", required=True, help="a bundle (repeat for several)")
    parser.add_argument("--instances", type=int, default=10)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    reader = READERS["open_slide"]
    world = DeskWorld()
    world.reset(0)
    cases = []
    try:
        for index, instance in enumerate(load_instances(None, task="open_slide", split="tuning")[: args.instances]):
            frames, actions, joints = panel_episode(world, instance.start_state, index)
            moves = [t for t in range(STEPS) if joints[t + 1] - joints[t] > 0.02]
            if not moves:
                print(f"instance {index}: the panel push never moves it (start {joints[0]:.2f}); skipped")
                continue
            cases += [(index, lead, moves[0] - lead, frames, actions, joints) for lead in LEADS
                      if moves[0] - lead >= 1]
    finally:
        world.close()
    report = {"instances": args.instances, "samples": args.samples, "ahead": AHEAD, "models": {}}
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
        opened = [r for r in rows if r["true_to"] - r["true_from"] > 0.3]
        drawn = sum(r["model_mean"] - r["true_from"] > 0.15 for r in opened)
        report["models"][model] = {"cases": rows, "true_openings": len(opened), "drawn_openings": drawn}
        print(f"{model}: draws {drawn} of the {len(opened)} cases where the slide opens > 30 cm in {AHEAD} steps "
              f"(mean read > 15 cm above the start)")
        for r in rows:
            print(f"  instance {r['instance']} lead {r['lead']}: true {r['true_from']:.2f} -> {r['true_to']:.2f}  "
                  f"model {r['model_mean']:.2f} [{r['model_min']:.2f}, {r['model_max']:.2f}]")
    if args.json:
        atomic_write_json(args.json, report)


if __name__ == "__main__":
    main()
