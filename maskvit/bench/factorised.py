"""A factorised spatial/temporal transformer (GENIE-style), decoding frame by frame.

Each block: a spatial layer (bidirectional attention inside one frame) and a temporal
layer (causal attention over frames at one spatial position); same width, layers, MLP
and embeddings as MaskViT. Causal in time, so a decoded frame's keys and values are
final: the temporal layers cache them, and decoding a frame runs only that frame's
h·w tokens. Each future frame is decoded with MaskViT's own iterative (MaskGIT) loop
(`iterative_decode`, same schedule, sampler and confidence noise) in a few steps, then
one more pass writes the finished frame into the cache.
"""

from __future__ import annotations

import torch
from torch import nn

from maskvit.bench.baseline_blocks import (
    KVCache,
    Layer,
    VideoEmbedding,
    cached_causal_attend,
    causal_attention,
    full_attention,
)
from maskvit.config import DecodingConfig, TransformerConfig
from maskvit.errors import UserError
from maskvit.model.decoding import iterative_decode
from maskvit.model.sampling import Generators


class FactorisedVideoTransformer(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = VideoEmbedding(cfg)
        self.layers = nn.ModuleList(Layer(cfg.dim, cfg.heads, cfg.mlp_dim)
                                    for _ in range(2 * cfg.depth))  # spatial, temporal, ...
        self.norm = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.codebook_size)

    @property
    def mask_token_id(self) -> int:
        return self.cfg.mask_token_id

    def new_cache(self, batch: int) -> KVCache:
        cfg = self.cfg
        return KVCache(cfg.depth, batch * cfg.tokens_per_frame, cfg.heads, cfg.num_frames,
                       cfg.dim // cfg.heads)

    def forward(self, tokens: torch.Tensor, start: int, cache: KVCache | None,
                actions: torch.Tensor | None = None, positions: torch.Tensor | None = None,
                head: bool = True, select: torch.Tensor | None = None) -> torch.Tensor | None:
        """tokens (B, F, hw) of frames start..start+F−1 -> logits (B, F·hw, K) (at
        `positions` (B, M) only, when given; (N, K) at the N true entries of a bool
        `select` of the tokens' shape, as MaskViT trains), or None when `head` is False.

        `cache` None: the whole clip at once, causal in time with no key/value cache, as
        training runs it (`benchmarks/bench_transformer.py` times that step)."""
        if cache is None and start != 0:
            raise ValueError("without a cache, the frames must start at frame 0")
        b, f, hw = tokens.shape
        frames = torch.arange(start, start + f, device=tokens.device).repeat_interleave(hw)
        cells = torch.arange(hw, device=tokens.device).repeat(f)
        x = self.embed(tokens.reshape(b, f * hw), frames, cells, actions)
        x = x.view(b, f, hw, -1)
        for i, layer in enumerate(self.layers):
            if i % 2 == 0:  # spatial: the frames are the batch
                x = layer(x.reshape(b * f, hw, -1), full_attention).view(b, f, hw, -1)
            else:  # temporal: each spatial position is a sequence over frames
                xt = x.transpose(1, 2).reshape(b * hw, f, -1)
                attend = (causal_attention if cache is None
                          else cached_causal_attend(cache, i // 2, start))
                xt = layer(xt, attend)
                x = xt.view(b, hw, f, -1).transpose(1, 2)
        if not head:
            return None
        x = x.reshape(b, f * hw, -1)
        if positions is not None:
            x = x.gather(1, positions.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        elif select is not None:
            x = x[select.reshape(b, f * hw)]
        return self.head(self.norm(x))


class _OneFrame(nn.Module):
    """Frame `start` of a factorised model: logits at positions of that frame only."""

    def __init__(self, model: FactorisedVideoTransformer, start: int, cache: KVCache,
                 actions: torch.Tensor | None) -> None:
        super().__init__()
        self.model, self.start, self.cache, self.actions = model, start, cache, actions
        self.passes = 0

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """`iterative_decode`'s tokens_to_logits: (B, 1, h, w), (B, M) -> (B, M, K)."""
        self.passes += 1
        b = tokens.shape[0]
        return self.model(tokens.reshape(b, 1, -1), self.start, self.cache, self.actions,
                          positions=positions)


def decode_factorised(model: FactorisedVideoTransformer, codes: torch.Tensor,
                      known: torch.Tensor, decoding: DecodingConfig,
                      actions: torch.Tensor | None = None,
                      generator: Generators = None) -> tuple[torch.Tensor, int]:
    """Fill the unknown frames after the known prefix frames of `codes` (B, T, h, w).

    Returns (codes, forward passes): one prefill pass over the context frames, then per
    future frame `decoding.steps` MaskGIT passes and one pass caching the finished frame.
    """
    b, t, h, w = codes.shape
    frame_known = known.reshape(b, t, -1).all(dim=2)
    prefix = int(frame_known[0].sum())
    if not bool(frame_known[:, :prefix].all()) or bool(known[:, prefix:].any()):
        raise UserError("the factorised baseline decodes the frames after known prefix frames only")
    tokens = codes.clone()
    cache = model.new_cache(b)
    model(tokens[:, :prefix].reshape(b, prefix, -1), 0, cache, actions, head=False)
    passes = 1
    for frame in range(prefix, t):
        one = _OneFrame(model, frame, cache, actions)
        unknown = torch.zeros(b, 1, h, w, dtype=torch.bool, device=codes.device)
        decoded = iterative_decode(one, tokens[:, frame:frame + 1],
                                   unknown, model.mask_token_id, decoding, generator).codes
        tokens[:, frame] = decoded[:, 0]
        model(decoded.reshape(b, 1, -1), frame, cache, actions, head=False)  # cache it
        passes += one.passes + 1
    return tokens, passes
