"""What the data's noise does to the scripted RoboDesk controllers: solved and object-moved rates.

    python benchmarks/robodesk_controller_noise.py [--tasks open_slide,open_drawer] \
        [--noise 0,0.1,0.2,0.4] [--scenes 12]

`maskvit collect --env robodesk` adds Gaussian noise to every action of a task's scripted
controller (VP2's std is 0.4). A model can only learn to predict what its data shows, so this
counts, per task and noise level, the episodes (30 steps, training scenes of `--run-seed`, never
a benchmark instance) that solve the task and those that move the task's object at all. The
rollouts are scored on the simulator state (no rendering), so a dozen scenes per level take
seconds. The noise of episode i at every level comes from the same generator seed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from maskvit.sim.desk_collect import desk_episode_seed
from maskvit.sim.desk_policies import scripted_policy
from maskvit.sim.desk_world import ACTION_DIM, STATE_COLUMNS, TASKS, DeskWorld, check_task

# The state column each task moves, and how far counts as moved (the object readers' p95 error,
# as `maskvit.metrics.desk_objects` uses for "moved"); buttons move their light joint.
_MOVED = {"open_slide": ("slide", 0.02), "open_drawer": ("drawer", 0.02),
          "push_red": ("red_light", 0.002), "push_green": ("green_light", 0.002),
          "push_blue": ("blue_light", 0.002), "upright_block_off_table": ("upright_block_z", 0.02),
          "flat_block_off_table": ("flat_block_z", 0.02)}


def rollout(world: DeskWorld, task: str, scene: int, noise: float, run_seed: int = 123,
            controllers: int | None = None, steps: int = 30) -> tuple[bool, bool]:
    """(solved at some step, the task's object moved) for one noisy scripted episode."""
    rng = np.random.default_rng([99, scene])
    world.place(desk_episode_seed(run_seed, scene))
    column, threshold = _MOVED[task]
    index = STATE_COLUMNS.index(column)
    start = world.state_vector()[index]
    policy = scripted_policy(task, controllers=controllers)
    policy.reset(world, rng)
    solved = moved = False
    for _ in range(steps):
        action = policy.action(world) + rng.normal(0.0, noise, ACTION_DIM)
        world.advance(np.clip(action, -1.0, 1.0))
        solved = solved or world.progress(task).solved
        moved = moved or abs(world.state_vector()[index] - start) > threshold
    return solved, moved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--noise", default="0,0.1,0.2,0.4")
    parser.add_argument("--scenes", type=int, default=12)
    parser.add_argument("--run-seed", type=int, default=123,
                        help="the training run seed whose scenes are used (123: where the v3 drawer was tuned)")
    parser.add_argument("--controllers", type=int, default=None, help="controller version (default: current)")
    args = parser.parse_args()
    tasks = [check_task(t) for t in args.tasks.split(",")]
    levels = [float(v) for v in args.noise.split(",")]
    world = DeskWorld()
    print("| task | noise std | solved | object moved | CPU-s |")
    print("|---|---|---|---|---|")
    for task in tasks:
        for noise in levels:
            start = time.process_time()
            results = [rollout(world, task, scene, noise, args.run_seed, args.controllers)
                       for scene in range(args.scenes)]
            solved = sum(s for s, _ in results)
            moved = sum(m for _, m in results)
            print(f"| {task} | {noise:g} | {solved}/{args.scenes} | {moved}/{args.scenes} "
                  f"| {time.process_time() - start:.0f} |", flush=True)
    world.close()


if __name__ == "__main__":
    main()
