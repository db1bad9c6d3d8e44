"""`maskvit predict`: predict the future of one video and write a GIF (and .npy)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from maskvit.commands._model_args import add_model_arguments, load_predictor
from maskvit.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict", help="predict future frames of one video and write a GIF",
        description="Predict the frames after the context of one input: an episode of an "
                    "episode store (--episode), a video file, a folder of frames, or a .npy of "
                    "uint8 frames (T,H,W,3). Writes a GIF (context | ground truth if known | "
                    "samples) and the predicted frames as .npy beside it.",
    )
    add_model_arguments(parser)
    parser.add_argument("--input", required=True,
                        help="episode store directory, video file, frames folder or .npy")
    parser.add_argument("--episode", default=None,
                        help="episode id in a store (default: the first test episode)")
    parser.add_argument("--actions", default=None,
                        help=".npy of float actions (T, A) for an action-conditioned model "
                             "(from the store when the input is an episode)")
    parser.add_argument("--context", type=int, default=None, help="context frames (default: preset)")
    parser.add_argument("--frames", type=int, default=None, help="frames to predict (default: preset)")
    parser.add_argument("--samples", type=int, default=1, help="sampled futures (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="output GIF path")
    parser.set_defaults(func=run)


def read_input(path: Path, episode: str | None, resolution: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Frames (T, H, W, 3) uint8 at the model's resolution and the actions, if known."""
    from maskvit.data import EpisodeStore
    from maskvit.data.converters.common import resize_frame
    from maskvit.data.converters.videos import decode_video, read_image_folder

    actions = None
    if path.is_dir() and (path / "manifest.json").is_file():
        store = EpisodeStore.open(path)
        ids = store.episode_ids("test") or store.episode_ids()
        episode = episode or ids[0]
        if episode not in store:
            raise UserError(f"{path} has no episode {episode!r}")
        data = store.load(episode)
        frames, actions = data["frames"], data["actions"]
    elif path.is_dir():
        frames = np.stack(list(read_image_folder(path))) if any(path.iterdir()) else None
        if frames is None:
            raise UserError(f"{path} holds no frames")
    elif path.suffix == ".npy":
        if not path.is_file():
            raise UserError(f"input not found: {path}")
        frames = np.load(path)
    elif path.is_file():
        frames = np.stack(list(decode_video(path)))
    else:
        raise UserError(f"input not found: {path}")
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise UserError(f"{path}: frames must be uint8 (T, H, W, 3); got {frames.dtype} {frames.shape}")
    if frames.shape[1:3] != (resolution, resolution):
        frames = np.stack([resize_frame(f, resolution) for f in frames])
    return frames, actions


def run(args: argparse.Namespace) -> int:
    from maskvit.report.gifs import write_video_grid_gif

    predictor = load_predictor(args)
    ev, tc = predictor.config.eval, predictor.config.transformer
    frames, actions = read_input(Path(args.input), args.episode, predictor.resolution)
    if args.actions:
        actions = np.load(args.actions).astype(np.float32)
    context = args.context or ev.context_frames
    num = args.frames or ev.predicted_frames
    if len(frames) < context:
        raise UserError(f"the input has {len(frames)} frames; {context} context frames are needed")
    clip_actions = None
    if tc.action_dim:
        if actions is None or len(actions) < context + num:
            raise UserError(f"this model needs {context + num} actions of width {tc.action_dim} "
                            "(--actions F.npy, or an episode from a store)")
        clip_actions = actions[None, : context + num]
    samples = np.stack([
        predictor.predict(frames[None, :context], actions=clip_actions, num_frames=num,
                          seed=args.seed + i)[0]
        for i in range(args.samples)
    ])  # (N, Tp, H, W, 3)
    truth = frames[: context + num]
    if len(truth) < context + num:  # unknown future: show the last context frame
        pad = np.repeat(truth[-1:], context + num - len(truth), axis=0)
        truth = np.concatenate([truth, pad])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_video_grid_gif(out, truth, samples, context)
    np.save(out.with_suffix(".npy"), samples)
    print(f"wrote {out} and {out.with_suffix('.npy')}")
    return 0
