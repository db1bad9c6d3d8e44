"""Vector quantizer: nearest-neighbour codebook lookup with straight-through gradients.

Two ways to keep the codebook healthy (chosen by `TokenizerConfig.quantizer`):

* "cosine": latents and codes are l2-normalised and matched by cosine similarity; the
  codebook is a parameter learned by the codebook loss ||sg(z) - e||². Normalising keeps
  codes and latents on the same scale, so few codes are stranded far from the data.
* "ema": codes are exponential moving averages of the latents assigned to them
  (VQ-VAE-2 style); no codebook loss.

Both use a commitment loss β·||z - sg(e)||² on the *encoder* term, and both restart dead
codes: a code whose moving-average use per step falls below `dead_code_threshold` is
replaced by a randomly chosen encoder output of the current batch. Restarts happen at
the start of a training forward pass, before the codebook is used, so autograd never
sees an in-place change. The usage average starts at zero, so the first training step
initialises every code from real encoder outputs (a cheap data-dependent init). Under
DDP the statistics are summed over processes and replacements broadcast from rank 0, so
every process keeps the same codebook.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.distributed as dist
import torch.nn.functional as F
from einops import rearrange
from torch import nn

# A restarted code gets this many thresholds of credit, i.e. a grace period of
# log(2)/(1 - usage_decay) ≈ 69 steps to attract data before it can be restarted again.
_RESTART_CREDIT = 2.0


@dataclass
class Quantized:
    """What one quantizer call returns."""

    z_q: torch.Tensor  # (B, n_z, h, w) quantized latents; gradients flow straight to z
    codes: torch.Tensor  # (B, h, w) int64 code indices
    loss: torch.Tensor  # scalar: commitment (+ codebook loss for "cosine")
    stats: dict[str, torch.Tensor] = field(default_factory=dict)  # perplexity, usage, restarts


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if _distributed():
        dist.all_reduce(t)
    return t


class VectorQuantizer(nn.Module):
    def __init__(
        self,
        codebook_size: int,
        code_dim: int,
        kind: str = "cosine",
        commitment_weight: float = 0.25,
        dead_code_threshold: float = 1.0,
        ema_decay: float = 0.99,
        usage_decay: float = 0.99,
    ) -> None:
        super().__init__()
        if kind not in ("cosine", "ema"):
            raise ValueError(f"unknown quantizer kind {kind!r}")
        self.kind = kind
        self.codebook_size = codebook_size
        self.code_dim = code_dim
        self.commitment_weight = commitment_weight
        self.dead_code_threshold = dead_code_threshold
        self.ema_decay = ema_decay
        self.usage_decay = usage_decay
        init = torch.randn(codebook_size, code_dim)
        if kind == "cosine":
            self.codebook = nn.Parameter(F.normalize(init, dim=-1))
        else:
            self.register_buffer("codebook", init)
            self.register_buffer("ema_count", torch.ones(codebook_size))
            self.register_buffer("ema_sum", init.clone())
        # Moving average of how many latents each code received per training step.
        self.register_buffer("usage", torch.zeros(codebook_size))

    # ----------------------------------------------------------------- lookups

    def embeddings(self) -> torch.Tensor:
        """The code vectors as used for matching and decoding: (K, n_z) fp32."""
        e = self.codebook.float()
        return F.normalize(e, dim=-1) if self.kind == "cosine" else e

    def _prepare(self, z: torch.Tensor) -> torch.Tensor:
        return F.normalize(z, dim=-1) if self.kind == "cosine" else z

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code for each row of `flat` (N, n_z), already prepared."""
        e = self.embeddings()
        if self.kind == "cosine":
            return (flat @ e.t()).argmax(dim=1)
        # ||z - e||² = ||z||² - 2 z·e + ||e||²; ||z||² is the same for every code
        return ((e * e).sum(1)[None, :] - 2.0 * flat @ e.t()).argmin(dim=1)

    def nearest_grid(self, z: torch.Tensor) -> torch.Tensor:
        """Latents (B, n_z, h, w) -> code indices (B, h, w), without touching any statistics."""
        b, _, h, w = z.shape
        with torch.autocast(device_type=z.device.type, enabled=False):
            flat = self._prepare(rearrange(z.float(), "b d h w -> (b h w) d"))
            return rearrange(self.nearest(flat), "(b h w) -> b h w", b=b, h=h, w=w)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """Code indices (B, h, w) -> code vectors (B, n_z, h, w)."""
        if codes.min() < 0 or codes.max() >= self.codebook_size:
            raise ValueError(f"codes must lie in [0, {self.codebook_size}); got {codes.min()}..{codes.max()}")
        return rearrange(self.embeddings()[codes], "b h w d -> b d h w")

    # ----------------------------------------------------------------- forward

    def forward(self, z: torch.Tensor) -> Quantized:  # z: (B, n_z, h, w)
        b, _, h, w = z.shape
        with torch.autocast(device_type=z.device.type, enabled=False):
            flat = self._prepare(rearrange(z.float(), "b d h w -> (b h w) d"))  # (N, n_z)
            restarted = 0
            if self.training:
                restarted = self._restart_dead_codes(flat.detach())
            codes = self.nearest(flat.detach())  # (N,)
            e = self.embeddings()
            quantized = e[codes]  # (N, n_z)
            loss = self.commitment_weight * F.mse_loss(flat, quantized.detach())
            if self.kind == "cosine":
                loss = loss + F.mse_loss(flat.detach(), quantized)
            counts = torch.bincount(codes, minlength=self.codebook_size).float()
            if self.training:
                counts = _all_reduce_sum(counts)
                self._update_statistics(flat.detach(), codes, counts)
            straight_through = flat + (quantized - flat).detach()
        z_q = rearrange(straight_through, "(b h w) d -> b d h w", b=b, h=h, w=w)
        probs = counts / counts.sum()
        # Kept as tensors: turning them into floats here would sync the GPU every step.
        stats = {
            "perplexity": torch.exp(-(probs * torch.log(probs + 1e-10)).sum()),
            "batch_usage": (counts > 0).float().mean(),
            "active_codes": (self.usage >= self.dead_code_threshold).float().mean(),
            "restarted": torch.tensor(float(restarted)),
        }
        return Quantized(z_q, rearrange(codes, "(b h w) -> b h w", b=b, h=h, w=w), loss, stats)

    # ----------------------------------------------------------------- hygiene

    @torch.no_grad()
    def _update_statistics(self, flat: torch.Tensor, codes: torch.Tensor, counts: torch.Tensor) -> None:
        """Usage average (both kinds) and the EMA codebook itself ("ema")."""
        self.usage.mul_(self.usage_decay).add_(counts, alpha=1.0 - self.usage_decay)
        if self.kind != "ema":
            return
        sums = torch.zeros_like(self.ema_sum).index_add_(0, codes, flat)  # (K, n_z)
        sums = _all_reduce_sum(sums)
        self.ema_count.mul_(self.ema_decay).add_(counts, alpha=1.0 - self.ema_decay)
        self.ema_sum.mul_(self.ema_decay).add_(sums, alpha=1.0 - self.ema_decay)
        # Laplace smoothing keeps rarely used codes from dividing by ~0.
        n = self.ema_count.sum()
        smoothed = (self.ema_count + 1e-5) / (n + self.codebook_size * 1e-5) * n
        self.codebook.copy_(self.ema_sum / smoothed[:, None])

    @torch.no_grad()
    def _restart_dead_codes(self, flat: torch.Tensor) -> int:
        """Replace codes used less than the threshold by random latents of this batch."""
        dead = torch.nonzero(self.usage < self.dead_code_threshold).squeeze(1)
        if dead.numel() == 0:
            return 0
        picks = torch.randint(0, flat.shape[0], (dead.numel(),), device=flat.device)
        fresh = flat[picks]  # (n_dead, n_z)
        if _distributed():
            dist.broadcast(fresh, src=0)
        if self.kind == "cosine":
            self.codebook.data[dead] = fresh.to(self.codebook.dtype)
        else:
            self.codebook[dead] = fresh
            self.ema_sum[dead] = fresh
            self.ema_count[dead] = 1.0
        self.usage[dead] = _RESTART_CREDIT * self.dead_code_threshold
        return int(dead.numel())
