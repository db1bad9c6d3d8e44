"""Does a RoboDesk tokenizer keep an opened drawer and slide? Reader error on its reconstructions.

    python benchmarks/robodesk_tokenizer_open_objects.py --tokenizer RUN_OR_BUNDLE/tokenizer \
        [--scenes 8] [--run-seed 126]

A tokenizer trained on data where the drawer was never opened may draw every drawer shut. This
rolls the scripted open_drawer and open_slide controllers (noise-free, current version) on
fresh training scenes, renders steps 10, 20 and 30, reconstructs them, and reads the drawer and
slide from the true frames and from the reconstructions (`maskvit.metrics.desk_objects`): the
mean error against the simulator, over all frames and over the frames where the object is far
open (drawer < −0.15, slide > 0.45).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from maskvit.metrics.desk_objects import read_drawer, read_slide
from maskvit.sim.desk_collect import desk_episode_seed
from maskvit.sim.desk_policies import scripted_policy
from maskvit.sim.desk_world import STATE_COLUMNS, DeskWorld
from maskvit.tokenizer.vqgan import load_vqgan

_OBJECTS = {"open_drawer": ("drawer", read_drawer, lambda v: v < -0.15),
            "open_slide": ("slide", read_slide, lambda v: v > 0.45)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenizer", required=True, help="a tokenizer run, or a bundle's tokenizer folder")
    parser.add_argument("--scenes", type=int, default=8)
    parser.add_argument("--run-seed", type=int, default=126)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tokenizer = load_vqgan(args.tokenizer).eval()
    world = DeskWorld()
    print("| task | frames | reader error, true frames | reader error, reconstructions "
          "| far-open frames | … true frames there | … reconstructions there |")
    print("|---|---|---|---|---|---|---|")
    for task, (column, reader, far_open) in _OBJECTS.items():
        frames, truth = [], []
        for scene in range(args.scenes):
            world.place(desk_episode_seed(args.run_seed, scene))
            policy = scripted_policy(task)
            policy.reset(world, np.random.default_rng([99, scene]))
            for step in range(1, 31):
                world.advance(policy.action(world))
                if step % 10 == 0:
                    frames.append(world.render())
                    truth.append(float(world.state_vector()[STATE_COLUMNS.index(column)]))
        frames_array, truth_array = np.stack(frames), np.array(truth)
        recon = tokenizer.reconstruct(torch.from_numpy(frames_array)).numpy()
        true_error = np.abs(reader(frames_array) - truth_array)
        recon_error = np.abs(reader(recon) - truth_array)
        far = far_open(truth_array)
        there = (f"{true_error[far].mean():.4f} | {recon_error[far].mean():.4f}" if far.any() else "— | —")
        print(f"| {task} | {len(truth_array)} | {true_error.mean():.4f} | {recon_error.mean():.4f} "
              f"| {int(far.sum())} | {there} |", flush=True)
    world.close()


if __name__ == "__main__":
    main()
