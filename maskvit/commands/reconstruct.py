"""`maskvit reconstruct`: show and measure what the tokenizer keeps of a frame.

Writes, for the first --episodes episodes of --split, a GIF with input and
reconstruction side by side, and `reconstructions.png` (input row over reconstruction
row, first --frames frames of each episode); prints held-out PSNR / SSIM and the share
of the codebook used, and on push and RoboDesk stores what the reconstructions keep of the
objects (push: box IoU and centre error; RoboDesk: button lights, lit lights alone, slide and
drawer positions, block positions), also in metrics.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from maskvit.commands import command_parser
from maskvit.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = command_parser(subparsers, "reconstruct", "side-by-side GIF/PNG of input vs tokenizer reconstruction", __doc__)
    p.add_argument("--tokenizer", required=True, help="run directory of maskvit train-tokenizer")
    p.add_argument("--data", required=True, help="episode store")
    p.add_argument("--out", required=True, help="folder for the GIFs and the PNG")
    p.add_argument("--split", default="test", help="train, val or test (default test)")
    p.add_argument("--episodes", type=int, default=4, help="episodes to show (default 4)")
    p.add_argument("--frames", type=int, default=8, help="frames per episode in the PNG (default 8)")
    p.add_argument("--metrics-frames", type=int, default=2000,
                   help="frames of the split to measure PSNR/SSIM on (default 2000; 0 = all)")
    p.add_argument("--step", type=int, default=None, help="tokenizer checkpoint step (default latest)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Lock --out for the whole job; the files replace an older reconstruction report whole."""
    from maskvit.locking import output_lock
    from maskvit.report.staging import check_report_dir

    if args.episodes < 1 or args.frames < 1:
        raise UserError("--episodes and --frames must be positive")
    if args.metrics_frames < 0:
        raise UserError(f"--metrics-frames must be 0 (all) or more, got {args.metrics_frames}")
    with output_lock(args.out, "report directory"):
        check_report_dir(args.out, "reconstruct")  # a wrong --out fails before the work
        return _reconstruct(args)


def _reconstruct(args: argparse.Namespace) -> int:
    from maskvit.commands.tokenize import resolve_device
    from maskvit.data import EpisodeStore
    from maskvit.metrics.desk_objects import FRAME_SIZE, is_desk_store
    from maskvit.metrics.objects import world_objects
    from maskvit.tokenizer.reconstruction_report import (
        pick_episodes,
        reconstruction_metrics,
        write_reconstructions,
    )
    from maskvit.tokenizer.vqgan import load_vqgan

    store = EpisodeStore.open(args.data)
    vqgan = load_vqgan(args.tokenizer, map_location=resolve_device(args.device), step=args.step)
    if tuple(store.resolution) != (vqgan.cfg.resolution,) * 2:
        raise UserError(f"{args.data} holds {store.resolution[0]}×{store.resolution[1]} frames but "
                        f"the tokenizer expects {vqgan.cfg.resolution}×{vqgan.cfg.resolution}")
    ids = pick_episodes(store, args.split, args.episodes)
    desk = is_desk_store(store)
    if desk and store.resolution != (FRAME_SIZE, FRAME_SIZE):
        print(f"note: no desk-object scores: they are read from {FRAME_SIZE}×{FRAME_SIZE} frames "
              f"(VP2's view) and {args.data} holds {store.resolution[0]}×{store.resolution[1]}")
        desk = False
    m = reconstruction_metrics(vqgan, store, args.split, max_frames=args.metrics_frames or None,
                               progress=not args.no_progress, objects=world_objects(store),
                               desk=desk)
    written = write_reconstructions(vqgan, store, ids, Path(args.out), frames=args.frames,
                                    metrics={"split": args.split, **m})
    boxes = ""
    if "objects" in m:
        boxes = (f", box IoU {m['objects']['iou']['mean']:.3f}, box centroid error "
                 f"{m['objects']['centroid_error_px']['mean']:.2f} px")
    print(f"{args.split}: PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.4f}{boxes}, codebook usage "
          f"{m['codebook_usage']:.1%} (perplexity {m['perplexity']:.1f}) over {int(m['frames'])} "
          f"frames; wrote {len(written)} files to {args.out}")
    if "desk_objects" in m:
        print(desk_summary(m["desk_objects"]))
    return 0


def desk_summary(desk: dict) -> str:
    """One line of what reconstructions keep of RoboDesk's task state (`desk_objects`)."""
    def mean(key: str, digits: int) -> str:
        value = desk[key]["mean"]
        return "–" if value is None else f"{value:.{digits}f}"

    lit = desk["light_agreement_when_on"]
    return (f"desk objects: light agreement {mean('light_agreement', 3)} (lit lights "
            f"{mean('light_agreement_when_on', 3)} of {lit['events']}), slide error "
            f"{mean('slide_error', 4)}, drawer error {mean('drawer_error', 4)}, block error "
            f"{mean('block_centroid_error_px', 2)} px, blocks lost {mean('block_missing', 3)}")
