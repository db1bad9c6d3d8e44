"""The MaskViT bidirectional window transformer (paper §3.3, Fig. 1a).

tokens (B, T, h, w) in [0, K] (K = [MASK])  ─► embedding + space + time positions
  (+ a zero-initialised projection of each frame's action)  ─► L blocks of
  [spatial-window layer 1×h×w, spatiotemporal-window layer T_w×h'×w']  ─► logits over K codes.
"""

from __future__ import annotations

import torch
from torch import nn

from maskvit.config import DecodingConfig, TransformerConfig
from maskvit.errors import UserError
from maskvit.model.attention import Window, WindowAttention
from maskvit.model.decoding import generate as decode_clip
from maskvit.model.masking import pick

# CPU inference runs the batch through the model this many tokens (whole videos) at a
# time. Why: at batch 64 the MLP's hidden activations of push64 are ~100 MB per layer;
# every such fresh allocation is page-faulted in by the kernel (~40 ms per 100 MB), which
# cost a quarter of the forward pass. Chunks of a few MB are reused from the heap and stay
# in cache; the values are those of the whole batch (each video is computed alone).
INFERENCE_CHUNK_TOKENS = 4096


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.act(self.fc1(x))))


class TransformerLayer(nn.Module):
    """Pre-norm layer: x + WindowAttention(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, cfg: TransformerConfig, window: Window) -> None:
        super().__init__()
        grid = (cfg.num_frames, cfg.tokens_h, cfg.tokens_w)
        self.norm1 = nn.LayerNorm(cfg.dim)
        self.attn = WindowAttention(cfg.dim, cfg.heads, window, grid, cfg.dropout)
        self.norm2 = nn.LayerNorm(cfg.dim)
        self.mlp = MLP(cfg.dim, cfg.mlp_dim, cfg.dropout)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x)))
        return x + self.mlp(self.norm2(x))


class MaskViTBlock(nn.Module):
    """One block = a spatial-window layer followed by a spatiotemporal-window layer."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.spatial = TransformerLayer(cfg, tuple(cfg.spatial_window))
        self.spatiotemporal = TransformerLayer(cfg, tuple(cfg.spatiotemporal_window))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatiotemporal(self.spatial(x))


