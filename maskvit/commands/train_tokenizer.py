"""`maskvit train-tokenizer`: train the per-frame VQ-GAN on an episode store.

Single process: ``maskvit train-tokenizer --preset push64 --data DATA --out RUN``.
Several processes: ``torchrun --nproc_per_node N -m maskvit train-tokenizer ...``; the
global batch stays tokenizer_train.batch_size whatever N is. Interrupt with Ctrl-C and
continue with ``--resume``: the run picks up exactly where it stopped.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.distributed as dist

from maskvit.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train-tokenizer", help="train the VQ-GAN tokenizer on an episode store",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", help="preset name or YAML file (default: the run's own "
                   "config when resuming, else push64)")
    p.add_argument("--data", required=True, help="episode store (maskvit collect / convert)")
    p.add_argument("--out", required=True, help="run directory (created; never overwritten)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its latest checkpoint")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set tokenizer_train.lr=1e-4 (repeatable)")
    p.add_argument("--max-steps", type=int, default=None,
                   help="stop after this many steps in total (lr schedule unchanged)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from maskvit.commands.train import resolve_config
    from maskvit.tokenizer.data import open_frames
    from maskvit.tokenizer.task import TokenizerTask, load_perceptual
    from maskvit.train import Trainer, init_distributed
    from maskvit.train.checkpoint import check_writable
    from maskvit.train.distributed import shutdown_distributed

    if args.max_steps is not None and args.max_steps < 1:
        raise UserError(f"--max-steps must be positive, got {args.max_steps}")
    out = Path(args.out)
    env = init_distributed(args.device)
    try:
        config = resolve_config(out, args.preset, args.set, args.resume)
        train_data, val_data = open_frames(args.data, config.tokenizer.resolution)
        check_writable(out)  # last check: a failed run must not leave an --out behind
        if env.distributed:
            dist.barrier()
        perceptual, why_off = load_perceptual(config.tokenizer)
        if why_off and env.is_main:
            print(why_off)
        torch.manual_seed(config.tokenizer_train.seed)  # same initial weights on every rank
        task = TokenizerTask(config.tokenizer, perceptual)
        trainer = Trainer(task, config.tokenizer_train, train_data, config=config, out=out,
                          val_data=val_data, env=env, resume=args.resume,
                          max_steps=args.max_steps, progress=not args.no_progress)
        result = trainer.fit()
        if env.is_main:
            # With a discriminator the engine prefixes each phase's logs ("vqgan_psnr").
            last = {k.removeprefix("vqgan_"): v for k, v in result.last_train.items()}
            state = "interrupted at" if result.interrupted else "trained to"
            print(f"{state} step {result.step}: PSNR {last.get('psnr', float('nan')):.2f} dB, "
                  f"codes active {last.get('active_codes', float('nan')):.1%}; run in {out}"
                  + (" (continue with --resume)" if result.interrupted else ""))
        return 130 if result.interrupted else 0
    finally:
        shutdown_distributed()
