"""Masked visual modeling (paper §3.2): which tokens to hide, and the loss on them.

Per video a ratio r ~ U[0.5, 1) (or a fixed r, the Table 2c ablation) and floor(r·N) of the
N future tokens are replaced by [MASK], uniformly at random. Context frames (and the goal
frame, when goal-conditioned) are never masked. The loss is cross-entropy on masked
positions only.

Training draws each video's ratio and mask from its own generator, seeded from (run seed,
step, the video's index in the step's global batch) (`sample_generators`): so how the
global batch is split over processes and micro-batches changes nothing that is masked.
Those generators are CPU generators; the mask is computed where its random numbers are
drawn and then moved to the tokens' device in one copy, so on a GPU the mask (and the
indices of its masked positions, `flat_positions`) are known without waiting for the GPU.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F

from maskvit.devices import to_device
from maskvit.errors import UserError

VARIABLE_RATIO_RANGE = (0.5, 1.0)


def future_frame_mask(num_frames: int, context_frames: int, goal: bool = False,
                      device: torch.device | str | None = None) -> torch.Tensor:
    """(T,) bool: True for frames whose tokens may be masked (not context, not goal)."""
    if not 0 <= context_frames < num_frames - int(goal):
        raise UserError(f"context_frames={context_frames} leaves no frame to predict in a "
                        f"clip of {num_frames} frames (goal={goal})")
    frames = torch.zeros(num_frames, dtype=torch.bool, device=device)
    frames[context_frames:num_frames - int(goal)] = True
    return frames


def _draw_device(generator: torch.Generator | None,
                 device: torch.device | str | None) -> torch.device | str | None:
    """Where `generator` draws: its own device (a CPU generator draws on the CPU for any model)."""
    return device if generator is None else generator.device


def sample_mask_ratios(batch: int, ratio: str | float = "variable",
                       generator: torch.Generator | None = None,
                       device: torch.device | str | None = None) -> torch.Tensor:
    """(B,) ratios: U[0.5, 1) per video for "variable", else the fixed value."""
    if ratio == "variable":
        low, high = VARIABLE_RATIO_RANGE
        u = torch.rand(batch, generator=generator, device=_draw_device(generator, device))
        u = u if device is None else to_device(u, device)
        return low + (high - low) * u
    if isinstance(ratio, str) or not 0.0 < float(ratio) < 1.0:
        raise UserError(f"mask ratio must be 'variable' or a number in (0, 1); got {ratio!r}")
    return torch.full((batch,), float(ratio), device=device)


def sample_seed(seed: int, step: int, index: int) -> int:
    """A 63-bit seed for one training video, a hash of (run seed, step, global index)."""
    digest = hashlib.blake2b(f"{seed}:{step}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def sample_generators(seed: int, step: int, indices: Iterable[int]) -> list[torch.Generator]:
    """One CPU generator per video of a micro-batch, keyed on its index in the global batch.

    Why: the masks then depend only on (seed, step, index), not on the process count,
    the rank or the micro-batch a video lands in.
    """
    return [torch.Generator().manual_seed(sample_seed(seed, step, i)) for i in indices]


Generators = torch.Generator | Sequence[torch.Generator] | None


def goal_flags(batch: int, goal: bool | float, generator: Generators,
               device: torch.device | str | None = None) -> torch.Tensor:
    """(B,) bool: which videos are given their last frame as the goal.

    `goal` is a probability (True = 1, False = 0). Only a probability strictly between
    0 and 1 draws from the generators (one number per video, after its mask ratio), so
    models that always or never see the goal mask exactly as before goals were optional.
    """
    p = float(goal)
    if p <= 0.0 or p >= 1.0:
        return torch.full((batch,), p >= 1.0, dtype=torch.bool, device=device)
    if generator is None or isinstance(generator, torch.Generator):
        u = torch.rand(batch, generator=generator, device=_draw_device(generator, device))
    else:
        u = torch.cat([torch.rand(1, generator=g) for g in generator])
    return (u if device is None else to_device(u, device)) < p


def draw_ratios_and_scores(batch: int, length: int, ratio: str | float, generator: Generators,
                           device: torch.device | None = None, goal: bool | float = False
                           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B,) mask ratios, (B,) goal flags and (B, length) uniform scores, from one generator
    or one per video, on the device they are drawn on: the generator's (`device` when
    there is none); the CPU for per-video generators.

    Per-video generators draw on the CPU (ratio, goal flag, then scores), so the same
    video gets the same mask on any device and in any batch.
    """
    if generator is None or isinstance(generator, torch.Generator):
        where = _draw_device(generator, device)
        ratios = sample_mask_ratios(batch, ratio, generator, where)
        goals = goal_flags(batch, goal, generator, where)
        return ratios, goals, torch.rand(batch, length, generator=generator, device=where)
    if len(generator) != batch:
        raise UserError(f"got {len(generator)} per-video generators for a batch of {batch}")
    ratios, goals, scores = [], [], []
    for g in generator:
        ratios.append(sample_mask_ratios(1, ratio, g))
        goals.append(goal_flags(1, goal, [g]))
        scores.append(torch.rand(length, generator=g))
    return torch.cat(ratios), torch.cat(goals), torch.stack(scores)


