"""Conversions between the two frame formats the tokenizer accepts.

* uint8 frames, channels last: (..., H, W, 3) in [0, 255] — what datasets and users hold.
* float frames, channels first: (..., 3, H, W) in [-1, 1] — what the networks consume.
"""

from __future__ import annotations

import numpy as np
import torch
from einops import rearrange


def as_tensor(frames: torch.Tensor | np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames)) if isinstance(frames, np.ndarray) else frames


def uint8_to_float(frames: torch.Tensor) -> torch.Tensor:
    """(..., H, W, 3) uint8 in [0, 255] -> (..., 3, H, W) float32 in [-1, 1]."""
    return rearrange(frames, "... h w c -> ... c h w").float() / 127.5 - 1.0


def float_to_uint8(frames: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) float in [-1, 1] (clipped) -> (..., H, W, 3) uint8, rounded."""
    x = ((frames.float().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    return rearrange(x, "... c h w -> ... h w c")
