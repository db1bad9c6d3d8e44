"""A causal decoder with a key/value cache: the autoregressive video model of a real peer.

Tokens in raster order (frame, row, column); position p predicts token p + 1. The context
goes through in one pass (prefill), then each future token costs one single-token step
that attends to the cache. Same width, layers (2 × MaskViT's blocks), MLP and embeddings
as MaskViT.
"""

from __future__ import annotations

import torch
from torch import nn

from maskvit.bench.baseline_blocks import KVCache, Layer, VideoEmbedding, cached_causal_attend
from maskvit.config import TransformerConfig
from maskvit.errors import UserError
from maskvit.model.sampling import Generators, draw_uniform, sample_categorical


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