class MaskViT(nn.Module):
    """Predicts the code of every token of a partly masked token video.

    `forward(tokens, actions)`: tokens (B, T, h, w) int64 with values in [0, K], where K
    (= `cfg.mask_token_id`) marks a masked position; T ≤ cfg.num_frames. actions
    (B, T, A) float, or None. Returns logits (B, T, h, w, K). With `positions` (B, M)
    (flat indices into each video's T·h·w tokens) it returns logits (B, M, K) at those
    positions only: decoding needs no logits where tokens are already decided. With
    `select` (B, T, h, w) bool it returns logits (N, K) at its N true positions, in the
    order of `logits[select]`: training needs them only where the loss looks (the masked
    tokens), and the head and its gradient then run there only. `select` may also be
    those positions as (N,) int64 flat indices (`masking.flat_positions`), which a GPU
    can use without first counting the mask.
    """

    supports_positions = True  # decoding may pass `positions=` (see decoding.model_logits)

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.token_embedding = nn.Embedding(cfg.codebook_size + 1, cfg.dim)  # +1: [MASK]
        self.spatial_position = nn.Parameter(torch.zeros(cfg.tokens_h * cfg.tokens_w, cfg.dim))
        self.temporal_position = nn.Parameter(torch.zeros(cfg.num_frames, cfg.dim))
        self.action_projection = (
            nn.Linear(cfg.action_dim, cfg.dim) if cfg.action_dim > 0 else None
        )
        self.blocks = nn.ModuleList(MaskViTBlock(cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.codebook_size)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.trunc_normal_(module.weight, std=0.02)
        nn.init.trunc_normal_(self.spatial_position, std=0.02)
        nn.init.trunc_normal_(self.temporal_position, std=0.02)
        if self.action_projection is not None:
            # Zero-initialised: an action-free checkpoint fine-tunes into an action-
            # conditioned one without changing its predictions at step 0.
            nn.init.zeros_(self.action_projection.weight)
            nn.init.zeros_(self.action_projection.bias)

    @property
    def mask_token_id(self) -> int:
        return self.cfg.mask_token_id

    def check_inputs(self, tokens: torch.Tensor, actions: torch.Tensor | None) -> None:
        """Raise a clear `UserError` (a ValueError) for tokens or actions of the wrong form."""
        cfg = self.cfg
        if tokens.dim() != 4 or tuple(tokens.shape[2:]) != (cfg.tokens_h, cfg.tokens_w):
            raise UserError(
                f"tokens must have shape (B, T, {cfg.tokens_h}, {cfg.tokens_w}); "
                f"got {tuple(tokens.shape)}"
            )
        if tokens.shape[1] > cfg.num_frames:
            raise UserError(f"{tokens.shape[1]} frames given; this model takes at most "
                            f"{cfg.num_frames}")
        if tokens.dtype.is_floating_point or tokens.dtype == torch.bool:
            raise UserError(f"tokens must be integer codes, got dtype {tokens.dtype}")
        # The ids' range is read back on the CPU only: on a GPU it would stall every forward
        # pass until the GPU caught up; there the embedding's own bounds check stops bad ids.
        if tokens.numel() and tokens.device.type == "cpu":
            low, high = (int(v) for v in torch.aminmax(tokens))
            if low < 0 or high > cfg.codebook_size:
                raise UserError(
                    f"token ids must lie in [0, {cfg.codebook_size}] ({cfg.codebook_size} = "
                    f"[MASK]); got range [{low}, {high}]"
                )
        if actions is None:
            return
        if cfg.action_dim == 0:
            raise UserError("this model is not action-conditioned (action_dim = 0) but "
                            "actions were given")
        expected = (tokens.shape[0], tokens.shape[1], cfg.action_dim)
        if tuple(actions.shape) != expected:
            raise UserError(f"actions must have shape {expected} (B, T, action_dim); "
                            f"got {tuple(actions.shape)}")

    def forward(self, tokens: torch.Tensor, actions: torch.Tensor | None = None,
                positions: torch.Tensor | None = None,
                select: torch.Tensor | None = None) -> torch.Tensor:
        self.check_inputs(tokens, actions)
        b, t, h, w = tokens.shape
        if positions is not None and (positions.dim() != 2 or positions.shape[0] != b
                                      or positions.dtype != torch.long):
            raise UserError(f"positions must be int64 of shape (B={b}, M); got "
                            f"{positions.dtype} {tuple(positions.shape)}")
        if select is not None:
            if positions is not None:
                raise UserError("give positions or select, not both")
            flat = select.dtype == torch.long and select.dim() == 1
            if not flat and (select.dtype != torch.bool or select.shape != tokens.shape):
                raise UserError(f"select must be bool of the tokens' shape {tuple(tokens.shape)} "
                                f"or (N,) int64 flat positions; got {select.dtype} "
                                f"{tuple(select.shape)}")
            return self._logits(tokens, actions, None, select)
        per_chunk = max(1, INFERENCE_CHUNK_TOKENS // (t * h * w))
        if b <= per_chunk or tokens.device.type != "cpu" or torch.is_grad_enabled():
            return self._logits(tokens, actions, positions)
        # CPU inference: a few videos at a time (videos never interact; same values).
        return torch.cat([
            self._logits(tokens[i:i + per_chunk],
                         None if actions is None else actions[i:i + per_chunk],
                         None if positions is None else positions[i:i + per_chunk])
            for i in range(0, b, per_chunk)
        ])

    def _logits(self, tokens: torch.Tensor, actions: torch.Tensor | None,
                positions: torch.Tensor | None,
                select: torch.Tensor | None = None) -> torch.Tensor:
        b, t, h, w = tokens.shape
        x = self.token_embedding(tokens)  # (B, T, h, w, D)
        x = x + self.spatial_position.view(1, 1, h, w, -1)
        x = x + self.temporal_position[:t].view(1, t, 1, 1, -1)
        if actions is not None and self.action_projection is not None:
            x = x + self.action_projection(actions.to(x.dtype)).view(b, t, 1, 1, -1)
        for block in self.blocks:
            x = block(x)
        if positions is not None:  # (B, M): the head (a per-token map) runs only there
            x = x.reshape(b, t * h * w, -1)
            x = x.gather(1, positions.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        elif select is not None:
            x = pick(x, select, feature_dims=1)  # (N, D)
        return self.head(self.norm(x))  # (B, T, h, w, K); (B, M, K) or (N, K) when picked

    @torch.no_grad()
    def generate(self, context_codes: torch.Tensor, num_frames: int,
                 decoding: DecodingConfig | None = None, **kwargs) -> torch.Tensor:
        """Codes (B, Tc + num_frames, h, w): `maskvit.model.decoding.generate(self, ...).codes`,
        with the same `DecodingConfig` and keyword arguments; the decoding lives there, not in
        the network."""
        return decode_clip(self, context_codes, num_frames, decoding, **kwargs).codes

    def num_parameters(self) -> dict[str, int]:
        """Parameter counts per component, for `maskvit info`."""

        def count(*modules: nn.Module | nn.Parameter | None) -> int:
            total = 0
            for m in modules:
                if m is None:
                    continue
                params = [m] if isinstance(m, nn.Parameter) else list(m.parameters())
                total += sum(p.numel() for p in params)
            return total

        counts = {
            "token_embedding": count(self.token_embedding),
            "position_embeddings": count(self.spatial_position, self.temporal_position),
            "action_projection": count(self.action_projection),
            "spatial_layers": count(*(b.spatial for b in self.blocks)),
            "spatiotemporal_layers": count(*(b.spatiotemporal for b in self.blocks)),
            "output_head": count(self.norm, self.head),
        }
        counts["total"] = sum(counts.values())
        return counts
