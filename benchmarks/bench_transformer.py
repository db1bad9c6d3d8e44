"""Transformer training-step throughput and peak memory on this machine.

Compares, for the `push64` and `bair64` geometries (reduced batch): fp32 vs bf16 autocast,
and window attention (the preset's spatiotemporal window) vs full attention (a window
spanning the whole clip). Every configuration runs in its own fresh process so that its
peak resident memory is its own; rounds alternate the configurations so that machine
noise hits them alike, and the best round counts.

    python benchmarks/bench_transformer.py [--steps 3] [--rounds 2] [--only push64]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def measure(preset: str, precision: str, attention: str, batch: int, steps: int) -> dict:
    """One configuration, in this process: tokens/s of full training steps and peak RSS."""
    import torch

    from maskvit.config import load_preset
    from maskvit.model import MaskViT
    from maskvit.model.masking import mask_for_training, masked_cross_entropy

    cfg = load_preset(preset).transformer
    if attention == "full":
        cfg.spatiotemporal_window = (0, cfg.tokens_h, cfg.tokens_w)
    torch.manual_seed(0)
    model = MaskViT(cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    tokens = torch.randint(0, cfg.codebook_size, (batch, cfg.num_frames, cfg.tokens_h, cfg.tokens_w))
    actions = torch.randn(batch, cfg.num_frames, cfg.action_dim) if cfg.action_dim else None

    def step() -> None:
        inputs, mask = mask_for_training(tokens, cfg.context_frames, mask_token_id=cfg.mask_token_id)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits = model(inputs, actions)
        loss, _ = masked_cross_entropy(logits, tokens, mask)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up (allocations, kernel selection)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    elapsed = (time.perf_counter() - start) / steps
    return {
        "preset": preset, "precision": precision, "attention": attention, "batch": batch,
        "seconds_per_step": elapsed,
        "tokens_per_s": batch * cfg.num_frames * cfg.tokens_per_frame / elapsed,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", default=None, help="one preset (push64 or bair64)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        preset, precision, attention, batch = args.child.split(",")
        print(json.dumps(measure(preset, precision, attention, int(batch), args.steps)))
        return
    geometries = {"push64": 16, "bair64": 2}  # preset -> reduced batch
    if args.only:
        geometries = {args.only: geometries[args.only]}
    configs = [(p, prec, att, b) for p, b in geometries.items()
               for att in ("window", "full") for prec in ("fp32", "bf16")]
    best: dict[tuple, dict] = {}
    for _ in range(args.rounds):
        for config in configs:
            out = subprocess.run(
                [sys.executable, __file__, "--steps", str(args.steps),
                 "--child", ",".join(map(str, config))],
                capture_output=True, text=True, check=True,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            if config not in best or result["tokens_per_s"] > best[config]["tokens_per_s"]:
                best[config] = result
    print(f"{'preset':8} {'attention':9} {'precision':9} {'batch':>5} {'s/step':>8} "
          f"{'tokens/s':>10} {'peak RSS MiB':>12}")
    for config in configs:
        r = best[config]
        print(f"{r['preset']:8} {r['attention']:9} {r['precision']:9} {r['batch']:>5} "
              f"{r['seconds_per_step']:>8.3f} {r['tokens_per_s']:>10.0f} {r['peak_rss_mib']:>12.0f}")
    for preset in geometries:
        for att in ("window", "full"):
            fp32, bf16 = best[(preset, "fp32", att, geometries[preset])], best[(preset, "bf16", att, geometries[preset])]
            print(f"{preset} {att}: bf16 / fp32 throughput = "
                  f"{bf16['tokens_per_s'] / fp32['tokens_per_s']:.2f}x")
        w = best[(preset, "bf16", "window", geometries[preset])]
        f = best[(preset, "bf16", "full", geometries[preset])]
        print(f"{preset} bf16: full / window peak RSS = {f['peak_rss_mib'] / w['peak_rss_mib']:.2f}x")


if __name__ == "__main__":
    main()
