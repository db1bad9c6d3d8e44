"""RoboNet hdf5 trajectories → episode store (one episode per file, one chosen camera).

Layout of a RoboNet file (as RoboNet's own loader reads it)::

    env/                      attrs: n_cams, cam_encoding ("mp4" or "jpg")
    env/cam<i>_video/frames   mp4: the encoded video as a uint8 byte array;
                              attrs: T, shape, image_format ("RGB" / "BGR")
    env/cam<i>_video/frame<t> jpg: one encoded JPEG per frame; attrs: shape, image_format
    env/state                 float (T, S)
    policy/actions            float (T-1, A)

Frames get the channel order RoboNet's loader gives (its decoder order, flipped when
image_format is "BGR"). Actions are aligned per frame: actions[t] leads from frame t to
t+1; the last frame gets a row of zeros. Episodes keep min(video, state, actions+1) frames.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from maskvit.data.converters.common import (
    Episode,
    check_unique_names,
    path_name,
    resize_frame,
    write_episodes,
)
from maskvit.data.converters.videos import decode_video
from maskvit.data.store import EpisodeStore, safe_episode_id
from maskvit.errors import UserError


def find_robonet_files(src: Path) -> list[Path]:
    """Every .hdf5 under `src` (or `src` itself), sorted."""
    if src.is_file() and src.suffix == ".hdf5":
        return [src]
    if not src.is_dir():
        raise UserError(f"RoboNet source not found: {src}")
    files = sorted(src.rglob("*.hdf5"))
    if not files:
        raise UserError(f"no RoboNet .hdf5 files under {src} (unpack RoboNet's hdf5 tarball there)")
    return files


def _decode_jpeg(buffer: bytes, where: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(buffer)) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise UserError(f"{where}: cannot decode JPEG ({err})") from None


def read_robonet_camera(file, path: Path, camera: int) -> np.ndarray:
    """uint8 (T, H, W, 3) frames of one camera, in RoboNet's channel order."""
    env = file["env"]
    group_name = f"cam{camera}_video"
    if group_name not in env:
        cams = int(env.attrs.get("n_cams", 0))
        raise UserError(f"{path}: no camera {camera} (the file has {cams}: choose --camera 0..{max(cams - 1, 0)})")
    group = env[group_name]
    encoding = env.attrs.get("cam_encoding", "mp4")
    encoding = encoding.decode() if isinstance(encoding, bytes) else str(encoding)
    if encoding == "mp4":
        buffer = group["frames"][()].tobytes()
        attrs = group["frames"].attrs
        frames = list(decode_video(io.BytesIO(buffer), name=f"{path}:{group_name}/frames"))
        decoder_bgr = False  # the video decoder yields the encoded channels in order
    elif encoding == "jpg":
        keys = sorted((k for k in group if k.startswith("frame")), key=lambda k: int(k[5:]))
        frames = [_decode_jpeg(group[k][()].tobytes(), f"{path}:{group_name}/{k}") for k in keys]
        attrs = group[keys[0]].attrs if keys else {}
        decoder_bgr = True  # RoboNet decodes its JPEGs with OpenCV, which returns BGR
    else:
        raise UserError(f"{path}: unknown cam_encoding {encoding!r} (expected mp4 or jpg)")
    if not frames:
        raise UserError(f"{path}: camera {camera} has no frames")
    video = np.stack(frames)
    if decoder_bgr:
        video = video[..., ::-1]
    image_format = attrs.get("image_format", "RGB")
    image_format = image_format.decode() if isinstance(image_format, bytes) else str(image_format)
    if image_format == "BGR":
        video = video[..., ::-1]
    return np.ascontiguousarray(video)


def robonet_episode_id(root: Path, path: Path, camera: int) -> str:
    """`<name>-cam<i>`, the name from the file's path under `root` (so `a/traj.hdf5` and
    `b/traj.hdf5` stay apart; a file directly in `root` keeps its stem, as before)."""
    return f"{path_name(path.relative_to(root))}-cam{camera}"


