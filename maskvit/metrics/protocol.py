"""Evaluation protocols of video prediction (paper §4.1) and the code that runs them.

A protocol fixes how many context frames are given, how many frames are predicted, how
many videos are evaluated and how many samples (trials) are drawn per video. Scores:

* PSNR, SSIM, LPIPS: per video, the best of the N trials (each trial scored by its mean
  over the predicted frames; chosen separately for each metric, as SVG / FitVid do);
  reported as the mean over videos with its standard error, plus the per-frame curve of
  the chosen trials.
* FVD: real set: the V ground-truth videos; generated set: trial t's V samples; the
  value is the mean over the N trials (`per_trial` lists them), so both sets always have
  the same size, as in the usual protocol; `pooled` uses all V·N samples at once.
  Both sets are whole clips (context frames followed by the predicted frames), as in the
  BAIR 1 → 15 protocol where FVD is taken over 16 frames.

Everything takes videos, not models: ground truth (V, T, H, W, 3) uint8 and predictions
(V, N, Tp, H, W, 3) uint8, whole or streamed in batches through `VideoPredictionEvaluator`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from maskvit.config import Config, load_preset
from maskvit.devices import resolve_device
from maskvit.errors import UserError
from maskvit.metrics.fvd import fvd_from_features, i3d_features
from maskvit.metrics.i3d import load_i3d
from maskvit.metrics.lpips import LPIPS, load_lpips, lpips
from maskvit.metrics.pixel import psnr, ssim
from maskvit.metrics.weights import MissingWeightsError

FRAME_METRICS = ("psnr", "ssim", "lpips")
ALL_METRICS = (*FRAME_METRICS, "fvd")
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "lpips": False, "fvd": False}

# Videos (B, T, H, W, 3) uint8 -> features (B, D); the I3D logits by default.
FeatureFn = Callable[[np.ndarray], np.ndarray]

# The most samples per video an evaluation draws: every trial of a batch of videos is held
# at once (best-of-N is chosen per video), with one FVD feature vector per (video, trial).
# The paper's protocols draw at most 100 (best of 100 on RoboNet and KITTI).
MAX_TRIALS = 100


def check_trials(trials: int, name: str = "trials") -> None:
    """Refuse (one line) a number of trials outside [1, MAX_TRIALS]; memory grows with it."""
    if trials < 1:
        raise UserError(f"{name} must be at least 1, got {trials}")
    if trials > MAX_TRIALS:
        raise UserError(f"{name} must be at most {MAX_TRIALS} (every trial of a batch of videos "
                        f"is held in memory at once), got {trials}")


@dataclass(frozen=True)
class Protocol:
    """How one dataset is evaluated."""

    name: str
    context_frames: int
    predicted_frames: int
    trials: int  # samples per video; best-of-N for PSNR / SSIM / LPIPS
    num_videos: int  # test videos the paper evaluates
    action_conditioned: bool = False

    @property
    def total_frames(self) -> int:
        return self.context_frames + self.predicted_frames

    @classmethod
    def from_config(cls, config: Config) -> Protocol:
        """The protocol of a resolved config (its `eval` and `data` sections)."""
        return cls(
            name=config.name,
            context_frames=config.eval.context_frames,
            predicted_frames=config.eval.predicted_frames,
            trials=config.eval.trials,
            num_videos=config.eval.num_videos,
            action_conditioned=config.data.action_dim > 0,
        )


def protocol_for_preset(name: str) -> Protocol:
    """The protocol of a shipped preset: bair64 1→15 (1 trial), kitti 5→25, robonet 2→10
    with actions, push64 2→10 with actions; trials and video counts as in the preset."""
    return Protocol.from_config(load_preset(name))


def copy_last_frame(
    ground_truth: np.ndarray, context_frames: int, predicted_frames: int
) -> np.ndarray:
    """The copy-last-frame baseline: (V, T, H, W, 3) -> (V, 1, Tp, H, W, 3) predictions
    that repeat the last context frame."""
    _check_videos(ground_truth, "ground truth", ndim=5)
    last = ground_truth[:, context_frames - 1]  # (V, H, W, 3)
    return np.repeat(last[:, None, None], predicted_frames, axis=2)


@dataclass
class MetricNetworks:
    """The pretrained networks behind LPIPS and FVD, loaded once and shared by evaluations
    (e.g. the model and the copy-last baseline). A metric whose weights are missing is
    left out with its one-line reason in `skipped`."""

    lpips_model: LPIPS | None = None
    fvd_features: FeatureFn | None = None
    skipped: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(
        cls,
        metrics: Iterable[str] = ALL_METRICS,
        weights_dir: str | os.PathLike | None = None,
        device: str | torch.device = "cpu",
        lpips_net: str = "alex",
    ) -> MetricNetworks:
        """`device` as --device takes it ("auto": a GPU when there is one) or a torch device."""
        device = resolve_device(device) if isinstance(device, str) else torch.device(device)
        networks = cls()
        metrics = set(metrics)
        if "lpips" in metrics:
            try:
                networks.lpips_model = load_lpips(lpips_net, weights_dir).to(device)
            except MissingWeightsError as err:
                networks.skipped["lpips"] = str(err)
        if "fvd" in metrics:
            try:
                i3d = load_i3d(weights_dir).to(device)
            except MissingWeightsError as err:
                networks.skipped["fvd"] = str(err)
            else:
                networks.fvd_features = lambda videos: i3d_features(i3d, videos)
        return networks


class VideoPredictionEvaluator:
    """Accumulates per-frame scores and FVD features over batches; `result()` summarises.

    `networks` defaults to `MetricNetworks.load(metrics, weights_dir, device)`. A metric
    without its network (weights missing) is skipped with the one-line reason in
    `result()["skipped"]`; the other metrics are still computed.
    """

    def __init__(
        self,
        protocol: Protocol,
        metrics: Iterable[str] = ALL_METRICS,
        *,
        networks: MetricNetworks | None = None,
        weights_dir: str | os.PathLike | None = None,
        device: str | torch.device = "cpu",
        chunk_frames: int = 256,
    ):
        metrics = list(metrics)
        unknown = set(metrics) - set(ALL_METRICS)
        if unknown:
            raise UserError(
                f"unknown metric {sorted(unknown)[0]!r}; choose from {', '.join(ALL_METRICS)}"
            )
        self.protocol = protocol
        self.metrics = [m for m in ALL_METRICS if m in metrics]
        self.chunk_frames = chunk_frames
        if networks is None:
            networks = MetricNetworks.load(self.metrics, weights_dir, device)
        self.lpips_model = networks.lpips_model
        self.fvd_features = networks.fvd_features
        self.skipped: dict[str, str] = {}
        for metric, model in (("lpips", self.lpips_model), ("fvd", self.fvd_features)):
            if metric in self.metrics and model is None:
                self._skip(metric, networks.skipped.get(metric, f"{metric}: no network given"))
        self._scores: dict[str, list[np.ndarray]] = {
            m: [] for m in self.metrics if m in FRAME_METRICS
        }
        self._real_features: list[np.ndarray] = []
        self._fake_features: list[np.ndarray] = []
        self._trials: int | None = None

    def _skip(self, metric: str, reason: str) -> None:
        self.metrics.remove(metric)
        self.skipped[metric] = reason

    def update(self, ground_truth: np.ndarray, predictions: np.ndarray) -> None:
        """Add a batch: ground truth (B, T, H, W, 3), predictions (B, N, Tp or T, H, W, 3)."""
        truth, samples = self._validate(np.asarray(ground_truth), np.asarray(predictions))
        tc = self.protocol.context_frames
        future = truth[:, tc:]  # (B, Tp, H, W, 3)
        for metric in self._scores:
            self._scores[metric].append(self._frame_scores(metric, future, samples))
        if "fvd" in self.metrics:
            b, n = samples.shape[:2]
            context = np.broadcast_to(truth[:, None, :tc], (b, n, *truth[:, :tc].shape[1:]))
            clips = np.concatenate([context, samples], axis=2).reshape(b * n, *truth.shape[1:])
            self._real_features.append(np.asarray(self.fvd_features(truth), dtype=np.float64))
            fake = np.asarray(self.fvd_features(clips), dtype=np.float64)
            self._fake_features.append(fake.reshape(b, n, -1))  # (B, N, D): video, trial

    def _frame_scores(self, metric: str, future: np.ndarray, samples: np.ndarray) -> np.ndarray:
        """(B, Tp, H, W, 3) vs (B, N, Tp, H, W, 3) -> (B, N, Tp) float64 scores."""
        b, n, tp = samples.shape[:3]
        frames = samples.shape[3:]
        # Pair every sample frame with its true frame, a chunk at a time, so the
        # ground truth is never copied N times in full.
        flat = samples.reshape(b * n * tp, *frames)
        out = []
        for start in range(0, flat.shape[0], self.chunk_frames):
            index = np.arange(start, min(start + self.chunk_frames, flat.shape[0]))
            a = future[index // (n * tp), index % tp]  # the true frame of each sample frame
            p = np.ascontiguousarray(flat[index])
            if metric == "psnr":
                out.append(psnr(a, p))
            elif metric == "ssim":
                out.append(ssim(a, p))
            else:
                out.append(lpips(self.lpips_model, a, p))
        return torch.cat(out).numpy().reshape(b, n, tp)

    def _validate(self, truth: np.ndarray, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = self.protocol
        _check_videos(truth, "ground truth", ndim=5)
        _check_videos(samples, "predictions", ndim=6)
        if truth.shape[1] < p.total_frames:
            raise UserError(
                f"ground truth has {truth.shape[1]} frames; protocol {p.name} needs "
                f"{p.context_frames} context + {p.predicted_frames} predicted = {p.total_frames}"
            )
        truth = truth[:, : p.total_frames]
        if samples.shape[2] == p.total_frames and p.context_frames > 0:
            samples = samples[:, :, p.context_frames :]  # whole clips given: keep the future
        if samples.shape[2] != p.predicted_frames:
            raise UserError(
                f"predictions have {samples.shape[2]} frames; protocol {p.name} predicts {p.predicted_frames}"
            )
        if samples.shape[0] != truth.shape[0] or samples.shape[3:] != truth.shape[2:]:
            raise UserError(
                f"predictions {samples.shape} do not match ground truth {truth.shape}: "
                "expected (V, N, Tp, H, W, 3) for (V, T, H, W, 3)"
            )
        if self._trials is None:
            self._trials = samples.shape[1]
        elif samples.shape[1] != self._trials:
            raise UserError(
                f"every batch needs the same number of trials; got {samples.shape[1]} after {self._trials}"
            )
        return truth, samples

    def state(self) -> dict[str, np.ndarray]:
        """What `result()` is computed from, as arrays whose first axis is the video: each
        frame metric's scores (V, N, Tp) and FVD's features, real (V, D) and generated
        (V, N, D). Empty before the first batch. Processes that scored shares of the videos
        send these to one process, which merges them (`load_state`) and summarises."""
        state = {f"scores/{m}": np.concatenate(b) for m, b in self._scores.items() if b}
        if self._real_features:
            state["fvd/real"] = np.concatenate(self._real_features)
            state["fvd/generated"] = np.concatenate(self._fake_features)
        return state

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Replace what was accumulated by `state` (as `state()` gives it, e.g. merged
        from several processes); an empty state leaves nothing scored."""
        for metric in self._scores:
            scores = state.get(f"scores/{metric}")
            self._scores[metric] = [] if scores is None else [scores]
        real, fake = state.get("fvd/real"), state.get("fvd/generated")
        self._real_features = [] if real is None or "fvd" not in self.metrics else [real]
        self._fake_features = [] if fake is None or "fvd" not in self.metrics else [fake]
        trials = [a.shape[1] for k, a in state.items() if k.startswith("scores/")]
        if fake is not None:
            trials.append(fake.shape[1])
        self._trials = trials[0] if trials else None

    def result(self) -> dict[str, Any]:
        """Best-of-N means ± standard errors, per-frame curves, FVD, skipped metrics."""
        metrics: dict[str, Any] = {}
        per_video: dict[str, Any] = {}
        num_videos = 0
        for metric, batches in self._scores.items():
            if not batches:
                continue
            scores = np.concatenate(batches)  # (V, N, Tp)
            num_videos = scores.shape[0]
            summary, best = best_of_n(scores, higher_is_better=HIGHER_IS_BETTER[metric])
            metrics[metric] = summary
            per_video[metric] = best
        if "fvd" in self.metrics and self._real_features:
            real, fake = np.concatenate(self._real_features), np.concatenate(self._fake_features)
            num_videos = num_videos or real.shape[0]
            # Fréchet distances from small sets depend on the set sizes, so the headline
            # value compares equal-sized sets: the real videos against one sample of each
            # (trial t), averaged over trials. The pooled value uses every sample at once.
            try:
                per_trial = [fvd_from_features(real, fake[:, t]) for t in range(fake.shape[1])]
                pooled = fvd_from_features(real, fake.reshape(-1, fake.shape[-1]))
            except UserError as err:
                self.skipped["fvd"] = str(err)
            else:
                metrics["fvd"] = {
                    "value": float(np.mean(per_trial)),
                    "per_trial": per_trial,
                    "pooled": pooled,
                    "num_real": int(real.shape[0]),
                    "num_generated": int(fake.shape[0] * fake.shape[1]),
                }
        return {
            "protocol": asdict(self.protocol),
            "num_videos": num_videos,
            "trials": self._trials or 0,
            "metrics": metrics,
            "per_video": per_video,
            "skipped": dict(self.skipped),
        }


