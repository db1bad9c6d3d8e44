"""Token cache: the VQ codes of every frame of a store, which the transformer trains from.

Layout of a cache directory::

    DIR/
      header.json     settings: token_shape [h, w], action_dim, codebook_size, extra {...}
      codes.u16       raw uint16, all frames of all episodes back to back: (N, h, w)
      actions.f32     raw float32 (N, A), aligned with the codes (actions[t] follows frame t)
      index.jsonl     one line per finished episode {id, split, offset, length}, appended
                      only after that episode's codes and actions are flushed to disk
      manifest.json   written last by `close()`: header + episodes; presence = complete

The two flat files are memory-mapped, so a clip is one slice. An interrupted writer
resumes from `index.jsonl` (trailing bytes of an unfinished episode are truncated).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from maskvit.atomic import atomic_write_json
from maskvit.data.episodes import (
    FILE_MODE,
    SPLITS,
    EpisodeClips,
    Episodes,
    check_episode_id,
    check_episode_list,
    check_only_owned,
    make_dir,
    read_json,
    read_manifest,
    remove_owned,
)
from maskvit.errors import UserError

CACHE_FORMAT = "maskvit-tokens"
CACHE_VERSION = 1
CACHE_ENTRIES = ("header.json", "codes.u16", "actions.f32", "index.jsonl", "manifest.json")


def is_token_cache(path: Path) -> bool:
    """Whether `path` is a token cache, complete or being written (the writer makes both)."""
    return (path / "header.json").is_file() and (path / "codes.u16").is_file()


class TokenCacheWriter:
    """Appends episodes of codes; `episode_id in writer` tells what a resumed job can skip."""

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        token_shape: tuple[int, int],
        action_dim: int,
        codebook_size: int,
        extra: dict[str, Any] | None = None,
        source: dict[str, str] | None = None,
        overwrite: bool = False,
    ):
        """`source`: the identity of the data being encoded, {"store": resolved path,
        "manifest_sha256": its fingerprint}; a resumed cache refuses any other."""
        if codebook_size > 65536:
            raise UserError(f"codebook size {codebook_size} does not fit uint16 codes (max 65536)")
        self.path = Path(path)
        self.header = {
            "format": CACHE_FORMAT,
            "version": CACHE_VERSION,
            "token_shape": [int(token_shape[0]), int(token_shape[1])],
            "action_dim": int(action_dim),
            "codebook_size": int(codebook_size),
            "extra": dict(extra or {}),
            **({"source": dict(source)} if source else {}),
        }
        header_file = self.path / "header.json"
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"output {self.path} exists and is not a directory; choose another --out")
        if self.path.is_dir() and any(self.path.iterdir()):
            if not header_file.is_file():
                raise UserError(f"output {self.path} exists and is not a token cache; choose another --out")
            check_only_owned(self.path, CACHE_ENTRIES, "a token cache")
        if overwrite and self.path.is_dir():  # only ever a token cache (or an empty folder)
            remove_owned(self.path, CACHE_ENTRIES, "a token cache")
        if self.path.is_dir() and any(self.path.iterdir()):
            previous = read_json(header_file, "token cache header", "pass --overwrite or choose another --out")
            for key in ("token_shape", "action_dim", "codebook_size"):
                if not isinstance(previous, dict) or previous.get(key) != self.header[key]:
                    found = previous.get(key) if isinstance(previous, dict) else None
                    raise UserError(
                        f"{self.path} holds {key}={found}, now {self.header[key]}; "
                        "use --overwrite or another output"
                    )
            self._check_same_source(previous)
            (self.path / "manifest.json").unlink(missing_ok=True)  # incomplete until close()
        make_dir(self.path)
        atomic_write_json(header_file, self.header)
        self.episodes = self._read_index()
        self._frames = sum(e["length"] for e in self.episodes)
        h, w = self.header["token_shape"]
        self._codes = self._open_truncated("codes.u16", self._frames * h * w * 2)
        self._actions = self._open_truncated("actions.f32", self._frames * action_dim * 4)
        self._index = open(self.path / "index.jsonl", "a")
        os.chmod(self.path / "index.jsonl", FILE_MODE)
        self._ids = {e["id"] for e in self.episodes}

    def _check_same_source(self, previous: dict[str, Any]) -> None:
        """Refuse to go on with codes of other data than the cache began with (another store,
        or the same store since changed): the cache would silently hold a mix of both. Both
        the path and the manifest count: two stores of one layout written within the same
        second have identical manifests."""
        new = self.header.get("source")
        if not new:
            return
        old = previous.get("source")
        if not isinstance(old, dict):  # caches from before sources were fingerprinted
            old_store = (previous.get("extra") or {}).get("data")
            if old_store is None or old_store == new["store"]:
                return
            old = {"store": old_store}
        if old.get("store") == new["store"] and old.get("manifest_sha256") == new["manifest_sha256"]:
            return
        if old.get("store") == new["store"]:
            what = (f"the store {new['store']} has changed since this cache began (manifest sha256 "
                    f"{str(old.get('manifest_sha256'))[:12]} then, {new['manifest_sha256'][:12]} now)")
        else:
            what = (f"it holds codes of the store {old.get('store')}, not of {new['store']}")
        raise UserError(f"token cache {self.path}: {what}; pass --overwrite to encode it again, "
                        "or choose another --out")

    def _read_index(self) -> list[dict[str, Any]]:
        file = self.path / "index.jsonl"
        if not file.is_file():
            return []
        episodes, offset = [], 0
        for line in file.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                break  # a line cut by an interruption: everything after it is redone
            if not _is_index_entry(entry, offset):
                break  # damaged: redo this episode and everything after it
            episodes.append(entry)
            offset += entry["length"]
        with open(file, "w") as f:  # rewrite without the damaged tail
            f.writelines(json.dumps(e) + "\n" for e in episodes)
        return episodes

    def _open_truncated(self, name: str, size: int):
        f = open(self.path / name, "ab+")
        os.chmod(self.path / name, FILE_MODE)
        f.truncate(size)
        f.seek(size)
        return f

    def __contains__(self, episode_id: str) -> bool:
        return episode_id in self._ids

    def __len__(self) -> int:
        return len(self.episodes)

    def add(self, episode_id: str, codes: np.ndarray | torch.Tensor, actions: np.ndarray | torch.Tensor,
            split: str) -> None:
        """Append one episode: codes int (T, h, w) in [0, K), actions (T, A)."""
        check_episode_id(episode_id)
        if episode_id in self._ids:
            raise ValueError(f"episode {episode_id!r} is already in the token cache")
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}")
        codes = codes.cpu().numpy() if isinstance(codes, torch.Tensor) else np.asarray(codes)
        actions = actions.cpu().numpy() if isinstance(actions, torch.Tensor) else np.asarray(actions)
        h, w = self.header["token_shape"]
        if codes.ndim != 3 or codes.shape[1:] != (h, w) or len(codes) == 0:
            raise ValueError(f"{episode_id}: codes must be (T, {h}, {w}), got {codes.shape}")
        if codes.min() < 0 or codes.max() >= self.header["codebook_size"]:
            raise ValueError(f"{episode_id}: codes outside [0, {self.header['codebook_size']})")
        expected = (len(codes), self.header["action_dim"])
        if actions.shape != expected:
            raise ValueError(f"{episode_id}: actions must have shape {expected}, got {actions.shape}")
        self._codes.write(codes.astype("<u2").tobytes())
        self._actions.write(actions.astype("<f4").tobytes())
        self._codes.flush()
        self._actions.flush()
        os.fsync(self._codes.fileno())
        os.fsync(self._actions.fileno())
        entry = {"id": episode_id, "split": split, "offset": self._frames, "length": len(codes)}
        self._index.write(json.dumps(entry) + "\n")
        self._index.flush()
        self.episodes.append(entry)
        self._ids.add(episode_id)
        self._frames += len(codes)

    def close(self) -> TokenCache:
        """Write the manifest (the cache becomes complete) and return it opened."""
        for f in (self._codes, self._actions, self._index):
            f.close()
        if not self.episodes:
            raise UserError(f"no episodes were written to token cache {self.path}")
        manifest = {
            **self.header,
            "num_episodes": len(self.episodes),
            "num_frames": self._frames,
            "splits": {s: sum(e["split"] == s for e in self.episodes) for s in SPLITS},
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "episodes": self.episodes,
        }
        atomic_write_json(self.path / "manifest.json", manifest)
        return TokenCache.open(self.path)

    def __enter__(self) -> TokenCacheWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            for f in (self._codes, self._actions, self._index):
                f.close()


def _is_index_entry(entry: object, offset: int) -> bool:
    """Whether one index.jsonl line is a whole entry that starts where the previous one ended."""
    return (isinstance(entry, dict) and isinstance(entry.get("id"), str) and entry.get("offset") == offset
            and isinstance(entry.get("length"), int) and entry["length"] > 0 and entry.get("split") in SPLITS)


def _check_cache_manifest(manifest: dict[str, Any], where: Path, fix: str) -> None:
    """Keys, types and episode entries of a token-cache manifest, or a one-line `UserError`."""
    for key in ("token_shape", "action_dim", "codebook_size", "num_frames", "episodes"):
        if key not in manifest:
            raise UserError(f"{where}: damaged manifest (no {key!r}); {fix}")
    shape = manifest["token_shape"]
    if not (isinstance(shape, list) and len(shape) == 2 and all(isinstance(v, int) and v > 0 for v in shape)):
        raise UserError(f"{where}: damaged manifest (token_shape {shape!r}); {fix}")
    for key in ("action_dim", "codebook_size", "num_frames"):
        if not isinstance(manifest[key], int) or manifest[key] < 0:
            raise UserError(f"{where}: damaged manifest ({key} {manifest[key]!r}); {fix}")
    offset = 0
    for entry in check_episode_list(manifest["episodes"], where, fix):
        if entry.get("offset") != offset:
            raise UserError(f"{where}: damaged manifest (episode {entry['id']!r} is not at offset {offset}); {fix}")
        offset += entry["length"]
    if offset != manifest["num_frames"]:
        raise UserError(f"{where}: damaged manifest (episodes hold {offset} frames, num_frames says "
                        f"{manifest['num_frames']}); {fix}")


class TokenCache(Episodes):
    """Read access to a complete token cache: memory-mapped codes and actions."""

    kind = "token cache"

    def __init__(self, path: Path, manifest: dict[str, Any]):
        super().__init__(path, manifest)
        self._codes: np.ndarray | None = None
        self._actions: np.ndarray | None = None

    @classmethod
    def open(cls, path: str | os.PathLike) -> TokenCache:
        """The complete cache at `path`; damage (bad JSON, missing keys, short files) is one line."""
        path = Path(path)
        manifest_path = path / "manifest.json"
        if not manifest_path.is_file():
            if not path.exists():
                raise UserError(f"token cache not found: {path} (create it with `maskvit tokenize`)")
            raise UserError(f"{path} is not a complete token cache (no manifest.json); re-run `maskvit tokenize`")
        fix = "re-run `maskvit tokenize --overwrite` to rewrite it"
        manifest = read_manifest(manifest_path, CACHE_FORMAT, "a token cache", fix)
        _check_cache_manifest(manifest, manifest_path, fix)
        h, w = manifest["token_shape"]
        n, a = manifest["num_frames"], manifest["action_dim"]
        for name, need in (("codes.u16", n * h * w * 2), ("actions.f32", n * a * 4)):
            file = path / name
            if need and (not file.is_file() or file.stat().st_size < need):
                raise UserError(f"{file} is shorter than its manifest says; {fix}")
        return cls(path, manifest)

    @property
    def token_shape(self) -> tuple[int, int]:
        h, w = self.manifest["token_shape"]
        return int(h), int(w)

    @property
    def codebook_size(self) -> int:
        return int(self.manifest["codebook_size"])

    def codes(self, episode_id: str, start: int = 0, length: int | None = None) -> np.ndarray:
        """uint16 (T, h, w) view of an episode's codes (or of a clip of it)."""
        entry = self._entry(episode_id)
        length = entry["length"] - start if length is None else length
        if start < 0 or length < 1 or start + length > entry["length"]:
            raise IndexError(f"clip [{start}, {start + length}) outside episode {episode_id}")
        offset = entry["offset"] + start
        return self._maps()[0][offset : offset + length]

    def actions(self, episode_id: str, start: int = 0, length: int | None = None) -> np.ndarray:
        """float32 (T, A) actions aligned with `codes`."""
        entry = self._entry(episode_id)
        length = entry["length"] - start if length is None else length
        offset = entry["offset"] + start
        return self._maps()[1][offset : offset + length]

    def _maps(self) -> tuple[np.ndarray, np.ndarray]:
        if self._codes is None:
            n = self.manifest["num_frames"]
            h, w = self.token_shape
            a = self.action_dim
            self._codes = np.memmap(self.path / "codes.u16", dtype="<u2", mode="r", shape=(n, h, w))
            self._actions = (
                np.memmap(self.path / "actions.f32", dtype="<f4", mode="r", shape=(n, a))
                if a > 0
                else np.zeros((n, 0), np.float32)
            )
        return self._codes, self._actions

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_codes"] = state["_actions"] = None  # re-mapped lazily in each worker
        return state


class TokenClipDataset(EpisodeClips):
    """Token clips: items `{"tokens": int64 (T,h,w), "actions": float32 (T,A)}`."""

    def __init__(self, cache: TokenCache, clip_len: int, split: str = "train", stride: int = 1):
        super().__init__(cache, clip_len, split, stride)
        self.cache = cache

    def clip(self, episode_id: str, start: int) -> dict[str, torch.Tensor]:
        tokens = self.cache.codes(episode_id, start, self.clip_len).astype(np.int64)
        actions = np.array(self.cache.actions(episode_id, start, self.clip_len), dtype=np.float32)
        return {"tokens": torch.from_numpy(tokens), "actions": torch.from_numpy(actions)}
