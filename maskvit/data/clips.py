"""PyTorch datasets of fixed-length clips cut from episodes.

A clip is `clip_len` consecutive frames with their aligned actions (`actions[t]` is taken
after frame t). Protocols: BAIR 1+15 → clip_len 16, RoboNet 2+10 → 12, KITTI 5+25 → 30.
Every valid start (every `stride` frames) is one item, so a plain `DistributedSampler`
shards and shuffles clips across processes.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from maskvit.data.episodes import Episodes
from maskvit.data.store import EpisodeStore
from maskvit.errors import UserError


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


class ClipDataset(EpisodeClips):
    """Clips from an episode store: items `{"frames": uint8 (T,H,W,3), "actions": float32 (T,A)}`."""

    def __init__(self, store: EpisodeStore, clip_len: int, split: str = "train", stride: int = 1):
        super().__init__(store, clip_len, split, stride)
        self.store = store

    def clip(self, episode_id: str, start: int) -> dict[str, torch.Tensor]:
        clip = self.store.load_clip(episode_id, start, self.clip_len)
        return {"frames": torch.from_numpy(clip["frames"]), "actions": torch.from_numpy(clip["actions"])}
