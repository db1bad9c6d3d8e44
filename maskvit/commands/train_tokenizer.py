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

from maskvit.commands.train import add_run_arguments
from maskvit.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train-tokenizer", help="train the VQ-GAN tokenizer on an episode store",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(p, data_help="episode store (maskvit collect / convert)",
                      set_example="tokenizer_train.lr=1e-4")
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
            if not last:  # resumed a finished run: no step was taken
                print(f"already trained to step {result.step}; nothing to do; run in {out}")
            else:
                print(f"{state} step {result.step}: PSNR {last.get('psnr', float('nan')):.2f} dB, "
                      f"codes active {last.get('active_codes', float('nan')):.1%}; run in {out}"
                      + (" (continue with --resume)" if result.interrupted else ""))
        return 130 if result.interrupted else 0
    finally:
        shutdown_distributed()
