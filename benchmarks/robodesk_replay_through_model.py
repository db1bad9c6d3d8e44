"""Where do the model's frames part from the simulator's along an episode that was solved?

    python benchmarks/robodesk_replay_through_model.py --model BUNDLE --episode RESULTS.json
        [--policy oracle] [--index 0] [--samples 8] [--threads 2] [--decoding-steps N]
        [--temperature T] [--json OUT.json]

`RESULTS.json` is a `maskvit plan --env robodesk` report whose rows keep their executed
actions (`per_episode[i].actions`), e.g. the pixel oracle's solved open_slide episodes. The
episode is replayed in the simulator from its instance's start state; then at every replan
t (context: the true frames t−1 and t, the action between them, as the planner saw them) the
model is asked what the episode's remaining actions (padded with zeros to the horizon) will
show, `--samples` times (decoding samples), and the task's joint is read from its predicted
frames with the object reader the progress cost uses. Beside it: the joint read from the
simulator's frames and the simulator's own joint. A model that plans this episode as the
oracle did must draw the joint moving where the simulator moves it; the first replan where
it does not is where its frames part. Tuning instances only.
"""

from __future__ import annotations

import argparse

import numpy as np
from robodesk_cost_ranking import planning_model  # benchmarks/ is on sys.path as a script
from robodesk_handle_motion import READERS, true_joint
from robodesk_task_report import load_task_report, refuse_output_over_reports

from maskvit.atomic import atomic_write_json
from maskvit.sim.desk_instances import load_instances
from maskvit.sim.desk_world import DeskWorld


def replay(world: DeskWorld, task: str, start: np.ndarray,
           actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The frames (T+1, S, S, 3) and the task's true joint (T+1,) along `actions` from `start`."""
    world.set_state(start)
    frames, joints = [world.render()], [true_joint(world, task)]
    for action in actions:
        world.advance(np.clip(action, -1.0, 1.0).astype(np.float32))
        frames.append(world.render())
        joints.append(true_joint(world, task))
    return np.stack(frames), np.array(joints)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--episode", required=True, help="a plan report whose rows keep actions")
    parser.add_argument("--policy", default="oracle")
    parser.add_argument("--index", type=int, default=0, help="which row of the report")
    parser.add_argument("--samples", type=int, default=8, help="decoding samples per replan")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--decoding-steps", type=int, default=None,
                        help="decoding passes per prediction (default: the plan's, as the planner decodes)")
    parser.add_argument("--temperature", type=float, default=None, help="decoding temperature (default: the plan's)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    refuse_output_over_reports(args.json, [args.episode])
    report, rows = load_task_report(args.episode, args.policy)
    if not -len(rows) <= args.index < len(rows):
        raise SystemExit(f"--index {args.index}: {args.episode} has {len(rows)} {args.policy} rows")
    task, row = report["task"], rows[args.index]
    instances = {i.seed: i for i in load_instances(None, task=task, split=report["split"])}
    instance = instances[row["instance_seed"]]
    actions = np.asarray(row["actions"], np.float32)
    changes = {name: value for name, value in (("steps", args.decoding_steps), ("temperature", args.temperature))
               if value is not None}
    plan, predict, _ = planning_model(args.model, args.threads, **changes)
    world, reader = DeskWorld(), READERS[task]
    frames, joints = replay(world, task, instance.start_state, actions)
    read_true = reader(frames)
    steps = []
    for t in range(1, len(actions)):
        future = np.zeros((plan.horizon, actions.shape[1]), np.float32)
        rest = actions[t:t + plan.horizon]
        future[: len(rest)] = rest
        context = np.broadcast_to(frames[t - 1:t + 1][None], (args.samples, 2, *frames.shape[1:]))
        past = np.broadcast_to(actions[t - 1][None, None], (args.samples, 1, actions.shape[1])).copy()
        predicted = predict(context, past, np.broadcast_to(future[None], (args.samples, *future.shape)).copy())
        shown = len(rest)  # predicted frames that the episode's own actions produced
        model_read = reader(predicted[:, :shown])  # (samples, shown)
        step = {"replan": t, "true_joint": joints[t:t + shown + 1].round(4).tolist(),
                "read_true_frames": read_true[t:t + shown + 1].round(4).tolist(),
                "model_read_mean": model_read.mean(0).round(4).tolist(),
                "model_read_min": model_read.min(0).round(4).tolist(),
                "model_read_max": model_read.max(0).round(4).tolist()}
        steps.append(step)
        print(f"replan {t:2d}: true {joints[t]:.3f} -> {joints[t + shown]:.3f}  "
              f"read(true frames) {read_true[t]:.3f} -> {read_true[t + shown]:.3f}  "
              f"model {model_read[:, -1].mean():.3f} [{model_read[:, -1].min():.3f}, "
              f"{model_read[:, -1].max():.3f}] after {shown} steps", flush=True)
    if args.json:
        atomic_write_json(args.json, {"model": args.model, "episode": args.episode, "task": task,
                                      "instance_seed": row["instance_seed"], "samples": args.samples,
                                      "true_joint": joints.round(4).tolist(),
                                      "read_true_frames": read_true.round(4).tolist(), "replans": steps})


if __name__ == "__main__":
    main()
