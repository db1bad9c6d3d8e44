"""Where does RoboDesk planning fail: in the model's frames, or in the pixel cost itself?

    python benchmarks/robodesk_cost_ranking.py --model BUNDLE [--tasks push_red open_slide open_drawer]
        [--instances 4] [--candidates 7] [--reach-reader DIR [--progress-weights 250 1000 4000]]
        [--json OUT.json]

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

With `--reach-reader DIR` it also ranks with `plan.cost=pixel_l2_reach` (`ReachCost`) at each
of `--progress-weights` and records the parts the ranking is made of, per sequence: the
progress left in its last frame as read from pixels and the reader's mean reach, on true and
predicted frames — whether the model draws the handle moving at all, and which weight of the
progress term would prefer the sequence that opens it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np
import torch

from maskvit.atomic import atomic_write_json
from maskvit.inference.predictor import load_predictor
from maskvit.plan.cem import step_weights
from maskvit.plan.desk_progress_cost import remaining_progress
from maskvit.plan.planner import pixel_l2_cost
from maskvit.plan.predictor_fn import predictor_fn
from maskvit.plan.reach_reader import ReachCost
from maskvit.plan.success_classifier import load_classifier
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


def context_after(world: DeskWorld, task: str, start: np.ndarray, advance: int,
                  action_dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(first and second context frame, the action between them, the state after them): the
    planner's first replan (one zero action from the start) or, with `advance` > 0, a replan
    after the scripted controller's first `advance` steps (the arm near the handle)."""
    world.set_state(start)
    policy = scripted_policy(task)
    policy.reset(world, np.random.default_rng(0))
    frames, action = [world.render()], np.zeros(action_dim, np.float32)
    for _ in range(max(advance, 1)):
        if advance:
            action = np.clip(policy.action(world), -1.0, 1.0).astype(np.float32)
        world.advance(action)
        frames.append(world.render())
    return frames[-2], frames[-1], action, world.get_state()


def planning_model(model: str, threads: int, **decoding_changes) -> tuple:
    """(the model's plan settings, its predict function as the planner calls it, MPPI's
    initial std) for a bundle or run, on `threads` CPU threads; `decoding_changes` (e.g.
    steps=12) replace fields of the plan's decoding."""
    torch.set_num_threads(threads)
    predictor = load_predictor(model, device="cpu")
    plan = predictor.config.plan
    decoding = dataclasses.replace(plan.decoding, **decoding_changes)
    return plan, predictor_fn(predictor, decoding, seed=0), np.asarray(plan.init_std, float)


def reach_parts(reader, task: str, frames: np.ndarray, goal: np.ndarray, weights: np.ndarray,
                progress_weights: list[float]) -> dict:
    """For sequences' frames (M, H, S, S, 3): the progress left in each last frame, each
    sequence's mean reach (m), and the scripted sequence's (index 0) rank under the reach cost
    at each progress weight."""
    ranks = {}
    for weight in progress_weights:
        cost = ReachCost(reader, task, progress_weight=weight)(frames, goal, weights)
        ranks[str(weight)] = int((cost < cost[0]).sum())
    return {"progress_left_last": [round(float(v), 3) for v in remaining_progress(frames[:, -1], task)],
            "mean_reach_m": [round(float(v), 3) for v in reader.distances(frames, task).mean(axis=1)],
            "expert_rank_by_progress_weight": ranks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--tasks", nargs="+", default=["push_red", "open_slide", "open_drawer"])
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--candidates", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--advance", type=int, default=0,
                        help="replan after the scripted controller's first N steps instead of at the start")
    parser.add_argument("--reach-reader", default=None, help="a reach reader (train-classifier --kind reach)")
    parser.add_argument("--progress-weights", type=float, nargs="+", default=[250.0, 1000.0, 4000.0])
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    plan, predict, std = planning_model(args.model, args.threads)
    horizon, weights = plan.horizon, step_weights(plan.horizon, plan.last_step_weight)
    reader = load_classifier(args.reach_reader) if args.reach_reader else None
    world = DeskWorld()
    rows = []
    for task in args.tasks:
        for index, instance in enumerate(load_instances(None, task=task, split="tuning")[: args.instances]):
            first, second, last_action, state = context_after(world, task, instance.start_state,
                                                              args.advance, len(std))
            expert, left = expert_actions(world, task, state, horizon)
            rng = np.random.default_rng([index, len(task)])
            random = np.clip(rng.normal(0.0, std, (args.candidates, horizon, len(std))), -1.0, 1.0)
            sequences = np.concatenate([expert[None], random]).astype(np.float32)  # expert first
            true = np.stack([roll(world, state, s) for s in sequences])
            context = np.broadcast_to(np.stack([first, second])[None], (len(sequences), 2, *first.shape))
            past = np.broadcast_to(last_action, (len(sequences), 1, len(std))).copy()
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
            if reader is not None:
                for name, frames in (("true", true), ("model", predicted)):
                    row[f"reach_cost_{name}"] = reach_parts(reader, task, frames, instance.goal_image,
                                                            weights, args.progress_weights)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\nrank of the scripted sequence among {args.candidates + 1} (0 = the cost prefers it):")
    for task in args.tasks:
        mine = [r for r in rows if r["task"] == task]
        print(f"{task:12s} true frames {[r['expert_rank_true'] for r in mine]}  "
              f"model frames {[r['expert_rank_model'] for r in mine]}")
        if reader is not None:
            for weight in args.progress_weights:
                ranks = [[r[f"reach_cost_{name}"]["expert_rank_by_progress_weight"][str(weight)] for r in mine]
                         for name in ("true", "model")]
                print(f"{'':12s} reach cost, progress weight {weight:g}: true {ranks[0]}  model {ranks[1]}")
    if args.json:
        atomic_write_json(args.json, {"model": args.model, "candidates": args.candidates,
                                      "reach_reader": args.reach_reader, "rows": rows})


if __name__ == "__main__":
    main()
