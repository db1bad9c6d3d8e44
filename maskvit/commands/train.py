"""`maskvit train`: train the MaskViT transformer from a token cache.

examples:
  maskvit train --preset push64 --data TOKENS --out RUN
  maskvit train --data TOKENS --out RUN --resume          # continue after a stop
  torchrun --nproc_per_node 2 -m maskvit train --preset push64 --data TOKENS --out RUN
  # multi-node, RUN on a filesystem that every node shares:
  torchrun --nnodes 2 --nproc_per_node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 -m maskvit train ...

The global batch stays train.batch_size whatever the number of processes (per-process
batch × grad_accum × processes). Ctrl-C / SIGTERM finishes the step, saves a checkpoint
and exits with 130; --resume then continues exactly.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from maskvit.commands import command_parser
from maskvit.config import Config, apply_overrides, load_preset
from maskvit.errors import UserError
from maskvit.run_dir import check_sources, record_sources
from maskvit.train.distributed import DistEnv


def add_run_arguments(p: argparse.ArgumentParser, data_help: str, set_example: str,
                      several_data: bool = False) -> None:
    """The options every training command shares (train, train-tokenizer)."""
    p.add_argument("--preset", help="preset name or YAML file (default: the run's own "
                   "config when resuming, else push64)")
    if several_data:
        p.add_argument("--data", required=True, nargs="+", action="extend", metavar="DATA", help=data_help)
    else:
        p.add_argument("--data", required=True, help=data_help)
    p.add_argument("--out", required=True, help="run directory (created; never overwritten)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its latest checkpoint")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help=f"override a config field, e.g. --set {set_example} (repeatable)")
    p.add_argument("--max-steps", type=int, default=None,
                   help="stop after this many steps in total (lr schedule unchanged)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = command_parser(subparsers, "train", "train the transformer from a token cache (torchrun for DDP)", __doc__)
    add_run_arguments(p, data_help="token cache directory (maskvit tokenize); several: their "
                      "clips are pooled (codes of one tokenizer)", set_example="train.lr=1e-4",
                      several_data=True)
    p.add_argument("--init-from", default=None, metavar="MODEL",
                   help="start from this transformer's weights (a train run or a bundle) instead "
                        "of random ones: fine-tuning. Its architecture must be the preset's and "
                        "its tokens the same tokenizer's; a resumed run names the same one")
    p.set_defaults(func=run)


@dataclass(frozen=True)
class RunKind:
    """What a training command makes: the module its checkpoints hold, named for messages."""

    module: str  # the task's module name in every checkpoint
    name: str  # "transformer", "tokenizer"
    command: str  # the `maskvit` subcommand that trains it


TRANSFORMER_RUN = RunKind("model", "transformer", "train")


def resolve_config(out: Path, preset: str | None, overrides: list[str], resume: bool,
                   kind: RunKind = TRANSFORMER_RUN) -> Config:
    """The config to train with; for --resume it must match the run's saved one."""
    from maskvit.run_dir import check_resume_config, read_run_config

    check_run_folder(out, resume, kind)
    if resume:
        saved = read_run_config(out)
        requested = load_preset(preset, overrides) if preset else apply_overrides(saved, overrides)
        check_resume_config(saved, requested, out)
        return requested
    return load_preset(preset or "push64", overrides)


def check_run_folder(out: Path, resume: bool, kind: RunKind) -> None:
    """A run goes into a new or empty folder, or continues (--resume) a run of its own kind;
    never into a store, a token cache or someone's files, whose later `--overwrite` would
    take the run with it."""
    from maskvit.outputs import folder_kind
    from maskvit.run_dir import has_run, run_modules

    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; choose a directory")
    if not out.is_dir() or not any(out.iterdir()):
        if resume:
            raise UserError(f"nothing to resume in {out}; drop --resume to start a new run")
        return
    found = folder_kind(out)
    if found not in (None, "training run") or not has_run(out):
        what = f"{'an' if found[0] in 'aeiou' else 'a'} {found}" if found else "not empty and holds no run"
        raise UserError(f"--out {out} is {what}; a run goes into a new or empty folder (or "
                        f"continues a run with --resume): choose another --out")
    if not resume:
        raise UserError(f"{out} already holds a run; pass --resume to continue it or choose "
                        f"a new --out")
    modules = run_modules(out)
    if modules and kind.module not in modules:
        raise UserError(f"{out} is not a {kind.name} run (its checkpoints hold "
                        f"{', '.join(sorted(modules))}); `maskvit {kind.command} --resume` "
                        f"continues only {kind.name} runs: choose the right --out")