def training_mask(shape: tuple[int, int, int, int], context_frames: int,
                  ratio: str | float = "variable", goal: bool | float = False,
                  generator: Generators = None, device: torch.device | None = None
                  ) -> torch.Tensor:
    """(B, T, h, w) bool: True at the floor(r·N) hidden future tokens of each video.

    Computed where its random numbers are drawn (`draw_ratios_and_scores`): the CPU for
    per-video generators, whatever device the model is on. See `mask_for_training`.
    """
    b, t, h, w = shape
    future_frame_mask(t, context_frames, bool(goal))  # a clip must leave frames to predict
    ratios, goals, scores = draw_ratios_and_scores(b, t * h * w, ratio, generator, device, goal)
    where = scores.device
    frames = future_frame_mask(t, context_frames, False, where).expand(b, t).clone()  # (B, T)
    frames[:, -1] &= ~goals  # a given goal frame is never masked
    maskable = frames[:, :, None].expand(b, t, h * w).reshape(b, -1)  # (B, T·h·w)
    counts = torch.floor(ratios * maskable.sum(dim=1)).long()
    # Uniform random subset per video: rank random scores over maskable positions only.
    scores = scores.masked_fill(~maskable, 2.0)  # non-maskable sort last
    ranks = scores.argsort(dim=1).argsort(dim=1)  # rank of each position, 0 = smallest
    return (ranks < counts[:, None]).view(b, t, h, w)  # (B, T·h·w) -> (B, T, h, w)


def flat_positions(mask: torch.Tensor) -> torch.Tensor:
    """(N,) int64: the flat indices of `mask`'s N true entries, ascending: the order of
    `x[mask]`. Taken where the mask was drawn (the CPU while training), this costs a GPU
    nothing; `pick` then selects without the wait for a count that `x[mask]` makes."""
    return mask.reshape(-1).nonzero().squeeze(1)


def pick(x: torch.Tensor, where: torch.Tensor, feature_dims: int = 0) -> torch.Tensor:
    """`x[where]` for `where` a bool mask of x's leading dims (all but the last
    `feature_dims`), or the same rows for `where` given as that mask's `flat_positions`."""
    if where.dtype == torch.bool:
        return x[where]
    rows = x.reshape(-1, *x.shape[x.dim() - feature_dims:]) if feature_dims else x.reshape(-1)
    return rows.index_select(0, where)


def mask_for_training(
    tokens: torch.Tensor,
    context_frames: int,
    ratio: str | float = "variable",
    goal: bool | float = False,
    generator: Generators = None,
    mask_token_id: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hide floor(r·N) future tokens per video.

    tokens (B, T, h, w) int64 -> (inputs with [MASK] ids, mask (B, T, h, w) bool).
    `goal`: the probability that a video's last frame is given (never masked) as its goal;
    True = always. `generator` is one generator for the batch or one per video
    (`sample_generators`). `mask_token_id` defaults to the largest id the caller's codebook
    allows, so pass the model's `mask_token_id` (= K) explicitly.
    """
    if mask_token_id is None:
        raise UserError("mask_for_training needs mask_token_id (the model's K)")
    mask = to_device(training_mask(tuple(tokens.shape), context_frames, ratio, goal,
                                   generator, tokens.device), tokens.device)
    return tokens.masked_fill(mask, mask_token_id), mask


def masked_count(seed: int, step: int, indices: Iterable[int], ratio: str | float,
                 n_future: int, goal: bool | float = False, frame_tokens: int = 0) -> int:
    """Tokens that masks from `sample_generators(seed, step, indices)` hide, in all.

    `n_future`: maskable tokens of a video without a goal; a video given its goal frame has
    `frame_tokens` fewer. Reads only each video's ratio and goal flag (its generator's
    first draws), so a process can count the masked tokens of the whole global batch
    without its videos.
    """
    total = 0
    for g in sample_generators(seed, step, indices):
        r = sample_mask_ratios(1, ratio, g)
        given = bool(goal_flags(1, goal, [g])[0])
        total += int(torch.floor(r * (n_future - frame_tokens * given)).sum())
    return total


def changed_tokens(tokens: torch.Tensor) -> torch.Tensor:
    """bool (B, T, h, w): where a token differs from the one at its place in the frame
    before (the first frame: nowhere)."""
    changed = torch.zeros_like(tokens, dtype=torch.bool)
    changed[:, 1:] = tokens[:, 1:] != tokens[:, :-1]
    return changed


def masked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor,
                         normalizer: float | None = None,
                         weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy and accuracy over masked positions only.

    logits (B, T, h, w, K), or (M, K) already picked at the mask's M true positions (in
    `logits[mask]` order: `MaskViT(..., select=mask)`), targets (B, T, h, w), mask
    (B, T, h, w) bool or its `flat_positions` -> scalars. `normalizer` divides the summed loss instead of this
    batch's masked count: a share of a mean over a larger batch split across processes or
    micro-batches. `weights` (B, T, h, w) weighs each masked position's term (the sum is
    still divided by the count or `normalizer`, so weights above 1 raise the loss).
    """
    labels = pick(targets, mask)
    picked = logits.dim() == 2
    if picked and logits.shape[0] != labels.shape[0]:
        raise ValueError(f"{logits.shape[0]} rows of logits for {labels.shape[0]} masked positions")
    selected = (logits if picked else pick(logits, mask, feature_dims=1)).float()  # (M, K)
    if selected.shape[0] == 0:
        zero = logits.sum() * 0.0
        return zero, zero.detach()
    terms = F.cross_entropy(selected, labels, reduction="none")
    if weights is not None:
        terms = terms * pick(weights, mask).to(terms.dtype)
    loss = terms.mean() if normalizer is None else terms.sum() / normalizer
    accuracy = (selected.argmax(-1) == labels).float().mean()
    return loss, accuracy.detach()
