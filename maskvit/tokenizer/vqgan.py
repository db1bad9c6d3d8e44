"""The VQ-GAN tokenizer: frames <-> grids of discrete codes (paper §3.1), in one file.

Read top to bottom: the two frame formats, the convolutional blocks, the encoder, the
decoder, then `VQGAN`, which joins them with the quantizer (`quantizer.py`), and
`load_vqgan`, which reads one back from a training run. The discriminator belongs to the
training task (`vqgan_task.py`), not to the tokenizer that later stages load.

`VQGAN(cfg)` calls:

* `encode(frames) -> codes`: uint8 (..., H, W, 3) in [0, 255] or float (..., 3, H, W)
  in [-1, 1] -> int64 codes (..., h, w), h = w = resolution / downsample.
* `decode(codes, dtype=torch.uint8) -> frames`: int codes (..., h, w) -> uint8
  (..., H, W, 3); with `dtype=torch.float32`, float (..., 3, H, W) clamped to [-1, 1].
* `reconstruct(frames)`: encode then decode, returned in the format given.
* `forward(x)`: float (B, 3, H, W) -> (x_hat unclamped, `Quantized`), for training.

Inputs may be numpy arrays or tensors on any device; outputs are tensors on the
model's device. GroupNorm + SiLU residual blocks (as in VQ-GAN / the DDPM U-Net) keep
training stable at any batch size: the CPU presets train with small batches and DDP
splits them further, where BatchNorm statistics would differ per process.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from maskvit.config import TokenizerConfig
from maskvit.errors import UserError
from maskvit.run_dir import load_run, load_weights, state_fingerprint
from maskvit.tokenizer.quantizer import Quantized, VectorQuantizer

Frames = torch.Tensor | np.ndarray

# The module name the tokenizer task checkpoints under (RUN/checkpoints/step_N/vqgan.*).
MODULE = "vqgan"

# CPU inference runs the encoder and decoder on at most this many pixels (whole frames,
# 16 frames of 64 × 64) at a time. Why: planning decodes 640 frames per call, whose
# full-resolution activations are ~70 MB per layer; fresh allocations that large are
# page-faulted in and fall out of cache, and decoding them as one batch took 1.9x as long
# as in 16-frame chunks (benchmarks/RESULTS.md, "Faster decoding loop"). Frames never
# interact (GroupNorm and attention are per frame), so the values are the whole batch's.
INFERENCE_CHUNK_PIXELS = 65536


# ---------------------------------------------------------------- frame formats
# uint8 frames, channels last: (..., H, W, 3) in [0, 255] — what datasets and users hold.
# float frames, channels first: (..., 3, H, W) in [-1, 1] — what the networks consume.


def as_tensor(frames: torch.Tensor | np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames)) if isinstance(frames, np.ndarray) else frames


def uint8_to_float(frames: torch.Tensor) -> torch.Tensor:
    """(..., H, W, 3) uint8 in [0, 255] -> (..., 3, H, W) float32 in [-1, 1]."""
    return rearrange(frames, "... h w c -> ... c h w").float() / 127.5 - 1.0


def float_to_uint8(frames: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) float in [-1, 1] (clipped) -> (..., H, W, 3) uint8, rounded."""
    x = ((frames.float().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    return rearrange(x, "... c h w -> ... h w c")


# ---------------------------------------------------------------- building blocks


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


# ---------------------------------------------------------------- encoder and decoder


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
    """Frame (B, 3, H, W) -> continuous latents (B, n_z, H/f, W/f): residual levels, each but
    the last followed by a strided downsample, then residual-attention-residual at token
    resolution. f = 2**levels (`TokenizerConfig.downsample`)."""

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


class Decoder(nn.Module):
    """Quantized latents (B, n_z, h, w) -> frame (B, 3, H, W) in about [-1, 1]: the encoder
    mirrored with one extra residual block per level (as VQ-GAN). `last_layer` is the final
    convolution's weight, which the adaptive GAN weight differentiates against."""

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


# ---------------------------------------------------------------- the tokenizer


class VQGAN(nn.Module):
    def __init__(self, cfg: TokenizerConfig) -> None:
        super().__init__()
        if not 1 <= cfg.codebook_size <= 65536:
            raise UserError(
                f"tokenizer.codebook_size must be in 1..65536 (codes are cached as uint16), got {cfg.codebook_size}"
            )
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.quantizer = VectorQuantizer(
            cfg.codebook_size,
            cfg.code_dim,
            kind=cfg.quantizer,
            commitment_weight=cfg.commitment_weight,
            dead_code_threshold=cfg.dead_code_threshold,
            usage_decay=cfg.usage_decay,
        )
        self.decoder = Decoder(cfg)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def token_grid(self) -> tuple[int, int]:
        return (self.cfg.token_grid, self.cfg.token_grid)

    # ------------------------------------------------------------- training

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Quantized]:
        """(B, 3, H, W) in [-1, 1] -> reconstruction (B, 3, H, W) and the quantizer output."""
        q = self.quantizer(self.encoder(x))
        return self.decoder(q.z_q), q

    # ------------------------------------------------------------- inference

    @torch.no_grad()
    def encode(self, frames: Frames) -> torch.Tensor:
        """Frames -> int64 codes (..., h, w). See the module docstring for formats."""
        x = self._to_float(frames)  # (..., 3, H, W)
        lead = x.shape[:-3]
        codes = self._in_chunks(lambda chunk: self.quantizer.nearest_grid(self.encoder(chunk)),
                                x.reshape(-1, *x.shape[-3:]))  # (N, h, w)
        return codes.reshape(*lead, *codes.shape[-2:])

    @torch.no_grad()
    def decode(self, codes: torch.Tensor | np.ndarray, dtype: torch.dtype = torch.uint8) -> torch.Tensor:
        """Codes (..., h, w) -> uint8 frames (..., H, W, 3), or float (..., 3, H, W) in [-1, 1]."""
        codes = self._checked_codes(codes)
        lead = codes.shape[:-2]
        x = self._in_chunks(lambda chunk: self.decoder(self.quantizer.lookup(chunk)),
                            codes.reshape(-1, *codes.shape[-2:]))
        x = x.float().clamp(-1.0, 1.0).reshape(*lead, *x.shape[-3:])
        if dtype == torch.uint8:
            return float_to_uint8(x)
        return x.to(dtype)

    @torch.no_grad()
    def embed(self, codes: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Codes (..., h, w) -> the code vectors the decoder reads, float32 (..., h, w, n_z).

        A distance between frames with no decoder run: what a planning cost in latent
        space compares (`maskvit.plan.planner.latent_l2_cost`)."""
        codes = self._checked_codes(codes)
        return self.quantizer.embeddings()[codes]

    @torch.no_grad()
    def reconstruct(self, frames: Frames) -> torch.Tensor:
        """Encode then decode; uint8 in -> uint8 out, float in -> float out."""
        dtype = torch.uint8 if as_tensor(frames).dtype == torch.uint8 else torch.float32
        return self.decode(self.encode(frames), dtype=dtype)

    def _checked_codes(self, codes: torch.Tensor | np.ndarray) -> torch.Tensor:
        """int64 codes on this device; one line if their grid or range is not this tokenizer's."""
        codes = as_tensor(codes).to(self.device, torch.int64)
        if codes.dim() < 2 or tuple(codes.shape[-2:]) != self.token_grid:
            raise UserError(f"codes must have shape (..., {self.cfg.token_grid}, {self.cfg.token_grid}), got {tuple(codes.shape)}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.cfg.codebook_size):
            raise UserError(f"codes must lie in [0, {self.cfg.codebook_size}); got "
                            f"{int(codes.min())}..{int(codes.max())}")
        return codes

    def _in_chunks(self, fn, batch: torch.Tensor) -> torch.Tensor:
        """fn over the batch's first axis, INFERENCE_CHUNK_PIXELS at a time on the CPU."""
        r = self.cfg.resolution
        per_chunk = max(1, INFERENCE_CHUNK_PIXELS // (r * r))
        if batch.shape[0] <= per_chunk or batch.device.type != "cpu":
            return fn(batch)
        return torch.cat([fn(batch[i:i + per_chunk]) for i in range(0, batch.shape[0], per_chunk)])

    def _to_float(self, frames: Frames) -> torch.Tensor:
        x = as_tensor(frames).to(self.device)
        r = self.cfg.resolution
        if x.dtype == torch.uint8:
            if x.dim() < 3 or tuple(x.shape[-3:]) != (r, r, 3):
                raise UserError(f"uint8 frames must have shape (..., {r}, {r}, 3), got {tuple(x.shape)}")
            return uint8_to_float(x)
        if not x.is_floating_point():
            raise UserError(f"frames must be uint8 or float, got {x.dtype}")
        if x.dim() < 3 or tuple(x.shape[-3:]) != (3, r, r):
            raise UserError(f"float frames must have shape (..., 3, {r}, {r}) in [-1, 1], got {tuple(x.shape)}")
        return x.float()

    def fingerprint(self) -> str:
        """Short hash of the weights: tells whether two token caches came from one tokenizer."""
        return state_fingerprint(self.state_dict())

    # ------------------------------------------------------------- loading

    @classmethod
    def from_run(cls, path: str | Path, map_location: str | torch.device = "cpu") -> VQGAN:
        """Load the tokenizer of a `maskvit train-tokenizer` run directory (latest checkpoint)."""
        return load_vqgan(path, map_location=map_location)


def load_vqgan(path: str | Path, map_location: str | torch.device = "cpu",
               step: int | None = None, use_ema: bool = True) -> VQGAN:
    """VQGAN (eval mode) from a run directory; its EMA weights when the run kept them."""
    config, weights, ema = load_run(path, module=MODULE, step=step)
    model = VQGAN(config.tokenizer)
    load_weights(model, ema if (use_ema and ema is not None) else weights, Path(path), config, MODULE)
    return model.to(map_location).eval()
