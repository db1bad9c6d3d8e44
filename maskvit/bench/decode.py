"""Decoding speed: MaskViT's iterative decoding against real autoregressive peers.

Wall clock, timed whole, on randomly initialised models of a preset's geometry:

- MaskViT, iterative decoding (the preset's steps, schedule, temperature, top-p);
- a KV-cached causal decoder of the same width, layers and size (`CausalVideoDecoder`, below):
  what an autoregressive video model really costs, one cached step per token;
- a factorised spatial/temporal transformer decoding frame by frame with a few MaskGIT
  steps per frame and a cached past (`maskvit.bench.factorised`, GENIE-style).

Every (preset, batch, precision) configuration runs each decoder once per round, the
rounds interleave all configurations and decoders (A, B, C, A, B, C, ...), and the
median round counts. Beside the wall clock, the paper's Table 3 pass counts: N forward
passes for one-token-per-pass decoding with the bidirectional model and no cache (timed
over a few passes and extrapolated, as the paper counts) against the iterative steps.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
from torch import nn

from maskvit.bench.baseline_blocks import (
    KVCache,
    Layer,
    VideoEmbedding,
    cached_causal_attend,
    parameter_count,
)
from maskvit.bench.factorised import FactorisedVideoTransformer, decode_factorised
from maskvit.config import TransformerConfig, load_preset
from maskvit.errors import UserError
from maskvit.model import MaskViT
from maskvit.model.decoding import (
    assemble_clip,
    autoregressive_decode,
    iterative_decode,
    model_logits,
)
from maskvit.model.sampling import Generators, draw_uniform, sample_categorical

# Paper Table 3: forward passes of MaskViT's iterative decoding.
PAPER_PASSES = {"bair64": 24, "kitti64": 48, "robonet64": 5}
DECODERS = ("maskvit", "kv_cached", "factorised", "ar_no_cache")


# ---------------------------------------------------------------- the KV-cached causal peer
# Tokens in raster order (frame, row, column); position p predicts token p + 1. The context
# goes through in one pass (prefill), then each future token costs one single-token step
# that attends to the cache. Same width, layers (2 × MaskViT's blocks), MLP and embeddings
# as MaskViT.

class CausalVideoDecoder(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = VideoEmbedding(cfg)
        self.layers = nn.ModuleList(Layer(cfg.dim, cfg.heads, cfg.mlp_dim)
                                    for _ in range(2 * cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.codebook_size)

    def new_cache(self, batch: int) -> KVCache:
        cfg = self.cfg
        return KVCache(len(self.layers), batch, cfg.heads, cfg.num_frames * cfg.tokens_per_frame,
                       cfg.dim // cfg.heads)

    def forward(self, tokens: torch.Tensor, start: int, cache: KVCache,
                actions: torch.Tensor | None = None) -> torch.Tensor:
        """tokens (B, n) at raster positions start..start+n−1 -> logits (B, K) of the next token."""
        positions = torch.arange(start, start + tokens.shape[1], device=tokens.device)
        hw = self.cfg.tokens_per_frame
        x = self.embed(tokens, positions // hw, positions % hw, actions)
        for i, layer in enumerate(self.layers):
            x = layer(x, cached_causal_attend(cache, i, start))
        return self.head(self.norm(x[:, -1]))


def decode_causal_kv(model: CausalVideoDecoder, codes: torch.Tensor, known: torch.Tensor,
                     actions: torch.Tensor | None = None, top_p: float | None = None,
                     generator: Generators = None) -> tuple[torch.Tensor, int]:
    """Fill the unknown frames after a known prefix of `codes` (B, T, h, w), token by token.

    Returns (codes, forward passes): one prefill pass plus one step per further token.
    """
    b = codes.shape[0]
    known = known.reshape(b, -1)
    prefix = int(known[0].sum())
    if not bool(known[:, :prefix].all()) or bool(known[:, prefix:].any()):
        raise UserError("the KV-cached baseline decodes the frames after a known prefix only")
    tokens = codes.reshape(b, -1).clone()
    cache = model.new_cache(b)
    logits = model(tokens[:, :prefix], 0, cache, actions)
    passes = 1
    for p in range(prefix, tokens.shape[1]):
        uniform = draw_uniform(b, 1, generator, tokens.device, torch.float64)[:, 0]
        tokens[:, p], _ = sample_categorical(logits, uniform, top_p)
        if p + 1 < tokens.shape[1]:
            logits = model(tokens[:, p:p + 1], p, cache, actions)
            passes += 1
    return tokens.view_as(codes), passes


# ---------------------------------------------------------------- timing

@dataclass
class DecodeTiming:
    """Seconds per round of each decoder for one (preset, batch, precision)."""

    preset: str
    batch: int
    precision: str
    future_tokens: int  # N: autoregressive passes without a cache
    iterative_passes: int
    factorised_steps: int  # MaskGIT steps per frame of the factorised baseline
    factorised_passes: int = 0
    ar_passes_timed: int = 0
    parameters: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, list[float]] = field(default_factory=dict)

    def median(self, decoder: str) -> float:
        return statistics.median(self.seconds[decoder])

    @property
    def ar_seconds(self) -> float:
        """One-token-per-pass decoding without a cache, extrapolated to all N passes."""
        return self.median("ar_no_cache") / self.ar_passes_timed * self.future_tokens

    @property
    def pass_ratio(self) -> float:
        return self.future_tokens / self.iterative_passes

    def speedup(self, baseline: str) -> float:
        """How many times faster MaskViT's iterative decoding is than `baseline`."""
        other = self.ar_seconds if baseline == "ar_no_cache" else self.median(baseline)
        return other / self.median("maskvit")


