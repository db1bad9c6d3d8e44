"""Any folder of videos (mp4, avi, webm, mkv, mov via PyAV) or frame folders (png/jpg) → episode store.

Every video file, and every folder that directly holds images, is one source. Frames are
optionally resampled to `fps`, centre-cropped and resized, and cut into episodes of
`clip_len` frames (the tail shorter than a clip is dropped; `clip_len=None`: the whole
source is one episode). No actions (A = 0). The split is by hash of the source's name
(see `converters.common` for how names are made unique).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from maskvit.data.converters.common import (
    Episode,
    check_unique_names,
    path_name,
    resize_frame,
    write_episodes,
)
from maskvit.data.episodes import split_for
from maskvit.data.store import EpisodeStore, safe_episode_id
from maskvit.errors import UserError

VIDEO_SUFFIXES = {".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v", ".gif"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def find_video_sources(src: Path) -> list[Path]:
    """Video files and image folders under `src`, sorted."""
    if not src.is_dir():
        raise UserError(f"video source folder not found: {src}")
    files = sorted(p for p in src.rglob("*") if p.is_file())
    videos = [p for p in files if p.suffix.lower() in VIDEO_SUFFIXES]
    folders = sorted({p.parent for p in files if p.suffix.lower() in IMAGE_SUFFIXES})
    sources = videos + folders
    if not sources:
        raise UserError(f"no videos ({', '.join(sorted(VIDEO_SUFFIXES))}) or image folders (png/jpg) under {src}")
    return sources


def decode_video(path: Path | BinaryIO, fps: float | None = None, name: str | None = None) -> Iterator[np.ndarray]:
    """RGB uint8 frames of a video file (or file-like object); with `fps`, keeps the frames
    nearest a regular time grid."""
    import av

    name = name or str(path)
    try:
        with av.open(str(path) if isinstance(path, Path) else path) as container:
            stream = container.streams.video[0]
            next_time = 0.0
            for index, frame in enumerate(container.decode(stream)):
                if fps is not None:
                    rate = float(stream.average_rate or 0) or 25.0
                    time = float(frame.time) if frame.time is not None else index / rate
                    if time + 0.5 / rate < next_time:
                        continue
                    next_time += 1.0 / fps
                yield frame.to_ndarray(format="rgb24")
    except (av.error.FFmpegError, IndexError) as err:
        raise UserError(f"{name}: cannot decode video ({err})") from None


def read_image_folder(folder: Path, fps_stride: int = 1) -> Iterator[np.ndarray]:
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    for path in images[::fps_stride]:
        try:
            with Image.open(path) as image:
                yield np.asarray(image.convert("RGB"))
        except (UnidentifiedImageError, OSError, SyntaxError) as err:
            raise UserError(f"{path}: cannot decode image ({err})") from None


def source_id(src: Path, source: Path) -> str:
    """The unique name of a video file or image folder (its clips are `<name>-00000`, ...)."""
    return path_name(source.relative_to(src), drop_suffix=source.is_file())


def _legacy_id(src: Path, source: Path) -> str:
    relative = source.relative_to(src)
    return safe_episode_id(str(relative.with_suffix("")) if source.is_file() else str(relative))


def read_video_source(src: Path, source: Path, *, size: int | None, crop: str, fps: float | None,
                      frame_stride: int, clip_len: int | None) -> Iterator[Episode]:
    frames = decode_video(source, fps) if source.is_file() else read_image_folder(source, frame_stride)
    name = source_id(src, source)
    split = split_for(name)  # every clip of one source goes to the same split
    chunk: list[np.ndarray] = []
    index = 0
    for frame in frames:
        chunk.append(resize_frame(frame, size, crop))
        if clip_len is not None and len(chunk) == clip_len:
            yield _episode(name, index, chunk, split)
            chunk, index = [], index + 1
    if clip_len is None and chunk:
        yield _episode(name, 0, chunk, split)
    elif index == 0 and clip_len is not None:
        raise UserError(f"{source}: fewer than {clip_len} frames ({len(chunk)}); use a shorter --clip-len")


def _episode(name: str, index: int, frames: list[np.ndarray], split: str) -> Episode:
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise UserError(f"{name}: frames of different sizes {sorted(shapes)}; pass --size")
    return Episode(safe_episode_id(f"{name}-{index:05d}"), np.stack(frames),
                   np.zeros((len(frames), 0), np.float32), split=split)


def convert_videos(src: str | Path, out: str | Path, *, size: int | None = 64, crop: str = "center",
                   fps: float | None = None, frame_stride: int = 1, clip_len: int | None = None,
                   overwrite: bool = False, progress: bool = True) -> EpisodeStore:
    """Convert videos / image folders under `src` into an episode store at `out` (resumable).

    `fps` resamples video files in time; `frame_stride` keeps every n-th image of a folder.
    """
    src = Path(src)
    sources = find_video_sources(src)
    if clip_len is not None and clip_len < 2:
        raise UserError(f"--clip-len must be at least 2, got {clip_len}")
    names = {source: source_id(src, source) for source in sources}
    check_unique_names(((str(source), name) for source, name in names.items()), "videos")
    renamed = [(_legacy_id(src, s), n) for s, n in names.items() if _legacy_id(src, s) != n]
    return write_episodes(
        out, sources,
        lambda source: read_video_source(src, source, size=size, crop=crop, fps=fps, frame_stride=frame_stride,
                                         clip_len=clip_len),
        source="videos", action_dim=0, resolution=size, overwrite=overwrite, progress=progress, unit="video",
        renamed=renamed,
        extra={"crop": crop, "fps": fps, "frame_stride": frame_stride, "clip_len": clip_len},
    )
