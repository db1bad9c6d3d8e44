"""The shipped reference model, and how a bundle of trained runs is made.

A bundle is a directory with `tokenizer/` and `transformer/` runs holding only what
inference needs: each run's config.yaml and one checkpoint with its weights (the EMA
weights when the run kept them), no optimizer state. `Predictor.from_run` reads bundles.
`maskvit predict`, `evaluate` and `plan` use the shipped push64 bundle when no --model
is given; `benchmarks/reference_push64.sh` regenerates it from scratch.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from maskvit.errors import UserError

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


def _slim_copy(run: Path, out: Path) -> None:
    """config.yaml + the latest checkpoint's weights (EMA preferred) of `run`, into `out`."""
    from safetensors.torch import save_file

    from maskvit.train.checkpoint import (
        CHECKPOINTS,
        CONFIG_FILE,
        LATEST,
        latest_checkpoint,
        load_checkpoint,
    )

    ckpt_dir = latest_checkpoint(run)
    if ckpt_dir is None:
        raise UserError(f"{run} has no checkpoint to export")
    ckpt = load_checkpoint(ckpt_dir, with_state=False)
    target = out / CHECKPOINTS / ckpt_dir.name
    target.mkdir(parents=True)
    shutil.copy2(run / CONFIG_FILE, out / CONFIG_FILE)
    for name, weights in ckpt.weights.items():
        save_file(ckpt.ema.get(name, weights), str(target / f"{name}.safetensors"))
    (out / CHECKPOINTS / LATEST).write_text(ckpt_dir.name + "\n")


def export_bundle(model_run: str | Path, out: str | Path, tokenizer_run: str | Path | None = None) -> Path:
    """Write the inference-only bundle of a transformer run and its tokenizer run to `out`.

    Written into a temporary folder and moved into place, so `out` is either complete or
    absent; an existing `out` is replaced.
    """
    from maskvit.predictor import tokenizer_run_of

    model_run, out = Path(model_run), Path(out)
    if not model_run.is_dir():
        raise UserError(f"model run directory not found: {model_run}")
    tokenizer_run = Path(tokenizer_run) if tokenizer_run else tokenizer_run_of(model_run)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _slim_copy(model_run, tmp / "transformer")
        _slim_copy(tokenizer_run, tmp / "tokenizer")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
