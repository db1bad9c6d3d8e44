"""The shipped reference model, and how a bundle of trained runs is made.

A bundle is a directory with `tokenizer/` and `transformer/` runs holding only what
inference needs: each run's config.yaml and one checkpoint with its weights (the EMA
weights when the run kept them), no optimizer state, and a `bundle.json` marker that
lets a later export replace it (and nothing else). `Predictor.from_run` reads bundles.
`maskvit predict`, `evaluate` and `plan` use the shipped push64 bundle when no --model
is given (`plan --env robodesk`: the robodesk64 bundle); `benchmarks/reference_push64.sh` and
`benchmarks/reference_robodesk64.sh` regenerate them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from maskvit.atomic import atomic_write_json, fsync_dir
from maskvit.errors import UserError
from maskvit.locking import output_lock

BUNDLE_MARKER = "bundle.json"
BUNDLE_FORMAT = "maskvit-bundle"

PRETRAINED_ROOT = Path(__file__).parent / "pretrained"
DEFAULT_MODEL = "push64"


def pretrained_path(name: str = DEFAULT_MODEL) -> Path | None:
    """The shipped bundle called `name`, or None when this install has none."""
    path = PRETRAINED_ROOT / name
    complete = (path / "transformer" / "config.yaml").is_file() and (path / "tokenizer" / "config.yaml").is_file()
    return path if complete else None


def default_model() -> Path:
    """The shipped push64 bundle; a one-line error says how to get one when it is missing."""
    path = pretrained_path()
    if path is None:
        raise UserError(f"no --model given and no shipped weights in {PRETRAINED_ROOT / DEFAULT_MODEL}; "
                        f"pass --model RUN, or regenerate them with `bash benchmarks/reference_push64.sh`")
    return path


CLASSIFIERS_ROOT = PRETRAINED_ROOT / "classifiers"


def shipped_classifier(name: str, kind: str = "success") -> Path | None:
    """The classifier shipped for the bundle `name` (trained on that model's store): the
    task-success classifier (`plan.cost=pixel_l2_classifier`), or with kind "reach" the reach
    reader (`plan.cost=pixel_l2_reach`); None where none ships. Kept beside the bundles, not
    in them: `maskvit export` replaces a bundle folder whole."""
    path = CLASSIFIERS_ROOT / (name if kind == "success" else f"{name}_{kind}")
    return path if (path / "classifier.json").is_file() else None


HEADLINE = "headline.json"  # a bundle's measured numbers (benchmarks/headline.py writes it)


def shipped_headline(name: str = DEFAULT_MODEL) -> dict[str, Any] | None:
    """The measured headline numbers of a shipped bundle, or None when it has none."""
    path = pretrained_path(name)
    if path is None or not (path / HEADLINE).is_file():
        return None
    try:
        data = json.loads((path / HEADLINE).read_text())
    except (ValueError, OSError):
        return None
    return data if isinstance(data, dict) else None


# Modules a checkpoint holds that inference never loads (the VQ-GAN's PatchGAN critic:
# 11 MB of the push64 tokenizer's 24 MB).
TRAINING_ONLY = ("discriminator",)


def _slim_copy(run: Path, out: Path, step: int | None = None) -> None:
    """config.yaml + one checkpoint's inference weights (EMA preferred) of `run`, into `out`.

    `step` None takes the latest checkpoint.
    """
    from safetensors.torch import save_file

    from maskvit.run_dir import (
        CHECKPOINTS,
        CONFIG_FILE,
        LATEST,
        available_steps,
        latest_checkpoint,
        load_checkpoint,
    )

    ckpt_dir = latest_checkpoint(run) if step is None else run / CHECKPOINTS / f"step_{step:08d}"
    if ckpt_dir is None or not ckpt_dir.is_dir():
        raise UserError(f"{run} has no checkpoint {'' if step is None else f'at step {step} '}"
                        f"to export; available: steps {available_steps(run)}")
    ckpt = load_checkpoint(ckpt_dir, with_state=False)
    target = out / CHECKPOINTS / ckpt_dir.name
    target.mkdir(parents=True)
    shutil.copy2(run / CONFIG_FILE, out / CONFIG_FILE)
    for name, weights in ckpt.weights.items():
        if name in TRAINING_ONLY:
            continue
        save_file(ckpt.ema.get(name, weights), str(target / f"{name}.safetensors"))
    (out / CHECKPOINTS / LATEST).write_text(ckpt_dir.name + "\n")


def export_bundle(model_run: str | Path, out: str | Path, tokenizer_run: str | Path | None = None,
                  step: int | None = None) -> Path:
    """Write the inference-only bundle of a transformer run and its tokenizer run to `out`.

    `step` picks the transformer checkpoint (None: the latest), e.g. to compare the
    checkpoints of one run by what they predict.

    Written into a staging folder beside `out` and swapped in (see NEW_INFIX below), so
    `out` is never half written. `out` must be absent, an empty folder or a bundle an
    earlier export wrote (which is replaced); anything else, and the runs themselves,
    are never touched.
    """
    from maskvit.run_dir import tokenizer_run_of, tokenizer_step_of

    model_run, out = Path(model_run), Path(out)
    if not model_run.is_dir():
        raise UserError(f"model run directory not found: {model_run}")
    tokenizer_run = Path(tokenizer_run) if tokenizer_run else tokenizer_run_of(model_run)
    if not tokenizer_run.is_dir():
        raise UserError(f"tokenizer run directory not found: {tokenizer_run}")
    for run, what in ((model_run, "model run"), (tokenizer_run, "tokenizer run")):
        _check_apart(out, run, what)
    # The tokenizer checkpoint that made the model's tokens, not merely the newest one.
    tokenizer_step = tokenizer_step_of(model_run, tokenizer_run)
    with output_lock(out, "bundle"):  # so every staging folder found beside `out` is stale
        out.parent.mkdir(parents=True, exist_ok=True)
        recover_bundle(out)
        check_replaceable(out)
        tmp = _make_staging(out)
        try:
            _slim_copy(model_run, tmp / "transformer", step)
            _slim_copy(tokenizer_run, tmp / "tokenizer", tokenizer_step)
            atomic_write_json(tmp / BUNDLE_MARKER, {
                "format": BUNDLE_FORMAT, "version": 1, "model": str(model_run.resolve()),
                "tokenizer": str(tokenizer_run.resolve()),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
            (tmp / STAGING_MARKER).unlink()
            _share(tmp)
            _swap_in(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return out


# An export writes its bundle into a sibling `.NAME.maskvit-export-new-*` (holding
# STAGING_MARKER until it is complete), then swaps it in: the old bundle is renamed to
# `.NAME.maskvit-export-old-*`, the new one to NAME, and the old one deleted. A process
# killed on the way leaves such siblings; the next export of NAME (under the same lock,
# so none of them belongs to a live job) deletes them, and puts an old bundle back when
# it was killed between the two renames. Exports before these names used `.NAME.*`
# (and `.NAME.old.*`): those are recognised only when complete (bundle.json inside).
NEW_INFIX, OLD_INFIX = ".maskvit-export-new-", ".maskvit-export-old-"
STAGING_MARKER = ".maskvit-export-staging"


def _make_staging(out: Path) -> Path:
    """An empty sibling of `out` to write the new bundle into, marked as export's own."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}{NEW_INFIX}", dir=out.parent))
    atomic_write_json(tmp / STAGING_MARKER, {"format": "maskvit-export-staging", "bundle": out.name})
    return tmp


def _staging_of(folder: Path, out: Path) -> bool:
    """Whether `folder` is an unfinished bundle an export of `out` was writing."""
    try:
        marker = json.loads((folder / STAGING_MARKER).read_text())
        return isinstance(marker, dict) and marker.get("bundle") == out.name
    except (OSError, ValueError):
        return False


def _siblings(out: Path, pattern: str) -> list[Path]:
    """Folders beside `out` named `.NAME` + `pattern` (a regular expression), oldest first."""
    name = re.compile(rf"\.{re.escape(out.name)}{pattern}")
    found = [p for p in out.parent.iterdir() if name.fullmatch(p.name) and p.is_dir()
             and not p.is_symlink()]
    return sorted(found, key=lambda p: p.stat().st_mtime)


def recover_bundle(out: Path) -> None:
    """Clean what killed exports of `out` left beside it; restore a bundle set aside by one
    killed between its two renames. Call it holding `out`'s lock."""
    for tmp in _siblings(out, rf"{re.escape(NEW_INFIX)}\w+"):
        if _staging_of(tmp, out) or is_bundle(tmp):  # unfinished, or finished but not swapped in
            shutil.rmtree(tmp)
        elif not any(tmp.iterdir()):
            tmp.rmdir()  # killed before its marker was written
    for tmp in _siblings(out, r"\.\w{8}"):  # earlier exports' staging, when complete
        if is_bundle(tmp):
            shutil.rmtree(tmp)
    olds = [p for p in _siblings(out, rf"({re.escape(OLD_INFIX)}|\.old\.)\w+") if is_bundle(p)]
    if olds and not out.exists() and not out.is_symlink():
        os.rename(olds.pop(), out)  # the newest bundle set aside: no newer one got in
        fsync_dir(out.parent)
    for old in olds:
        shutil.rmtree(old)


def _check_apart(out: Path, run: Path, what: str) -> None:
    """--out may not be the run, lie inside it, or hold it: replacing it would delete the run."""
    out_real, run_real = out.resolve(), run.resolve()
    if out_real == run_real or run_real in out_real.parents or out_real in run_real.parents:
        raise UserError(f"--out {out} overlaps the {what} {run}; choose an --out outside it")


def is_bundle(path: Path) -> bool:
    """Whether `path` is a bundle `maskvit export` wrote (its marker, or the exact slim layout
    of bundles made before the marker existed, like the shipped push64)."""
    marker = path / BUNDLE_MARKER
    if marker.is_file():
        try:
            return json.loads(marker.read_text()).get("format") == BUNDLE_FORMAT
        except (ValueError, AttributeError, OSError):
            return False
    if not ((path / "tokenizer").is_dir() and (path / "transformer").is_dir()):
        return False
    return {p.name for p in path.iterdir()} == {"tokenizer", "transformer"} and all(
        _is_slim_run(path / name) for name in ("tokenizer", "transformer"))


def _is_slim_run(run: Path) -> bool:
    """Only config.yaml and checkpoints/{latest, step_*/*.safetensors}: what `_slim_copy` writes."""
    if not run.is_dir() or {p.name for p in run.iterdir()} != {"config.yaml", "checkpoints"}:
        return False
    for entry in (run / "checkpoints").iterdir():
        if entry.name == "latest" and entry.is_file():
            continue
        if not (entry.is_dir() and entry.name.startswith("step_")):
            return False
        if any(not (f.is_file() and f.suffix == ".safetensors") for f in entry.iterdir()):
            return False
    return True


def check_replaceable(out: Path) -> None:
    """Refuse an `out` that holds anything but an earlier bundle (a store, a run, your files)."""
    if not out.exists() and not out.is_symlink():
        return
    if out.is_symlink() or not out.is_dir():
        raise UserError(f"--out {out} exists and is not a bundle directory; delete it yourself or choose another --out")
    if any(out.iterdir()) and not is_bundle(out):
        raise UserError(f"--out {out} exists and is not a bundle written by `maskvit export`; "
                        "delete it yourself to replace it, or choose another --out")


def _share(root: Path) -> None:
    """0755 folders and 0644 files (mkdtemp makes 0700; copies keep their source's mode)."""
    os.chmod(root, 0o755)
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            os.chmod(Path(folder) / name, 0o755)
        for name in files:
            os.chmod(Path(folder) / name, 0o644)


def _swap_in(tmp: Path, out: Path) -> None:
    """Put the finished `tmp` at `out`: an earlier bundle there is renamed aside, `tmp`
    renamed in, then the earlier one deleted (see `recover_bundle` for a crash between)."""
    if not out.exists():
        os.rename(tmp, out)
        fsync_dir(out.parent)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}{OLD_INFIX}", dir=out.parent))
    old.rmdir()
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        os.rename(old, out)
        raise
    fsync_dir(out.parent)
    shutil.rmtree(old, ignore_errors=True)
