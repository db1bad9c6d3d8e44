"""PatchGAN discriminator: frame (B, 3, H, W) -> a grid of real/fake logits (B, 1, h', w').

Each logit judges one overlapping patch (70×70 receptive field with 3 layers), which
penalises blurry texture without caring about global layout. GroupNorm instead of
BatchNorm so that real and fake batches, and DDP shards, do not share statistics.
"""

from __future__ import annotations

import torch
from torch import nn

from maskvit.tokenizer.vqgan import group_norm


class PatchDiscriminator(nn.Module):
    def __init__(self, channels: int = 64, layers: int = 3) -> None:
        super().__init__()
        blocks: list[nn.Module] = [
            nn.Conv2d(3, channels, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
        ]
        width = channels
        for i in range(1, layers + 1):
            out_width = channels * min(2**i, 8)
            stride = 2 if i < layers else 1
            blocks += [
                nn.Conv2d(width, out_width, 4, stride=stride, padding=1, bias=False),
                group_norm(out_width),
                nn.LeakyReLU(0.2),
            ]
            width = out_width
        blocks.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*blocks)
        self.apply(_init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) -> (B, 1, h', w')
        return self.net(x)


def _init_weights(module: nn.Module) -> None:
    """DCGAN-style init (N(0, 0.02)), which the PatchGAN hinge setup is tuned for."""
    if isinstance(module, nn.Conv2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