def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


class _Setup:
    """The three models of one preset (shared by its batches and precisions) and inputs."""

    def __init__(self, preset: str, device: str, steps: int | None, seed: int) -> None:
        config = load_preset(preset)
        self.preset, self.device, self.eval = preset, device, config.eval
        self.cfg = cfg = config.transformer
        self.decoding = dataclasses.replace(config.eval.decoding,
                                            steps=steps or config.eval.decoding.steps)
        self.steps = self.decoding.steps
        torch.manual_seed(seed)
        self.maskvit = MaskViT(cfg).to(device).eval()
        self.kv = CausalVideoDecoder(cfg).to(device).eval()
        self.factorised = FactorisedVideoTransformer(cfg).to(device).eval()
        self.seed = seed

    def parameters(self) -> dict[str, int]:
        return {"maskvit": parameter_count(self.maskvit), "kv_cached": parameter_count(self.kv),
                "factorised": parameter_count(self.factorised)}

    def inputs(self, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        cfg, device = self.cfg, self.device
        tc = self.eval.context_frames
        generator = torch.Generator().manual_seed(self.seed)
        context = torch.randint(0, cfg.codebook_size, (batch, tc, cfg.tokens_h, cfg.tokens_w),
                                generator=generator).to(device)
        codes, known = assemble_clip(context, cfg.num_frames - tc, cfg.mask_token_id)
        actions = (torch.randn(batch, cfg.num_frames, cfg.action_dim, generator=generator).to(device)
                   if cfg.action_dim else None)
        return codes, known, actions

    def runners(self, batch: int, precision: str, factorised_steps: int, ar_passes: int
                ) -> dict[str, Callable[[], int]]:
        """One callable per decoder; each decodes once and returns its forward passes.

        bf16: MaskViT runs under autocast, as `Predictor` does. The baselines get bf16
        weights instead (what a bf16 autoregressive server would hold): under autocast
        their hundreds of small per-token steps were slower still.
        """
        codes, known, actions = self.inputs(batch)
        decoding, device = self.decoding, self.device
        kv, factorised, base_actions = self.kv, self.factorised, actions
        if precision == "bf16":
            kv, factorised = self.bf16("kv"), self.bf16("factorised")
            base_actions = None if actions is None else actions.to(torch.bfloat16)

        def generator() -> torch.Generator:
            return torch.Generator(device).manual_seed(self.seed)

        def autocast() -> contextlib.AbstractContextManager:
            if precision == "bf16":
                return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
            return nullcontext()

        def maskvit() -> int:
            with autocast():
                return iterative_decode(
                    lambda tokens, positions: model_logits(self.maskvit, tokens, actions, positions),
                    codes, known, self.cfg.mask_token_id, self.decoding, generator()).forward_passes

        def ar_no_cache() -> int:
            with autocast():
                return autoregressive_decode(self.maskvit, codes, known, actions, generator(),
                                             decoding.top_p, max_tokens=ar_passes).forward_passes

        return {
            "maskvit": maskvit,
            "kv_cached": lambda: decode_causal_kv(kv, codes, known, base_actions, decoding.top_p,
                                                  generator())[1],
            "factorised": lambda: decode_factorised(
                factorised, codes, known, dataclasses.replace(decoding, steps=factorised_steps),
                base_actions, generator())[1],
            "ar_no_cache": ar_no_cache,
        }

    def bf16(self, name: str) -> torch.nn.Module:
        """A bf16-weight copy of a baseline, made once."""
        key = f"_{name}_bf16"
        if not hasattr(self, key):
            setattr(self, key, copy.deepcopy(getattr(self, name)).to(torch.bfloat16))
        return getattr(self, key)


def time_decoders(presets: list[str], batches: list[int], precisions: list[str],
                  device: str = "cpu", steps: int | None = None, factorised_steps: int = 2,
                  ar_passes: int = 2, rounds: int = 2, seed: int = 0,
                  progress: Callable[[str], None] | None = None) -> list[DecodeTiming]:
    """Time every decoder on every (preset, batch, precision), rounds interleaved."""
    plan = [(p, b, prec) for p in presets for b in batches for prec in precisions]
    return time_plan(plan, device, steps, factorised_steps, ar_passes, rounds, seed, progress)


def time_plan(plan: list[tuple], device: str = "cpu", steps: int | None = None,
              factorised_steps: int = 2, ar_passes: int = 2, rounds: int = 2, seed: int = 0,
              progress: Callable[[str], None] | None = None) -> list[DecodeTiming]:
    """Time every decoder on each (preset, batch, precision[, steps]) of `plan`; each round
    runs every configuration and decoder once, so slow drifts of the machine hit all alike.
    MaskViT decodes in the entry's steps when it gives them, else `steps` or the preset's."""
    def setup_key(key: tuple) -> tuple[str, int | None]:
        return key[0], key[3] if len(key) > 3 else steps

    setups = {k: _Setup(k[0], device, k[1], seed) for k in dict.fromkeys(map(setup_key, plan))}
    rows: dict[tuple, DecodeTiming] = {}
    runners: dict[tuple, dict[str, Callable[[], int]]] = {}
    for key in plan:
        setup = setups[setup_key(key)]
        cfg = setup.cfg
        n_future = (cfg.num_frames - setup.eval.context_frames) * cfg.tokens_per_frame
        rows[key] = DecodeTiming(key[0], key[1], key[2], n_future, setup.steps, factorised_steps,
                                 parameters=setup.parameters())
        runners[key] = setup.runners(key[1], key[2], factorised_steps, ar_passes)
    with torch.no_grad():
        for key in plan:  # warm-up: a few passes of MaskViT
            runners[key]["ar_no_cache"]()
        for r in range(rounds):
            for key in plan:
                row = rows[key]
                for decoder in DECODERS:
                    _sync(device)
                    start = time.perf_counter()
                    passes = runners[key][decoder]()
                    _sync(device)
                    row.seconds.setdefault(decoder, []).append(time.perf_counter() - start)
                    if decoder == "factorised":
                        row.factorised_passes = passes
                    elif decoder == "ar_no_cache":
                        row.ar_passes_timed = passes
                if progress:
                    progress(f"round {r + 1}/{rounds} {key[0]} batch {key[1]} {key[2]}: "
                             + ", ".join(f"{d} {row.seconds[d][-1]:.2f} s" for d in DECODERS))
    return [rows[key] for key in plan]


def format_wall_clock(rows: list[DecodeTiming], device: str, rounds: int) -> str:
    lines = [
        f"Decoding wall clock on {device} (median of {rounds} interleaved rounds, random weights)",
        "| preset | batch | precision | MaskViT iterative | KV-cached causal | factorised "
        "(GENIE-style) | MaskViT vs KV-cached | MaskViT vs factorised |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.preset} | {r.batch} | {r.precision} | {r.median('maskvit'):.2f} s "
            f"({r.iterative_passes} passes) | {r.median('kv_cached'):.2f} s ({r.future_tokens} "
            f"tokens) | {r.median('factorised'):.2f} s ({r.factorised_steps} steps/frame) | "
            f"{r.speedup('kv_cached'):.2f}x | {r.speedup('factorised'):.2f}x |"
        )
    return "\n".join(lines)


def format_pass_counts(rows: list[DecodeTiming]) -> str:
    """The paper's Table 3 comparison: bidirectional model, one token per pass, no cache."""
    lines = [
        "Paper's pass-count comparison (Table 3: bidirectional model, one token per pass, "
        "no key/value cache)",
        "| preset | AR passes (N) | iterative passes | paper's passes | pass ratio | batch | "
        "precision | AR without cache s (extrapolated) | ratio to iterative |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.preset} | {r.future_tokens} | {r.iterative_passes} | "
            f"{PAPER_PASSES.get(r.preset, '-')} | {r.pass_ratio:.0f}x | {r.batch} | {r.precision} | "
            f"{r.ar_seconds:.1f} (from {r.ar_passes_timed} passes) | {r.speedup('ar_no_cache'):.0f}x |"
        )
    return "\n".join(lines)


def format_parameters(rows: list[DecodeTiming]) -> str:
    seen, lines = set(), []
    for r in rows:
        if r.preset not in seen:
            seen.add(r.preset)
            p = r.parameters
            lines.append(f"{r.preset} parameters: MaskViT {p['maskvit']:,}, KV-cached causal "
                         f"{p['kv_cached']:,}, factorised {p['factorised']:,}")
    return "\n".join(lines)


def format_report(rows: list[DecodeTiming], device: str, rounds: int) -> str:
    return "\n\n".join([format_wall_clock(rows, device, rounds), format_pass_counts(rows),
                        format_parameters(rows)])
