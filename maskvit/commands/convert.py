"""`maskvit convert`: public datasets and plain videos → an episode store.

Examples::

    maskvit convert bair    data/softmotion30_44k --out data/bair
    maskvit convert robonet data/robonet/hdf5 --out data/robonet64 --size 64 --camera 0
    maskvit convert kitti   data/kitti_raw --out data/kitti64 --size 64
    maskvit convert videos  my_videos/ --out data/mine --size 64 --fps 10 --clip-len 30

Rerunning an interrupted conversion resumes it; the store counts as complete only once
its manifest.json is written, after the last episode.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from maskvit.commands import command_parser


def register(subparsers: argparse._SubParsersAction) -> None:
    p = command_parser(subparsers, "convert", "convert BAIR / RoboNet / KITTI / video folders to an episode store", __doc__)
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)

    def common(name: str, help_text: str, size: int | None) -> argparse.ArgumentParser:
        sub = kinds.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("src", help="source folder")
        sub.add_argument("--out", required=True, help="episode store directory (resumed if it exists)")
        sub.add_argument("--size", type=int, default=size,
                         help=f"output frames are SIZE×SIZE (default {size or 'keep the source size'})")
        sub.add_argument("--overwrite", action="store_true",
                         help="delete the episode store at --out first instead of resuming")
        sub.add_argument("--no-progress", action="store_true", help="no progress bar")
        sub.set_defaults(func=run)
        return sub

    bair = common("bair", "BAIR robot pushing tfrecords (softmotion30_44k/{train,test}/*.tfrecords)", None)
    bair.add_argument("--val-fraction", type=float, default=0.02,
                      help="fraction of the train trajectories kept as 'val' (default 0.02)")
    robonet = common("robonet", "RoboNet hdf5 trajectories", 64)
    robonet.add_argument("--camera", type=int, default=0, help="camera index (default 0)")
    robonet.add_argument("--crop", choices=["none", "center"], default="none",
                         help="none: resize the whole frame (default); center: centred square first")
    robonet.add_argument("--action-dim", type=int, default=None,
                         help="zero-pad / truncate actions to this size (default: the first file's)")
    kitti = common("kitti", "KITTI raw drives (<date>/<drive>_sync/image_02/data/*.png)", 64)
    kitti.add_argument("--cameras", default="image_02", help="comma-separated: image_02,image_03 (default image_02)")
    kitti.add_argument("--crop", choices=["none", "center"], default="center", help="default center")
    videos = common("videos", "a folder of videos (mp4, avi, webm, ...) or of image folders", 64)
    videos.add_argument("--crop", choices=["none", "center"], default="center", help="default center")
    videos.add_argument("--fps", type=float, default=None, help="resample videos to this frame rate")
    videos.add_argument("--frame-stride", type=int, default=1, help="keep every n-th image of image folders")
    videos.add_argument("--clip-len", type=int, default=None,
                        help="cut sources into episodes of this many frames (default: one per source)")


def run(args: argparse.Namespace) -> int:
    from maskvit.errors import UserError
    from maskvit.locking import output_lock

    if args.size is not None and args.size < 1:
        raise UserError(f"--size must be positive, got {args.size}")
    check_apart(Path(args.src), Path(args.out))
    with output_lock(args.out, "episode store"):  # a second convert into --out stops at once
        store = _convert(args)
    splits = ", ".join(f"{n} {s}" for s, n in store.manifest["splits"].items())
    print(f"wrote {len(store)} episodes ({store.manifest['num_frames']} frames; {splits}) to {args.out}")
    return 0


def check_apart(src: Path, out: Path) -> None:
    """The store may not be the source or hold it (--overwrite would delete it)."""
    from maskvit.errors import UserError

    src_real, out_real = src.resolve(), out.resolve()
    if out_real == src_real or out_real in src_real.parents:
        raise UserError(f"--out {out} is or holds the source {src}; choose another --out")


def _convert(args: argparse.Namespace):
    from maskvit.data.converters import bair, kitti, robonet, videos

    progress = not args.no_progress
    if args.kind == "bair":
        return bair.convert_bair(args.src, args.out, size=args.size, val_fraction=args.val_fraction,
                                 overwrite=args.overwrite, progress=progress)
    if args.kind == "robonet":
        return robonet.convert_robonet(args.src, args.out, camera=args.camera, size=args.size, crop=args.crop,
                                       action_dim=args.action_dim, overwrite=args.overwrite, progress=progress)
    if args.kind == "kitti":
        cameras = tuple(c.strip() for c in args.cameras.split(",") if c.strip())
        return kitti.convert_kitti(args.src, args.out, size=args.size, cameras=cameras, crop=args.crop,
                                   overwrite=args.overwrite, progress=progress)
    return videos.convert_videos(args.src, args.out, size=args.size, crop=args.crop, fps=args.fps,
                                 frame_stride=args.frame_stride, clip_len=args.clip_len,
                                 overwrite=args.overwrite, progress=progress)