def best_of_n(scores: np.ndarray, higher_is_better: bool) -> tuple[dict[str, Any], dict[str, list]]:
    """Pick each video's best trial by its mean over frames.

    scores: (V, N, Tp). Returns the summary {"mean", "stderr", "per_frame",
    "per_frame_stderr"} over videos and the per-video {"best", "best_trial"}.
    """
    per_trial = scores.mean(axis=2)  # (V, N)
    choose = np.argmax if higher_is_better else np.argmin
    best_trial = choose(per_trial, axis=1)  # (V,)
    videos = np.arange(scores.shape[0])
    best = per_trial[videos, best_trial]  # (V,)
    curves = scores[videos, best_trial]  # (V, Tp)
    summary = {
        "mean": float(best.mean()),
        "stderr": standard_error(best),
        "per_frame": [float(v) for v in curves.mean(axis=0)],
        "per_frame_stderr": [standard_error(curves[:, t]) for t in range(curves.shape[1])],
    }
    return summary, {"best": [float(v) for v in best], "best_trial": [int(i) for i in best_trial]}


def standard_error(values: np.ndarray) -> float:
    """Standard error of the mean (sample std / √n); NaN for fewer than 2 values."""
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2:
        return math.nan
    if not np.all(np.isfinite(values)):
        return 0.0 if np.all(values == values[0]) else math.nan
    return float(values.std(ddof=1) / math.sqrt(values.size))


