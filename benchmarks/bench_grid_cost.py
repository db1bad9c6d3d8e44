"""What a finer token grid costs: push64's VQ-GAN and transformer at 8×8 vs 16×16 tokens.

Forward + backward of one training batch (16), fp32, interleaved rounds in one process
(the best round counts), plus the LPIPS-VGG perceptual loss the paper's tokenizer recipe
adds. Pass --threads 1 to compare on one core while other work runs on the other.

    python benchmarks/bench_grid_cost.py [--threads 1] [--rounds 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from maskvit.config import load_preset
from maskvit.model import MaskViT
from maskvit.model.masking import mask_for_training, masked_cross_entropy
from maskvit.tokenizer.vqgan import VQGAN

BATCH = 16


def tokenizer_step(model: VQGAN, frames: torch.Tensor) -> None:
    recon, quant = model(frames)
    (recon - frames).abs().mean().add(quant.loss).backward()


def transformer_step(model: MaskViT) -> None:
    cfg = model.cfg
    tokens = torch.randint(0, cfg.codebook_size, (BATCH, cfg.num_frames, cfg.tokens_h, cfg.tokens_w))
    actions = torch.randn(BATCH, cfg.num_frames, cfg.action_dim)
    inputs, mask = mask_for_training(tokens, cfg.context_frames, mask_token_id=cfg.mask_token_id)
    loss, _ = masked_cross_entropy(model(inputs, actions), tokens, mask)
    loss.backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    preset = load_preset("push64")
    tok, tr = preset.tokenizer, preset.transformer
    frames = torch.rand(BATCH, 3, 64, 64) * 2 - 1
    vqgan_8, vqgan_16 = VQGAN(tok), VQGAN(dataclasses.replace(tok, downsample=4))
    maskvit_8 = MaskViT(tr)
    maskvit_16 = MaskViT(dataclasses.replace(tr, tokens_h=16, tokens_w=16,
                                             spatial_window=(1, 16, 16)))
    jobs = {
        "VQ-GAN 8x8 (f8)": lambda: tokenizer_step(vqgan_8, frames),
        "VQ-GAN 16x16 (f4)": lambda: tokenizer_step(vqgan_16, frames),
        "transformer 8x8": lambda: transformer_step(maskvit_8),
        "transformer 16x16, st window 0x4x4": lambda: transformer_step(maskvit_16),
    }
    try:
        from maskvit.metrics.lpips import load_lpips

        lpips = load_lpips("vgg")
        target = frames.clone().requires_grad_(True)
        jobs["LPIPS-VGG (perceptual loss)"] = lambda: lpips(frames, target).mean().backward()
    except Exception as err:  # noqa: BLE001 - weights missing: measure the rest
        print(f"LPIPS not measured: {err}")
    best = {name: float("inf") for name in jobs}
    for _ in range(args.rounds):
        for name, job in jobs.items():
            start = time.perf_counter()
            job()
            best[name] = min(best[name], time.perf_counter() - start)
    for name, seconds in best.items():
        print(f"{name:38s} {seconds:7.3f} s per batch of {BATCH}")


if __name__ == "__main__":
    main()
