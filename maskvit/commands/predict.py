"""`maskvit predict`: predict the future of one video and write a GIF (and .npy).

Predict the frames after the context of one input: an episode of an episode store
(--episode), a video file, a folder of frames, or a .npy of uint8 frames (T,H,W,3). Writes a
GIF (context | ground truth if known | sampled futures) and the predicted frames as .npy beside it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from maskvit.commands import RenamedFlag, add_model_arguments, command_parser, predictor_from_args
from maskvit.data.episodes import check_finite
from maskvit.errors import UserError
from maskvit.inference import requests

SUMMARY = "predict future frames of one video and write a GIF"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = command_parser(subparsers, "predict", SUMMARY, __doc__)
    add_model_arguments(parser)
    parser.add_argument("--input", required=True,
                        help="episode store directory, video file, frames folder or .npy")
    parser.add_argument("--episode", default=None,
                        help="episode id in a store (default: the first test episode)")
    parser.add_argument("--actions", default=None,
                        help=".npy of float actions (T, A) for an action-conditioned model "
                             "(from the store when the input is an episode)")
    parser.add_argument("--goal", default=None,
                        help="goal frame for a goal-conditioned model: an image (png/jpg), a .npy "
                             "(H, W, 3) uint8, or 'input' for the input's frame right after the "
                             "predicted ones; the model then predicts the frames in between")
    parser.add_argument("--context", type=int, default=None, help="context frames (default: preset)")
    parser.add_argument("--frames", type=int, default=None, help="frames to predict (default: preset)")
    parser.add_argument("--futures", type=int, default=1,
                        help="sampled futures to predict (default 1)")
    parser.add_argument("--samples", dest="futures", type=int, action=RenamedFlag, new="--futures",
                        help=argparse.SUPPRESS)  # its old name (a plan's samples are CEM's M)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True,
                        help="output GIF path; the .npy goes beside it (never inside an episode "
                             "store, token cache, run or bundle)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing GIF or .npy at --out (refused otherwise)")
    parser.set_defaults(func=run)


def load_npy(path: Path, what: str) -> np.ndarray:
    """The array in a .npy file; garbage, pickles and object arrays are a one-line error."""
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise UserError(f"{path}: not a readable .npy of numbers ({err})") from None
    if not isinstance(array, np.ndarray):  # an .npz archive under a .npy name
        raise UserError(f"{path}: an .npz archive, not a .npy array; save one array with numpy.save")
    return array


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
        images = list(read_image_folder(path))
        if not images:
            raise UserError(f"{path} holds no frames (png/jpg images)")
        if len({f.shape for f in images}) != 1:
            raise UserError(f"{path}: images of different sizes; give frames of one size")
        frames = np.stack(images)
    elif path.suffix == ".npy":
        frames = load_npy(path, "input")
    elif path.is_file():
        decoded = list(decode_video(path))
        if not decoded:
            raise UserError(f"{path}: the video has no frames")
        frames = np.stack(decoded)
    else:
        raise UserError(f"input not found: {path}")
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or min(frames.shape) == 0:
        raise UserError(f"{path}: frames must be uint8 (T, H, W, 3); got {frames.dtype} {frames.shape}")
    if frames.shape[1:3] != (resolution, resolution):
        frames = np.stack([resize_frame(f, resolution) for f in frames])
    return frames, actions


def read_actions(path: Path, action_dim: int, needed: int) -> np.ndarray:
    """float32 (T, A) actions from --actions: finite numbers, A = the model's width, T >= needed."""
    actions = load_npy(path, "--actions file")
    if not (np.issubdtype(actions.dtype, np.integer) or np.issubdtype(actions.dtype, np.floating)
            or actions.dtype == np.bool_):
        raise UserError(f"{path}: actions must be real numbers, got dtype {actions.dtype}")
    if actions.ndim != 2 or actions.shape[1] != action_dim or len(actions) < needed:
        raise UserError(f"{path}: this model needs actions of shape ({needed}, {action_dim}) or longer; "
                        f"got {actions.shape}")
    actions = actions.astype(np.float32)
    check_finite(actions, f"{path}: actions", "give finite numbers")
    return actions


