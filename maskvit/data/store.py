"""Episode store: frames, per-step actions and optional states of many episodes on disk.

Layout of a store directory::

    DIR/
      manifest.json               written last by the writer: its presence means "complete".
                                  {format, version, source, resolution [H, W], action_dim,
                                   state_dim, num_episodes, num_frames, splits {name: count},
                                   episodes [{id, length, split}], extra {...}}
      writer.json                 the writer's settings, so an interrupted job resumes consistently
      episodes/<id>/frames.npy    uint8   (T, H, W, 3)
      episodes/<id>/actions.npy   float32 (T, A)   actions[t] is taken after frame t (A may be 0)
      episodes/<id>/states.npy    float32 (T, S)   optional
      episodes/<id>/meta.json     {length, split}
      episodes/<id>.partial/      an episode being written; renamed to <id>/ when whole

Episodes are separate `.npy` files so clips are read by memory-mapping (no full loads),
and a conversion interrupted at any point resumes by skipping the finished episodes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections import OrderedDict
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
    check_finite,
    check_only_owned,
    make_dir,
    read_json,
    read_manifest,
    remove_owned,
    split_for,
    write_npy,
)
from maskvit.errors import UserError

STORE_FORMAT = "maskvit-episodes"
STORE_VERSION = 1
STORE_ENTRIES = ("manifest.json", "writer.json", "episodes")  # all a store folder holds
_NOT_WRITTEN = "the episode was not written; fix the source data"
_WRITER_FIX = "delete the store and write it again (`maskvit convert --overwrite` does both)"


def is_episode_store(path: Path) -> bool:
    """Whether `path` is an episode store, complete or being written."""
    return (path / "writer.json").is_file() or (
        (path / "manifest.json").is_file() and (path / "episodes").is_dir())


def read_writer_settings(path: str | os.PathLike) -> dict[str, Any]:
    """STORE/writer.json, checked field by field: damage is a one-line `UserError` naming
    the field (a resumed job trusts these settings to continue the store the same way)."""
    file = Path(path) / "writer.json"
    settings = read_json(file, "writer settings", _WRITER_FIX)
    if not isinstance(settings, dict):
        raise UserError(f"{file}: damaged writer settings (not a JSON object); {_WRITER_FIX}")

    def bad(key: str) -> UserError:
        return UserError(f"{file}: damaged writer settings ({key} {settings.get(key)!r}); {_WRITER_FIX}")

    resolution, fractions = settings.get("resolution"), settings.get("split_fractions")
    if not isinstance(settings.get("source", ""), str):
        raise bad("source")
    for key in ("action_dim", "state_dim"):
        value = settings.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise bad(key)
    if resolution is not None and not (isinstance(resolution, list) and len(resolution) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in resolution)):
        raise bad("resolution")
    if fractions is not None:
        try:
            split_for("x", tuple(fractions))
        except (TypeError, ValueError):
            raise bad("split_fractions") from None
    if not isinstance(settings.get("extra", {}), dict):
        raise bad("extra")
    return settings
def natural_key(episode_id: str) -> tuple[list[Any], str]:
    """Sort key that puts `push_999999` before `push_1000000` (runs of digits compare as numbers)."""
    parts = re.split(r"(\d+)", episode_id)
    return [int(p) if i % 2 else p for i, p in enumerate(parts)], episode_id


def safe_episode_id(text: str) -> str:
    """Turn a path-like name (e.g. 'traj_0_to_255/12') into a valid episode id."""
    cleaned = re.sub(r"[^A-Za-z0-9_.\-]+", "_", text).strip("_.-") or "episode"
    return cleaned[:200]


def _check_store_header(manifest: dict[str, Any], where: Path, fix: str) -> None:
    """resolution [H, W] and action_dim of a store manifest, or a one-line error."""
    resolution, action_dim = manifest.get("resolution"), manifest.get("action_dim")
    if not (isinstance(resolution, list) and len(resolution) == 2
            and all(isinstance(v, int) and v > 0 for v in resolution)):
        raise UserError(f"{where}: damaged manifest (resolution {resolution!r}); {fix}")
    if not isinstance(action_dim, int) or action_dim < 0:
        raise UserError(f"{where}: damaged manifest (action_dim {action_dim!r}); {fix}")


class EpisodeStore(Episodes):
    """Read access to a complete episode store (see the module docstring for the layout)."""

    kind = "store"

    def __init__(self, path: Path, manifest: dict[str, Any]):
        super().__init__(path, manifest)
        self._mmaps: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()

    @classmethod
    def open(cls, path: str | os.PathLike) -> EpisodeStore:
        """The complete store at `path`; a damaged manifest is a one-line `UserError`."""
        path = Path(path)
        manifest_path = path / "manifest.json"
        if not path.is_dir():
            raise UserError(f"episode store not found: {path} (create one with `maskvit collect` or `maskvit convert`)")
        if not manifest_path.is_file():
            raise UserError(
                f"{path} is not a complete episode store (no manifest.json); "
                "re-run the command that wrote it to resume"
            )
        fix = "re-run the command that wrote the store to rewrite it"
        manifest = read_manifest(manifest_path, STORE_FORMAT, "an episode store", fix)
        _check_store_header(manifest, manifest_path, fix)
        check_episode_list(manifest.get("episodes"), manifest_path, fix)
        return cls(path, manifest)

    # -- metadata
    @property
    def resolution(self) -> tuple[int, int]:
        h, w = self.manifest["resolution"]
        return int(h), int(w)

    @property
    def source(self) -> str:
        return str(self.manifest.get("source", "unknown"))

    def fingerprint(self) -> str:
        """sha256 of manifest.json: tells this store's content from another's (or from its
        own after episodes were added), so a token cache never mixes codes of two. The
        manifest lists each episode's content digest (stores written before it was added
        are told apart by ids, lengths, splits and the time they were finished)."""
        return hashlib.sha256((self.path / "manifest.json").read_bytes()).hexdigest()

    # -- data
    def load(self, episode_id: str) -> dict[str, np.ndarray]:
        """The whole episode: frames uint8 (T,H,W,3), actions float32 (T,A), states if stored."""
        self._entry(episode_id)
        folder = self.path / "episodes" / episode_id
        out = {name: self._checked(episode_id, name, self._read(folder / f"{name}.npy"))
               for name in ("frames", "actions")}
        if (folder / "states.npy").is_file():
            out["states"] = self._checked(episode_id, "states", self._read(folder / "states.npy"))
        return out

    def load_clip(self, episode_id: str, start: int, length: int) -> dict[str, np.ndarray]:
        """Frames [start, start+length) and their actions, read through memory maps."""
        total = self.length(episode_id)
        if start < 0 or length < 1 or start + length > total:
            raise IndexError(f"clip [{start}, {start + length}) outside episode {episode_id} of {total} frames")
        frames = self._mmap(episode_id, "frames")[start : start + length]
        actions = self._mmap(episode_id, "actions")[start : start + length]
        return {"frames": np.array(frames), "actions": np.array(actions, dtype=np.float32)}

    def load_array(self, episode_id: str, name: str) -> np.ndarray:
        """One of the extra per-frame arrays the writer kept (`arrays=` of `add`), e.g. `sim_states`."""
        self._entry(episode_id)
        file = self.path / "episodes" / episode_id / f"{_extra_name(name)}.npy"
        if not file.is_file():
            raise UserError(f"{self.path}: episode {episode_id} has no {name!r} array; "
                            "this store was written without it")
        array = self._read(file)
        if len(array) != self.length(episode_id):
            raise UserError(f"{file}: holds {len(array)} rows for {self.length(episode_id)} frames; "
                            "the store is damaged: re-run the command that wrote it")
        return array

    def info(self, episode_id: str) -> dict[str, Any]:
        """The JSON facts the writer kept about an episode (`info=` of `add`); {} if none."""
        self._entry(episode_id)
        meta_file = self.path / "episodes" / episode_id / "meta.json"
        meta = read_json(meta_file, "episode metadata", "re-run the command that wrote the store")
        info = meta.get("info", {}) if isinstance(meta, dict) else None
        if not isinstance(info, dict):
            raise UserError(f"{meta_file}: damaged episode metadata; re-run the command that wrote the store")
        return info

    # -- internals
    def _expected_shape(self, episode_id: str, name: str) -> tuple[int | None, ...]:
        length = self.length(episode_id)
        if name == "frames":
            return (length, *self.resolution, 3)
        if name == "actions":
            return (length, self.action_dim)
        return (length, self.manifest.get("state_dim"))  # states; None: any width

    def _checked(self, episode_id: str, name: str, array: np.ndarray) -> np.ndarray:
        """`array` if its shape (and, for frames, dtype) is what the manifest says."""
        expected = self._expected_shape(episode_id, name)
        fits = array.ndim == len(expected) and all(e is None or e == n for e, n in zip(expected, array.shape, strict=False))
        wrong_dtype = array.dtype != np.uint8 if name == "frames" else array.dtype.kind not in "fiub"
        if not fits or wrong_dtype:
            file = self.path / "episodes" / episode_id / f"{name}.npy"
            shown = tuple("?" if e is None else e for e in expected)
            raise UserError(f"{file}: holds {array.dtype} {array.shape} but the manifest says {shown}; "
                            "the store is damaged: re-run the command that wrote it")
        return array

    def _read(self, file: Path) -> np.ndarray:
        try:
            return np.load(file, allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            raise UserError(f"{file}: cannot read ({err}); re-run the command that wrote the store") from None

    def _mmap(self, episode_id: str, name: str) -> np.ndarray:
        key = (episode_id, name)
        array = self._mmaps.get(key)
        if array is None:
            file = self.path / "episodes" / episode_id / f"{name}.npy"
            try:
                array = np.load(file, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError, EOFError) as err:
                raise UserError(f"{file}: cannot read ({err}); re-run the command that wrote the store") from None
            array = self._checked(episode_id, name, array)
            self._mmaps[key] = array
            if len(self._mmaps) > 256:  # bound the open file handles
                self._mmaps.popitem(last=False)
        else:
            self._mmaps.move_to_end(key)
        return array

    def __getstate__(self) -> dict[str, Any]:
        # Memory maps are per process (DataLoader workers re-open them lazily).
        state = self.__dict__.copy()
        state["_mmaps"] = OrderedDict()
        return state


_RESERVED_ARRAYS = ("frames", "actions", "states")


def _extra_name(name: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", name) or name in _RESERVED_ARRAYS:
        raise UserError(f"bad episode array name {name!r}: lowercase letters, digits and _, "
                        f"not one of {', '.join(_RESERVED_ARRAYS)}")
    return name


def _extra_arrays(episode_id: str, arrays: dict[str, np.ndarray] | None, length: int) -> dict[str, np.ndarray]:
    """The writer's extra per-frame arrays, checked: one row per frame, finite numbers."""
    checked = {}
    for name, array in (arrays or {}).items():
        array = np.asarray(array)
        if array.ndim < 1 or len(array) != length or array.dtype.kind not in "fiub":
            raise UserError(f"{episode_id}: array {name!r} must be numbers with one row per frame "
                            f"({length}), got {array.dtype} {array.shape}")
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise UserError(f"{episode_id}: array {name!r} holds NaN or infinite values")
        checked[_extra_name(name)] = array
    return checked