def evaluate_batches(
    batches: Iterable[tuple[np.ndarray, np.ndarray]], protocol: Protocol, **evaluator_kwargs: Any
) -> dict[str, Any]:
    """Evaluate a stream of (ground truth (B, T, H, W, 3), predictions (B, N, Tp, H, W, 3))."""
    evaluator = VideoPredictionEvaluator(protocol, **evaluator_kwargs)
    for truth, samples in batches:
        evaluator.update(truth, samples)
    return evaluator.result()


def evaluate_predictions(
    ground_truth: np.ndarray,
    predictions: np.ndarray,
    protocol: Protocol,
    batch_size: int = 16,
    **evaluator_kwargs: Any,
) -> dict[str, Any]:
    """Evaluate whole arrays: ground truth (V, T, H, W, 3), predictions (V, N, Tp, H, W, 3)."""
    batches = (
        (ground_truth[i : i + batch_size], predictions[i : i + batch_size])
        for i in range(0, len(ground_truth), batch_size)
    )
    return evaluate_batches(batches, protocol, **evaluator_kwargs)


def evaluate_copy_last_baseline(
    ground_truth: np.ndarray, protocol: Protocol, **kwargs: Any
) -> dict[str, Any]:
    """The copy-last-frame baseline, scored through exactly the same code."""
    predictions = copy_last_frame(ground_truth, protocol.context_frames, protocol.predicted_frames)
    return evaluate_predictions(ground_truth, predictions, protocol, **kwargs)


