"""What both on-disk formats share: their files, the episode index, its splits, and clip
datasets over it.

An episode store (frames) and a token cache (codes) list their episodes the same way:
`{"id", "length", "split"}` entries in `manifest.json`. `Episodes` is that list's API and
its checks, written once; `EpisodeClips` cuts its episodes into fixed-length clips. The two
formats add how their frames or codes are read.

Stores and caches are meant to be shared (read by other users, served to DataLoader
workers), so what they create is 0644 / 0755 whatever the umask: `make_dir` and
`write_npy` set those modes explicitly. Atomic writes go through `maskvit.atomic`.

The split of an episode depends only on its id (a CRC32 hash, `split_for`), never on the
order in which episodes were written, so a resumed or parallel conversion gives the same split.

A clip is `clip_len` consecutive frames with their aligned actions (`actions[t]` is taken
after frame t). Protocols: BAIR 1+15 → clip_len 16, RoboNet 2+10 → 12, KITTI 5+25 → 30.
Every valid start (every `stride` frames) is one item, so a plain `DistributedSampler`
shards and shuffles clips across processes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from maskvit.errors import UserError

# ---------------------------------------------------------------- files

FILE_MODE = 0o644
DIR_MODE = 0o755


def write_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Save one array as `.npy` (callers make it visible atomically by renaming its folder)."""
    with open(path, "wb") as f:
        np.save(f, np.ascontiguousarray(array), allow_pickle=False)
    os.chmod(path, FILE_MODE)


def make_dir(path: str | os.PathLike) -> Path:
    """`mkdir -p` whose new folders are 0755 (an umask of 077 would hide them from others)."""
    path = Path(path)
    missing = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    path.mkdir(parents=True, exist_ok=True)
    for folder in missing:
        os.chmod(folder, DIR_MODE)
    return path


def read_json(path: Path, what: str, fix: str) -> Any:
    """The JSON in `path`, or a one-line `UserError` saying `what` is damaged and how to `fix` it."""
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{path}: corrupt {what} (not valid JSON); {fix}") from None


def read_manifest(path: Path, expected_format: str, what: str, fix: str) -> dict[str, Any]:
    """A manifest's JSON object, checked to be of `expected_format` (one-line errors)."""
    manifest = read_json(path, f"{what} manifest", fix)
    if not isinstance(manifest, dict) or manifest.get("format") != expected_format:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise UserError(f"{path.parent}: not {what} (manifest format is {found!r})")
    return manifest


def _owned(name: str, owned: Iterable[str]) -> bool:
    """Whether `name` is one of `owned` or a temp file `maskvit.atomic` left while writing one."""
    return any(name == o or (name.startswith(f".{o}.") and name.endswith(".tmp")) for o in owned)


def foreign_entries(folder: Path, owned: Iterable[str]) -> list[str]:
    """The entries of `folder` that a format writing only `owned` did not make, sorted."""
    owned = tuple(owned)
    return sorted(p.name for p in folder.iterdir() if not _owned(p.name, owned))


def check_only_owned(folder: Path, owned: Iterable[str], what: str) -> None:
    """Refuse (one line) a `folder` that holds anything a `what` does not write: it is (or
    holds) something else, which writing or `--overwrite` there would mix or delete."""
    foreign = foreign_entries(folder, owned)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise UserError(f"output {folder} holds {shown}, which {what} does not write; "
                        "choose another --out (nothing was changed)")


def remove_owned(folder: Path, owned: Iterable[str], what: str) -> None:
    """Delete what a `what` wrote in `folder` (for --overwrite), after `check_only_owned`:
    never a file it did not write. The folder itself stays."""
    check_only_owned(folder, owned, what)
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


# ---------------------------------------------------------------- the episode index

SPLITS = ("train", "val", "test")
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")


