"""File helpers of the episode store and token caches: shared modes, checked JSON reads.

Stores and caches are meant to be shared (read by other users, served to DataLoader
workers), so what they create is 0644 / 0755 whatever the umask: `make_dir` and
`write_npy` set those modes explicitly. Atomic writes go through `maskvit.atomic`.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from maskvit.errors import UserError

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
