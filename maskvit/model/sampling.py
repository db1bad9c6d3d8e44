"""Exact categorical sampling for decoding, and the uniforms it draws.

Why not `torch.multinomial`: on the CPU it draws one exponential per code and row
(`aten::exponential_`), which was a quarter of all push64 decoding time at batch 64.
Inverse-CDF sampling draws one uniform (float64) per row instead and costs one `exp` and
one sum per logit (the search runs over block sums, then inside one block). The sampled
distribution is the softmax of the (top-p filtered) logits up to float32 rounding of each
exp and block sum (relative ~1e-7), like `torch.multinomial` itself.

Uniforms come from one generator for the batch or from one generator per video: then
each video's draws depend only on its own generator, so its result does not depend on
which other videos share its batch (`Predictor.predict` and the server give every video
its own). A generator draws on its own device, whatever the model's, and the numbers
are moved to the model's device afterwards: a CPU generator drives a GPU model, with the
same numbers as on the CPU.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import torch

from maskvit.devices import to_device
from maskvit.errors import UserError

Generators = torch.Generator | Sequence[torch.Generator] | None


def draw_uniform(batch: int, count: int, generator: Generators, device: torch.device,
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(batch, count) uniforms in [0, 1) on `device`: from one generator, or row b from
    generator[b]. Each generator draws on its own device (see the module docstring)."""
    if generator is None or isinstance(generator, torch.Generator):
        source = device if generator is None else generator.device
        return to_device(torch.rand(batch, count, generator=generator, device=source,
                                    dtype=dtype), device)
    if len(generator) != batch:
        raise UserError(f"got {len(generator)} per-video generators for a batch of {batch}")
    if not generator:
        return torch.empty(0, count, device=device, dtype=dtype)
    rows = [torch.rand(count, generator=g, device=g.device, dtype=dtype) for g in generator]
    if len({row.device for row in rows}) == 1:  # the usual case: one copy for the batch
        return to_device(torch.stack(rows), device)
    return torch.stack([to_device(row, device) for row in rows])


def video_seed(seed: int, video: int) -> int:
    """A 63-bit seed for video `video` of a prediction seeded with `seed` (a hash, so
    neighbouring seeds and videos give unrelated streams)."""
    digest = hashlib.blake2b(f"predict:{seed}:{video}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def video_generators(seed: int, videos: Iterable[int]) -> list[torch.Generator]:
    """One CPU generator per video, seeded from (seed, the video's index in the request).

    Why: a video's frames then depend on its seed and index only: not on how the videos
    are split into batches (`Predictor.predict(batch_size=...)`, the server's batches of
    several requests), nor on the device the model runs on.
    """
    return [torch.Generator().manual_seed(video_seed(seed, v)) for v in videos]


def gumbel_from_uniform(u: torch.Tensor) -> torch.Tensor:
    """Standard Gumbel noise −log(−log u) from uniforms, clamped away from 0 and 1."""
    u = u.clamp(1e-20, 1.0 - 1e-7)
    return -torch.log(-torch.log(u))


BLOCK = 32  # codes per block of the two-level inverse-CDF search


def _search(cdf: torch.Tensor, target: torch.Tensor, right: bool) -> torch.Tensor:
    """First index i of each row of `cdf` (R, n) with cdf[i] > target (right) or ≥ target
    (left), for `target` (R, 1); never past the last entry that adds mass, so a target
    rounded up to the row's total still lands on a code that can be drawn."""
    index = torch.searchsorted(cdf, target, right=right)
    last = torch.searchsorted(cdf, cdf[:, -1:].contiguous(), right=False)
    return torch.minimum(index, last)


def _blocked_search(weights: torch.Tensor, fraction: torch.Tensor,
                    right: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Index (R,) where the running sum of `weights` (R, K) crosses fraction · total, for
    `fraction` (R,); and the total (R,) float64.

    Two levels instead of a cumulative sum over all K codes (which was most of the
    sampler's time): sums of blocks of 32 codes pick the block, then a cumulative sum of
    that one block picks the code. Drawn with a uniform `fraction`, this samples block b
    with probability mass_b / total and code i within it with w_i / mass_b: the
    categorical distribution of the weights, each block's float32 sum aside (relative
    error ~1e-7). The within-block target is rescaled to the block's own cumulative sum,
    so the two levels never disagree about which codes carry mass.
    """
    r, k = weights.shape
    if k % BLOCK:
        weights = torch.nn.functional.pad(weights, (0, BLOCK - k % BLOCK))
    blocks = weights.view(r, -1, BLOCK)
    block_cdf = blocks.sum(dim=-1).double().cumsum(dim=-1)  # (R, nb)
    target = fraction.view(r, 1) * block_cdf[:, -1:]
    block = _search(block_cdf, target, right)  # (R, 1)
    before = torch.where(block > 0, block_cdf.gather(1, (block - 1).clamp(min=0)), 0.0)
    mass = block_cdf.gather(1, block) - before
    inner = blocks.gather(1, block.unsqueeze(-1).expand(-1, -1, BLOCK)).squeeze(1)  # (R, BLOCK)
    inner_cdf = inner.cumsum(dim=-1, dtype=torch.float64)
    share = ((target - before) / mass.clamp(min=torch.finfo(torch.float64).tiny)).clamp(0.0, 1.0)
    code = _search(inner_cdf, share * inner_cdf[:, -1:], right)
    return (block * BLOCK + code).squeeze(1), block_cdf[:, -1]


def sample_categorical(logits: torch.Tensor, uniform: torch.Tensor,
                       top_p: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One code per row of `logits` (..., K), from `uniform` (...) in [0, 1) (float64).

    Samples softmax(logits) restricted to the nucleus when `top_p` < 1 (the smallest set of
    codes, by descending probability, whose mass reaches top_p; tests compare it with a
    plain full-sort filter) and renormalised. Returns (codes (...) int64,
    log-probabilities (...) float32 of the sampled codes under that same distribution).
    """
    if top_p is not None and not 0.0 < top_p:
        raise UserError(f"top_p must be in (0, 1], got {top_p}")
    shape, k = logits.shape[:-1], logits.shape[-1]
    logits = logits.float().reshape(-1, k)
    uniform = uniform.to(torch.float64).reshape(-1)
    nucleus = top_p is not None and top_p < 1.0
    if nucleus:
        logits, order = logits.sort(dim=-1, descending=True)
    peak = logits.amax(dim=-1, keepdim=True)
    weights = (logits - peak).exp_()  # unnormalised probabilities, max 1
    if nucleus:
        # Keep a code while the codes ranked above it hold less than top_p of the mass:
        # all codes up to the first where the running sum reaches top_p.
        last_kept, _ = _blocked_search(weights, torch.full_like(uniform, top_p), right=False)
        beyond = torch.arange(k, device=logits.device) > last_kept.unsqueeze(1)
        weights = weights.masked_fill_(beyond, 0.0)
    index, total = _blocked_search(weights, uniform, right=True)  # (R,), (R,)
    log_prob = (logits.gather(1, index[:, None]).squeeze(1) - peak.squeeze(1)
                - total.log().float())
    codes = order.gather(1, index[:, None]).squeeze(1) if nucleus else index
    return codes.view(shape), log_prob.view(shape)
