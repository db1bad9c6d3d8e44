"""The VQ-GAN tokenizer: frames <-> grids of discrete codes (paper §3.1).

`VQGAN(cfg)` holds the encoder, quantizer and decoder (the discriminator belongs to the
training task, not to the tokenizer that later stages load). Public calls:

* `encode(frames) -> codes`: uint8 (..., H, W, 3) in [0, 255] or float (..., 3, H, W)
  in [-1, 1] -> int64 codes (..., h, w), h = w = resolution / downsample.
* `decode(codes, dtype=torch.uint8) -> frames`: int codes (..., h, w) -> uint8
  (..., H, W, 3); with `dtype=torch.float32`, float (..., 3, H, W) clamped to [-1, 1].
* `reconstruct(frames)`: encode then decode, returned in the format given.
* `forward(x)`: float (B, 3, H, W) -> (x_hat unclamped, `Quantized`), for training.

Inputs may be numpy arrays or tensors on any device; outputs are tensors on the
model's device.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

from maskvit.config import TokenizerConfig
from maskvit.errors import UserError
from maskvit.tokenizer.decoder import Decoder
from maskvit.tokenizer.encoder import Encoder
from maskvit.tokenizer.pixels import as_tensor, float_to_uint8, uint8_to_float
from maskvit.tokenizer.quantizer import Quantized, VectorQuantizer

Frames = torch.Tensor | np.ndarray


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
        z = self.encoder(x.reshape(-1, *x.shape[-3:]))
        codes = self.quantizer.nearest_grid(z)  # (N, h, w)
        return codes.reshape(*lead, *codes.shape[-2:])

    @torch.no_grad()
    def decode(self, codes: torch.Tensor | np.ndarray, dtype: torch.dtype = torch.uint8) -> torch.Tensor:
        """Codes (..., h, w) -> uint8 frames (..., H, W, 3), or float (..., 3, H, W) in [-1, 1]."""
        codes = as_tensor(codes).to(self.device, torch.int64)
        if codes.dim() < 2 or tuple(codes.shape[-2:]) != self.token_grid:
            raise UserError(f"codes must have shape (..., {self.cfg.token_grid}, {self.cfg.token_grid}), got {tuple(codes.shape)}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.cfg.codebook_size):
            raise UserError(f"codes must lie in [0, {self.cfg.codebook_size}); got "
                            f"{int(codes.min())}..{int(codes.max())}")
        lead = codes.shape[:-2]
        x = self.decoder(self.quantizer.lookup(codes.reshape(-1, *codes.shape[-2:])))
        x = x.float().clamp(-1.0, 1.0).reshape(*lead, *x.shape[-3:])
        if dtype == torch.uint8:
            return float_to_uint8(x)
        return x.to(dtype)

    @torch.no_grad()
    def reconstruct(self, frames: Frames) -> torch.Tensor:
        """Encode then decode; uint8 in -> uint8 out, float in -> float out."""
        dtype = torch.uint8 if as_tensor(frames).dtype == torch.uint8 else torch.float32
        return self.decode(self.encode(frames), dtype=dtype)

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
        digest = hashlib.sha256()
        for name, tensor in sorted(self.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().float().cpu().numpy().tobytes())
        return digest.hexdigest()[:16]

    # ------------------------------------------------------------- loading

    @classmethod
    def from_run(cls, path: str | Path, map_location: str | torch.device = "cpu") -> VQGAN:
        """Load the tokenizer of a `maskvit train-tokenizer` run directory (latest checkpoint)."""
        from maskvit.tokenizer.run import load_vqgan

        return load_vqgan(path, map_location=map_location)
