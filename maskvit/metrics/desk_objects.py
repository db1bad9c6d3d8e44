"""Object fidelity for RoboDesk: the task-relevant state read back from 64×64 frames.

PSNR barely moves when a 36-pixel button light is drawn dark or the drawer is left
closed; the planner's task is exactly that. Every RoboDesk frame comes from one fixed
camera (VP2's), so the task-relevant state can be read from pixels alone, with no
simulator at metric time, the same way from true and from predicted frames:

* the three button lights: on or off, from the colour of a 3×3 core of each light's disc;
* the slide's and the drawer's joint positions: a profile of the region each moves in
  (dark panel per column; brown drawer per row) matched against profiles rendered at
  known joint positions (`_SLIDE_PROFILES`, `_DRAWER_PROFILES`, made by
  `render_calibration`); arm pixels are left out of the slide's profile, and the
  drawer's cost is one-sided because the arm can hide the drawer but never adds to it;
* the flat and the upright block: centroids of colour masks on the desk top.

The drawer leaves the frame at about −0.28 (it opens to −0.48; success is < −0.2): frames
of deeper openings are identical, so drawer positions are read, and compared, within
[−0.28, 0]. Blocks off the desk (in the bin, on the floor) or hidden read as absent.

Against the simulator (2,500 frames: 400 random scenes with the arm moved by up to 8
random actions and random joints, half of them held out from every choice made here,
and 2,100 frames of collected episodes): lights 100 % right; slide error median 0.0013,
p95 0.007, max 0.021; drawer error median 0.001, p95 0.012, max 0.085 (the arm in front
of the drawer); block centres 0.4–0.5 px from the simulator's visible mask at the median,
≤ 1.1 px at p95, 1–2 % of visible blocks missed. The upright block is thin and pale:
blurred (a 64 → 48 → 64 px round trip) it is lost in 36 % of frames; the flat block,
slide, drawer and lights survive that blur (0 % lost, errors ≤ 0.02).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from maskvit.errors import UserError
from maskvit.metrics.objects import _finite_or_none, _hsv, _mean_and_se, _quiet, mask_centroids

FRAME_SIZE = 64  # the readers' regions are VP2's 64×64 view of the desk
# An object "moved" since the last context frame when its true reading changed by more than
# the reader's own error (p95 on 200 held-out scenes: slide 0.006, drawer 0.010, block ~1 px;
# benchmarks/RESULTS.md "RoboDesk world"): the events copy-last cannot get right.
SLIDE_MOVED = 0.02
DRAWER_MOVED = 0.02
BLOCK_MOVED_PX = 2.0
LIGHTS = ("red", "green", "blue")
BLOCKS = ("flat_block", "upright_block")

# -- lights
# A 3×3 core (rows, columns) inside each light's disc. Unlit, the disc is dark grey; lit, it
# is saturated: the light's own channel minus the larger other channel is 0.546–0.596 of
# 255 when lit and 0.000 ± 0.001 unlit on every rendered frame we measured, so any
# threshold in between has a wide margin; we take about half the lowest lit value.
_LIGHT_CORES = {"red": (slice(4, 7), slice(6, 9)), "green": (slice(4, 7), slice(16, 19)),
                "blue": (slice(4, 7), slice(27, 30))}
LIGHT_ON = 0.27

# -- slide: a dark panel sliding right in the band of rows 12–26 as the joint opens (0 → 0.6)
_SLIDE_ROWS = slice(12, 27)
_SLIDE_DARK_VALUE = 0.35  # the panel: HSV value below this (the desk's wood is ≥ 0.5)
_WOOD_HUE, _WOOD_MIN_SATURATION, _WOOD_MIN_VALUE = (15.0, 65.0), 0.3, 0.5

# -- drawer: the open drawer's brown box grows downward under the desk, rows 44–63
_DRAWER_ROWS = slice(44, 64)
_DRAWER_COLUMNS = slice(19, 44)  # where the drawer is at least half of the open box's rows
_BROWN_HUE, _BROWN_MIN_SATURATION, _BROWN_MAX_VALUE = (12.0, 48.0), 0.45, 0.45
# A brown pixel where the profile has none costs this many times a missing one: the arm
# hides the drawer (missing brown) far more often than anything else shows brown.
_DRAWER_EXTRA_BROWN_COST = 3.0
DRAWER_VISIBLE_LIMIT = -0.28  # deeper openings look the same: the drawer is out of frame

# -- blocks: colour masks on the desk top (rows 10–45; the lights above, the bin below)
_DESK_TOP_ROWS = slice(10, 46)
# (hue range in degrees, saturation range, minimum value), chosen from the simulator's own
# masks of the blocks on 200 random frames: the flat block is mint, the upright block pale
# cyan; the teal bin (saturation ≥ 0.86) and the grey arm (< 0.1) fall outside both.
_BLOCK_COLOURS = {"flat_block": ((125.0, 155.0), (0.2, 0.6), 0.35),
                  "upright_block": ((160.0, 200.0), (0.15, 0.6), 0.2)}
BLOCK_MIN_PIXELS = 3  # fewer mask pixels: the block is not on the desk (or hidden)

# -- calibration tables, made by `render_calibration()` (arm swung away, objects removed).
# One string per joint position: for the slide, each column's fraction of dark pixels
# among dark and wood pixels in the slide's rows ('.' where the handle hides the column);
# for the drawer, each row's fraction of brown pixels across the drawer's columns. Hex
# digits are fifteenths (f = 1).
SLIDE_POSITIONS = np.linspace(0.0, 0.6, 25)
DRAWER_POSITIONS = np.linspace(0.0, DRAWER_VISIBLE_LIMIT, 29)
_SLIDE_PROFILES = (
    ".ffffffffffffff.fffffffffffffff0000000000000000000000000008.....",
    "..ccefffffffffff..ffffffffffffff000000000000000000000000008.....",
    "..9acdffffffffffff.ffffffffffffff60000000000000000000000008.....",
    "..8ab9dffffffffffff.ffffffffffffffe000000000000000000000008.....",
    "..79a58cffffffffffff..fffffffffffffe00000000000000000000008.....",
    "..68a136cfffffffffffff.ffffffffffffff5000000000000000000008.....",
    "...691036aeffffffffffff.ffffffffffffff900000000000000000008.....",
    "...58100149effffffffffff..fffffffffffffd0000000000000000008.....",
    "...461000138effffffffffff..fffffffffffffe300000000000000008.....",
    ".....10000036cfffffffffffff.fffffffffffffe60000000000000008.....",
    ".....000000034afffffffffffff.ffffffffffffff8000000010000008.....",
    ".....00000000049effffffffffff..fffffffffffffa30000000000008.....",
    ".....000000000018effffffffffff..fffffffffffffd4000000100008.....",
    ".....0000000000006efffffffffffff.fffffffffffffd730000010008.....",
    ".....00000000000004cfffffffffffff.fffffffffffffe83100000128.....",
    ".....000000000000001bfffffffffffff..ffffffffffffe9320000157.....",
    ".....00000000000000008ffffffffffffff.fffffffffffffb53000058.....",
    ".....000000000000000003efffffffffffff..ffffffffffffc7301059.....",
    ".....0000000000000000002efffffffffffff..ffffffffffffc93306a.....",
    ".....00000000000000000000cffffffffffffff.ffffffffffffe9438a7....",
    ".....000000000000000000000affffffffffffff.ffffffffffffea67a8....",
    ".....00000000000000000000002ffffffffffffff..fffffffffffea9b9....",
    ".....000000000000000000000000fffffffffffffff.ffffffffffffdba8...",
    ".....0000000000000000000000000fffffffffffffff.ffffffffffffdc....",
    ".....00000000000000000000000000effffffffffffff..fffffffffffff...",
)
_DRAWER_PROFILES = (
    "00b00000000000000000",
    "00cd0000000000000000",
    "00fcb000000000000000",
    "00fdb000000000000000",
    "00ffbb00000000000000",
    "00ffdb00000000000000",
    "00ffebb0000000000000",
    "00ffeebb000000000000",
    "00ffeeba000000000000",
    "00ffeeebb00000000000",
    "00ffeeeea00000000000",
    "00ffeeeecb0000000000",
    "00ffeeeeebb000000000",
    "00ffeeeeeeb000000000",
    "00ffeeeeeecb00000000",
    "00ffeeeeeeeb00000000",
    "00ffeeeeeefdb0000000",
    "00ffeeeeeeefbb000000",
    "00ffeeeeeeeaeb000000",
    "00ffeeeeeeeffcb00000",
    "00ffeeeeeeefffbb0000",
    "00ffeeeeeeeffceb0000",
    "00ffeeeeeeeffffdb000",
    "00ffeeeeeeefffffba00",
    "00ffeeeeeeeffffcfa00",
    "00ffeeeeeeeffffffb80",
    "00ffeeeeeefffffffe86",
    "00ffeeeeeefffffffbb7",
    "00ffeeeeeeeffffffec8",
)


@dataclass(frozen=True)
class DeskReading:
    """The task-relevant state read from frames (...,): one entry per frame."""

    lights: np.ndarray  # bool (..., 3): red, green, blue lit
    slide: np.ndarray  # float (...): slide joint, 0 (closed) .. 0.6
    drawer: np.ndarray  # float (...): drawer joint, 0 (closed) .. DRAWER_VISIBLE_LIMIT
    blocks: np.ndarray  # float (..., 2, 2): (row, column) of each block; NaN when absent


def check_desk_frames(frames: np.ndarray, name: str = "frames") -> np.ndarray:
    """`frames` as uint8 (..., 64, 64, 3), or a one-line error saying what is expected."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim < 3 or frames.shape[-3:] != (FRAME_SIZE, FRAME_SIZE, 3):
        raise UserError(f"RoboDesk {name} must be uint8 RGB (..., {FRAME_SIZE}, {FRAME_SIZE}, 3) "
                        f"as the desk world renders them; got {frames.dtype} {frames.shape}")
    return frames