def content_digest(arrays: dict[str, np.ndarray | None]) -> str:
    """sha256 over an episode's arrays (name, dtype, shape and bytes, in name order)."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = arrays[name]
        if array is None:
            continue
        array = np.ascontiguousarray(array)
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.data)
    return digest.hexdigest()


class EpisodeStoreWriter:
    """Writes episodes one at a time; `close()` writes the manifest that marks completion.

    Reopening a directory an interrupted writer left behind resumes it: finished episodes
    are kept (`episode_id in writer` tells which) and half-written ones are discarded.
    Reopening a complete store appends to it (the manifest is removed until `close()`).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        source: str,
        action_dim: int,
        resolution: tuple[int, int] | int | None = None,
        state_dim: int | None = None,
        split_fractions: tuple[float, float, float] = (0.9, 0.05, 0.05),
        extra: dict[str, Any] | None = None,
        overwrite: bool = False,
    ):
        self.path = Path(path)
        if isinstance(resolution, int):
            resolution = (resolution, resolution)
        settings = {
            "format": STORE_FORMAT,
            "version": STORE_VERSION,
            "source": source,
            "action_dim": int(action_dim),
            "resolution": list(resolution) if resolution else None,
            "state_dim": state_dim,
            "split_fractions": list(split_fractions),
        }
        split_for("x", tuple(split_fractions))  # validates the fractions
        self.extra = dict(extra or {})
        self._open_dir(settings, overwrite)
        self.settings = settings
        self._episodes: dict[str, dict[str, Any]] = self._scan_finished()
        self._changed = False  # whether this writer has added an episode yet

    # -- setup
    def _open_dir(self, settings: dict[str, Any], overwrite: bool) -> None:
        writer_file = self.path / "writer.json"
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"output {self.path} exists and is not a directory; choose another --out")
        if self.path.is_dir() and any(self.path.iterdir()):
            if not writer_file.is_file():
                raise UserError(f"output {self.path} exists and is not an episode store; choose another --out")
            check_only_owned(self.path, STORE_ENTRIES, "an episode store")
        if overwrite and self.path.is_dir():  # only ever an episode store (or an empty folder)
            remove_owned(self.path, STORE_ENTRIES, "an episode store")
        if self.path.is_dir() and any(self.path.iterdir()):
            self._resume_settings(settings, read_writer_settings(self.path))
        make_dir(self.path / "episodes")
        atomic_write_json(writer_file, {**settings, "extra": self.extra})

    def _resume_settings(self, settings: dict[str, Any], previous: dict[str, Any]) -> None:
        """Take the settings of the job that began the store; refuse any that differ, so
        one store never mixes episodes made two ways (another crop, clip length, fps...)."""
        if settings["state_dim"] is None:
            settings["state_dim"] = previous.get("state_dim")
        for key in ("source", "action_dim", "state_dim"):
            if previous.get(key) != settings[key]:
                raise UserError(
                    f"{self.path} was started with {key}={previous.get(key)!r}, now {settings[key]!r}; "
                    "use the same settings to resume or choose another --out"
                )
        if settings["resolution"] is None:
            settings["resolution"] = previous.get("resolution")
        elif previous.get("resolution") not in (None, settings["resolution"]):
            raise UserError(
                f"{self.path} holds {previous['resolution']} frames, now {settings['resolution']}; "
                "use the same --size to resume or choose another --out"
            )
        settings["split_fractions"] = previous.get("split_fractions", settings["split_fractions"])
        before = previous.get("extra", {})
        for key, value in self.extra.items():
            if key in before and before[key] != value:
                raise UserError(
                    f"{self.path} was started with {key}={before[key]!r}, now {value!r}; "
                    "use the same settings to resume, pass --overwrite to start it again, "
                    "or choose another --out"
                )
        self.extra = {**before, **self.extra}

    def _scan_finished(self) -> dict[str, dict[str, Any]]:
        episodes = {}
        for entry in sorted((self.path / "episodes").iterdir()):
            if not entry.is_dir():
                continue
            if entry.name.endswith(".partial"):
                shutil.rmtree(entry, ignore_errors=True)
                continue
            meta_file = entry / "meta.json"
            if not meta_file.is_file():
                shutil.rmtree(entry, ignore_errors=True)
                continue
            fix = f"delete the folder {entry} and rerun to write that episode again"
            check_episode_id(entry.name, str(entry))
            meta = read_json(meta_file, "episode metadata", fix)
            if not isinstance(meta, dict) or not {"length", "split"} <= meta.keys():
                raise UserError(f"{meta_file}: damaged episode metadata (no length or split); {fix}")
            episodes[entry.name] = {"id": entry.name, "length": meta["length"], "split": meta["split"],
                                    **({"sha256": meta["sha256"]} if "sha256" in meta else {})}
        return episodes

    # -- writing
    def __contains__(self, episode_id: str) -> bool:
        return episode_id in self._episodes

    def __len__(self) -> int:
        return len(self._episodes)

    def add(
        self,
        episode_id: str,
        frames: np.ndarray,
        actions: np.ndarray,
        states: np.ndarray | None = None,
        split: str | None = None,
        arrays: dict[str, np.ndarray] | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        """Write one episode (replacing an existing one of the same id).

        `arrays`: more per-frame arrays kept as they are (e.g. a simulator's float64 state
        vectors, `sim_states`), read back with `EpisodeStore.load_array`; `info`: small
        JSON facts about the episode (e.g. its task), read back with `EpisodeStore.info`.
        """
        check_episode_id(episode_id)
        frames = np.asarray(frames)
        actions = np.asarray(actions, dtype=np.float32)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
            raise UserError(f"{episode_id}: frames must be uint8 (T,H,W,3), got {frames.dtype} {frames.shape}")
        resolution = list(frames.shape[1:3])
        if self.settings["resolution"] is None:
            self.settings["resolution"] = resolution
            atomic_write_json(self.path / "writer.json", {**self.settings, "extra": self.extra})
        elif resolution != list(self.settings["resolution"]):
            raise UserError(f"{episode_id}: frames are {resolution}, the store holds {self.settings['resolution']}; "
                            "pass --size to resize every source to one size")
        expected = (len(frames), self.settings["action_dim"])
        if actions.shape != expected:
            raise UserError(f"{episode_id}: actions must have shape {expected}, got {actions.shape}")
        check_finite(actions, f"{episode_id}: actions", _NOT_WRITTEN)
        if states is not None:
            states = self._checked_states(episode_id, states, len(frames))
        if not self._changed:  # a complete store becomes incomplete only when it really
            # changes (until close()): a job failing before its first episode leaves it as it was
            (self.path / "manifest.json").unlink(missing_ok=True)
            self._changed = True
        split = split or split_for(episode_id, tuple(self.settings["split_fractions"]))
        if split not in SPLITS:
            raise UserError(f"{episode_id}: unknown split {split!r}")

        final = self.path / "episodes" / episode_id
        partial = self.path / "episodes" / f"{episode_id}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        make_dir(partial)
        write_npy(partial / "frames.npy", frames)
        write_npy(partial / "actions.npy", actions)
        if states is not None:
            write_npy(partial / "states.npy", states)
        extra_arrays = _extra_arrays(episode_id, arrays, len(frames))
        for name, array in extra_arrays.items():
            write_npy(partial / f"{name}.npy", array)
        digest = content_digest({"frames": frames, "actions": actions, "states": states, **extra_arrays})
        meta = {"length": len(frames), "split": split, "sha256": digest, **({"info": info} if info else {})}
        (partial / "meta.json").write_text(json.dumps(meta))
        os.chmod(partial / "meta.json", FILE_MODE)
        if final.exists():
            shutil.rmtree(final)
        os.replace(partial, final)
        self._episodes[episode_id] = {"id": episode_id, **meta}

    def _checked_states(self, episode_id: str, states: np.ndarray, length: int) -> np.ndarray:
        """float32 (T, S) states, finite, as wide as the store's (the first episode sets it)."""
        states = np.asarray(states, dtype=np.float32).reshape(length, -1)
        if self.settings["state_dim"] is None:
            self.settings["state_dim"] = int(states.shape[1])
            atomic_write_json(self.path / "writer.json", {**self.settings, "extra": self.extra})
        elif states.shape[1] != self.settings["state_dim"]:
            raise UserError(f"{episode_id}: states must have {self.settings['state_dim']} columns")
        check_finite(states, f"{episode_id}: states", _NOT_WRITTEN)
        return states

    def close(self) -> EpisodeStore:
        """Write the manifest (the store becomes complete) and return it opened.

        Episodes are listed by id (numbers in ids compare as numbers), never in the order
        parallel workers finished them, so two identical jobs give identical manifests and
        training sees the same episode order.
        """
        if not self._episodes:
            raise UserError(f"no episodes were written to {self.path}; nothing to finish")
        episodes = sorted(self._episodes.values(), key=lambda e: natural_key(e["id"]))
        splits = {name: sum(e["split"] == name for e in episodes) for name in SPLITS}
        manifest = {
            "format": STORE_FORMAT,
            "version": STORE_VERSION,
            "source": self.settings["source"],
            "resolution": self.settings["resolution"],
            "action_dim": self.settings["action_dim"],
            "state_dim": self.settings["state_dim"],
            "num_episodes": len(episodes),
            "num_frames": int(sum(e["length"] for e in episodes)),
            "splits": splits,
            "split_fractions": self.settings["split_fractions"],
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "extra": self.extra,
            # Each episode's content digest makes the manifest (and so `fingerprint()`) tell
            # two stores apart even when their ids, lengths and splits agree.
            "episodes": [{key: e[key] for key in ("id", "length", "split", "sha256") if key in e}
                         for e in episodes],
        }
        atomic_write_json(self.path / "manifest.json", manifest)
        return EpisodeStore(self.path, manifest)

    def __enter__(self) -> EpisodeStoreWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()


class ClipDataset(EpisodeClips):
    """Clips from an episode store: items `{"frames": uint8 (T,H,W,3), "actions": float32 (T,A)}`."""

    def __init__(self, store: EpisodeStore, clip_len: int, split: str = "train", stride: int = 1):
        super().__init__(store, clip_len, split, stride)
        self.store = store

    def clip(self, episode_id: str, start: int) -> dict[str, torch.Tensor]:
        clip = self.store.load_clip(episode_id, start, self.clip_len)
        return {"frames": torch.from_numpy(clip["frames"]), "actions": torch.from_numpy(clip["actions"])}
