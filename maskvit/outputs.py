"""What a folder on disk is to maskvit, so no command writes into one it did not make.

Each on-disk format recognises its own folders (its module owns the layout); this module
only asks them in turn. Commands call `enclosing_output` before writing a loose file
(predict's GIF and .npy) and `folder_kind` before starting a run in an existing folder:
a prediction saved as `STORE/episodes/X/frames.npy` would replace that episode's frames.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from maskvit.data.store import is_episode_store
from maskvit.data.token_cache import is_token_cache
from maskvit.pretrained import is_bundle
from maskvit.run_dir import CONFIG_FILE, SOURCES_FILE, latest_checkpoint


def _is_run(path: Path) -> bool:
    """A training run: its config.yaml beside a maskvit checkpoint or what training writes
    first (config.yaml or checkpoints/ alone are too common names to mean a run)."""
    return (path / CONFIG_FILE).is_file() and (latest_checkpoint(path) is not None or any(
        (path / name).exists() for name in ("metrics.jsonl", SOURCES_FILE)))


def _is_report(path: Path) -> bool:
    from maskvit.report.staging import MARKER  # (the report package imports matplotlib)

    return (path / MARKER).is_file()


# The kinds, most specific first (a bundle holds runs; a run may hold a report).
KINDS: tuple[tuple[str, Callable[[Path], bool]], ...] = (
    ("episode store", is_episode_store),
    ("token cache", is_token_cache),
    ("bundle", is_bundle),
    ("training run", _is_run),
    ("report", _is_report),
)


def folder_kind(path: str | Path) -> str | None:
    """The kind of maskvit output `path` is ("episode store", "token cache", "bundle",
    "training run", "report"), or None for any other folder (or no folder)."""
    path = Path(path)
    try:
        if not path.is_dir():
            return None
        return next((kind for kind, test in KINDS if test(path)), None)
    except OSError:  # a folder we may not list is none of ours
        return None


def enclosing_output(path: str | Path) -> tuple[str, Path] | None:
    """(kind, folder) of the nearest maskvit output that is `path` or holds it, else None."""
    path = Path(path).resolve()
    for folder in (path, *path.parents):
        kind = folder_kind(folder)
        if kind is not None:
            return kind, folder
    return None