def open_token_data(paths: Path | list[Path], config: Config):
    """Train and validation clip datasets from one token cache, or several pooled, checked
    against the config (and, when several, against each other's tokenizer: `token_sources`).
    Validation reads the first `train.val_batches` batches of the pooled val split, the first
    cache's clips first: name the cache whose validation loss should be followed first.
    `train.data_repeats` pools each cache's training clips that many times."""
    from torch.utils.data import ConcatDataset

    paths = [paths] if isinstance(paths, Path) else list(paths)
    repeats = list(config.train.data_repeats) or [1] * len(paths)
    if len(repeats) != len(paths):
        raise UserError(f"train.data_repeats has {len(repeats)} numbers for {len(paths)} --data "
                        f"cache{'s' if len(paths) > 1 else ''}: give one per cache, in --data's order")
    parts = [_open_one_cache(path, config) for path in paths]
    if len(parts) == 1 and repeats == [1]:
        return parts[0]
    vals = [val for _, val in parts if val is not None]
    trains = [train for (train, _), times in zip(parts, repeats, strict=True) for _ in range(times)]
    return ConcatDataset(trains), (ConcatDataset(vals) if vals else None)


def _open_one_cache(path: Path, config: Config):
    from maskvit.data import TokenCache, TokenClipDataset

    if not path.is_dir():
        raise UserError(f"data directory not found: {path}")
    cache = TokenCache.open(path)
    t = config.transformer
    if cache.token_shape != (t.tokens_h, t.tokens_w):
        raise UserError(f"{path} holds {cache.token_shape[0]}×{cache.token_shape[1]} tokens per "
                        f"frame but the config expects {t.tokens_h}×{t.tokens_w}")
    if cache.codebook_size != t.codebook_size:
        raise UserError(f"{path} was tokenized with {cache.codebook_size} codes but "
                        f"transformer.codebook_size is {t.codebook_size}")
    if t.action_dim and cache.action_dim != t.action_dim:
        raise UserError(f"{path} has {cache.action_dim}-d actions but transformer.action_dim "
                        f"is {t.action_dim}")
    train = TokenClipDataset(cache, t.num_frames, "train")
    try:
        val = TokenClipDataset(cache, t.num_frames, "val")
    except UserError:
        val = None  # no validation clips in this cache: train without validation
    return train, val


def token_sources(data: Path | list[Path]) -> dict[str, Any]:
    """Where the tokens of a cache came from: the tokenizer run, its exact checkpoint step
    and a fingerprint of its weights (recorded by `maskvit tokenize`). Several caches must
    hold codes of one tokenizer (the same codebook means nothing across two); they are all
    recorded (`token_caches`), the first as `token_cache`."""
    from maskvit.data import TokenCache

    paths = [data] if isinstance(data, Path) else list(data)
    if len({path.resolve() for path in paths}) < len(paths):
        raise UserError("--data names a token cache twice; name each once (pooling a cache "
                        "twice would silently weigh its clips double)")
    found = []
    for path in paths:
        extra = TokenCache.open(path).manifest.get("extra", {})
        found.append({"token_cache": str(path.resolve()), "tokenizer": extra.get("tokenizer"),
                      "tokenizer_step": extra.get("tokenizer_step"),
                      "tokenizer_fingerprint": extra.get("tokenizer_fingerprint")})
    first = found[0]
    for other in found[1:]:
        if other["tokenizer_fingerprint"] != first["tokenizer_fingerprint"]:
            raise UserError(f"--data {paths[0]} and {other['token_cache']} hold codes of different "
                            f"tokenizers ({first['tokenizer']} step {first['tokenizer_step']}, "
                            f"{other['tokenizer']} step {other['tokenizer_step']}); tokenize both "
                            "with one tokenizer (maskvit tokenize)")
    if len(found) > 1:
        first = {**first, "token_caches": [f["token_cache"] for f in found]}
    return first


def initial_transformer_weights(out: Path, init_from: str | None, config: Config,
                                sources: dict[str, Any]) -> tuple[dict[str, torch.Tensor] | None, dict[str, str]]:
    """The transformer weights a run starts from (`--init-from`, a train run or a bundle;
    None: random) and what RUN/sources.json records of them. They must fit the preset's
    architecture and have been trained on codes of the tokenizer that made `sources`' tokens."""
    from maskvit.model import MaskViT
    from maskvit.pretrained import is_bundle
    from maskvit.run_dir import (
        check_init_source,
        describe_weight_mismatch,
        load_run,
        read_sources,
        state_fingerprint,
    )

    if init_from is None:
        check_init_source(out, None, None, "transformer")
        return None, {}
    run = Path(init_from)
    if is_bundle(run):
        tokenizer_fingerprint = _bundle_tokenizer_fingerprint(run / "tokenizer")
        run = run / "transformer"
    else:
        tokenizer_fingerprint = read_sources(run).get("tokenizer_fingerprint")
    _, weights, _ = load_run(run, module="model")
    mismatch = describe_weight_mismatch("model", MaskViT(config.transformer).state_dict(), weights)
    if mismatch:
        raise UserError(f"--init-from {init_from} is another architecture than preset {config.name} "
                        f"makes ({mismatch.replace('config.yaml', 'the preset')}); start from a "
                        "transformer of the same sizes")
    if tokenizer_fingerprint and sources.get("tokenizer_fingerprint") not in (None, tokenizer_fingerprint):
        raise UserError(f"--init-from {init_from} was trained on codes of another tokenizer than "
                        f"--data's ({sources.get('tokenizer')}); tokenize the data with the "
                        "model's own tokenizer")
    fingerprint = state_fingerprint(weights)
    check_init_source(out, init_from, fingerprint, "transformer")
    return weights, {"init_from": str(Path(init_from).resolve()), "init_fingerprint": fingerprint}


def _bundle_tokenizer_fingerprint(tokenizer_run: Path) -> str:
    from maskvit.tokenizer.vqgan import load_vqgan

    return load_vqgan(tokenizer_run).fingerprint()


@contextlib.contextmanager
def run_lock(out: Path, env: DistEnv, resume: bool, kind: RunKind = TRANSFORMER_RUN
             ) -> Iterator[None]:
    """Rank 0 holds the output lock on the run for the whole job (other ranks write
    nothing); every rank learns whether it got it, so none waits for a failed rank 0.

    Under the lock the run checks `out` again (no other job wrote there since
    `resolve_config` looked), then that `out` is writable (creating it: the last check, so
    a failed run leaves no --out behind).
    """
    from maskvit.locking import output_lock
    from maskvit.run_dir import check_writable
    from maskvit.train.distributed import all_gather_objects

    with contextlib.ExitStack() as stack:
        error = None
        if env.is_main:
            try:
                _make_parent(out)
                stack.enter_context(output_lock(out, "training run"))
                check_run_folder(out, resume, kind)
                check_writable(out)
            except UserError as err:
                error = str(err)
        if env.distributed:
            error = all_gather_objects(error, env)[0]  # rank 0's outcome, on every rank
        if error is not None:
            raise UserError(error)
        yield


def _make_parent(out: Path) -> None:
    """The folder the run (and its lock file) goes into, or a one-line error."""
    try:
        out.absolute().parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot write to output directory {out}: {err.strerror}") from None


def run(args: argparse.Namespace) -> int:
    from maskvit.train import init_distributed
    from maskvit.train.distributed import shutdown_distributed

    if args.max_steps is not None and args.max_steps < 1:
        raise UserError(f"--max-steps must be positive, got {args.max_steps}")
    out, data = Path(args.out), [Path(d) for d in args.data]
    env = init_distributed(args.device)
    try:
        config = resolve_config(out, args.preset, args.set, args.resume)
        train_data, val_data = open_token_data(data, config)
        sources = token_sources(data)
        if args.resume:
            check_sources(out, sources)
        start, start_source = initial_transformer_weights(out, args.init_from, config, sources)
        with run_lock(out, env, args.resume):
            return _train(args, config, env, (train_data, val_data), {**sources, **start_source}, start)
    finally:
        shutdown_distributed()


def _train(args: argparse.Namespace, config: Config, env: DistEnv, datasets: tuple,
           sources: dict[str, Any], start: dict[str, torch.Tensor] | None = None) -> int:
    """Build the task and trainer, record the sources, fit and report (under the lock)."""
    from maskvit.model.masked_video_task import MaskedVideoTask
    from maskvit.train import Trainer

    out = Path(args.out)
    torch.manual_seed(config.train.seed)  # same initial weights on every rank and run
    task = MaskedVideoTask(config.transformer, config.train)
    if start is not None:  # before the trainer: its EMA copies (if any) start from these too
        task.model.load_state_dict(start)
    trainer = Trainer(task, config.train, datasets[0], config=config, out=out,
                      val_data=datasets[1], env=env, resume=args.resume,
                      max_steps=args.max_steps, progress=not args.no_progress)
    if start is not None:
        trainer.notes.append(f"started from the weights of the transformer {args.init_from}")
    if env.is_main:
        record_sources(out, sources)  # before training: a killed run still knows its tokens
    result = trainer.fit()
    if env.is_main:
        loss = result.last_train.get("loss", float("nan"))
        acc = result.last_train.get("accuracy", float("nan"))
        state = "interrupted at" if result.interrupted else "trained to"
        if not result.last_train:  # resumed a finished run: no step was taken
            print(f"already trained to step {result.step}; nothing to do; run in {out}")
        else:
            print(f"{state} step {result.step}: loss {loss:.4f}, masked-token accuracy "
                  f"{acc:.4f}; run in {out}" + (" (continue with --resume)"
                                               if result.interrupted else ""))
    return 130 if result.interrupted else 0
