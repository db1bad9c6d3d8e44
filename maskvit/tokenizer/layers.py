"""Convolutional building blocks shared by the VQ-GAN encoder and decoder.

GroupNorm + SiLU residual blocks (as in VQ-GAN / the DDPM U-Net) keep training stable at
any batch size, which matters because the CPU preset trains with small batches and DDP
runs split the batch further; BatchNorm statistics would differ per process.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with at most 32 groups that divide `channels` (narrow CPU presets too)."""
    groups = min(32, channels)
    while channels % groups:
        groups -= 1
    return nn.GroupNorm(groups, channels, eps=1e-6)


class ResBlock(nn.Module):
    """Two 3×3 convolutions with a residual path; a 1×1 conv when the width changes."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm1 = group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = group_norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = (
            nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, H, W) -> (B, C_out, H, W)
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class SelfAttention2d(nn.Module):
    """Single-head self-attention over all positions of a (small) feature map.

    Used once at the lowest resolution (8×8 or 16×16), where it lets every code see the
    whole frame at negligible cost.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, h, w) -> same
        _, _, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).chunk(3, dim=1)
        # (B, C, h, w) -> (B, 1, h*w, C): one head over every position
        q, k, v = (rearrange(t, "b c h w -> b 1 (h w) c") for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)
        out = rearrange(out, "b 1 (h w) c -> b c h w", h=h, w=w)
        return x + self.proj(out)


class Downsample(nn.Module):
    """Halve the resolution with a strided 3×3 convolution (asymmetric pad, as VQ-GAN)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C, H/2, W/2)
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Double the resolution: nearest-neighbour upsampling then a 3×3 convolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C, 2H, 2W)
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def channel_multipliers(num_downsamples: int) -> tuple[int, ...]:
    """Width multiplier per resolution level (num_downsamples + 1 levels).

    Follows VQ-GAN's choices: f4 → (1, 2, 4), f8 → (1, 2, 2, 4), f16 → (1, 1, 2, 2, 4).
    Other factors widen by 2 every level up to 4×.
    """
    table = {0: (1,), 1: (1, 2), 2: (1, 2, 4), 3: (1, 2, 2, 4), 4: (1, 1, 2, 2, 4)}
    if num_downsamples in table:
        return table[num_downsamples]
    return tuple(min(2**i, 4) for i in range(num_downsamples + 1))