def _check_videos(videos: np.ndarray, what: str, ndim: int) -> None:
    layout = "(V, T, H, W, 3)" if ndim == 5 else "(V, N, T, H, W, 3)"
    if videos.ndim != ndim or videos.shape[-1] != 3:
        raise UserError(f"{what} must be {layout} uint8, got shape {videos.shape}")
    if videos.dtype != np.uint8:
        raise UserError(f"{what} must be uint8 frames, got {videos.dtype}")


# RoboDesk's headline numbers: name in the headline -> the `desk_objects` summary it reads.
DESK_HEADLINE = {
    "light_agreement": "light_agreement",
    "light_agreement_when_changed": "light_agreement_when_changed",
    "slide_position_error": "slide_error",
    "drawer_position_error": "drawer_error",
    "block_position_error_px": "block_centroid_error_px",
    "slide_error_when_moved": "slide_error_when_moved",
    "drawer_error_when_moved": "drawer_error_when_moved",
    "block_error_px_when_moved": "block_centroid_error_px_when_moved",
}


def headline_numbers(result: dict[str, Any]) -> dict[str, float]:
    """One side ("model" or "baseline") of an evaluation result (metrics.json) in headline
    form: each metric's mean (FVD: its value), and the objects' fidelity when scored (push:
    box IoU / centroid error; RoboDesk: `DESK_HEADLINE`)."""
    numbers = {m: v.get("mean", v.get("value")) for m, v in result.get("metrics", {}).items()}
    objects = result.get("objects")
    if objects:
        numbers["box_iou"] = objects["iou"]["mean"]
        numbers["box_centroid_error_px"] = objects["centroid_error_px"]["mean"]
    desk = result.get("desk_objects")
    if desk:
        numbers.update({name: desk[key]["mean"] for name, key in DESK_HEADLINE.items() if key in desk})
    return numbers
