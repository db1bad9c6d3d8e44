"""BAIR robot pushing (softmotion30_44k) tfrecords → episode store, without TensorFlow.

Source layout (as the tarball unpacks)::

    softmotion30_44k/train/traj_<a>_to_<b>.tfrecords
    softmotion30_44k/test/traj_<a>_to_<b>.tfrecords

Each record is one trajectory (a tf.train.Example) with, for t = 0..29,
`{t}/image_aux1/encoded` (raw bytes of a 64×64×3 uint8 image), `{t}/action` (4 floats)
and `{t}/endeffector_pos` (3 floats). The store keeps the tarball's test split; its train
files give "train", except a `val_fraction` of trajectories (chosen by id hash) as "val".
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from maskvit.data.converters.common import Episode, path_name, resize_frame, write_episodes
from maskvit.data.store import EpisodeStore, safe_episode_id
from maskvit.errors import UserError

IMAGE_KEY = "{t}/image_aux1/encoded"
ACTION_KEY = "{t}/action"
STATE_KEY = "{t}/endeffector_pos"
BAIR_SIZE = 64


def find_bair_files(src: Path) -> list[tuple[str, Path]]:
    """(split, file) for every tfrecord under src/{train,test} (or src/softmotion30_44k/...)."""
    if not src.is_dir():
        raise UserError(f"BAIR source folder not found: {src}")
    root = src / "softmotion30_44k" if (src / "softmotion30_44k").is_dir() else src
    files = [(split, f) for split in ("train", "test") for f in sorted((root / split).glob("*.tfrecords"))]
    if not files:
        raise UserError(
            f"no BAIR tfrecords in {root}/train or {root}/test; unpack bair_robot_pushing_dataset_v0.tar "
            "(softmotion30_44k) there"
        )
    return files


def bair_prefix(split: str, path: Path) -> str:
    """`<split>-<file stem>`, the ids of a file's records without their index (the stem is
    hashed only when it is not a valid id, so `traj 1` and `traj_1` stay apart)."""
    return f"{split}-{path_name(Path(path.name))}"


def read_bair_file(split: str, path: Path, val_fraction: float = 0.02, size: int | None = None) -> Iterator[Episode]:
    """Episodes of one tfrecord file, in file order."""
    from tfrecord.reader import tfrecord_loader

    try:
        records = tfrecord_loader(str(path), None)
        for index, record in enumerate(records):
            yield _episode(record, split, path, index, val_fraction, size)
    except UserError:
        raise
    except Exception as err:  # truncated / corrupt protobuf or framing
        raise UserError(f"{path}: corrupt or not a tfrecord file ({type(err).__name__}: {err})") from None


def _episode(record: dict, split: str, path: Path, index: int, val_fraction: float, size: int | None) -> Episode:
    steps = 0
    while IMAGE_KEY.format(t=steps) in record:
        steps += 1
    if steps == 0:
        raise UserError(f"{path}: record {index} is not a BAIR trajectory (no key '0/image_aux1/encoded')")
    frames, actions, states = [], [], []
    for t in range(steps):
        value = record[IMAGE_KEY.format(t=t)]
        raw = np.frombuffer(value, np.uint8) if isinstance(value, bytes) else np.asarray(value, np.uint8).reshape(-1)
        if raw.size != BAIR_SIZE * BAIR_SIZE * 3:
            raise UserError(f"{path}: record {index} step {t}: image has {raw.size} bytes, expected 64×64×3")
        frames.append(resize_frame(raw.reshape(BAIR_SIZE, BAIR_SIZE, 3), size, crop="none"))
        for key, width, out in ((ACTION_KEY, 4, actions), (STATE_KEY, 3, states)):
            value = record.get(key.format(t=t))
            if value is None or np.size(value) != width:
                raise UserError(f"{path}: record {index} step {t}: missing or malformed '{key.format(t=t)}'")
            out.append(np.asarray(value, dtype=np.float32).reshape(width))
    episode_id = f"{bair_prefix(split, path)}-{index:04d}"
    if split == "train" and zlib.crc32(episode_id.encode()) / 2**32 < val_fraction:
        split = "val"
    return Episode(episode_id, np.stack(frames), np.stack(actions), split=split, states=np.stack(states))


def convert_bair(src: str | Path, out: str | Path, *, size: int | None = None, val_fraction: float = 0.02,
                 overwrite: bool = False, progress: bool = True) -> EpisodeStore:
    """Convert every BAIR tfrecord under `src` into an episode store at `out` (resumable)."""
    files = find_bair_files(Path(src))
    renamed = [(old, new) for split, path in files
               if (old := safe_episode_id(f"{split}-{path.stem}")) != (new := bair_prefix(split, path))]
    return write_episodes(
        out, files, lambda item: read_bair_file(item[0], item[1], val_fraction, size), renamed=renamed,
        source="bair", action_dim=4, resolution=size or BAIR_SIZE, overwrite=overwrite, progress=progress,
        extra={"image_key": "image_aux1", "val_fraction": val_fraction, "state": "endeffector_pos"},
    )
