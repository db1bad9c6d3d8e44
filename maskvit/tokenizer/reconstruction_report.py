"""How good is a tokenizer: held-out PSNR / SSIM / codebook use, and pictures of it.

Used by `maskvit reconstruct` and `benchmarks/bench_tokenizer.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from maskvit import atomic
from maskvit.data import EpisodeStore
from maskvit.errors import UserError
from maskvit.metrics.desk_objects import desk_object_scores, summarize_desk_scores
from maskvit.metrics.objects import ColourObject, object_scores, summarize_object_scores
from maskvit.metrics.pixel import psnr, ssim
from maskvit.report.staging import staged_report
from maskvit.tokenizer.vqgan import VQGAN


@torch.no_grad()
def reconstruction_metrics(vqgan: VQGAN, store: EpisodeStore, split: str = "test",
                           max_frames: int | None = None, batch_size: int = 64,
                           progress: bool = True,
                           objects: Sequence[ColourObject] | None = None,
                           desk: bool = False) -> dict[str, Any]:
    """Mean PSNR (dB, uint8 range) and SSIM of every frame of `split`, and code use.

    `codebook_usage` is the fraction of the K codes used at least once over all these
    frames; `perplexity` is exp(entropy) of the code histogram (K if all equally used).
    With `objects` (a world whose objects are known by colour), also their fidelity:
    `objects` holds box IoU and centroid error, mean ± standard error over frames.
    With `desk` (a RoboDesk store of 64×64 frames), `desk_objects` holds the task state read
    from the frames (`maskvit.metrics.desk_objects`: lights, slide and drawer positions,
    blocks), each frame scored as a one-frame video; `light_agreement_when_on` counts only
    lit lights, the small detail a coarse token grid erases first.
    """
    ids = store.episode_ids(split)
    if not ids:
        raise UserError(f"{store.path} has no {split} episodes")
    counts = torch.zeros(vqgan.cfg.codebook_size, dtype=torch.float64)
    psnrs, ssims = [], []
    object_parts: list[dict[str, np.ndarray]] = []
    desk_parts: list[dict[str, np.ndarray]] = []
    seen = 0
    limit = max_frames or sum(store.length(e) for e in ids)
    with tqdm(total=limit, unit="frame", disable=not progress, desc=f"reconstruct {split}") as bar:
        for episode_id in ids:
            frames = store.load(episode_id)["frames"][: limit - seen]
            for i in range(0, len(frames), batch_size):
                x = torch.from_numpy(frames[i : i + batch_size])
                codes = vqgan.encode(x)
                recon = vqgan.decode(codes).cpu()
                counts += torch.bincount(codes.flatten().cpu(), minlength=len(counts)).double()
                psnrs.append(psnr(x, recon).clamp(max=100.0))
                ssims.append(ssim(x, recon))
                if objects:  # each frame a one-frame "video": mean ± s.e. over frames
                    object_parts.append(object_scores(x.numpy()[:, None], recon.numpy()[:, None],
                                                      objects))
                if desk:
                    desk_parts.append(desk_object_scores(x.numpy()[:, None], recon.numpy()[:, None]))
                bar.update(len(x))
            seen += len(frames)
            if seen >= limit:
                break
    p = counts / counts.sum()
    result: dict[str, Any] = {
        "psnr": float(torch.cat(psnrs).mean()),
        "ssim": float(torch.cat(ssims).mean()),
        "codebook_usage": float((counts > 0).double().mean()),
        "perplexity": float(torch.exp(-(p[p > 0] * p[p > 0].log()).sum())),
        "frames": float(seen),
    }
    if objects:
        scores = {k: np.concatenate([part[k] for part in object_parts]) for k in object_parts[0]}
        result["objects"] = summarize_object_scores(scores, objects)
    if desk:
        result["desk_objects"] = summarize_desk_scores(
            {k: np.concatenate([part[k] for part in desk_parts]) for k in desk_parts[0]})
    return result


def comparison_grid(originals: np.ndarray, recons: np.ndarray, gap: int = 2) -> np.ndarray:
    """(E, T, H, W, 3) originals and reconstructions -> one uint8 image.

    Each episode is two rows (input above, reconstruction below), T frames across, with a
    white `gap` between frames and episodes.
    """
    e, t, h, w, _ = originals.shape
    rows = []
    for k in range(e):
        for video in (originals[k], recons[k]):
            row = np.full((h, t * (w + gap) - gap, 3), 255, np.uint8)
            for j in range(t):
                row[:, j * (w + gap) : j * (w + gap) + w] = video[j]
            rows.append(row)
        rows.append(np.full((gap * 2, rows[-1].shape[1], 3), 255, np.uint8))
    return np.concatenate(rows[:-1])


def _save_image(path: Path, images: list, **options) -> None:
    """Save one PIL image, or an animation of several, through `maskvit.atomic`."""
    atomic.atomic_write(path, lambda f: images[0].save(
        f, save_all=len(images) > 1, append_images=images[1:], **options))


@torch.no_grad()
def write_reconstructions(vqgan: VQGAN, store: EpisodeStore, episode_ids: list[str],
                          out: str | Path, frames: int = 8, scale: int = 2,
                          metrics: dict[str, Any] | None = None) -> list[Path]:
    """Per episode a side-by-side GIF (input | reconstruction), plus one PNG grid of all.

    The PNG shows the first `frames` frames of each episode (input row over reconstruction
    row), upscaled `scale`× with nearest neighbour so 64×64 frames stay readable. The files
    are written beside `out` and replace it whole (`maskvit.report.staging`): a failure
    midway leaves an older report as it was. `metrics` (from `reconstruction_metrics`) go
    to metrics.json in the same report.
    """
    out = Path(out)
    with staged_report(out, "reconstruct") as stage:
        names = _write_reconstruction_files(vqgan, store, episode_ids, stage, frames, scale)
        if metrics is not None:
            atomic.atomic_write_json(stage / "metrics.json", metrics)
            names.append("metrics.json")
    return [out / name for name in names]


def _write_reconstruction_files(vqgan: VQGAN, store: EpisodeStore, episode_ids: list[str],
                                out: Path, frames: int, scale: int) -> list[str]:
    from PIL import Image

    written: list[str] = []
    originals, recons = [], []
    for episode_id in episode_ids:
        x = store.load(episode_id)["frames"]  # (T, H, W, 3) uint8
        r = vqgan.reconstruct(torch.from_numpy(x)).cpu().numpy()
        side = np.concatenate([x, np.full_like(x[:, :, :2], 255), r], axis=2)  # (T, H, 2W+2, 3)
        side = side.repeat(scale, axis=1).repeat(scale, axis=2)
        images = [Image.fromarray(np.ascontiguousarray(f)) for f in side]
        _save_image(out / f"{episode_id}.gif", images, format="GIF", duration=200, loop=0)
        written.append(f"{episode_id}.gif")
        n = min(frames, len(x))
        originals.append(x[:n])
        recons.append(r[:n])
    n = min(len(o) for o in originals)
    grid = comparison_grid(np.stack([o[:n] for o in originals]), np.stack([r[:n] for r in recons]))
    grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    _save_image(out / "reconstructions.png", [Image.fromarray(grid)], format="PNG")
    return [*written, "reconstructions.png"]


def pick_episodes(store: EpisodeStore, split: str, count: int) -> list[str]:
    """The first `count` episodes of `split` (a fixed choice, so reruns compare)."""
    ids = store.episode_ids(split)
    if not ids:
        raise UserError(f"{store.path} has no {split} episodes; choose --split train/val/test")
    return ids[: max(1, count)]

