"""Single frames for tokenizer training: every frame of every episode of one split."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from maskvit.data import ClipDataset, EpisodeStore
from maskvit.errors import UserError


class FrameDataset(Dataset):
    """Items `{"frames": uint8 (H, W, 3)}`: the tokenizer sees frames independently (§3.1)."""

    def __init__(self, store: EpisodeStore, split: str = "train") -> None:
        self.clips = ClipDataset(store, clip_len=1, split=split)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"frames": self.clips[i]["frames"][0]}


def open_frames(path: str | Path, resolution: int) -> tuple[FrameDataset, FrameDataset | None]:
    """Train and validation frame datasets of an episode store, checked against the config."""
    store = EpisodeStore.open(path)
    if tuple(store.resolution) != (resolution, resolution):
        raise UserError(
            f"{path} holds {store.resolution[0]}×{store.resolution[1]} frames but the "
            f"tokenizer expects {resolution}×{resolution}; set tokenizer.resolution or convert the data"
        )
    train = FrameDataset(store, "train")
    try:
        val = FrameDataset(store, "val")
    except UserError:
        val = None
    return train, val
