"""VQ-GAN decoder: quantized latents (B, n_z, h, w) -> frame (B, 3, H, W) in about [-1, 1].

Mirror of the encoder with one extra residual block per level (as VQ-GAN), nearest
upsampling between levels. `last_layer` is the final convolution's weight, which the
adaptive GAN weight differentiates against.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from maskvit.config import TokenizerConfig
from maskvit.tokenizer.encoder import num_downsamples
from maskvit.tokenizer.layers import (
    ResBlock,
    SelfAttention2d,
    Upsample,
    channel_multipliers,
    group_norm,
)


class Decoder(nn.Module):
    def __init__(self, cfg: TokenizerConfig) -> None:
        super().__init__()
        levels = num_downsamples(cfg)
        widths = [cfg.channels * m for m in channel_multipliers(levels)]
        width = widths[-1]
        self.conv_in = nn.Conv2d(cfg.code_dim, width, 3, padding=1)
        self.mid = nn.Sequential(ResBlock(width, width), SelfAttention2d(width), ResBlock(width, width))
        blocks: list[nn.Module] = []
        for level in reversed(range(levels + 1)):
            for _ in range(cfg.num_res_blocks + 1):
                blocks.append(ResBlock(width, widths[level]))
                width = widths[level]
            if level > 0:
                blocks.append(Upsample(width))
        self.up = nn.Sequential(*blocks)
        self.norm_out = group_norm(width)
        self.conv_out = nn.Conv2d(width, 3, 3, padding=1)

    @property
    def last_layer(self) -> torch.Tensor:
        return self.conv_out.weight

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, n_z, h, w) -> (B, 3, H, W)
        h = self.up(self.mid(self.conv_in(z)))
        return self.conv_out(F.silu(self.norm_out(h)))