def split_for(episode_id: str, fractions: tuple[float, float, float] = (0.9, 0.05, 0.05)) -> str:
    """The split of `episode_id` for (train, val, test) fractions summing to 1."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    u = zlib.crc32(episode_id.encode()) / 2**32  # uniform in [0, 1)
    if u < fractions[0]:
        return "train"
    if u < fractions[0] + fractions[1]:
        return "val"
    return "test"


def check_episode_id(episode_id: str, where: str = "") -> str:
    """Episode ids become folder names: letters, digits, `_`, `.`, `-` only (so an id read
    from a manifest can never name a path outside the store, like `../../x`)."""
    if not isinstance(episode_id, str) or not _ID_PATTERN.match(episode_id) or episode_id.endswith(".partial"):
        prefix = f"{where}: " if where else ""
        raise UserError(f"{prefix}invalid episode id {episode_id!r}: ids are 1-200 letters, digits, '_', '.', '-' "
                        "(not starting with '.', '_' or '-', not ending in '.partial')")
    return episode_id


def check_episode_list(episodes: Any, where: Path, fix: str) -> list[dict[str, Any]]:
    """A manifest's `episodes`: a list of {id, length, split} with valid, unique ids."""
    if not isinstance(episodes, list):
        raise UserError(f"{where}: damaged manifest ('episodes' is not a list); {fix}")
    seen: set[str] = set()
    for entry in episodes:
        if not isinstance(entry, dict) or not {"id", "length", "split"} <= entry.keys():
            raise UserError(f"{where}: damaged manifest (an episode entry lacks id, length or split); {fix}")
        episode_id = check_episode_id(entry["id"], str(where))
        if episode_id in seen:
            raise UserError(f"{where}: episode id {episode_id!r} is listed twice; {fix}")
        seen.add(episode_id)
        if not isinstance(entry["length"], int) or isinstance(entry["length"], bool) or entry["length"] < 1:
            raise UserError(f"{where}: episode {episode_id!r} has length {entry['length']!r}; {fix}")
        if entry["split"] not in SPLITS:
            raise UserError(f"{where}: episode {episode_id!r} has unknown split {entry['split']!r}; {fix}")
    return episodes


def check_finite(values: np.ndarray, what: str, fix: str) -> None:
    """Refuse (one line) float `values` holding NaN or infinity, naming the first bad row:
    one such number makes every loss that touches it NaN, silently, for the rest of training."""
    if values.dtype.kind not in "fc" or np.isfinite(values).all():
        return
    row = int(np.argwhere(~np.isfinite(values))[0][0])
    raise UserError(f"{what} hold NaN or infinity (row {row}); {fix}")


class Episodes:
    """Episodes listed by a manifest: ids in manifest order, by split, with their lengths."""

    kind = "episode index"  # how errors name the container ("store", "token cache")

    def __init__(self, path: Path, manifest: dict[str, Any]):
        self.path = path
        self.manifest = manifest
        self._episodes = {e["id"]: e for e in manifest["episodes"]}

    @property
    def action_dim(self) -> int:
        return int(self.manifest["action_dim"])

    def episode_ids(self, split: str | None = None) -> list[str]:
        """Ids in manifest order; `split` in ("train", "val", "test") or None for all."""
        if split is not None and split not in SPLITS:
            raise UserError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
        return [e["id"] for e in self.manifest["episodes"] if split is None or e["split"] == split]

    def length(self, episode_id: str) -> int:
        return int(self._entry(episode_id)["length"])

    def split_of(self, episode_id: str) -> str:
        return str(self._entry(episode_id)["split"])

    def __len__(self) -> int:
        return len(self._episodes)

    def __contains__(self, episode_id: str) -> bool:
        return episode_id in self._episodes

    def _entry(self, episode_id: str) -> dict[str, Any]:
        try:
            return self._episodes[episode_id]
        except KeyError:
            raise UserError(f"episode {episode_id!r} is not in {self.kind} {self.path}") from None


# ---------------------------------------------------------------- clips

def clip_index(lengths: list[int], clip_len: int, stride: int = 1) -> np.ndarray:
    """(N, 2) int64 array of (episode position, start frame) for every clip that fits."""
    if clip_len < 1 or stride < 1:
        raise UserError(f"clip length and stride must be positive, got {clip_len} and {stride}")
    rows = [
        np.stack([np.full(len(starts), i), starts], axis=1)
        for i, n in enumerate(lengths)
        if len(starts := np.arange(0, n - clip_len + 1, stride)) > 0
    ]
    return np.concatenate(rows).astype(np.int64) if rows else np.zeros((0, 2), np.int64)


class EpisodeClips(Dataset):
    """Every `clip_len`-frame clip (every `stride` frames) of one split's episodes; a
    subclass says how one clip is read (`clip`)."""

    def __init__(self, source: Episodes, clip_len: int, split: str = "train", stride: int = 1):
        self.clip_len = clip_len
        self.split = split
        self.episode_ids = source.episode_ids(split)
        self.index = clip_index([source.length(e) for e in self.episode_ids], clip_len, stride)
        if len(self.index) == 0:
            raise UserError(
                f"{source.path}: no {split} episode has {clip_len} frames "
                f"({len(self.episode_ids)} {split} episodes); use a shorter clip or another split"
            )

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        episode, start = self.index[i]
        return self.clip(self.episode_ids[episode], int(start))

    def clip(self, episode_id: str, start: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError
