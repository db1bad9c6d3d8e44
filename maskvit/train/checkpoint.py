"""The run directory: resolved config, logs and atomically written checkpoints.

Layout (what `load_run`, the Predictor and `maskvit plan` rely on)::

    RUN/
      config.yaml                    resolved `Config` of the run (YAML)
      metrics.jsonl                  one JSON object per logged step / validation
      tb/                            TensorBoard event files
      checkpoints/
        step_00001000/
          model.safetensors          weights of each trained module, by module name
          model.ema.safetensors      its EMA weights (only when train.ema_decay is set)
          state.pt                   optimizers, step, data position, RNG of every rank
        step_00002000/ ...
        latest                       name of the newest complete checkpoint

A checkpoint is written into a hidden temporary folder and renamed into place, then
`latest` is replaced (temp file + rename); a crash at any moment leaves the previous
checkpoint intact and `latest` pointing at a complete one. Only the newest
`keep_checkpoints` are kept.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from maskvit.atomic import atomic_write_text
from maskvit.config import Config, config_to_dict, diff_configs, load_config, save_config
from maskvit.errors import UserError

CONFIG_FILE = "config.yaml"
CHECKPOINTS = "checkpoints"
LATEST = "latest"
STATE_FILE = "state.pt"
_STEP_DIR = re.compile(r"^step_(\d+)$")

# Fields that may change between a run and its resumption without changing the maths
# (grad_accum: the global batch, and so the update, stays the same).
RESUMABLE_CHANGES = {
    "train.log_every", "train.val_every", "train.checkpoint_every", "train.keep_checkpoints",
    "train.num_workers", "train.compile", "train.val_batches", "train.grad_accum",
    "tokenizer_train.log_every", "tokenizer_train.val_every",
    "tokenizer_train.checkpoint_every", "tokenizer_train.keep_checkpoints",
    "tokenizer_train.num_workers", "tokenizer_train.compile", "tokenizer_train.val_batches",
    "tokenizer_train.grad_accum",
}


@dataclass
class Checkpoint:
    """One checkpoint read back from disk."""

    path: Path
    step: int
    weights: dict[str, dict[str, torch.Tensor]]  # module name -> state dict
    ema: dict[str, dict[str, torch.Tensor]]  # module name -> EMA state dict (may be empty)
    state: dict[str, Any]  # optimizers, data position, rng, task state


# ------------------------------------------------------------------ atomic file writes


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def write_text_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` so readers see the old or the new file, never half."""
    atomic_write_text(path, text)
    _fsync_dir(path.parent)


