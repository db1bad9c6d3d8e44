"""VQ-GAN encoder: frame (B, 3, H, W) -> continuous latents (B, n_z, H/f, W/f).

A stack of residual levels, each followed by a strided downsample except the last, then a
middle block (residual, attention, residual) at token resolution. The factor f
(`TokenizerConfig.downsample`) sets the number of levels: f = 2**levels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from maskvit.config import TokenizerConfig
from maskvit.errors import UserError
from maskvit.tokenizer.layers import (
    Downsample,
    ResBlock,
    SelfAttention2d,
    channel_multipliers,
    group_norm,
)


def num_downsamples(cfg: TokenizerConfig) -> int:
    """log2 of the downsample factor; a one-line error for factors the network cannot make."""
    f = cfg.downsample
    if f < 1 or f & (f - 1):
        raise UserError(f"tokenizer.downsample must be a power of two, got {f}")
    if cfg.resolution % f:
        raise UserError(
            f"tokenizer.resolution {cfg.resolution} is not divisible by downsample {f}"
        )
    return int(math.log2(f))


class Encoder(nn.Module):
    def __init__(self, cfg: TokenizerConfig) -> None:
        super().__init__()
        levels = num_downsamples(cfg)
        widths = [cfg.channels * m for m in channel_multipliers(levels)]
        self.conv_in = nn.Conv2d(3, widths[0], 3, padding=1)
        blocks: list[nn.Module] = []
        width = widths[0]
        for level, out_width in enumerate(widths):
            for _ in range(cfg.num_res_blocks):
                blocks.append(ResBlock(width, out_width))
                width = out_width
            if level < levels:
                blocks.append(Downsample(width))
        self.down = nn.Sequential(*blocks)
        self.mid = nn.Sequential(ResBlock(width, width), SelfAttention2d(width), ResBlock(width, width))
        self.norm_out = group_norm(width)
        self.conv_out = nn.Conv2d(width, cfg.code_dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) -> (B, n_z, h, w)
        h = self.mid(self.down(self.conv_in(x)))
        return self.conv_out(F.silu(self.norm_out(h)))
