"""Iterative (MaskGIT-style) decoding of future frames, its mask schedules, and the
autoregressive baseline.

Iterative decoding (paper §3.4): start with every future token masked. Each of T steps
runs the model on the whole clip, samples every still-masked token from the (top-p
filtered) softmax, scores it by log-probability plus Gumbel noise scaled by
temperature·(1 − s/T), and keeps all but the ceil(γ(s/T)·N) least confident, which are
masked again. Tokens decoded at an earlier step, and context tokens, never change, so
only the still-masked positions are sampled (`maskvit.model.sampling`) and only they go
through the output head.

Autoregressive decoding: the same bidirectional model, one token per forward pass in
raster order (N forward passes) — the paper's Table 3 pass-count baseline. A real
autoregressive video model (a causal decoder with a key/value cache) costs far less per
token; `maskvit bench decode` times one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from maskvit.config import DecodingConfig
from maskvit.errors import UserError
from maskvit.model.sampling import Generators, draw_uniform, gumbel_from_uniform, sample_categorical

UNMASK_MODES = ("confidence", "random")
RANDOM = UNMASK_MODES[1]
DEFAULT_DECODING = DecodingConfig()  # what `generate` uses when given no settings

# tokens (B, T, h, w), positions (B, M) flat indices into each video's T·h·w tokens
# -> logits (B, M, K): all the iterative decoder knows of the model.
TokensToLogits = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------- mask schedules
# γ (paper §3.4, Fig. 3) maps decoding progress r ∈ [0, 1] to the fraction of future tokens
# still masked, with γ(0) = 1 and γ(1) = 0, monotonically decreasing. Concave: cosine,
# square, cubic, exponential; linear; convex: sqrt.

EXPONENTIAL_RATE = 3.0  # k in (e^k − e^{k r}) / (e^k − 1); larger = flatter start


def cosine(r: float) -> float:
    return math.cos(math.pi / 2 * r)


def square(r: float) -> float:
    return 1.0 - r**2


def cubic(r: float) -> float:
    return 1.0 - r**3


def exponential(r: float) -> float:
    k = EXPONENTIAL_RATE
    return (math.exp(k) - math.exp(k * r)) / (math.exp(k) - 1.0)


def linear(r: float) -> float:
    return 1.0 - r


def sqrt(r: float) -> float:
    return 1.0 - math.sqrt(r)


SCHEDULES: dict[str, Callable[[float], float]] = {
    "cosine": cosine, "square": square, "cubic": cubic,
    "exponential": exponential, "linear": linear, "sqrt": sqrt,
}


def get_schedule(name: str) -> Callable[[float], float]:
    if name not in SCHEDULES:
        raise UserError(f"unknown mask schedule {name!r}; choose one of: {', '.join(SCHEDULES)}")
    return SCHEDULES[name]


def masked_counts(name: str, steps: int, total: int) -> list[int]:
    """Tokens still masked after each of `steps` decoding steps: ceil(γ(s/T)·N), s = 1..T.

    Clamped so it never increases; the last entry is 0, so decoding always finishes.
    """
    gamma = get_schedule(name)
    counts, previous = [], total
    for s in range(1, steps + 1):
        # The small epsilon absorbs float error (γ(1) = 6e-17 for cosine, not 0).
        n = math.ceil(gamma(s / steps) * total - 1e-9)
        previous = max(0, min(previous, n))
        counts.append(previous)
    counts[-1] = 0
    return counts


# ---------------------------------------------------------------- decoding

@dataclass
class DecodingResult:
    codes: torch.Tensor  # (B, T, h, w) int64, every position decoded
    forward_passes: int


def model_logits(model: torch.nn.Module, tokens: torch.Tensor, actions: torch.Tensor | None,
                 positions: torch.Tensor) -> torch.Tensor:
    """Logits (B, M, K) at `positions` (B, M), flat indices into each video's T·h·w tokens.

    A model that declares `supports_positions` (MaskViT) runs its output head only there;
    any other model (test stubs, wrappers) runs whole and the rows are picked afterwards.
    """
    if getattr(model, "supports_positions", False):
        return model(tokens, actions, positions=positions)
    logits = model(tokens, actions)
    b, k = logits.shape[0], logits.shape[-1]
    return logits.reshape(b, -1, k).gather(1, positions.unsqueeze(-1).expand(-1, -1, k))


def masked_positions(still_masked: torch.Tensor, count: int) -> torch.Tensor:
    """(B, count) indices of the True entries of each row of `still_masked` (B, L), ascending.

    The count is known, so the indices come without reading it back from the device
    (`nonzero` would wait for a GPU at every decoding step).
    """
    b = still_masked.shape[0]
    return torch.nonzero_static(still_masked, size=b * count)[:, 1].view(b, count)


def iterative_decode(
    tokens_to_logits: TokensToLogits,
    codes: torch.Tensor,
    known: torch.Tensor,
    mask_token_id: int,
    decoding: DecodingConfig = DEFAULT_DECODING,
    generator: Generators = None,
) -> DecodingResult:
    """Fill every position of `codes` (B, T, h, w) where `known` (B, T, h, w) is False.

    Known positions (context, goal) are returned unchanged. Makes exactly
    `decoding.steps` calls of `tokens_to_logits`; after step s (1-based) exactly
    ceil(γ(s/T)·N) future tokens remain masked.

    The decoder sees the model only through `tokens_to_logits` (as maskgit's
    `parallel_decode.decode`), so wrappers (the factorised baseline's one-frame view,
    action conditioning) need no model-shaped adapter. Each step samples, scores and
    ranks only the positions still masked (decided tokens never change, so their samples
    were thrown away anyway). `generator` is one generator for the batch, or one per
    video (then a video's result does not depend on its batch-mates).
    """
    steps, temperature = decoding.steps, decoding.temperature
    if decoding.unmask not in UNMASK_MODES:
        raise UserError(f"unmask must be one of {', '.join(UNMASK_MODES)}; got {decoding.unmask!r}")
    if steps < 1:
        raise UserError(f"decoding steps must be at least 1, got {steps}")
    b = codes.shape[0]
    mask_id = mask_token_id
    known = known.reshape(b, -1)
    future_count = (~known).sum(dim=1)
    if not bool((future_count == future_count[0]).all()):
        raise UserError("every video in a batch must have the same number of positions to decode")
    n_masked = int(future_count[0])
    tokens = codes.reshape(b, -1).masked_fill(~known, mask_id).clone()  # (B, L)
    still_masked = ~known  # (B, L), n_masked True per row
    targets = masked_counts(decoding.schedule, steps, n_masked)
    for s, n_keep_masked in enumerate(targets, start=1):
        positions = masked_positions(still_masked, n_masked)  # (B, M)
        logits = tokens_to_logits(tokens.view_as(codes), positions)  # (B, M, K)
        uniform = draw_uniform(b, n_masked, generator, tokens.device, torch.float64)
        sampled, log_prob = sample_categorical(logits, uniform, decoding.top_p)  # (B, M) each
        if decoding.unmask == RANDOM:
            score = draw_uniform(b, n_masked, generator, tokens.device)
        else:
            score = log_prob
            if temperature:
                anneal = temperature * (1.0 - s / steps)
                noise = gumbel_from_uniform(draw_uniform(b, n_masked, generator, tokens.device))
                score = score + anneal * noise
        tokens = tokens.scatter(1, positions, sampled)
        # Re-mask the n_keep_masked lowest-scoring of the positions that were masked.
        remask = positions.gather(1, score.argsort(dim=1)[:, :n_keep_masked])
        tokens.scatter_(1, remask, mask_id)
        still_masked = torch.zeros_like(still_masked).scatter_(1, remask, True)
        n_masked = n_keep_masked
    return DecodingResult(tokens.view_as(codes), forward_passes=steps)


def autoregressive_decode(
    model: torch.nn.Module,
    codes: torch.Tensor,
    known: torch.Tensor,
    actions: torch.Tensor | None = None,
    generator: Generators = None,
    top_p: float | None = None,
    max_tokens: int | None = None,
) -> DecodingResult:
    """Decode one token per forward pass in raster order (frame, row, column).

    The paper's pass-count baseline: the bidirectional model runs whole for every token,
    with no key/value cache (benchmarks compare a KV-cached causal decoder separately).
    `max_tokens` stops early (the rest stay [MASK]); benchmarks use it to time a prefix of
    the N passes and extrapolate.
    """
    b = codes.shape[0]
    known = known.reshape(b, -1)
    tokens = codes.reshape(b, -1).masked_fill(~known, model.mask_token_id).clone()
    order = (~known[0]).nonzero().squeeze(-1)
    if not bool((~known == ~known[0]).all()):
        raise UserError("autoregressive decoding needs the same unknown positions in every video")
    if max_tokens is not None:
        order = order[:max_tokens]
    for position in order.tolist():
        where = torch.full((b, 1), position, dtype=torch.long, device=tokens.device)
        logits = model_logits(model, tokens.view_as(codes), actions, where)  # (B, 1, K)
        uniform = draw_uniform(b, 1, generator, tokens.device, torch.float64)
        sampled, _ = sample_categorical(logits, uniform, top_p)
        tokens[:, position] = sampled[:, 0]
    return DecodingResult(tokens.view_as(codes), forward_passes=len(order))


def assemble_clip(
    context_codes: torch.Tensor,
    num_frames: int,
    mask_token_id: int,
    goal_codes: torch.Tensor | None = None,
    context_positions: list[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Place context (and goal) frames in a clip of Tc + num_frames frames.

    Returns codes (B, T, h, w) with [MASK] at unknown frames and `known` (B, T, h, w).
    Context frames go at `context_positions` (default: the first Tc frames); a goal frame
    takes the last position, so num_frames counts it.
    """
    if context_codes.dim() != 4:
        raise UserError(f"context codes must have shape (B, Tc, h, w); got {tuple(context_codes.shape)}")
    b, tc, h, w = context_codes.shape
    total = tc + num_frames
    if num_frames < 1:
        raise UserError(f"num_frames must be at least 1, got {num_frames}")
    positions = list(range(tc)) if context_positions is None else list(context_positions)
    if len(positions) != tc or len(set(positions)) != tc or not all(0 <= p < total for p in positions):
        raise UserError(f"context_positions {positions} must name {tc} distinct frames in [0, {total})")
    codes = torch.full((b, total, h, w), mask_token_id, dtype=torch.long, device=context_codes.device)
    known = torch.zeros(b, total, h, w, dtype=torch.bool, device=context_codes.device)
    codes[:, positions] = context_codes.long()
    known[:, positions] = True
    if goal_codes is not None:
        if tuple(goal_codes.shape) != (b, h, w):
            raise UserError(f"goal codes must have shape {(b, h, w)}; got {tuple(goal_codes.shape)}")
        if total - 1 in positions:
            raise UserError("the last frame is already a context frame; it cannot also be the goal")
        codes[:, -1] = goal_codes.long()
        known[:, -1] = True
    if bool(known.all()):
        raise UserError("nothing to predict: every frame is given")
    return codes, known


def generate(
    model: torch.nn.Module,
    context_codes: torch.Tensor,
    num_frames: int,
    decoding: DecodingConfig | None = None,
    *,
    actions: torch.Tensor | None = None,
    goal_codes: torch.Tensor | None = None,
    generator: Generators = None,
    context_positions: list[int] | None = None,
    mode: str = "iterative",
) -> DecodingResult:
    """Predict `num_frames` frames after (or around) the context; see module docstring.

    context_codes (B, Tc, h, w); actions (B, Tc + num_frames, A) or None; goal_codes
    (B, h, w) or None (then the last of the num_frames frames is the goal). `mode` is
    "iterative" (`decoding.steps` forward passes) or "autoregressive" (N forward passes).
    `decoding` (every decoding setting, one `DecodingConfig`) defaults to `DEFAULT_DECODING`.
    """
    decoding = decoding or DEFAULT_DECODING
    codes, known = assemble_clip(context_codes, num_frames, model.mask_token_id, goal_codes,
                                 context_positions)
    if actions is not None:
        actions = actions.to(device=codes.device, dtype=torch.float32)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            if mode == "iterative":
                def tokens_to_logits(tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
                    return model_logits(model, tokens, actions, positions)

                return iterative_decode(tokens_to_logits, codes, known, model.mask_token_id,
                                        decoding, generator)
            if mode == "autoregressive":
                return autoregressive_decode(model, codes, known, actions, generator,
                                             decoding.top_p)
            raise UserError(f"mode must be 'iterative' or 'autoregressive'; got {mode!r}")
    finally:
        model.train(was_training)
