"""Reports are replaced whole: written into a temporary sibling folder, then swapped in.

Writing a report file by file into the folder of an older one leaves a mix of both when
the job fails midway (a new metrics.json beside the old index.html after a full disk).
`staged_report(out, kind)` yields an empty sibling folder `.NAME.maskvit-new-*`; when the
block succeeds, the folder gets a marker file listing what it holds and replaces `out`:
the old report is renamed aside, the new one renamed in, then the old files are removed.
When the block fails, the sibling is removed and the old report is untouched.

Only maskvit reports are replaced: an existing `out` must be empty, or hold a marker
(`.maskvit-report.json`) and no file it does not list, or (reports older than markers)
only files named like that kind of report. Anything else is refused in one line, so a
mistyped --out never deletes an episode store or someone's files.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from maskvit.atomic import atomic_write_json, fsync_dir
from maskvit.errors import UserError
from maskvit.locking import output_lock

MARKER = ".maskvit-report.json"
NEW_INFIX, OLD_INFIX = ".maskvit-new-", ".maskvit-old-"

# What each kind of report wrote before reports carried a marker (relative POSIX paths).
LEGACY_PATTERNS: dict[str, tuple[str, ...]] = {
    "evaluate": ("index.html", "metrics.json", "curve_*.png", "videos/video_*.gif"),
    "reconstruct": ("*.gif", "reconstructions.png"),
    "plan": ("index.html", "results.json", "gifs/*.gif"),
}


def _files(folder: Path) -> list[str]:
    """Every non-directory entry under `folder`, as sorted relative POSIX paths."""
    found = []
    for root, _dirs, names in os.walk(folder):
        for name in names:
            found.append((Path(root) / name).relative_to(folder).as_posix())
    return sorted(found)


def _marker_files(folder: Path) -> set[str] | None:
    """The files the marker of `folder` lists (None: no readable marker)."""
    try:
        data = json.loads((folder / MARKER).read_text())
        return {str(f) for f in data["files"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None


# ...and the files without which a folder is not taken for such a report.
LEGACY_REQUIRED: dict[str, tuple[str, ...]] = {
    "evaluate": ("index.html", "metrics.json"),
    "reconstruct": ("reconstructions.png",),
    "plan": ("index.html", "results.json"),
}


def _legacy_report_file(name: str, kind: str) -> bool:
    """Whether `name` is named like a file a `kind` report wrote (`*` stays in one folder)."""
    return any(fnmatch.fnmatchcase(name, p) and name.count("/") == p.count("/")
               for p in LEGACY_PATTERNS.get(kind, ()))


def foreign_file(folder: Path, kind: str) -> str | None:
    """A file in `folder` that no maskvit report wrote (None: safe to replace)."""
    listed = _marker_files(folder)
    files = _files(folder)
    if listed is None and files and not all(f in files for f in LEGACY_REQUIRED.get(kind, ())):
        return files[0]  # no marker, and not laid out like an older report either
    for name in files:
        if name == MARKER:
            continue
        if listed is not None:
            if name not in listed:
                return name
        elif not _legacy_report_file(name, kind):
            return name
    return None


def check_report_dir(out: str | os.PathLike, kind: str) -> None:
    """Refuse (one line) an --out that exists and is not a maskvit report.

    Commands call this before their long work, so a wrong --out fails at once.
    """
    out = Path(out).resolve()
    if Path.cwd().is_relative_to(out):
        raise UserError(f"--out {out} is the current folder (or holds it); a report replaces "
                        "its folder whole, so choose a folder of its own")
    if not out.exists():
        return
    if not out.is_dir():
        raise UserError(f"--out {out} exists and is not a directory; choose another --out")
    if not os.access(out, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(out))
    foreign = foreign_file(out, kind)
    if foreign is not None:
        raise UserError(f"--out {out} is not a maskvit {kind} report (it holds {foreign}); "
                        "a report replaces its folder whole, so choose a new or empty --out")


def _siblings(out: Path, infix: str) -> list[Path]:
    prefix = f".{out.name}{infix}"
    return sorted(p for p in out.parent.iterdir() if p.name.startswith(prefix) and p.is_dir())


def _remove_report(folder: Path, kind: str) -> None:
    """Delete a replaced report: only the files a report wrote, then its empty folders."""
    listed = _marker_files(folder)
    for name in _files(folder):
        if name == MARKER or (name in listed if listed is not None
                              else _legacy_report_file(name, kind)):
            with contextlib.suppress(OSError):
                (folder / name).unlink()
    for root, _dirs, _names in os.walk(folder, topdown=False):
        with contextlib.suppress(OSError):
            Path(root).rmdir()  # only succeeds once empty: anything unlisted stays
    if folder.exists():
        print(f"note: kept {folder} (the replaced report): it holds files that could not "
              "be removed or that no report wrote", file=sys.stderr)


def recover(out: Path, kind: str) -> None:
    """Undo what a job killed midway left: restore an old report renamed aside, drop halves.

    Runs under the output lock, so every sibling found is from a job that is gone.
    """
    for new in _siblings(out, NEW_INFIX):
        shutil.rmtree(new, ignore_errors=True)  # an unfinished report: ours to delete
    olds = _siblings(out, OLD_INFIX)
    if olds and not out.exists():
        os.rename(olds.pop(), out)  # killed between "old aside" and "new in"
    for old in olds:
        _remove_report(old, kind)


def _swap_in(new: Path, out: Path, kind: str) -> None:
    """Replace `out` by `new`: old aside, new in, old removed (restored if "new in" fails)."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}{OLD_INFIX}"))
        try:
            os.rename(out, old)  # a directory replaces an empty one
        except BaseException:
            old.rmdir()
            raise
    try:
        os.rename(new, out)
    except BaseException:
        if old is not None:
            os.rename(old, out)
        raise
    fsync_dir(out.parent)
    if old is not None:
        _remove_report(old, kind)


def _write_marker(folder: Path, kind: str) -> None:
    files = [f for f in _files(folder) if f != MARKER]
    atomic_write_json(folder / MARKER, {"format": "maskvit-report", "kind": kind,
                                        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                 time.gmtime()),
                                        "files": files})


def _name_the_output(err: OSError, new: Path, out: Path) -> None:
    """Make a failed write name the report path the user gave, not the temporary folder."""
    for attr in ("filename", "filename2"):
        name = getattr(err, attr)
        if isinstance(name, str | os.PathLike) and Path(name).is_relative_to(new):
            setattr(err, attr, str(out / Path(name).relative_to(new)))
    if err.filename is None:
        err.filename = str(out)


@contextlib.contextmanager
def staged_report(out: str | os.PathLike, kind: str) -> Iterator[Path]:
    """Yield an empty folder to write a `kind` report into; it replaces `out` on success.

    Holds the output lock of `out` throughout (re-entrant: commands hold it already).
    On failure (an exception, Ctrl-C) the folder is deleted and `out` is left as it was.
    """
    out = Path(out).resolve()  # a symlinked --out: the report replaces the folder it names
    with output_lock(out, "report directory"):
        out.parent.mkdir(parents=True, exist_ok=True)
        recover(out, kind)
        check_report_dir(out, kind)
        new = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}{NEW_INFIX}"))
        try:
            os.chmod(new, 0o755)  # mkdtemp makes 0700 folders; reports are meant to be shared
            yield new
            _write_marker(new, kind)
            check_report_dir(out, kind)  # nothing foreign crept in meanwhile
            _swap_in(new, out, kind)
        except OSError as err:
            _name_the_output(err, new, out)
            raise
        finally:
            shutil.rmtree(new, ignore_errors=True)  # gone already after a successful swap
