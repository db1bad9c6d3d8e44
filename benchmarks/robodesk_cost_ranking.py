"""Where does RoboDesk planning fail: in the model's frames, or in the pixel cost itself?

    python benchmarks/robodesk_cost_ranking.py --model BUNDLE [--tasks push_red open_slide open_drawer]
        [--instances 4] [--candidates 7] [--json OUT.json]

For the first tuning instances of each task this takes the planner's first replan (the start
frame, one zero action, the next frame: 2 context frames) and scores with the pixel cost

* the task's scripted controller's next H actions (no noise): a sequence that makes progress,
* and `--candidates` sequences drawn as MPPI's first iteration draws them (around a zero
  mean with robodesk64's init_std, clipped),

twice: on the frames the simulator really renders (a perfect model) and on the model's
predicted frames. Where the scripted sequence ranks first on true frames but not on predicted
ones, the model misleads the planner; where it does not rank first even on true frames, the
cost does (with a perfect model the planner would prefer something else). Tuning instances
only: nothing here is chosen on the test instances.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from maskvit.atomic import atomic_write_json
from maskvit.inference.predictor import load_predictor
from maskvit.plan.cem import step_weights
from maskvit.plan.planner import pixel_l2_cost
from maskvit.plan.predictor_fn import predictor_fn
from maskvit.sim.desk_instances import load_instances
from maskvit.sim.desk_policies import scripted_policy
from maskvit.sim.desk_world import DeskWorld


def roll(world: DeskWorld, state: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """The frames (H, 64, 64, 3) the actions (H, A) show from `state`."""
    world.set_state(state)
    frames = []
    for action in actions:
        world.advance(np.clip(action, -1.0, 1.0).astype(np.float32))
        frames.append(world.render())
    return np.stack(frames)


def expert_actions(world: DeskWorld, task: str, state: np.ndarray, horizon: int) -> tuple[np.ndarray, float]:
    """The scripted controller's next `horizon` actions from `state`, and the task's distance
    left after them (0: solved within the horizon)."""
    world.set_state(state)
    policy = scripted_policy(task)
    policy.reset(world, np.random.default_rng(0))
    actions = []
    for _ in range(horizon):
        action = np.clip(policy.action(world), -1.0, 1.0).astype(np.float32)
        actions.append(action)
        world.advance(action)
    return np.stack(actions), world.progress(task).remaining


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--tasks", nargs="+", default=["push_red", "open_slide", "open_drawer"])
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--candidates", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    predictor = load_predictor(args.model, device="cpu")
    plan = predictor.config.plan
    predict = predictor_fn(predictor, plan.decoding, seed=0)
    horizon, weights = plan.horizon, step_weights(plan.horizon, plan.last_step_weight)
    std = np.asarray(plan.init_std, float)
    world = DeskWorld()
    rows = []
    for task in args.tasks:
        for index, instance in enumerate(load_instances(None, task=task, split="tuning")[: args.instances]):
            world.set_state(instance.start_state)
            first = world.render()
            zero = np.zeros(len(std), np.float32)
            world.advance(zero)
            second, state = world.render(), world.get_state()
            expert, left = expert_actions(world, task, state, horizon)
            rng = np.random.default_rng([index, len(task)])
            random = np.clip(rng.normal(0.0, std, (args.candidates, horizon, len(std))), -1.0, 1.0)
            sequences = np.concatenate([expert[None], random]).astype(np.float32)  # expert first
            true = np.stack([roll(world, state, s) for s in sequences])
            context = np.broadcast_to(np.stack([first, second])[None], (len(sequences), 2, *first.shape))
            past = np.zeros((len(sequences), 1, len(std)), np.float32)
            predicted = predict(context, past, sequences)
            true_cost = pixel_l2_cost(true, instance.goal_image, weights)
            model_cost = pixel_l2_cost(predicted, instance.goal_image, weights)
            still = pixel_l2_cost(np.broadcast_to(second, true[:1].shape), instance.goal_image, weights)[0]
            row = {"task": task, "instance": index, "expert_distance_left": float(left),
                   "expert_rank_true": int((true_cost < true_cost[0]).sum()),
                   "expert_rank_model": int((model_cost < model_cost[0]).sum()),
                   "expert_true_cost": float(true_cost[0]), "expert_model_cost": float(model_cost[0]),
                   "best_random_true_cost": float(true_cost[1:].min()),
                   "best_random_model_cost": float(model_cost[1:].min()), "standing_still_cost": float(still)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\nrank of the scripted sequence among {args.candidates + 1} (0 = the cost prefers it):")
    for task in args.tasks:
        mine = [r for r in rows if r["task"] == task]
        print(f"{task:12s} true frames {[r['expert_rank_true'] for r in mine]}  "
              f"model frames {[r['expert_rank_model'] for r in mine]}")
    if args.json:
        atomic_write_json(args.json, {"model": args.model, "candidates": args.candidates, "rows": rows})


if __name__ == "__main__":
    main()
