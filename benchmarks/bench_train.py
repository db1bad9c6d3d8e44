"""Training throughput of `maskvit train` (tokens/s), 1 process vs N processes (DDP).

Both runs go through the real command line on the same synthetic token cache, one after
the other in this script: ``python -m maskvit train`` for one process and ``torchrun
--standalone --nproc_per_node N -m maskvit train`` for N processes (gloo on the CPU,
NCCL on GPUs). The global batch is the preset's in both, so tokens/s compare directly.
The first logging window (start-up, allocator warm-up) is left out of the average.

    python benchmarks/bench_train.py                     # push64, 1 vs 2 CPU processes
    python benchmarks/bench_train.py --steps 12 --set train.precision=fp32
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from maskvit.config import load_preset
from maskvit.data import TokenCacheWriter
from maskvit.train import read_metrics


def make_tokens(path: Path, preset: str, overrides: list[str], episodes: int) -> None:
    """Random codes shaped like the preset's token cache (speed does not depend on them)."""
    t = load_preset(preset, overrides).transformer
    rng = np.random.default_rng(0)
    with TokenCacheWriter(path, token_shape=(t.tokens_h, t.tokens_w),
                          action_dim=max(t.action_dim, 0),
                          codebook_size=t.codebook_size) as writer:
        for i in range(episodes):
            n = t.num_frames + 4
            writer.add(f"ep{i:04d}", rng.integers(0, t.codebook_size, (n, t.tokens_h, t.tokens_w)),
                       rng.normal(size=(n, t.action_dim)).astype(np.float32), "train")


def train_run(procs: int, threads: int, args: argparse.Namespace, data: Path,
              out: Path) -> dict:
    """One `maskvit train` run; returns its steady-state throughput."""
    sets = [f"train.log_every={args.log_every}", "train.checkpoint_every=100000",
            "train.val_every=0", *args.set]
    cli = ["train", "--preset", args.preset, "--data", str(data), "--out", str(out),
           "--max-steps", str(args.steps), "--device", args.device, "--no-progress"]
    cli += [a for s in sets for a in ("--set", s)]
    if procs == 1:
        cmd = [sys.executable, "-m", "maskvit", *cli]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", str(procs), "-m", "maskvit", *cli]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"run with {procs} process(es) failed:\n{proc.stderr[-2000:]}")
    rows = read_metrics(out)
    steady = rows[1:] or rows
    return {
        "processes": procs,
        "threads_per_process": threads,
        "tokens_per_s": float(np.mean([r["tokens_per_s"] for r in steady])),
        "steps": args.steps,
        "final_loss": rows[-1]["loss"],
        "peak_rss_mb_rank0": rows[-1]["memory_mb"],
        "wall_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="push64")
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2],
                        help="process counts to compare (default 1 2)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--log-every", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    cores = os.cpu_count() or 1
    config = load_preset(args.preset, args.set)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "tokens"
        make_tokens(data, args.preset, args.set, episodes=max(16, config.train.batch_size))
        for procs in args.procs:
            threads = max(1, cores // procs)  # the same cores, shared out
            results.append(train_run(procs, threads, args, data, Path(tmp) / f"run{procs}"))

    print(f"# {args.preset}: global batch {config.train.batch_size}, "
          f"{config.transformer.num_frames}×{config.transformer.tokens_h}×"
          f"{config.transformer.tokens_w} tokens per clip, precision {config.train.precision}, "
          f"{args.steps} steps, device {args.device}, {cores} CPU cores "
          f"({platform.processor() or platform.machine()}), torch {torch.__version__}")
    print("| processes | threads/process | tokens/s | final loss | peak RSS rank 0 (MB) |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['processes']} | {r['threads_per_process']} | {r['tokens_per_s']:.0f} | "
              f"{r['final_loss']:.4f} | {r['peak_rss_mb_rank0']:.0f} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
