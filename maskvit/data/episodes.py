"""The episode index both on-disk formats share: ids, splits and lengths from a manifest.

An episode store (frames) and a token cache (codes) list their episodes the same way:
`{"id", "length", "split"}` entries in `manifest.json`. `Episodes` is that list's API and
its checks, written once; the two formats add how their frames or codes are read.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from maskvit.data.splits import SPLITS
from maskvit.errors import UserError

_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")


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
