"""One planning call's time when the cost reads every predicted frame, only the last, or latents.

    python benchmarks/bench_decode_subset.py --model BUNDLE [--samples 64] [--threads 1] [--repeats 3]

A RoboDesk replan scores M action sequences of H = 10 frames. With VP2's cost (`pixel_l2`,
every frame) the tokenizer's decoder turns all M × 10 predicted frames into pixels; with
`final_pixel_l2` only the last frame of each is decoded (`Predictor.predict(decode_frames=
[-1])`). This times the same call both ways, alternating (A, B, A, B, ...) after a warm-up
of each, with the threads one `maskvit plan --workers 2` worker gets on a 2-core machine,
and prints the median seconds per call and their ratio. `latent_l2` decodes nothing: the
predicted tokens' code vectors are compared with the goal's (`output="latents"`).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from maskvit.inference.predictor import load_predictor
from maskvit.plan.predictor_fn import predictor_fn
from maskvit.sim.desk_instances import load_instances


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a robodesk64 run or bundle")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    predictor = load_predictor(args.model, precision=args.precision)
    predict = predictor_fn(predictor, predictor.config.plan.decoding)
    horizon = predictor.config.plan.horizon
    goal = load_instances(task="push_red", split="tuning")[0].goal_image
    frames = np.broadcast_to(goal[None, None], (args.samples, 2, *goal.shape))
    past = np.zeros((args.samples, 1, 5))
    rng = np.random.default_rng(0)
    future = np.clip(rng.normal(0, [0.5, 0.5, 0.5, 0.1, 0.1], (args.samples, horizon, 5)), -1, 1)
    ways = {"every frame decoded": {}, "last frame decoded": {"decode_frames": [-1]},
            "latents, no decoder": {"latents": True}}
    times: dict[str, list[float]] = {name: [] for name in ways}
    for repeat in range(args.repeats + 1):  # the first round warms up
        for name, extra in ways.items():
            start = time.perf_counter()
            out = predict(frames, past, future, **extra)
            if repeat:
                times[name].append(time.perf_counter() - start)
            assert out.shape[1] == (1 if "decode_frames" in extra else horizon)
    medians = {name: statistics.median(times[name]) for name in ways}
    every = medians["every frame decoded"]
    print(f"{args.samples} samples × {horizon} frames, {args.threads} thread(s), {predictor.precision}:")
    for name, median in medians.items():
        runs = ", ".join(f"{t:.2f}" for t in times[name])
        print(f"  {name + ':':21s} {median:.2f} s per call, {every / median:.2f}x faster than every frame (runs {runs})")


if __name__ == "__main__":
    main()
