"""KITTI raw drives → episode store (one episode per drive and camera, no actions).

Source layout (the raw-data zips unpacked into one folder)::

    SRC/<date>/<date>_drive_<NNNN>_sync/image_02/data/0000000000.png   (left colour camera)
    SRC/<date>/<date>_drive_<NNNN>_sync/image_03/data/...              (right colour camera)

Frames are centre-cropped to a square and resized. Held out as in PredNet / Villegas et al.
(the protocol MaskViT follows): test drives 2011_09_26 0104, 0079, 0070; val drive
2011_09_26 0005; every other drive is train.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from maskvit.data.converters.common import (
    Episode,
    check_unique_names,
    resize_frame,
    source_name,
    write_episodes,
)
from maskvit.data.store import EpisodeStore, safe_episode_id
from maskvit.errors import UserError

TEST_DRIVES = ("2011_09_26_drive_0104_sync", "2011_09_26_drive_0079_sync", "2011_09_26_drive_0070_sync")
VAL_DRIVES = ("2011_09_26_drive_0005_sync",)


def find_kitti_drives(src: Path, cameras: tuple[str, ...] = ("image_02",)) -> list[tuple[Path, str]]:
    """(drive folder, camera) pairs that have PNG frames."""
    if not src.is_dir():
        raise UserError(f"KITTI source folder not found: {src}")
    drives = sorted(d for d in src.glob("*/*_sync") if d.is_dir())
    found = [(d, cam) for d in drives for cam in cameras if any((d / cam / "data").glob("*.png"))]
    if not found:
        raise UserError(
            f"no KITTI drives in {src}: expected <date>/<date>_drive_NNNN_sync/{cameras[0]}/data/*.png "
            "(unpack the KITTI raw *_sync.zip files there)"
        )
    return found


def kitti_split(drive: str) -> str:
    return "test" if drive in TEST_DRIVES else "val" if drive in VAL_DRIVES else "train"


def kitti_episode_id(src: Path, drive: Path, camera: str) -> str:
    """`<drive>-<camera>`, hashed only when that is not a valid id (see `converters.common`)."""
    return source_name(f"{drive.name}-{camera}", f"{drive.relative_to(src).as_posix()}/{camera}")


def read_kitti_drive(drive: Path, camera: str, size: int | None, crop: str = "center",
                     episode_id: str | None = None) -> Iterator[Episode]:
    frames = [_read_png(f, size, crop) for f in sorted((drive / camera / "data").glob("*.png"))]
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise UserError(f"{drive / camera}: frames of different sizes {sorted(shapes)}; pass --size")
    episode_id = episode_id or safe_episode_id(f"{drive.name}-{camera}")
    yield Episode(episode_id, np.stack(frames), np.zeros((len(frames), 0), np.float32), split=kitti_split(drive.name))


def _read_png(path: Path, size: int | None, crop: str) -> np.ndarray:
    try:
        with Image.open(path) as image:
            frame = np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise UserError(f"{path}: cannot decode image ({err})") from None
    return resize_frame(frame, size, crop)


def convert_kitti(src: str | Path, out: str | Path, *, size: int | None = 64, cameras: tuple[str, ...] = ("image_02",),
                  crop: str = "center", overwrite: bool = False, progress: bool = True) -> EpisodeStore:
    """Convert KITTI raw drives under `src` into an episode store at `out` (resumable by drive)."""
    src = Path(src)
    pairs = find_kitti_drives(src, cameras)
    ids = {pair: kitti_episode_id(src, *pair) for pair in pairs}
    check_unique_names(((str(drive / camera), name) for (drive, camera), name in ids.items()), "KITTI drives")
    renamed = [(old, new) for (drive, camera), new in ids.items()
               if (old := safe_episode_id(f"{drive.name}-{camera}")) != new]
    return write_episodes(
        out, pairs, lambda item: read_kitti_drive(item[0], item[1], size, crop, ids[item]),
        skip=lambda item, writer: ids[item] in writer, renamed=renamed,
        source="kitti", action_dim=0, resolution=size, overwrite=overwrite, progress=progress, unit="drive",
        extra={"cameras": list(cameras), "crop": crop, "test_drives": list(TEST_DRIVES), "val_drives": list(VAL_DRIVES)},
    )