def save_config_atomic(config: Config, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{path.name}-")
    os.close(fd)
    try:
        save_config(config, tmp)
        _fsync_file(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ------------------------------------------------------------------------ run folder


def check_writable(out: Path) -> None:
    """Create `out` if needed and prove we can write there (one-line error otherwise)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".tmp-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise UserError(f"cannot write to output directory {out}: {err.strerror}") from None


def has_run(out: Path) -> bool:
    return (out / CONFIG_FILE).is_file() or (out / CHECKPOINTS).is_dir()


def check_resume_config(saved: Config, requested: Config, where: Path) -> None:
    """Refuse to continue a run whose maths would change; name every differing field."""
    differing = [k for k in diff_configs(saved, requested) if k not in RESUMABLE_CHANGES]
    if not differing:
        return
    a, b = _flat(config_to_dict(saved)), _flat(config_to_dict(requested))
    shown = ", ".join(f"{k} ({a.get(k)!r} in the run, {b.get(k)!r} requested)"
                      for k in differing[:6])
    more = f" and {len(differing) - 6} more" if len(differing) > 6 else ""
    raise UserError(
        f"config of {where} differs in {shown}{more}; resume with the run's own config "
        f"(drop --preset/--set) or start a new --out"
    )


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def read_run_config(out: Path) -> Config:
    path = out / CONFIG_FILE
    if not path.is_file():
        raise UserError(f"{out} holds no run ({CONFIG_FILE} missing)")
    return load_config(path)


# ------------------------------------------------------------------------ checkpoints


def checkpoint_dirs(out: Path) -> list[Path]:
    """Complete checkpoints, oldest first (temporary folders are never listed)."""
    root = out / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir()
             if p.is_dir() and (m := _STEP_DIR.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(out: Path) -> Path | None:
    """The checkpoint `latest` names, or the newest complete one if `latest` is stale."""
    root = out / CHECKPOINTS
    pointer = root / LATEST
    if pointer.is_file():
        candidate = root / pointer.read_text().strip()
        if candidate.is_dir() and _STEP_DIR.match(candidate.name):
            return candidate
    dirs = checkpoint_dirs(out)
    return dirs[-1] if dirs else None


def save_checkpoint(out: Path, step: int, weights: dict[str, dict[str, torch.Tensor]],
                    ema: dict[str, dict[str, torch.Tensor]], state: dict[str, Any],
                    keep: int) -> Path:
    """Write checkpoint `step` atomically, point `latest` at it, prune to `keep`."""
    root = out / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:08d}"
    if not final.exists():
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".tmp-{final.name}-"))
        try:
            for name, sd in weights.items():
                _save_tensors(sd, tmp / f"{name}.safetensors")
            for name, sd in ema.items():
                _save_tensors(sd, tmp / f"{name}.ema.safetensors")
            torch.save({**state, "step": step}, tmp / STATE_FILE)
            for f in tmp.iterdir():
                _fsync_file(f)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _fsync_dir(root)
    write_text_atomic(root / LATEST, final.name + "\n")
    for old in checkpoint_dirs(out)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _save_tensors(sd: dict[str, torch.Tensor], path: Path) -> None:
    # Clone: safetensors refuses tensors sharing storage (tied weights) or non-contiguous.
    save_file({k: v.detach().to("cpu").contiguous().clone() for k, v in sd.items()}, str(path))


def remove_stale_temporaries(out: Path) -> None:
    """Delete half-written checkpoint folders left by a crash."""
    root = out / CHECKPOINTS
    if root.is_dir():
        for p in root.iterdir():
            if not p.name.startswith(".tmp-"):
                continue
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


def load_checkpoint(path: Path, *, with_state: bool = True) -> Checkpoint:
    """Read a checkpoint folder written by `save_checkpoint`."""
    weights, ema = {}, {}
    for f in sorted(path.glob("*.safetensors")):
        if f.name.endswith(".ema.safetensors"):
            ema[f.name[: -len(".ema.safetensors")]] = load_file(str(f))
        else:
            weights[f.name[: -len(".safetensors")]] = load_file(str(f))
    state: dict[str, Any] = {}
    if with_state:
        # Our own file (RNG states hold numpy objects), so weights_only is off.
        state = torch.load(path / STATE_FILE, map_location="cpu", weights_only=False)
    m = _STEP_DIR.match(path.name)
    step = int(m.group(1)) if m else int(state.get("step", -1))
    return Checkpoint(path=path, step=step, weights=weights, ema=ema, state=state)


def load_run(path: str | Path, module: str = "model", step: int | None = None
             ) -> tuple[Config, dict[str, torch.Tensor], dict[str, torch.Tensor] | None]:
    """Load a trained module from a run directory: (config, state_dict, ema_state_dict).

    `module` names the trained module ("model" for the transformer; the tokenizer task
    names its own). `step=None` takes the latest checkpoint. The EMA state dict is None
    when the run kept no EMA.
    """
    out = Path(path)
    if not out.is_dir():
        raise UserError(f"run directory not found: {out}")
    config = read_run_config(out)
    if step is None:
        ckpt_dir = latest_checkpoint(out)
        if ckpt_dir is None:
            raise UserError(f"{out} has no checkpoint yet")
    else:
        ckpt_dir = out / CHECKPOINTS / f"step_{step:08d}"
        if not ckpt_dir.is_dir():
            have = ", ".join(str(int(p.name[5:])) for p in checkpoint_dirs(out)) or "none"
            raise UserError(f"{out} has no checkpoint at step {step}; available: {have}")
    ckpt = load_checkpoint(ckpt_dir, with_state=False)
    if module not in ckpt.weights:
        raise UserError(f"{ckpt_dir} holds no module {module!r}; it has: "
                        f"{', '.join(sorted(ckpt.weights))}")
    return config, ckpt.weights[module], ckpt.ema.get(module)
