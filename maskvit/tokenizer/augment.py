"""Frame augmentation for VQ-GAN training (paper §4.2, KITTI).

"We use color jitter and random cropping data augmentation for training VQ-GAN and do
not use any data augmentation for training the second stage." KITTI has few driving
scenes, so a tokenizer trained on them alone over-fits; random resized crops and colour
jitter widen what it sees. The transformer stage must see the true frames, so only the
tokenizer's training batches are augmented (`TokenizerTask`, when `tokenizer.augment`).

Each frame gets its own parameters, all drawn from the given `torch.Generator` in a fixed
order and number (independent of the strengths), so a seeded generator — the engine's
checkpointed one while training — makes the result exactly repeatable, resumes included.

Frames may be either format of `maskvit.tokenizer.vqgan`: float (..., 3, H, W) in
[-1, 1] (what the networks consume; augmented without rounding) or uint8 (..., H, W, 3)
(what datasets hold; converted, augmented and rounded back).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from maskvit.tokenizer.vqgan import float_to_uint8, uint8_to_float

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
