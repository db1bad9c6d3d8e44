"""Shared pieces of the dataset converters: frame resizing and the resumable write loop."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from maskvit.data.store import EpisodeStore, EpisodeStoreWriter
from maskvit.errors import UserError


def centre_crop(frame: np.ndarray) -> np.ndarray:
    """The largest centred square of an (H, W, 3) frame."""
    h, w = frame.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return frame[top : top + side, left : left + side]


def resize_frame(frame: np.ndarray, size: int | None, crop: str = "center") -> np.ndarray:
    """Crop ("center": centred square; "none": keep the aspect, squash) and resize to size×size.

    Downscaling uses Lanczos filtering (antialiased); `size=None` keeps the frame as is.
    """
    if crop == "center":
        frame = centre_crop(frame)
    elif crop != "none":
        raise UserError(f"unknown crop {crop!r}; choose center or none")
    if size is None or frame.shape[:2] == (size, size):
        return np.ascontiguousarray(frame)
    return np.asarray(Image.fromarray(frame).resize((size, size), Image.Resampling.LANCZOS))


@dataclass
class Episode:
    """One converted episode, ready for the store."""

    episode_id: str
    frames: np.ndarray  # uint8 (T, H, W, 3)
    actions: np.ndarray  # float32 (T, A)
    split: str | None = None  # None: by hash of the id
    states: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def write_episodes(
    out: str | Path,
    sources: list[Any],
    read: Callable[[Any], Iterable[Episode]],
    *,
    source: str,
    action_dim: int,
    resolution: int | None,
    skip: Callable[[Any, EpisodeStoreWriter], bool] | None = None,
    extra: dict[str, Any] | None = None,
    overwrite: bool = False,
    progress: bool = True,
    unit: str = "file",
) -> EpisodeStore:
    """Read every source with `read` and write its episodes; the manifest is written last.

    A `UserError` raised while reading (a corrupt file) stops the conversion and leaves the
    output without a manifest; the message says how to resume.
    """
    created = not Path(out).exists() or overwrite
    writer = EpisodeStoreWriter(out, source=source, action_dim=action_dim, resolution=resolution,
                                extra=extra, overwrite=overwrite)
    for item in tqdm(sources, desc=f"convert {source}", unit=unit, disable=not progress):
        if skip is not None and skip(item, writer):
            continue
        try:
            for episode in read(item):
                if episode.episode_id in writer:
                    continue
                writer.add(episode.episode_id, episode.frames, episode.actions, states=episode.states,
                           split=episode.split)
        except UserError as err:
            if created and len(writer) == 0:  # nothing worth resuming: leave no output behind
                shutil.rmtree(out, ignore_errors=True)
                raise
            raise UserError(f"{err} (output {out} is incomplete; fix or remove that input and rerun to resume)") from None
    return writer.close()


def iter_sorted(paths: Iterable[Path]) -> Iterator[Path]:
    return iter(sorted(paths, key=lambda p: str(p)))
