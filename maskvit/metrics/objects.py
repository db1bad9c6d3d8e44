"""Object fidelity: are the objects where they should be, with the right shape?

PSNR and FVD barely notice a 10-pixel box drawn as a disc or left one step behind; a
planner does. For worlds whose objects have known, saturated colours (the push world's
boxes) every object is segmented by colour in the true and in the predicted frames, and
compared per object and per frame:

* mask IoU: |true ∩ pred| / |true ∪ pred| — shape and position together;
* centroid error: pixels between the masks' centres — position alone.

Colour segmentation is used for both sides so that they are judged alike (predicted
frames have no simulator segmentation); `tests/test_metrics_objects.py` checks it against
the renderer's own masks on real push-world frames.
"""

from __future__ import annotations

import colorsys
import contextlib
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# Everything in the push world that is not a box (wooden table, grey arm) has saturation
# ≤ 0.34; the boxes' rendered pixels have ≥ 0.85 (measured on rendered frames).
MIN_SATURATION = 0.5
MIN_VALUE = 0.2
HUE_TOLERANCE = 30.0  # degrees either side of the object's hue
MIN_PIXELS = 1  # a mask with fewer pixels counts as "object not there"


@dataclass(frozen=True)
class ColourObject:
    """An object found in pictures by its hue (degrees, 0–360)."""

    name: str
    hue: float
    hue_tolerance: float = HUE_TOLERANCE
    min_saturation: float = MIN_SATURATION
    min_value: float = MIN_VALUE


def push_box_objects(num_boxes: int = 2) -> tuple[ColourObject, ...]:
    """The push world's boxes, with hues taken from the colours the simulator draws them in."""
    from maskvit.sim.push_config import BOX_COLOURS

    names = {0: "red box", 1: "green box", 2: "blue box", 3: "yellow box", 4: "magenta box",
             5: "cyan box"}
    objects = []
    for i in range(num_boxes):
        r, g, b, _ = BOX_COLOURS[i % len(BOX_COLOURS)]
        hue = colorsys.rgb_to_hsv(r, g, b)[0] * 360.0
        objects.append(ColourObject(names.get(i, f"box {i}"), hue))
    return tuple(objects)


def world_objects(store: Any) -> tuple[ColourObject, ...] | None:
    """The objects whose fidelity can be scored in an episode store's frames, or None.

    The push world's boxes (as many as the store's collection config placed); other
    datasets have no objects known by colour.
    """
    if getattr(store, "source", None) != "push":
        return None
    config = store.manifest.get("extra", {}).get("config", {})
    count = config.get("num_boxes", 2) if isinstance(config, dict) else 2
    return push_box_objects(int(count))