def read_goal(spec: str, frames: np.ndarray, index: int, resolution: int) -> np.ndarray:
    """(H, W, 3) uint8 goal frame from --goal: an image, a .npy, or the input's frame `index`."""
    from maskvit.data.converters.common import resize_frame

    if spec == "input":
        if len(frames) <= index:
            raise UserError(f"--goal input: the input has {len(frames)} frames; the goal would be "
                            f"frame {index + 1}")
        return frames[index]
    path = Path(spec)
    if not path.is_file():
        raise UserError(f"--goal file not found: {path} (an image, a .npy, or 'input')")
    if path.suffix == ".npy":
        goal = load_npy(path, "--goal file")
    else:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as image:
                goal = np.asarray(image.convert("RGB"))
        except (OSError, UnidentifiedImageError):
            raise UserError(f"--goal {path} is not an image this tool can read (png/jpg)") from None
    if goal.dtype != np.uint8 or goal.ndim != 3 or goal.shape[-1] != 3 or min(goal.shape) == 0:
        raise UserError(f"--goal {path}: the goal must be one uint8 (H, W, 3) frame; got "
                        f"{goal.dtype} {goal.shape}")
    return goal if goal.shape[:2] == (resolution, resolution) else resize_frame(goal, resolution)




def output_paths(args: argparse.Namespace) -> tuple[Path, Path]:
    """The GIF and .npy to write; refuses any that would write over an input."""
    gif = Path(args.out)
    npy = gif.with_suffix(".npy")
    if gif == npy:
        raise UserError(f"--out {gif} is the .npy the predictions go to; give the GIF's path, e.g. "
                        f"{gif.with_suffix('.gif')}")
    if gif.is_dir():
        raise UserError(f"--out {gif} is a directory; give the GIF's path, e.g. {gif / 'prediction.gif'}")
    inputs = [(Path(args.input), "--input")] + ([(Path(args.actions), "--actions")] if args.actions else [])
    if args.goal and args.goal != "input":
        inputs.append((Path(args.goal), "--goal"))
    for out in (gif, npy):
        for source, flag in inputs:
            real, real_out = source.resolve(), out.resolve()
            if real_out == real or real in real_out.parents:
                raise UserError(f"--out would write {out}, over or inside the {flag} {source}; "
                                "choose an --out elsewhere")
        check_loose_output(out, args.overwrite)
    return gif, npy


def check_loose_output(out: Path, overwrite: bool) -> None:
    """Refuse to write `out` inside a maskvit output (a store, cache, run, bundle or report:
    its own files live there) or over an existing file unless --overwrite says so."""
    from maskvit.outputs import enclosing_output

    owner = enclosing_output(out.parent)
    if owner is not None:
        kind, folder = owner
        raise UserError(f"--out would write {out} inside the {kind} {folder}; choose an --out "
                        "outside it")
    if (out.exists() or out.is_symlink()) and not overwrite:
        raise UserError(f"--out would replace the existing {out}; pass --overwrite to replace it, "
                        "or choose another --out")


def run(args: argparse.Namespace) -> int:
    from maskvit.atomic import atomic_write
    from maskvit.report.gifs import write_video_grid_gif

    gif, npy = output_paths(args)
    predictor = predictor_from_args(args)
    spec = predictor.spec
    if args.futures < 1:
        raise UserError(f"--futures must be at least 1, got {args.futures}")
    context = spec.context_frames if args.context is None else args.context
    num = requests.frames_to_predict(spec, context, args.frames, bool(args.goal), requests.CLI_NAMES)
    if args.actions and not spec.action_dim:
        raise UserError("--actions was given but this model is not action-conditioned; leave it out")
    frames, actions = read_input(Path(args.input), args.episode, predictor.resolution)
    if args.actions:
        actions = read_actions(Path(args.actions), spec.action_dim, context + num)
    if len(frames) < context:
        raise UserError(f"the input has {len(frames)} frames; {context} context frames are needed")
    goal = (read_goal(args.goal, frames, context + num, predictor.resolution)[None]
            if args.goal else None)
    clip_actions = None
    if spec.action_dim:
        if actions is None or len(actions) < context + num:
            raise UserError(f"this model needs {context + num} actions of width {spec.action_dim} "
                            "(--actions F.npy, or an episode from a store)")
        check_finite(actions[: context + num], f"{args.input}: the episode's actions",
                     "fix the store or choose another --episode")
        clip_actions = actions[None, : context + num]
    futures = np.stack([
        predictor.predict(frames[None, :context], actions=clip_actions, num_frames=num,
                          goal_frame=goal, seed=args.seed + i)[0]
        for i in range(args.futures)
    ])  # (N, Tp, H, W, 3)
    truth = frames[: context + num]
    if len(truth) < context + num:  # unknown future: show the last context frame
        pad = np.repeat(truth[-1:], context + num - len(truth), axis=0)
        truth = np.concatenate([truth, pad])
    write_video_grid_gif(gif, truth, futures, context)
    atomic_write(npy, lambda f: np.save(f, futures, allow_pickle=False))
    print(f"wrote {gif} and {npy}")
    return 0
