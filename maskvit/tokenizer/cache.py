"""Encode a whole episode store into a token cache (`maskvit tokenize`).

Episodes are packed into batches of about `batch_size` frames (several short episodes
per forward pass), encoded, split back and appended episode by episode. The cache
writer records each finished episode, so an interrupted job resumes where it stopped
and never encodes an episode twice.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from maskvit.data import EpisodeStore, TokenCache, TokenCacheWriter
from maskvit.data.episodes import check_finite, read_json
from maskvit.errors import UserError
from maskvit.locking import output_lock
from maskvit.tokenizer.vqgan import VQGAN


def encode_frames(vqgan: VQGAN, frames: np.ndarray, batch_size: int) -> np.ndarray:
    """uint8 (N, H, W, 3) -> int64 codes (N, h, w), `batch_size` frames per forward pass."""
    out = [vqgan.encode(torch.from_numpy(frames[i : i + batch_size])).cpu().numpy()
           for i in range(0, len(frames), batch_size)]
    return np.concatenate(out)


def tokenize_store(vqgan: VQGAN, store: EpisodeStore, out: str | Path, *, batch_size: int = 64,
                   extra: dict | None = None, overwrite: bool = False,
                   progress: bool = True) -> TokenCache:
    """Write the codes of every episode of `store` (all splits) to the cache at `out`.

    An existing cache at `out` is resumed only if the same weights wrote it from the same
    store (the header keeps fingerprints of both); mixing codes of two tokenizers, or of
    two stores, would be silent garbage.
    The cache directory is locked for the whole job (a second writer gets one line).
    """
    with output_lock(out, "token cache"):
        return _tokenize_store(vqgan, store, Path(out), batch_size=batch_size, extra=extra,
                               overwrite=overwrite, progress=progress)


def _tokenize_store(vqgan: VQGAN, store: EpisodeStore, out: Path, *, batch_size: int,
                    extra: dict | None, overwrite: bool, progress: bool) -> TokenCache:
    cfg = vqgan.cfg
    if tuple(store.resolution) != (cfg.resolution, cfg.resolution):
        raise UserError(f"{store.path} holds {store.resolution[0]}×{store.resolution[1]} frames "
                        f"but the tokenizer was trained on {cfg.resolution}×{cfg.resolution}")
    if batch_size < 1:
        raise UserError(f"--batch-size must be positive, got {batch_size}")
    extra = {**(extra or {}), "tokenizer_fingerprint": vqgan.fingerprint()}
    header = Path(out) / "header.json"
    if header.is_file() and not overwrite:
        previous = read_json(header, "token cache header", "pass --overwrite or choose another --out")
        previous = previous.get("extra", {}) if isinstance(previous, dict) else {}
        if not isinstance(previous, dict) or previous.get("tokenizer_fingerprint") != extra["tokenizer_fingerprint"]:
            raise UserError(f"{out} was written by another tokenizer (or checkpoint); "
                            "pass --overwrite or choose another --out")
    source = {"store": str(store.path.resolve()), "manifest_sha256": store.fingerprint()}
    writer = TokenCacheWriter(out, token_shape=vqgan.token_grid, action_dim=store.action_dim,
                              codebook_size=cfg.codebook_size, extra=extra, source=source,
                              overwrite=overwrite)
    todo = [e for e in store.episode_ids() if e not in writer]
    total = sum(store.length(e) for e in todo)
    vqgan.eval()
    with writer, tqdm(total=total, unit="frame", disable=not progress, desc="tokenize") as bar:
        pending: list[tuple[str, dict[str, np.ndarray]]] = []
        pending_frames = 0
        for i, episode_id in enumerate(todo):
            episode = store.load(episode_id)
            check_finite(episode["actions"], f"{store.path}: episode {episode_id}: actions",
                         "fix or remove that episode and rerun (finished episodes are kept)")
            pending.append((episode_id, episode))
            pending_frames += store.length(episode_id)
            if pending_frames >= batch_size or i == len(todo) - 1:
                frames = np.concatenate([ep["frames"] for _, ep in pending])
                codes = encode_frames(vqgan, frames, batch_size)
                start = 0
                for pid, ep in pending:
                    n = len(ep["frames"])
                    writer.add(pid, codes[start : start + n], ep["actions"], split=store.split_of(pid))
                    start += n
                bar.update(pending_frames)
                pending, pending_frames = [], 0
    return TokenCache.open(out)