def _hsv(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hue (degrees), saturation and value of uint8 RGB frames (..., 3), vectorised."""
    rgb = frames.astype(np.float32) / 255.0
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    value = rgb.max(-1)
    chroma = value - rgb.min(-1)
    saturation = np.where(value > 0, chroma / np.maximum(value, 1e-8), 0.0)
    safe = np.maximum(chroma, 1e-8)
    hue = np.where(value == r, (g - b) / safe % 6.0,
                   np.where(value == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0)) * 60.0
    return np.where(chroma > 0, hue, 0.0), saturation, value


def colour_masks(frames: np.ndarray, objects: Sequence[ColourObject]) -> np.ndarray:
    """bool (..., n_objects, H, W): the pixels of each object in uint8 frames (..., H, W, 3)."""
    hue, saturation, value = _hsv(frames)
    masks = []
    for obj in objects:
        distance = np.abs((hue - obj.hue + 180.0) % 360.0 - 180.0)  # around the colour wheel
        masks.append((distance <= obj.hue_tolerance) & (saturation >= obj.min_saturation)
                     & (value >= obj.min_value))
    return np.stack(masks, axis=-3)


def mask_iou(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """IoU over the last two axes; NaN where the object is in neither (nothing to judge)."""
    inter = (true & pred).sum((-2, -1))
    union = (true | pred).sum((-2, -1))
    return np.where(union > 0, inter / np.maximum(union, 1), np.nan)


def mask_centroids(masks: np.ndarray) -> np.ndarray:
    """(..., 2) row and column of each mask's centre; NaN for empty masks."""
    h, w = masks.shape[-2:]
    count = masks.sum((-2, -1)).astype(np.float64)
    rows = (masks * np.arange(h)[:, None]).sum((-2, -1))
    cols = (masks * np.arange(w)[None, :]).sum((-2, -1))
    centre = np.stack([rows, cols], -1) / np.maximum(count, 1)[..., None]
    return np.where((count >= MIN_PIXELS)[..., None], centre, np.nan)


def centroid_error(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Pixels between the centres of true and predicted masks; NaN if either is empty."""
    return np.linalg.norm(mask_centroids(true) - mask_centroids(pred), axis=-1)


def _mean_and_se(per_video: np.ndarray) -> tuple[float | None, float | None]:
    """Mean and standard error over the videos that had an object to score (None: none)."""
    from maskvit.metrics.protocol import standard_error

    values = per_video[np.isfinite(per_video)]
    if values.size == 0:
        return None, None
    return float(values.mean()), _finite_or_none(standard_error(values))


def object_scores(true_frames: np.ndarray, pred_frames: np.ndarray,
                  objects: Sequence[ColourObject]) -> dict[str, np.ndarray]:
    """Raw per-(video, frame, object) scores of uint8 frames (V, T, H, W, 3).

    Only objects present in the true frame are scored (NaN elsewhere); an object missing
    from the prediction scores IoU 0, has no centroid error (NaN) and is `missing`.
    """
    if true_frames.shape != pred_frames.shape or true_frames.ndim != 5:
        raise ValueError(f"true and predicted frames must both be (V, T, H, W, 3); got "
                         f"{true_frames.shape} and {pred_frames.shape}")
    true_masks = colour_masks(true_frames, objects)  # (V, T, n, H, W)
    pred_masks = colour_masks(pred_frames, objects)
    present = true_masks.sum((-2, -1)) >= MIN_PIXELS  # (V, T, n)
    return {
        "iou": np.where(present, np.nan_to_num(mask_iou(true_masks, pred_masks)), np.nan),
        "centroid_error_px": np.where(present, centroid_error(true_masks, pred_masks), np.nan),
        "missing": np.where(present, pred_masks.sum((-2, -1)) < MIN_PIXELS, np.nan),
    }


def summarize_object_scores(scores: dict[str, np.ndarray],
                            objects: Sequence[ColourObject]) -> dict[str, Any]:
    """Means over videos (each video's mean over frames and objects) ± standard error,
    per-frame curves (mean over videos) and per-object means of `object_scores` output."""

    def summary(values: np.ndarray) -> dict[str, Any]:
        with _quiet():
            per_video = np.nanmean(values.reshape(len(values), -1), axis=1)
            per_frame = np.nanmean(values, axis=(0, 2))
        mean, se = _mean_and_se(per_video)
        return {"mean": mean, "se": se,
                "per_frame": [_finite_or_none(v) for v in per_frame]}

    with _quiet():
        per_object = {obj.name: {name: _finite_or_none(np.nanmean(scores[name][..., i]))
                                 for name in ("iou", "centroid_error_px")}
                      for i, obj in enumerate(objects)}
        missing = _finite_or_none(np.nanmean(scores["missing"]))
    return {
        "iou": summary(scores["iou"]),
        "centroid_error_px": summary(scores["centroid_error_px"]),
        "missing": missing if missing is not None else 0.0,
        "objects": per_object,
    }


def object_fidelity(true_frames: np.ndarray, pred_frames: np.ndarray,
                    objects: Sequence[ColourObject] | None = None) -> dict[str, Any]:
    """Per-object IoU and centroid error of predicted against true frames (V, T, H, W, 3).

    Frame t of one is compared with frame t of the other; see `object_scores` and
    `summarize_object_scores` for what is counted.
    """
    objects = tuple(objects or push_box_objects())
    return summarize_object_scores(object_scores(true_frames, pred_frames, objects), objects)


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """nanmean of an all-NaN slice warns; here that only means 'no object to score'."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield
