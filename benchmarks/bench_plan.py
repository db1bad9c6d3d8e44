"""Planning benchmarks: model throughput for one CEM batch, and baseline success rates.

    python benchmarks/bench_plan.py throughput [--samples 256] [--chunk 64] [--steps 5] [--bf16]
        [--preset push64|robodesk64] [--device cuda] [--json OUT.json]
    python benchmarks/bench_plan.py success [--episodes 30] [--set plan.samples=64 ...]

* throughput: predicted frames per second when M action sequences (default 256, paper
  Table 5) go through a VQ-GAN + MaskViT of the preset's size (push64 by default) (random weights: speed does not
  depend on them) with 5 decoding steps: encode 2 context frames, decode 10 future frames
  iteratively, decode the codes to pixels (`maskvit.inference.predictor.Predictor.predict`), exactly
  the work of one CEM iteration.
  Paper reference: about 6.2 s per batch of 256 on 8 RTX 3090 GPUs (A.2).
* success: random and oracle policies through the MPC loop on push tasks (see
  `maskvit plan --help`), printed as a table with 95 % Wilson intervals.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from maskvit.config import load_preset


def random_weights_predict_fn(config, steps: int, bf16: bool, timings: dict, device: str = "cpu"):
    """A PredictFn: a `Predictor` made of untrained modules of the preset, timing each call."""
    from maskvit.inference.predictor import Predictor
    from maskvit.model import MaskViT
    from maskvit.plan.predictor_fn import predictor_fn
    from maskvit.tokenizer.vqgan import VQGAN

    predictor = Predictor(VQGAN(config.tokenizer), MaskViT(config.transformer), config,
                          device=device, precision="bf16" if bf16 else "fp32")
    synchronize = torch.cuda.synchronize if predictor.device.type == "cuda" else (lambda: None)
    predict = predictor_fn(predictor, dataclasses.replace(config.plan.decoding, steps=steps))

    def timed(context_frames, context_actions, future_actions):
        start = time.perf_counter()
        frames = predict(context_frames, context_actions, future_actions)
        synchronize()
        timings["predict"] = timings.get("predict", 0.0) + time.perf_counter() - start
        timings["calls"] = timings.get("calls", 0) + 1
        return frames

    return timed


def throughput(args) -> dict:
    from maskvit.plan.planner import ModelPlanner

    torch.manual_seed(0)
    torch.set_num_threads(args.threads or torch.get_num_threads())
    config = load_preset(args.preset, [f"plan.samples={args.samples}", f"plan.chunk_size={args.chunk}",
                                       "plan.iterations=1", f"plan.decoding_steps={args.steps}"])
    timings: dict[str, float] = {}
    predict = random_weights_predict_fn(config, args.steps, args.bf16, timings, args.device)
    action_dim = config.transformer.action_dim
    low, high = np.full(action_dim, -0.05), np.full(action_dim, 0.05)
    planner = ModelPlanner(predict, config.plan, low, high)
    size = config.tokenizer.resolution
    rng = np.random.default_rng(0)
    context = rng.integers(0, 256, (2, size, size, 3), dtype=np.uint8)
    goal = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    horizon = config.plan.horizon
    for _ in range(2 if args.device != "cpu" else 1):  # warm-up (a GPU's first calls compile)
        predict(np.repeat(context[None], 2, 0), np.zeros((2, 1, action_dim)),
                np.zeros((2, horizon, action_dim)))
    timings.clear()
    start = time.perf_counter()
    planner.plan(context, np.zeros((1, action_dim)), goal, rng)  # one iteration: M sequences
    seconds = time.perf_counter() - start
    frames = args.samples * config.plan.horizon
    result = {
        "preset": args.preset, "device": str(args.device), "samples": args.samples, "chunk": args.chunk, "decoding_steps": args.steps,
        "bf16": args.bf16, "threads": torch.get_num_threads(), "seconds_per_batch": seconds,
        "predicted_frames_per_second": frames / seconds,
        "stage_seconds": {k: round(v, 3) for k, v in timings.items()},
        "paper_seconds_per_batch_8_gpus": 6.2,
    }
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return result


def success(args) -> dict:
    from maskvit.plan.closed_loop import play_policies

    config = load_preset("push64", args.overrides)
    seeds = list(range(args.first_task, args.first_task + args.episodes))
    results = play_policies("push", args.policies, seeds, config.plan, Path(args.out),
                                oracle_cost=args.oracle_cost, goal_arm=args.goal_arm, gifs=True)
    for name, data in results["policies"].items():
        lo, hi = data["ci95"]
        print(f"{name:8s} {data['successes']}/{data['episodes']} = {data['success_rate']:.1%} "
              f"[{lo:.1%}, {hi:.1%}]  distance {data['mean_start_distance']:.3f} -> "
              f"{data['mean_final_distance']:.3f} m  {data['seconds_per_episode']:.1f} s/episode")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("throughput")
    p.add_argument("--samples", type=int, default=256)
    p.add_argument("--chunk", type=int, default=64)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--preset", default="push64")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", default=None, help="also write the result here")
    p.set_defaults(func=throughput)
    s = sub.add_parser("success")
    s.add_argument("--episodes", type=int, default=30)
    s.add_argument("--first-task", type=int, default=0)
    s.add_argument("--policy", dest="policies", action="append", default=None)
    s.add_argument("--oracle-cost", default="state")
    s.add_argument("--goal-arm", default="goal")
    s.add_argument("--set", dest="overrides", action="append", default=[])
    s.add_argument("--out", default="bench-plan")
    s.set_defaults(func=success)
    args = parser.parse_args()
    if getattr(args, "policies", ()) is None:
        args.policies = ["random", "oracle"]
    args.func(args)


if __name__ == "__main__":
    main()