def read_robonet_file(path: Path, camera: int, size: int | None, crop: str,
                      episode_id: str | None = None) -> Iterator[Episode]:
    import h5py

    try:
        with h5py.File(path, "r") as file:
            for key in ("env/state", "policy/actions"):
                if key not in file:
                    raise UserError(f"{path}: not a RoboNet trajectory (no '{key}')")
            video = read_robonet_camera(file, path, camera)
            states = np.asarray(file["env/state"][()], dtype=np.float32)
            actions = np.asarray(file["policy/actions"][()], dtype=np.float32)
    except OSError as err:
        raise UserError(f"{path}: cannot read hdf5 ({err})") from None
    if actions.ndim != 2 or states.ndim != 2:
        raise UserError(f"{path}: policy/actions must be (T-1, A) and env/state (T, S); got {actions.shape} and "
                        f"{states.shape} (not a RoboNet trajectory)")
    length = min(len(video), len(states), len(actions) + 1)
    if length < 1:
        raise UserError(f"{path}: empty trajectory (no states or frames)")
    aligned = np.zeros((length, actions.shape[1]), np.float32)
    aligned[: length - 1] = actions[: length - 1]
    if length < len(actions) + 1:  # a recorded next action exists for the last kept frame
        aligned[length - 1] = actions[length - 1]
    frames = np.stack([resize_frame(f, size, crop) for f in video[:length]])
    episode_id = episode_id or safe_episode_id(f"{path.stem}-cam{camera}")
    yield Episode(episode_id, frames, aligned, states=states[:length])


def convert_robonet(src: str | Path, out: str | Path, *, camera: int = 0, size: int | None = 64,
                    crop: str = "none", action_dim: int | None = None, overwrite: bool = False,
                    progress: bool = True) -> EpisodeStore:
    """Convert RoboNet hdf5 files under `src` into an episode store at `out` (resumable by file).

    All files must share one action dimension (RoboNet mixes 4- and 5-D robots: convert
    them to separate stores, or pass `action_dim` to zero-pad / truncate to one size).
    """
    src = Path(src)
    files = find_robonet_files(src)
    root = src.parent if src.is_file() else src
    ids = {path: robonet_episode_id(root, path, camera) for path in files}
    check_unique_names(((str(path), name) for path, name in ids.items()), "RoboNet files")
    renamed = [(old, new) for path, new in ids.items()
               if (old := safe_episode_id(f"{path.stem}-cam{camera}")) != new]
    fit_actions = action_dim is not None
    if action_dim is None:
        action_dim = _first_action_dim(files[0])
    elif action_dim < 1:
        raise UserError(f"--action-dim must be positive, got {action_dim}")

    def read(path: Path) -> Iterator[Episode]:
        for episode in read_robonet_file(path, camera, size, crop, ids[path]):
            a = episode.actions
            if a.shape[1] != action_dim:
                if not fit_actions:
                    raise UserError(f"{path}: {a.shape[1]}-D actions, but {files[0].name} has {action_dim}-D; "
                                    "pass --action-dim to pad/truncate, or convert robots separately")
                fitted = np.zeros((len(a), action_dim), np.float32)
                fitted[:, : min(action_dim, a.shape[1])] = a[:, :action_dim]
                episode.actions = fitted
            yield episode

    return write_episodes(
        out, files, read, skip=lambda path, writer: ids[path] in writer,
        source="robonet", action_dim=action_dim, resolution=size, overwrite=overwrite, progress=progress,
        extra={"camera": camera, "crop": crop}, renamed=renamed,
    )


def _first_action_dim(path: Path) -> int:
    """The action size of one RoboNet file (the store's, unless --action-dim is given)."""
    import h5py

    try:
        with h5py.File(path, "r") as first:
            shape = first["policy/actions"].shape
    except (OSError, KeyError) as err:
        raise UserError(f"{path}: not a readable RoboNet trajectory ({err})") from None
    if len(shape) != 2:
        raise UserError(f"{path}: policy/actions must be (T-1, A), got shape {shape} (not a RoboNet trajectory)")
    return int(shape[1])