# -- readers
def light_strength(frames: np.ndarray) -> np.ndarray:
    """float (..., 3): how saturated each light's disc is (0 unlit, ~0.55 lit)."""
    frames = check_desk_frames(frames).astype(np.int16)
    strengths = []
    for channel, colour in enumerate(LIGHTS):
        rows, cols = _LIGHT_CORES[colour]
        core = frames[..., rows, cols, :]
        others = np.delete(core, channel, axis=-1).max(-1)
        strengths.append((core[..., channel] - others).mean((-2, -1)) / 255.0)
    return np.stack(strengths, -1)


def read_lights(frames: np.ndarray) -> np.ndarray:
    """bool (..., 3): red, green and blue light lit (their button pressed)."""
    return light_strength(frames) >= LIGHT_ON


def _slide_profile(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column of the slide's band: fraction of dark among dark-or-wood pixels, and the
    fraction of the band's pixels that were dark or wood (the rest: arm, handle, blocks)."""
    hue, saturation, value = _hsv(frames[..., _SLIDE_ROWS, :, :])
    dark = value < _SLIDE_DARK_VALUE
    wood = ((hue >= _WOOD_HUE[0]) & (hue <= _WOOD_HUE[1]) & (saturation >= _WOOD_MIN_SATURATION)
            & (value >= _WOOD_MIN_VALUE))
    known = (dark | wood).sum(-2)
    return dark.sum(-2) / np.maximum(known, 1), known / dark.shape[-2]


def _brown_per_row(frames: np.ndarray) -> np.ndarray:
    """Per row under the desk: how many of the drawer's columns are drawer-brown."""
    hue, saturation, value = _hsv(frames[..., _DRAWER_ROWS, _DRAWER_COLUMNS, :])
    brown = ((hue >= _BROWN_HUE[0]) & (hue <= _BROWN_HUE[1])
             & (saturation >= _BROWN_MIN_SATURATION) & (value <= _BROWN_MAX_VALUE))
    return brown.sum(-1).astype(np.float64)


def read_slide(frames: np.ndarray) -> np.ndarray:
    """float (...): the slide joint, from the dark panel's place in the frame."""
    frames = check_desk_frames(frames)
    profile, weight = _slide_profile(frames)  # (..., W)
    # Weighted squared difference to every table row, sum_w weight * known * (p - t)^2 /
    # sum_w weight * known, expanded into products with the table: (..., W) x (K, W).
    known, table = _SLIDE_WEIGHTS, _SLIDE_WEIGHTS * _SLIDE_FRACTIONS
    squared = (_by_table(weight * profile**2, known) - 2 * _by_table(weight * profile, table)
               + _by_table(weight, _SLIDE_WEIGHTS * _SLIDE_FRACTIONS**2))
    return _argmin_refined(squared / np.maximum(_by_table(weight, known), 1e-9), SLIDE_POSITIONS)


def read_drawer(frames: np.ndarray) -> np.ndarray:
    """float (...): the drawer joint within [DRAWER_VISIBLE_LIMIT, 0], from the brown
    drawer box under the desk."""
    frames = check_desk_frames(frames)
    brown = _brown_per_row(frames)  # (..., R)
    width = _DRAWER_COLUMNS.stop - _DRAWER_COLUMNS.start
    # Per table row: brown where it has none (weighted) plus drawer it has that is not brown.
    cost = (_DRAWER_EXTRA_BROWN_COST * _by_table(brown, 1 - _DRAWER_FRACTIONS)
            + _by_table(width - brown, _DRAWER_FRACTIONS))  # (..., K)
    return _argmin_refined(cost, DRAWER_POSITIONS)


def _by_table(values: np.ndarray, table: np.ndarray) -> np.ndarray:
    """(..., L) values dotted with each of the table's K rows (K, L) -> (..., K).

    Not `values @ table.T`: a matrix product's rounding depends on how many frames are read
    together, einsum's does not, so a frame reads the same alone, in a batch or sharded.
    """
    return np.einsum("...l,kl->...k", values, table)


def block_masks(frames: np.ndarray) -> np.ndarray:
    """bool (..., 2, H, W): flat- and upright-block pixels on the desk top."""
    hue, saturation, value = _hsv(check_desk_frames(frames))
    desk_top = np.zeros(hue.shape[-2:], bool)
    desk_top[_DESK_TOP_ROWS] = True
    masks = []
    for name in BLOCKS:
        (hue_lo, hue_hi), (sat_lo, sat_hi), value_lo = _BLOCK_COLOURS[name]
        masks.append((hue >= hue_lo) & (hue <= hue_hi) & (saturation >= sat_lo)
                     & (saturation < sat_hi) & (value >= value_lo) & desk_top)
    return np.stack(masks, -3)


def read_blocks(frames: np.ndarray) -> np.ndarray:
    """float (..., 2, 2): (row, column) pixel centre of each block; NaN when not on the desk."""
    masks = block_masks(frames)
    found = masks.sum((-2, -1)) >= BLOCK_MIN_PIXELS
    return np.where(found[..., None], mask_centroids(masks), np.nan)


def read_desk(frames: np.ndarray, chunk_frames: int = 256) -> DeskReading:
    """Everything the readers see in uint8 frames (..., 64, 64, 3), `chunk_frames` at a
    time (the colour conversion holds a few float copies of the frames it reads)."""
    frames = check_desk_frames(frames)
    lead = frames.shape[:-3]
    flat = frames.reshape(-1, *frames.shape[-3:])
    parts = [(read_lights(chunk), read_slide(chunk), read_drawer(chunk), read_blocks(chunk))
             for chunk in (flat[i:i + chunk_frames] for i in range(0, len(flat), chunk_frames))]
    if not parts:  # no frames: empty readings of the right shapes
        parts = [(np.zeros((0, 3), bool), np.zeros(0), np.zeros(0), np.zeros((0, 2, 2)))]
    fields = (np.concatenate(field) for field in zip(*parts, strict=True))
    return DeskReading(*(x.reshape(lead + x.shape[1:]) for x in fields))


def _decode(profiles: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """A calibration table as fractions (K, L) and weights (K, L): '.' has weight 0."""
    fractions = np.array([[0.0 if ch == "." else int(ch, 16) / 15 for ch in row] for row in profiles])
    weights = np.array([[ch != "." for ch in row] for row in profiles], dtype=np.float64)
    return fractions, weights


_SLIDE_FRACTIONS, _SLIDE_WEIGHTS = _decode(_SLIDE_PROFILES)  # (25, 64) each
_DRAWER_FRACTIONS, _ = _decode(_DRAWER_PROFILES)  # (29, 20)


def _argmin_refined(cost: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The position of the least cost over the last axis, between grid points by a parabola
    through the least cost and its two neighbours (a grid step moves the edge about a pixel)."""
    best = cost.argmin(-1)
    inner = np.clip(best, 1, len(positions) - 2)
    left, mid, right = (np.take_along_axis(cost, (inner + d)[..., None], -1)[..., 0] for d in (-1, 0, 1))
    curvature = left - 2 * mid + right
    offset = np.where(curvature > 0, 0.5 * (left - right) / np.where(curvature > 0, curvature, 1), 0.0)
    step = positions[1] - positions[0]
    refined = np.where(best == inner, positions[inner] + np.clip(offset, -0.5, 0.5) * step, positions[best])
    return np.clip(refined, min(positions[0], positions[-1]), max(positions[0], positions[-1]))


# -- scores: predicted against true frames, each read the same way
def compare_readings(true: DeskReading, pred: DeskReading,
                     last_context: DeskReading | None = None) -> dict[str, np.ndarray]:
    """Raw scores of readings of true and predicted frames of one shape (V, T).

    light_agreement (V, T, 3): 1 where the predicted light is as in the true frame;
    light_on (V, T, 3): 1 where the true light is lit (a blurring tokenizer erases these);
    slide_error, drawer_error (V, T): absolute joint differences; block_centroid_error_px
    (V, T, 2): pixels between block centres, NaN where the true frame has no block on the
    desk or the prediction lost it; block_missing (V, T, 2): 1 where the prediction lost a
    block the true frame has (NaN where the true frame has none). With `last_context` (V,),
    the reading of each clip's last context frame, light_changed (V, T, 3) marks the true
    frames whose light differs from it: the events copy-last cannot get right.
    """
    true_found = np.isfinite(true.blocks[..., 0])
    pred_found = np.isfinite(pred.blocks[..., 0])
    scores = {
        "light_agreement": (true.lights == pred.lights).astype(np.float64),
        "light_on": true.lights.astype(np.float64),
        "slide_error": np.abs(true.slide - pred.slide),
        "drawer_error": np.abs(true.drawer - pred.drawer),
        "block_centroid_error_px": np.linalg.norm(true.blocks - pred.blocks, axis=-1),
        "block_missing": np.where(true_found, (~pred_found).astype(np.float64), np.nan),
    }
    if last_context is not None:
        scores["light_changed"] = (true.lights != last_context.lights[:, None]).astype(np.float64)
        scores["slide_moved"] = (np.abs(true.slide - last_context.slide[:, None]) > SLIDE_MOVED).astype(np.float64)
        scores["drawer_moved"] = (np.abs(true.drawer - last_context.drawer[:, None]) > DRAWER_MOVED
                                  ).astype(np.float64)
        with np.errstate(invalid="ignore"):  # NaN (no block): not moved
            shift = np.linalg.norm(true.blocks - last_context.blocks[:, None], axis=-1)
        scores["block_moved"] = (np.nan_to_num(shift, nan=0.0) > BLOCK_MOVED_PX).astype(np.float64)
    return scores


def desk_object_scores(true_frames: np.ndarray, pred_frames: np.ndarray,
                       last_context: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """`compare_readings` of uint8 frames (V, T, 64, 64, 3); `last_context` (V, 64, 64, 3)."""
    true_frames = check_desk_frames(true_frames, "true frames")
    pred_frames = check_desk_frames(pred_frames, "predicted frames")
    if true_frames.ndim != 5 or pred_frames.shape != true_frames.shape:
        raise UserError(f"true and predicted RoboDesk frames must both be (V, T, 64, 64, 3); got "
                        f"{true_frames.shape} and {pred_frames.shape}")
    reference = None
    if last_context is not None:
        last_context = check_desk_frames(last_context, "last context frames")
        if last_context.shape != true_frames[:, 0].shape:
            raise UserError(f"last context frames must be (V, 64, 64, 3) with V = "
                            f"{len(true_frames)}; got {last_context.shape}")
        reference = read_desk(last_context)
    return compare_readings(read_desk(true_frames), read_desk(pred_frames), reference)


def summarize_desk_scores(scores: dict[str, np.ndarray]) -> dict[str, Any]:
    """Means over videos (each video's mean over its frames) ± standard error and per-frame
    curves of `compare_readings` output; lights and blocks also one by one.

    light_agreement_when_on pools every (video, frame, light) lit in the true frame, and
    light_agreement_when_changed every one whose true state differs from the last context
    frame (left out without `light_changed`); each mean is None when no such event exists.
    Likewise slide_error_when_moved, drawer_error_when_moved and
    block_centroid_error_px_when_moved pool the frames where that object's true reading moved
    since the last context frame (`SLIDE_MOVED`, ...): copy-last is wrong on all of them,
    while on the frames where nothing moved it is exact, which a model paying its
    tokenizer's reconstruction error cannot be.
    """

    def summary(values: np.ndarray) -> dict[str, Any]:
        with _quiet():
            per_video = np.nanmean(values.reshape(len(values), -1), axis=1)
            per_frame = np.nanmean(values.reshape(*values.shape[:2], -1), axis=(0, 2))
        mean, se = _mean_and_se(per_video)
        return {"mean": mean, "se": se, "per_frame": [_finite_or_none(v) for v in per_frame]}

    def per_item(values: np.ndarray, names: Sequence[str]) -> dict[str, float | None]:
        with _quiet():
            return {name: _finite_or_none(np.nanmean(values[..., i])) for i, name in enumerate(names)}

    lights, blocks = scores["light_agreement"], scores["block_centroid_error_px"]
    result = {
        "light_agreement": {**summary(lights), "lights": per_item(lights, LIGHTS)},
        "slide_error": summary(scores["slide_error"]),
        "drawer_error": summary(scores["drawer_error"]),
        "block_centroid_error_px": {**summary(blocks), "blocks": per_item(blocks, BLOCKS)},
    }
    with _quiet():
        missing = _finite_or_none(np.nanmean(scores["block_missing"]))
    result["block_missing"] = {"mean": missing if missing is not None else 0.0,
                               "blocks": per_item(scores["block_missing"], BLOCKS)}
    for event in ("on", "changed"):
        if f"light_{event}" in scores:
            result[f"light_agreement_when_{event}"] = _pooled(lights, scores[f"light_{event}"] > 0)
    for name, moved in (("slide_error", "slide_moved"), ("drawer_error", "drawer_moved"),
                        ("block_centroid_error_px", "block_moved")):
        if moved in scores:
            result[f"{name}_when_moved"] = _pooled(scores[name], scores[moved] > 0)
    return result


def _pooled(values: np.ndarray, events: np.ndarray) -> dict[str, Any]:
    """The mean of `values` over the entries where `events` holds (None when none does);
    NaN entries (a block the prediction lost) are left out of the mean, not of the count."""
    chosen = values[events]
    finite = chosen[np.isfinite(chosen)]
    return {"mean": float(finite.mean()) if finite.size else None, "events": int(events.sum())}


def desk_object_fidelity(true_frames: np.ndarray, pred_frames: np.ndarray) -> dict[str, Any]:
    """Light agreement, slide / drawer error and block centroid error of predicted (or
    reconstructed) against true uint8 frames (V, T, 64, 64, 3), frame t against frame t."""
    return summarize_desk_scores(desk_object_scores(true_frames, pred_frames))


class DeskScoreStream:
    """Desk-object scores of streamed predictions and of copy-last on the same clips.

    Each video's score is the mean over its samples (as `ObjectScoreStream` does for the
    push world); copy-last repeats each clip's last context frame, whose reading is also
    the reference for `light_agreement_when_changed`.
    """

    def __init__(self, context_frames: int) -> None:
        if context_frames < 1:
            raise UserError(f"context frames must be at least 1, got {context_frames}")
        self.context = context_frames
        self.model: list[dict[str, np.ndarray]] = []
        self.copy_last: list[dict[str, np.ndarray]] = []

    def update(self, truth: np.ndarray, samples: np.ndarray) -> None:
        """truth (B, T, 64, 64, 3), samples (B, N, Tp, 64, 64, 3), both uint8, Tp ≤ T − context."""
        truth = check_desk_frames(truth, "true clips")
        samples = check_desk_frames(samples, "predicted samples")
        if (truth.ndim != 5 or samples.ndim != 6 or len(samples) != len(truth)
                or samples.shape[2] > truth.shape[1] - self.context):
            raise UserError(f"expected true clips (B, T, 64, 64, 3) and samples (B, N, Tp, 64, 64, 3) "
                            f"with Tp ≤ T − {self.context} context frames; got {truth.shape} and "
                            f"{samples.shape}")
        b, n, tp = samples.shape[:3]
        true = read_desk(truth[:, self.context:self.context + tp])  # (B, Tp)
        last = read_desk(truth[:, self.context - 1])  # (B,)
        pred = read_desk(samples)  # (B, N, Tp)
        per_sample = [compare_readings(true, _index(pred, (slice(None), i)), last) for i in range(n)]
        with _quiet():  # all-NaN: no block on the desk in that true frame
            self.model.append({k: np.nanmean(np.stack([s[k] for s in per_sample], 1), axis=1)
                               for k in per_sample[0]})
        still = DeskReading(*(np.repeat(x[:, None], tp, axis=1) for x in _fields(last)))
        self.copy_last.append(compare_readings(true, still, last))

    def results(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(model, copy-last) summaries, as `summarize_desk_scores` gives them."""
        if not self.model:
            raise UserError("no clips were scored: call update() with at least one batch")

        def merged(parts: list[dict[str, np.ndarray]]) -> dict[str, Any]:
            return summarize_desk_scores({k: np.concatenate([p[k] for p in parts]) for k in parts[0]})

        return merged(self.model), merged(self.copy_last)

    def state(self) -> dict[str, np.ndarray]:
        """The raw per-video scores so far (`sided_state`), to merge across processes."""
        return sided_state(self)

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        load_sided_state(self, state)


def sided_state(stream: Any) -> dict[str, np.ndarray]:
    """A score stream's raw scores so far (its `model` and `copy_last` lists of per-batch
    score dicts) as one dict "model/NAME", "copy_last/NAME" -> array whose first axis is
    the video (empty before the first batch): what processes scoring shares of the videos
    send to the one that merges them (`load_sided_state`)."""
    state = {}
    for side in ("model", "copy_last"):
        parts = getattr(stream, side)
        for name in parts[0] if parts else ():
            state[f"{side}/{name}"] = np.concatenate([part[name] for part in parts])
    return state


def load_sided_state(stream: Any, state: dict[str, np.ndarray]) -> None:
    """Replace a score stream's scores so far by `state`, as `sided_state` gives it."""
    for side in ("model", "copy_last"):
        scores = {k.split("/", 1)[1]: v for k, v in state.items() if k.startswith(f"{side}/")}
        setattr(stream, side, [scores] if scores else [])


def is_desk_store(store: Any) -> bool:
    """Whether an episode store holds RoboDesk episodes (`maskvit collect --env robodesk`)."""
    return getattr(store, "source", None) == "robodesk"


def desk_fidelity_against_copy_last(truth: np.ndarray, samples: np.ndarray,
                                    context_frames: int) -> dict[str, dict[str, Any]]:
    """{"model": ..., "copy_last": ...}: desk-object scores of sampled futures (V, N, Tp, 64,
    64, 3) of true clips (V, T, 64, 64, 3), and of repeating each clip's last context frame."""
    stream = DeskScoreStream(context_frames)
    stream.update(truth, samples)
    model, copy_last = stream.results()
    return {"model": model, "copy_last": copy_last}


def _fields(reading: DeskReading) -> tuple[np.ndarray, ...]:
    return reading.lights, reading.slide, reading.drawer, reading.blocks


def _index(reading: DeskReading, index: tuple) -> DeskReading:
    """The readings of a slice of the frames' leading axes."""
    return DeskReading(*(x[index] for x in _fields(reading)))


# -- calibration
def render_calibration(slide_positions: Sequence[float] = tuple(SLIDE_POSITIONS),
                       drawer_positions: Sequence[float] = tuple(DRAWER_POSITIONS),
                       ) -> dict[str, tuple[str, ...]]:
    """The slide and drawer profile tables, rendered in the RoboDesk world (needs MuJoCo);
    the shipped tables are this function's output at the default positions.

    The arm is swung out of view and the blocks and ball are put under the floor, so each
    profile shows the slide or the drawer alone; the other joints stay at seed 3's scene.
    """
    from maskvit.sim.desk_world import DeskWorld

    world = DeskWorld()
    try:
        world.reset(3)
        data = world.physics.named.data
        world.physics.data.qpos[0] = 1.2  # the arm's base joint: swings the arm off the desk
        for name in ("flat_block", "upright_block", "ball"):
            data.qpos[name][2] = -5.0
        world.physics.forward()
        scene = world.get_state()

        def render_at(joint: str, positions: Sequence[float]) -> np.ndarray:
            frames = []
            for position in positions:
                world.set_state(scene)
                data.qpos[joint] = position
                world.physics.forward()
                frames.append(world.render())
            return np.stack(frames) if frames else np.zeros((0, FRAME_SIZE, FRAME_SIZE, 3), np.uint8)

        return {"slide": _slide_table(render_at("slide_joint", slide_positions)),
                "drawer": _drawer_table(render_at("drawer_joint", drawer_positions))}
    finally:
        world.close()


def _slide_table(frames: np.ndarray) -> tuple[str, ...]:
    profile, weight = _slide_profile(frames)
    return tuple("".join("." if w < 0.5 else f"{round(p * 15):x}"
                         for p, w in zip(row, weights, strict=True))
                 for row, weights in zip(profile, weight, strict=True))


def _drawer_table(frames: np.ndarray) -> tuple[str, ...]:
    width = _DRAWER_COLUMNS.stop - _DRAWER_COLUMNS.start
    return tuple("".join(f"{round(b / width * 15):x}" for b in row) for row in _brown_per_row(frames))
