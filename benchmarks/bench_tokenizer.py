"""Tokenizer speed (encode / decode frames/s, fp32 vs bf16) and, given a run, its quality.

    python benchmarks/bench_tokenizer.py [--preset push64] [--batch 32] [--repeats 5]
                                         [--threads N] [--run RUN --data DATA --split test]

Speed: a freshly initialised VQ-GAN of the preset (weights do not change the work), on
the CPU, fp32 and bf16 autocast measured in the same process one after the other,
after one warm-up call each; the median over --repeats is reported. Encode = frames
uint8 -> codes; decode = codes -> uint8 frames. Numbers depend on what else the cores
are doing; compare columns of one run, not runs on different days.

Quality (with --run): held-out PSNR / SSIM (uint8 range, per frame, averaged) and the
share of the K codes used at least once over the split, via `maskvit.tokenizer.reconstruction_report`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time

import torch

from maskvit.config import load_preset
from maskvit.tokenizer import VQGAN


def frames_per_second(fn, frames: int, repeats: int) -> float:
    fn()  # warm-up: allocator, oneDNN kernel selection
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return frames / statistics.median(times)


def _run(precision: str, fn, arg) -> None:
    context = (torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16"
               else contextlib.nullcontext())
    with context:
        fn(arg)


def speed(preset: str, batch: int, repeats: int) -> dict[str, dict[str, float]]:
    torch.manual_seed(0)
    model = VQGAN(load_preset(preset).tokenizer).eval()
    r = model.cfg.resolution
    frames = torch.randint(0, 256, (batch, r, r, 3), dtype=torch.uint8)
    codes = model.encode(frames)
    out: dict[str, dict[str, float]] = {}
    for precision in ("fp32", "bf16"):
        out[precision] = {
            "encode": frames_per_second(lambda p=precision: _run(p, model.encode, frames), batch, repeats),
            "decode": frames_per_second(lambda p=precision: _run(p, model.decode, codes), batch, repeats),
        }
    with torch.autocast("cpu", dtype=torch.bfloat16):
        agree = (model.encode(frames) == codes).float().mean().item()
    out["bf16_code_agreement"] = {"fraction": agree}
    out["model"] = {"channels": model.cfg.channels,
                    "parameters_m": sum(p.numel() for p in model.parameters()) / 1e6}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="push64")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--run", help="tokenizer run directory to measure quality of")
    parser.add_argument("--data", help="episode store for --run")
    parser.add_argument("--split", default="test")
    parser.add_argument("--max-frames", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    result: dict[str, object] = {"preset": args.preset, "batch": args.batch,
                                 "threads": torch.get_num_threads()}
    s = speed(args.preset, args.batch, args.repeats)
    result["speed_frames_per_s"] = s
    print(f"{args.preset} (channels {s['model']['channels']}, {s['model']['parameters_m']:.1f} M "
          f"parameters), batch {args.batch}, {torch.get_num_threads()} threads (frames/s):")
    print("| precision | encode | decode |\n|---|---|---|")
    for p in ("fp32", "bf16"):
        print(f"| {p} | {s[p]['encode']:.1f} | {s[p]['decode']:.1f} |")
    print(f"bf16 codes equal to fp32 codes: {s['bf16_code_agreement']['fraction']:.1%}")

    if args.run:
        from maskvit.data import EpisodeStore
        from maskvit.tokenizer.reconstruction_report import reconstruction_metrics

        vqgan = VQGAN.from_run(args.run)
        store = EpisodeStore.open(args.data)
        m = reconstruction_metrics(vqgan, store, args.split, max_frames=args.max_frames,
                                   progress=False)
        result["quality"] = m
        print(f"{args.split}: PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.4f}, codebook usage "
              f"{m['codebook_usage']:.1%} (perplexity {m['perplexity']:.1f}), {int(m['frames'])} frames")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
