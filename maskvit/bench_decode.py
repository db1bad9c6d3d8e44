"""Iterative vs autoregressive decoding speed (the paper's Table 3), on this device.

Forward passes: iterative decoding makes `steps` passes, autoregressive decoding one per
future token (N = predicted frames × h × w). Wall-clock: iterative decoding is timed whole;
every autoregressive pass costs the same (the full clip goes through the model each time),
so `ar_passes` of them are timed and the per-pass time is multiplied by N. Reported as such.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from maskvit.config import load_preset
from maskvit.model import MaskViT
from maskvit.model.decoding import assemble_clip, autoregressive_decode, iterative_decode

# Paper Table 3: forward passes of MaskViT's iterative decoding.
PAPER_PASSES = {"bair64": 24, "kitti64": 48, "robonet64": 5}


@dataclass
class DecodeTiming:
    preset: str
    future_tokens: int  # N: autoregressive forward passes
    iterative_passes: int
    iterative_seconds: float
    ar_seconds_per_pass: float
    ar_passes_timed: int

    @property
    def ar_seconds(self) -> float:
        return self.ar_seconds_per_pass * self.future_tokens

    @property
    def pass_ratio(self) -> float:
        return self.future_tokens / self.iterative_passes

    @property
    def wall_ratio(self) -> float:
        return self.ar_seconds / self.iterative_seconds


def time_decoding(preset: str, device: str = "cpu", precision: str = "bf16",
                  steps: int | None = None, ar_passes: int = 8, batch: int = 1,
                  seed: int = 0) -> DecodeTiming:
    """Time both decoders on a randomly initialised model of the preset's geometry."""
    config = load_preset(preset)
    cfg = config.transformer
    torch.manual_seed(seed)
    model = MaskViT(cfg).to(device).eval()
    steps = steps or config.eval.decoding_steps
    tc = config.eval.context_frames
    context = torch.randint(0, cfg.codebook_size, (batch, tc, cfg.tokens_h, cfg.tokens_w), device=device)
    codes, known = assemble_clip(context, cfg.num_frames - tc, cfg.mask_token_id)
    actions = (torch.randn(batch, cfg.num_frames, cfg.action_dim, device=device)
               if cfg.action_dim else None)
    autocast = (torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
                if precision == "bf16" else nullcontext())

    def sync() -> None:
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()

    generator = torch.Generator(device).manual_seed(seed)
    with torch.no_grad(), autocast:
        model(codes, actions)  # warm-up
        sync()
        start = time.perf_counter()
        iterative_decode(model, codes, known, steps, config.eval.schedule,
                         config.eval.temperature, config.eval.top_p, actions, generator)
        sync()
        iterative = time.perf_counter() - start
        start = time.perf_counter()
        result = autoregressive_decode(model, codes, known, actions, generator, max_tokens=ar_passes)
        sync()
        per_pass = (time.perf_counter() - start) / result.forward_passes
    n_future = int((~known[0]).sum())
    return DecodeTiming(preset, n_future, steps, iterative, per_pass, result.forward_passes)


def format_table(rows: list[DecodeTiming], device: str, precision: str) -> str:
    lines = [
        f"Decoding speed on {device} ({precision}, batch 1, random weights)",
        "| preset | AR passes (N) | iterative passes | paper's passes | pass ratio | "
        "iterative s | AR s (extrapolated) | wall-clock speed-up |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.preset} | {r.future_tokens} | {r.iterative_passes} | "
            f"{PAPER_PASSES.get(r.preset, '-')} | {r.pass_ratio:.0f}x | {r.iterative_seconds:.2f} | "
            f"{r.ar_seconds:.1f} (from {r.ar_passes_timed} passes) | {r.wall_ratio:.0f}x |"
        )
    return "\n".join(lines)
