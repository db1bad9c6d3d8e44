"""The run directory, read and written here only: config, checkpoints, sources, `latest`.

The trainer writes runs and inference reads them; both go through this module, so
inference (the Predictor, the tokenizer, the server) never imports the trainer.

Layout (what `load_run`, the Predictor and `maskvit plan` rely on)::

    RUN/
      config.yaml                    resolved `Config` of the run (YAML)
      sources.json                   transformer runs: the token cache and the tokenizer
                                     checkpoint (run, step, weight fingerprint) it came from
      metrics.jsonl                  one JSON object per logged step / validation
      tb/                            TensorBoard event files
      checkpoints/
        step_00001000/
          model.safetensors          weights of each trained module, by module name
          model.ema.safetensors      its EMA weights (only when train.ema_decay is set)
          state.safetensors          trainer-state tensors: optimizer moments, RNG states
          state.json                 the rest of the trainer state (step, data position,
                                     numpy/python RNG states, ...) referring to those tensors
        step_00002000/ ...
        latest                       name of the newest complete checkpoint

A checkpoint is written into a hidden temporary folder and renamed into place, then
`latest` is replaced (temp file + rename); a crash at any moment leaves the previous
checkpoint intact and `latest` pointing at a complete one. Only the newest
`keep_checkpoints` are kept. Files are 0644 and folders 0755, like every other output.

Nothing here is unpickled: the trainer state is safetensors + JSON, so a crafted run
directory cannot run code. Runs written before this format kept the trainer state in a
pickle (`state.pt`); their weights still load (`load_run`), `--resume` refuses them.
A damaged checkpoint raises `CheckpointError` naming the file; `--resume` then falls back
to the newest intact one (see `Trainer`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from maskvit.atomic import atomic_write_text, fsync_dir
from maskvit.config import Config, config_to_dict, diff_configs, flatten, load_config
from maskvit.errors import UserError

CONFIG_FILE = "config.yaml"
CHECKPOINTS = "checkpoints"
LATEST = "latest"
STATE_TENSORS = "state.safetensors"
STATE_JSON = "state.json"
LEGACY_STATE = "state.pt"  # the pickle older versions wrote; never loaded
STATE_FORMAT = "maskvit-trainer-state"
STATE_VERSION = 1
FILE_MODE, DIR_MODE = 0o644, 0o755
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


class CheckpointError(UserError):
    """A checkpoint that cannot be read back (truncated, garbage, incomplete)."""


class LegacyCheckpointError(UserError):
    """A checkpoint whose trainer state is an old pickle (`state.pt`), which we never load."""


# ------------------------------------------------------------------ atomic file writes


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


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


def run_modules(out: Path) -> set[str]:
    """The modules the run's latest checkpoint holds ({"model"}: a transformer run;
    {"vqgan", ...}: a tokenizer run); empty before its first checkpoint."""
    ckpt_dir = latest_checkpoint(out)
    if ckpt_dir is None:
        return set()
    return {f.name.removesuffix(".safetensors") for f in ckpt_dir.glob("*.safetensors")
            if f.name != STATE_TENSORS and not f.name.endswith(".ema.safetensors")}


def check_resume_config(saved: Config, requested: Config, where: Path) -> None:
    """Refuse to continue a run whose maths would change; name every differing field."""
    differing = [k for k in diff_configs(saved, requested) if k not in RESUMABLE_CHANGES]
    if not differing:
        return
    a, b = flatten(config_to_dict(saved)), flatten(config_to_dict(requested))
    shown = ", ".join(f"{k} ({a.get(k)!r} in the run, {b.get(k)!r} requested)"
                      for k in differing[:6])
    more = f" and {len(differing) - 6} more" if len(differing) > 6 else ""
    raise UserError(
        f"config of {where} differs in {shown}{more}; resume with the run's own config "
        f"(drop --preset/--set) or start a new --out"
    )


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
                _save_tensors(sd, tmp / f"{_module_file(name)}.safetensors")
            for name, sd in ema.items():
                _save_tensors(sd, tmp / f"{_module_file(name)}.ema.safetensors")
            _save_state({**state, "step": step}, tmp)
            for f in tmp.iterdir():
                os.chmod(f, FILE_MODE)
                _fsync_file(f)
            os.chmod(tmp, DIR_MODE)  # mkdtemp makes 0700 folders; outputs are shared
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        fsync_dir(root)
    atomic_write_text(root / LATEST, final.name + "\n")
    for old in checkpoint_dirs(out)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _module_file(name: str) -> str:
    if name == "state" or "/" in name or name.startswith("."):
        raise ValueError(f"module name {name!r} cannot be checkpointed (reserved or a path)")
    return name


def _save_tensors(sd: dict[str, torch.Tensor], path: Path) -> None:
    # Clone: safetensors refuses tensors sharing storage (tied weights) or non-contiguous.
    save_file({k: v.detach().to("cpu").contiguous().clone() for k, v in sd.items()}, str(path))


# ------------------------------------------------------ trainer state: safetensors + JSON
#
# The state is nested plain data with tensors inside (optimizer state dicts, RNG states).
# Tensors go to state.safetensors under "t0", "t1", ...; the structure goes to state.json,
# where a few tagged objects stand for what JSON lacks: {"__tensor__": key},
# {"__ndarray__": [...], "dtype": "<u4"}, {"__tuple__": [...]}, {"__items__": [[k, v]]}
# (a dict with non-string keys). Reading builds only these types: no code runs.

_TAGS = ("__tensor__", "__ndarray__", "__tuple__", "__items__")
_ARRAY_KINDS = "biuf"  # numpy dtypes a state may hold (bool, integers, floats)


def _save_state(state: dict[str, Any], folder: Path) -> None:
    tensors: dict[str, torch.Tensor] = {}
    doc = {"format": STATE_FORMAT, "version": STATE_VERSION,
           "state": _encode(state, tensors)}
    _save_tensors(tensors, folder / STATE_TENSORS)
    (folder / STATE_JSON).write_text(json.dumps(doc))


def _encode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = value
        return {"__tensor__": key}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and not any(t in value for t in _TAGS):
            return {k: _encode(v, tensors) for k, v in value.items()}
        return {"__items__": [[_encode(k, tensors), _encode(v, tensors)]
                              for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, tensors) for v in value]}
    if isinstance(value, list):
        return [_encode(v, tensors) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot checkpoint a {type(value).__name__} in the trainer state")


def _decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tensor__" in value:
        return tensors[value["__tensor__"]]
    if "__ndarray__" in value:
        dtype = np.dtype(value["dtype"])
        if dtype.kind not in _ARRAY_KINDS:
            raise ValueError(f"array of dtype {dtype} in the trainer state")
        return np.array(value["__ndarray__"], dtype=dtype)
    if "__tuple__" in value:
        return tuple(_decode(v, tensors) for v in value["__tuple__"])
    if "__items__" in value:
        return {_decode(k, tensors): _decode(v, tensors) for k, v in value["__items__"]}
    return {k: _decode(v, tensors) for k, v in value.items()}


def _load_state(folder: Path) -> dict[str, Any]:
    """The trainer state of a checkpoint folder; `CheckpointError` if it is damaged."""
    doc_file, tensor_file = folder / STATE_JSON, folder / STATE_TENSORS
    if not doc_file.is_file() and (folder / LEGACY_STATE).is_file():
        raise LegacyCheckpointError(
            f"{folder} was written by an older maskvit: its trainer state is a pickle "
            f"({LEGACY_STATE}), which is never loaded (it could run code); start a new run "
            f"with another --out (the weights of this run still load: maskvit predict / "
            f"evaluate / export --model {folder.parent.parent})")
    tensors = read_tensors(tensor_file)
    try:
        doc = json.loads(doc_file.read_text())
        if doc.get("format") != STATE_FORMAT or doc.get("version") != STATE_VERSION:
            raise ValueError(f"format {doc.get('format')!r} version {doc.get('version')!r}")
        state = _decode(doc["state"], tensors)
        if not isinstance(state, dict):
            raise ValueError("not a mapping")
    except FileNotFoundError:
        raise CheckpointError(f"{doc_file} is missing") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise CheckpointError(f"{doc_file} is damaged ({_reason(err)})") from None
    return state


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file, or `CheckpointError` naming it when it is missing or damaged."""
    if not path.is_file():
        raise CheckpointError(f"{path} is missing")
    try:
        return load_file(str(path))
    except Exception as err:  # noqa: BLE001 - SafetensorError, OSError: the file is bad
        raise CheckpointError(f"{path} is damaged ({_reason(err)})") from None


