"""Pieces shared by the decoding baselines: a pre-norm layer, embeddings, a key/value cache."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from maskvit.config import TransformerConfig
from maskvit.model.transformer import MLP

Attend = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class Layer(nn.Module):
    """Pre-norm layer like MaskViT's (same parameters): x + proj(attention(LN(x))), then
    x + MLP(LN(x)). Which tokens attend to which is the caller's `attend(q, k, v)`."""

    def __init__(self, dim: int, heads: int, mlp_dim: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_dim, 0.0)

    def forward(self, x: torch.Tensor, attend: Attend) -> torch.Tensor:
        """x (N, L, D); `attend` maps q, k, v (N, heads, L, e) to (N, heads, L, e)."""
        n, length, dim = x.shape
        qkv = self.qkv(self.norm1(x)).view(n, length, 3, self.heads, dim // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        out = attend(q, k, v).transpose(1, 2).reshape(n, length, dim)
        x = x + self.proj(out)
        return x + self.mlp(self.norm2(x))


def full_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v)


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Each position sees itself and those before: a whole sequence at once (training)."""
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


class VideoEmbedding(nn.Module):
    """MaskViT's input embedding: code (+[MASK]) + spatial + temporal position + action."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.token = nn.Embedding(cfg.codebook_size + 1, cfg.dim)
        self.spatial = nn.Parameter(torch.randn(cfg.tokens_per_frame, cfg.dim) * 0.02)
        self.temporal = nn.Parameter(torch.randn(cfg.num_frames, cfg.dim) * 0.02)
        self.action = nn.Linear(cfg.action_dim, cfg.dim) if cfg.action_dim else None

    def forward(self, tokens: torch.Tensor, frames: torch.Tensor, cells: torch.Tensor,
                actions: torch.Tensor | None) -> torch.Tensor:
        """tokens (B, n); frames, cells (n,) each token's frame and position in it -> (B, n, D)."""
        x = self.token(tokens) + self.spatial[cells] + self.temporal[frames]
        if actions is not None and self.action is not None:
            x = x + self.action(actions[:, frames].to(x.dtype))
        return x


class KVCache:
    """Preallocated keys and values of every attention layer, written in place.

    Allocated at the first write of each layer, in that write's dtype (bf16 under
    autocast), as any serving implementation would.
    """

    def __init__(self, layers: int, rows: int, heads: int, length: int, head_dim: int) -> None:
        self.shape = (rows, heads, length, head_dim)
        self.keys: list[torch.Tensor | None] = [None] * layers
        self.values: list[torch.Tensor | None] = [None] * layers

    def write(self, layer: int, start: int, k: torch.Tensor,
              v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (rows, heads, n, e) at slots [start, start + n); return slots [0, start + n)."""
        if self.keys[layer] is None:
            self.keys[layer] = k.new_empty(self.shape)
            self.values[layer] = v.new_empty(self.shape)
        end = start + k.shape[2]
        self.keys[layer][:, :, start:end] = k
        self.values[layer][:, :, start:end] = v
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]


def cached_causal_attend(cache: KVCache, layer: int, start: int) -> Attend:
    """Attention of n new positions (slots start..start+n−1) to themselves and all before."""

    def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        keys, values = cache.write(layer, start, k, v)
        n = q.shape[2]
        if n == 1:  # one new position sees every cached one: no mask
            return F.scaled_dot_product_attention(q, keys, values)
        rows = torch.arange(n, device=q.device)[:, None] + start
        mask = torch.arange(start + n, device=q.device)[None, :] <= rows
        return F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)

    return attend


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
