"""`maskvit tokenize`: encode every frame of an episode store into a token cache.

``maskvit tokenize --tokenizer RUN --data DATA --out TOKENS``. Rerunning the same command
after an interruption finishes the remaining episodes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from maskvit.commands import command_parser


def register(subparsers: argparse._SubParsersAction) -> None:
    p = command_parser(subparsers, "tokenize", "encode an episode store into a token cache (resumable)", __doc__)
    p.add_argument("--tokenizer", required=True, help="run directory of maskvit train-tokenizer")
    p.add_argument("--data", required=True, help="episode store to encode")
    p.add_argument("--out", help="token cache directory (default: DATA-tokens beside DATA)")
    p.add_argument("--batch-size", type=int, default=64, help="frames per forward pass (default 64)")
    p.add_argument("--step", type=int, default=None, help="tokenizer checkpoint step (default latest)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing cache at --out")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def resolve_device(name: str):
    """The torch device for --device (auto: CUDA when available), via the engine's rules."""
    from maskvit.devices import resolve_device as engine_resolve

    return engine_resolve(name, 0)


def run(args: argparse.Namespace) -> int:
    from maskvit.data import EpisodeStore
    from maskvit.run_dir import tokenizer_step
    from maskvit.tokenizer.cache import tokenize_store
    from maskvit.tokenizer.vqgan import load_vqgan

    data = Path(args.data)
    out = Path(args.out) if args.out else data.with_name(data.name + "-tokens")
    store = EpisodeStore.open(data)
    step = tokenizer_step(args.tokenizer, args.step)  # exact, even if training goes on
    vqgan = load_vqgan(args.tokenizer, map_location=resolve_device(args.device), step=step)
    extra = {"tokenizer": str(Path(args.tokenizer).resolve()), "tokenizer_step": step,
             "data": str(data.resolve())}
    cache = tokenize_store(vqgan, store, out, batch_size=args.batch_size, extra=extra,
                           overwrite=args.overwrite, progress=not args.no_progress)
    h, w = cache.token_shape
    print(f"token cache {out}: {len(cache)} episodes, {cache.manifest['num_frames']} frames "
          f"of {h}×{w} codes")
    return 0