def _reason(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


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
    """Read a checkpoint folder written by `save_checkpoint`.

    Raises `CheckpointError` (a one-line `UserError` naming the file) for a damaged
    file, `LegacyCheckpointError` when `with_state` asks for an old pickled state.
    """
    weights, ema = {}, {}
    for f in sorted(path.glob("*.safetensors")):
        if f.name == STATE_TENSORS:
            continue
        if f.name.endswith(".ema.safetensors"):
            ema[f.name[: -len(".ema.safetensors")]] = read_tensors(f)
        else:
            weights[f.name[: -len(".safetensors")]] = read_tensors(f)
    state: dict[str, Any] = _load_state(path) if with_state else {}
    m = _STEP_DIR.match(path.name)
    step = int(m.group(1)) if m else int(state.get("step", -1))
    return Checkpoint(path=path, step=step, weights=weights, ema=ema, state=state)


def resume_candidates(out: Path) -> list[Path]:
    """Checkpoints to try when resuming: the one `latest` names, then older ones, newest first."""
    first = latest_checkpoint(out)
    if first is None:
        return []
    return [first] + [p for p in reversed(checkpoint_dirs(out)) if p != first]


def set_aside(path: Path) -> Path | None:
    """Rename a damaged checkpoint out of the way (kept, not deleted: nothing is lost).

    Without this a resumed run reaching that step again would keep the damaged folder
    (`save_checkpoint` never rewrites an existing step) and point `latest` at it.
    """
    target = path.with_name(f"damaged-{path.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        os.replace(path, target)
    except OSError:
        return None
    return target


def checkpoint_path(out: Path, step: int | None = None) -> Path:
    """The folder of checkpoint `step` of run `out` (None: the latest); one-line errors."""
    if step is None:
        ckpt_dir = latest_checkpoint(out)
        if ckpt_dir is None:
            raise UserError(f"{out} has no checkpoint yet")
        return ckpt_dir
    ckpt_dir = out / CHECKPOINTS / f"step_{step:08d}"
    if not ckpt_dir.is_dir():
        raise UserError(f"{out} has no checkpoint at step {step}; available: "
                        f"{available_steps(out)}")
    return ckpt_dir


def available_steps(out: Path) -> str:
    """The steps of the complete checkpoints of `out`, for messages ("none" if none)."""
    return ", ".join(str(int(p.name[5:])) for p in checkpoint_dirs(out)) or "none"


def checkpoint_step(path: Path) -> int:
    """The step of a checkpoint folder (from its name, step_NNNNNNNN)."""
    m = _STEP_DIR.match(path.name)
    if not m:
        raise ValueError(f"{path} is not a checkpoint folder")
    return int(m.group(1))


def load_run(path: str | Path, module: str = "model", step: int | None = None
             ) -> tuple[Config, dict[str, torch.Tensor], dict[str, torch.Tensor] | None]:
    """Load a trained module from a run directory: (config, state_dict, ema_state_dict).

    `module` names the trained module ("model" for the transformer; the tokenizer task
    names its own). `step=None` takes the latest checkpoint. The EMA state dict is None
    when the run kept no EMA. Reads only safetensors (never the trainer state), so runs
    of every version load.
    """
    out = Path(path)
    if not out.is_dir():
        raise UserError(f"run directory not found: {out}")
    config = read_run_config(out)
    ckpt_dir = checkpoint_path(out, step)
    try:
        ckpt = load_checkpoint(ckpt_dir, with_state=False)
    except CheckpointError as err:
        raise CheckpointError(f"{err}; checkpoints of {out}: steps {available_steps(out)}"
                              ) from None
    if module not in ckpt.weights:
        raise UserError(f"{ckpt_dir} holds no module {module!r}; it has: "
                        f"{', '.join(sorted(ckpt.weights)) or 'nothing'}")
    return config, ckpt.weights[module], ckpt.ema.get(module)


# What a module's tensors say about the config fields that shape them: (field, tensor,
# axis); axis None counts the numbered blocks under that name. A config.yaml edited (or
# copied from another run) after training shows up here as a named field, not as a
# load_state_dict traceback.
_WEIGHT_FACTS: dict[str, tuple[tuple[str, str, int | None], ...]] = {
    "model": (("transformer.depth", "blocks", None),
              ("transformer.dim", "token_embedding.weight", 1),
              ("transformer.codebook_size", "head.weight", 0),
              ("transformer.heads", "blocks.0.spatial.attn.bias.table", 1),
              ("transformer.mlp_dim", "blocks.0.spatial.mlp.fc1.weight", 0),
              ("transformer.num_frames", "temporal_position", 0),
              ("transformer.tokens_h × tokens_w", "spatial_position", 0),
              ("transformer.action_dim", "action_projection.weight", 1)),
    "vqgan": (("tokenizer.codebook_size", "quantizer.codebook", 0),
              ("tokenizer.code_dim", "quantizer.codebook", 1),
              ("tokenizer.channels", "encoder.conv_in.weight", 0)),
}


def _weight_fact(weights: dict[str, torch.Tensor], tensor: str, axis: int | None) -> int | None:
    if axis is None:
        found = {int(m.group(1)) for key in weights if (m := re.match(rf"{re.escape(tensor)}\.(\d+)\.", key))}
        return len(found) if found else None
    value = weights.get(tensor)
    return int(value.shape[axis]) if value is not None and value.dim() > axis else None


def describe_weight_mismatch(module_name: str, expected: dict[str, torch.Tensor],
                             found: dict[str, torch.Tensor]) -> str:
    """How weights `found` differ from what a module built from the config `expects`
    (empty when they fit): config fields first, else the first tensors that differ."""
    facts = []
    for field, tensor, axis in _WEIGHT_FACTS.get(module_name, ()):
        want, have = _weight_fact(expected, tensor, axis), _weight_fact(found, tensor, axis)
        if want != have:
            facts.append(f"{field} is {want or 0} in config.yaml but {have or 0} in the weights")
    if facts:
        return "; ".join(facts[:3]) + (f"; and {len(facts) - 3} more" if len(facts) > 3 else "")
    missing = sorted(expected.keys() - found.keys())
    unexpected = sorted(found.keys() - expected.keys())
    shapes = [f"{k} is {tuple(expected[k].shape)} for config.yaml but {tuple(found[k].shape)} in "
              f"the weights" for k in sorted(expected.keys() & found.keys())
              if expected[k].shape != found[k].shape]
    parts = ([f"the weights lack {missing[0]}" + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")]
             if missing else [])
    parts += ([f"the weights hold {unexpected[0]}, which config.yaml does not make"
               + (f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else "")]
              if unexpected else [])
    return "; ".join(parts + shapes[:2])


def load_weights(module: torch.nn.Module, weights: dict[str, torch.Tensor], run: Path,
                 config: Config, module_name: str) -> None:
    """`module.load_state_dict(weights)`, or a one-line `UserError` saying which config
    fields of the run's config.yaml disagree with its weights."""
    mismatch = describe_weight_mismatch(module_name, module.state_dict(), weights)
    if mismatch:
        raise UserError(f"{run}: its config.yaml (preset {config.name}) does not match its "
                        f"weights: {mismatch}; restore the run's own config.yaml")
    module.load_state_dict(weights)


def tokenizer_step(path: str | Path, step: int | None = None) -> int:
    """The exact checkpoint step `load_vqgan(path, step=step)` reads (None: the latest now).

    `maskvit tokenize` records it, so later stages load that checkpoint and no other.
    """
    run = Path(path)
    if not run.is_dir():
        raise UserError(f"run directory not found: {run}")
    return checkpoint_step(checkpoint_path(run, step))


# ---------------------------------------------------------------- sources.json
# What a transformer run was trained on (written by `maskvit train`), so that
# `Predictor.from_run(RUN)` loads exactly the tokenizer that made its tokens.

SOURCES_FILE = "sources.json"  # written by `maskvit train`: where the tokens came from


def read_sources(model_run: Path) -> dict[str, Any]:
    """RUN/sources.json as a dict ({} when the run has none or it is unreadable)."""
    path = Path(model_run) / SOURCES_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def tokenizer_run_of(model_run: Path) -> Path:
    """The tokenizer run a transformer run was trained on (recorded by `maskvit train`)."""
    recorded = read_sources(model_run).get("tokenizer")
    if recorded and Path(recorded).is_dir():
        return Path(recorded)
    if recorded:
        raise UserError(f"{model_run} was trained on tokens of the tokenizer run {recorded}, "
                        "which no longer exists; pass --tokenizer RUN")
    raise UserError(f"{model_run} does not say which tokenizer made its tokens "
                    f"(no {SOURCES_FILE}); pass --tokenizer RUN")


def tokenizer_step_of(model_run: Path, tokenizer_run: Path) -> int | None:
    """The tokenizer checkpoint step that made the run's tokens (None: the latest).

    The recorded step when `tokenizer_run` has it; a one-line error when it is the
    recorded run and that checkpoint is gone. Old runs recorded no step: the latest.
    """
    sources = read_sources(model_run)
    step = sources.get("tokenizer_step")
    if not isinstance(step, int) or isinstance(step, bool):
        return None
    if (tokenizer_run / CHECKPOINTS / f"step_{step:08d}").is_dir():
        return step
    recorded = sources.get("tokenizer")
    if recorded and Path(recorded).resolve() == tokenizer_run.resolve():
        raise UserError(f"{model_run} was trained on tokens of {tokenizer_run} at step {step}, "
                        f"but that checkpoint is gone (it has steps "
                        f"{available_steps(tokenizer_run)}); restore it or pass --tokenizer "
                        f"with a copy of it")
    return None  # another run (a copy or a bundle): its fingerprint must match


def check_tokenizer(model_run: Path, tokenizer_run: Path, tokenizer: Any) -> None:
    """Refuse a tokenizer whose weights differ from the one that made the run's tokens."""
    sources = read_sources(model_run)
    expected = sources.get("tokenizer_fingerprint")
    if expected and tokenizer.fingerprint() != expected:
        raise UserError(f"tokenizer {tokenizer_run} differs from the one that made the tokens "
                        f"of {model_run} ({sources.get('tokenizer')} at step "
                        f"{sources.get('tokenizer_step')}); pass --tokenizer with that run")


def state_fingerprint(weights: dict[str, torch.Tensor]) -> str:
    """Short hash of a state dict: tells whether two runs started from the same weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(weights.items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def check_init_source(out: Path, init_from: str | None, fingerprint: str | None, what: str) -> None:
    """A resumed run must name the weights it started from (`--init-from`, the same by
    fingerprint), or none if it started from random weights: its early checkpoints and its
    late ones then come from one start, never two."""
    before = read_sources(out)
    if init_from is None:
        if before.get("init_fingerprint"):
            raise UserError(f"{out} was started from the {what} {before.get('init_from')}; "
                            f"resume with --init-from {before.get('init_from')}")
        return
    if before and not before.get("init_fingerprint"):
        raise UserError(f"{out} was started from random weights; resume it without --init-from")
    if before.get("init_fingerprint") not in (None, fingerprint):
        raise UserError(f"{out} was started from the {what} {before.get('init_from')}; --init-from "
                        f"{init_from} holds other weights: resume with the run's own start")


def check_sources(out: Path, sources: dict[str, Any]) -> None:
    """A resumed run must go on training on codes of the same tokenizer checkpoint, and on
    the same set of token caches where it pooled several."""
    before = read_sources(out)
    old_caches, new_caches = before.get("token_caches"), sources.get("token_caches")
    if before and (old_caches or new_caches) and old_caches != new_caches:
        recorded = old_caches or [before.get("token_cache")]
        raise UserError(f"{out} was trained on the token caches {', '.join(map(str, recorded))}; "
                        "resume it with the same --data (the same caches, in the same order)")
    old, new = before.get("tokenizer_fingerprint"), sources.get("tokenizer_fingerprint")
    if old and new and old != new:
        raise UserError(
            f"{out} was trained on tokens of tokenizer {before.get('tokenizer')} step "
            f"{before.get('tokenizer_step')}, but --data holds tokens of "
            f"{sources.get('tokenizer')} step {sources.get('tokenizer_step')}; resume with "
            f"the run's own token cache ({before.get('token_cache')})")


def record_sources(out: Path, sources: dict[str, Any]) -> None:
    """Write RUN/sources.json: the token cache and the tokenizer checkpoint that made it, so
    that `Predictor.from_run(RUN)` loads exactly that tokenizer without being told."""
    atomic_write_text(out / SOURCES_FILE, json.dumps(sources, indent=1) + "\n")
