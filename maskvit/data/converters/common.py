"""Shared pieces of the dataset converters: frame resizing, episode names and the resumable write loop.

Episode names: every source (a file or a folder) gets one name from its path relative to
the source root. A plain ASCII path keeps the name earlier versions gave it (the path
without its extension, '/' → '_'), so existing stores resume; any path that had to be
changed to make a name (spaces, non-ASCII letters, a very long path) also gets a short
hash of its exact relative path, so `my clip` and `my_clip`, or `猫.mp4` and `видео.mp4`,
stay apart. Names that still coincide (`clip.mp4` and `clip.avi`) stop the run with a
one-line error naming both sources: nothing is silently dropped.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from maskvit.data.episodes import read_json
from maskvit.data.store import EpisodeStore, EpisodeStoreWriter, safe_episode_id
from maskvit.errors import UserError

ID_SCHEME = 2  # written to writer.json's extra as "episode_ids"; absent: named before version 2
MAX_NAME = 150  # leaves room for suffixes like "-cam0" or "-00001" within the 200-character id limit


def source_name(plain: str, exact: str) -> str:
    """The episode name of one source: `plain` when it is already a valid id, else a readable
    ASCII part plus a hash of `exact` (the source's relative path, extension included)."""
    readable = safe_episode_id(plain)
    if readable == plain and len(plain) <= MAX_NAME:
        return plain
    digest = hashlib.sha1(exact.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{readable[:MAX_NAME]}-{digest}"


def path_name(relative: Path, drop_suffix: bool = True) -> str:
    """`source_name` of a path relative to the source root (a file drops its extension)."""
    exact = relative.as_posix()
    plain = (relative.with_suffix("") if drop_suffix and relative.suffix else relative).as_posix()
    return source_name(plain.replace("/", "_"), exact)


def check_unique_names(names: Iterable[tuple[str, str]], what: str = "sources") -> None:
    """`names` is (source label, episode name) pairs: refuse two sources sharing a name."""
    owner: dict[str, str] = {}
    for label, name in names:
        first = owner.setdefault(name, label)
        if first != label:
            raise UserError(f"{what} {first} and {label} would both become episode {name!r}; "
                            "rename or move one of them and rerun")


def check_same_names(out: str | Path, renamed: list[tuple[str, str]], overwrite: bool) -> None:
    """Refuse to resume a store an older maskvit wrote when some of its names changed since:
    the old episodes would stay beside the same data under the new names."""
    writer_file = Path(out) / "writer.json"
    if overwrite or not renamed or not writer_file.is_file():
        return
    extra = read_json(writer_file, "writer settings", "delete the store (or pass --overwrite) and convert again")
    extra = extra.get("extra", {}) if isinstance(extra, dict) else {}
    if extra.get("episode_ids") == ID_SCHEME or not any((Path(out) / "episodes").glob("*/meta.json")):
        return
    old, new = renamed[0]
    raise UserError(f"{out} was written by an earlier maskvit that named episodes differently ({old!r} is now "
                    f"{new!r}); pass --overwrite to convert it again, or choose another --out")


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
    renamed: list[tuple[str, str]] | None = None,
) -> EpisodeStore:
    """Read every source with `read` and write its episodes; the manifest is written last.

    A `UserError` raised while reading (a corrupt file) stops the conversion and leaves the
    output without a manifest; the message says how to resume. Two sources yielding one
    episode id also stop it (the second would silently replace or be skipped for the first).
    `renamed` lists (old id, new id) pairs whose names changed in ID_SCHEME 2.
    """
    check_same_names(out, renamed or [], overwrite)
    created = not Path(out).exists() or overwrite
    writer = EpisodeStoreWriter(out, source=source, action_dim=action_dim, resolution=resolution,
                                extra={**(extra or {}), "episode_ids": ID_SCHEME}, overwrite=overwrite)
    made: dict[str, str] = {}  # episode id -> the source that yielded it in this run
    for item in tqdm(sources, desc=f"convert {source}", unit=unit, disable=not progress):
        if skip is not None and skip(item, writer):
            continue
        try:
            for episode in read(item):
                _claim(made, episode.episode_id, item)
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


def _claim(made: dict[str, str], episode_id: str, item: Any) -> None:
    label = str(next((x for x in item if isinstance(x, Path)), item) if isinstance(item, tuple) else item)
    first = made.setdefault(episode_id, label)
    if first != label:
        raise UserError(f"sources {first} and {label} both yield episode {episode_id!r}; "
                        "rename or move one of them and rerun")


def iter_sorted(paths: Iterable[Path]) -> Iterator[Path]:
    return iter(sorted(paths, key=lambda p: str(p)))
