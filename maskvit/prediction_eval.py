"""Evaluate a Predictor on held-out episodes with the paper's protocol (§4.1).

One clip per test episode (its first context + predicted frames), N sampled futures per
clip, best-of-N PSNR / SSIM / LPIPS per video and FVD over all samples, next to the
copy-last-frame baseline scored by the same code.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from tqdm import tqdm

from maskvit.config import DecodingConfig
from maskvit.data import EpisodeStore
from maskvit.errors import UserError
from maskvit.inference.predictor import Predictor
from maskvit.metrics import (
    MetricNetworks,
    Protocol,
    VideoPredictionEvaluator,
    evaluate_copy_last_baseline,
)
from maskvit.metrics.objects import (
    ColourObject,
    object_scores,
    summarize_object_scores,
    world_objects,
)
from maskvit.metrics.protocol import check_trials


@dataclass
class EvaluationOutput:
    result: dict[str, Any]
    baseline: dict[str, Any]
    ground_truth: np.ndarray  # (V_shown, T, H, W, 3) for the report's GIFs
    predictions: np.ndarray  # (V_shown, N_shown, Tp, H, W, 3)


def headline_numbers(result: dict[str, Any]) -> dict[str, float]:
    """One side ("model" or "baseline") of an evaluation result (metrics.json) in headline
    form: each metric's mean (FVD: its value), and box IoU / centroid error when scored."""
    numbers = {m: v.get("mean", v.get("value")) for m, v in result.get("metrics", {}).items()}
    objects = result.get("objects")
    if objects:
        numbers["box_iou"] = objects["iou"]["mean"]
        numbers["box_centroid_error_px"] = objects["centroid_error_px"]["mean"]
    return numbers


def test_clips(store: EpisodeStore, protocol: Protocol, split: str,
               num_videos: int, goal: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The first clip of each of the first `num_videos` episodes of `split` (one frame
    longer with `goal`: the true frame after the predicted ones is the goal)."""
    frames, actions = [], []
    length = protocol.total_frames + int(goal)
    for episode_id in store.episode_ids(split):
        if store.length(episode_id) < length:
            continue
        clip = store.load_clip(episode_id, 0, length)
        frames.append(clip["frames"])
        actions.append(clip["actions"])
        if len(frames) == num_videos:
            break
    if not frames:
        raise UserError(f"{store.path}: no {split} episode has {length} frames "
                        f"({protocol.context_frames} context + {protocol.predicted_frames} predicted"
                        f"{' + 1 goal' if goal else ''})")
    return np.stack(frames), np.stack(actions).astype(np.float32)


class ObjectScoreStream:
    """Object fidelity (box IoU, centroid error) of streamed predictions and of copy-last.

    Each video's score is the mean over its samples, so it reads like the other metrics'
    per-video numbers; copy-last-frame is scored on the same clips for comparison.
    """

    def __init__(self, objects: tuple[ColourObject, ...], context_frames: int) -> None:
        self.objects, self.context = objects, context_frames
        self.model: list[dict[str, np.ndarray]] = []
        self.copy_last: list[dict[str, np.ndarray]] = []

    def update(self, truth: np.ndarray, samples: np.ndarray) -> None:
        """truth (B, T, H, W, 3), samples (B, N, Tp, H, W, 3), both uint8."""
        b, n, tp = samples.shape[:3]
        future = truth[:, self.context:self.context + tp]
        flat = object_scores(np.repeat(future, n, axis=0), samples.reshape(b * n, *samples.shape[2:]),
                             self.objects)
        with warnings.catch_warnings():  # all-NaN slice: no object in that true frame
            warnings.simplefilter("ignore", RuntimeWarning)
            self.model.append({k: np.nanmean(v.reshape(b, n, *v.shape[1:]), axis=1)
                               for k, v in flat.items()})
        still = np.repeat(truth[:, self.context - 1:self.context], tp, axis=1)
        self.copy_last.append(object_scores(future, still, self.objects))

    def results(self) -> tuple[dict, dict]:
        def merged(parts: list[dict[str, np.ndarray]]) -> dict[str, Any]:
            scores = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
            return summarize_object_scores(scores, self.objects)

        return merged(self.model), merged(self.copy_last)


def _sample_trials(predictor: Predictor, context: np.ndarray, actions: np.ndarray | None,
                   goals: np.ndarray | None, protocol: Protocol, decoding: DecodingConfig | None,
                   seed: int, bar: tqdm) -> np.ndarray:
    """`protocol.trials` sampled futures of each video, (B, N, Tp, H, W, 3); trial i is
    seeded seed + 1000 i."""
    samples = []
    for trial in range(protocol.trials):
        samples.append(predictor.predict(context, actions=actions, num_frames=protocol.predicted_frames,
                                         decoding=decoding, goal_frame=goals, seed=seed + 1000 * trial))
        bar.update(len(context))
    return np.stack(samples, axis=1)


def _uses_actions(predictor: Predictor, store: EpisodeStore, actions: np.ndarray) -> bool:
    """Whether the model takes actions; a one-line error when the store's are another width."""
    width = predictor.spec.action_dim
    if width and actions.shape[-1] != width:
        raise UserError(f"{store.path} has {actions.shape[-1]}-D actions; the model expects {width}")
    return width > 0


def evaluate_predictor(
    predictor: Predictor,
    store: EpisodeStore,
    protocol: Protocol,
    split: str = "test",
    networks: MetricNetworks | None = None,
    metrics: tuple[str, ...] = ("psnr", "ssim", "lpips", "fvd"),
    batch_size: int = 16,
    seed: int = 0,
    show_videos: int = 8,
    show_samples: int = 4,
    progress: bool = True,
    decoding: DecodingConfig | None = None,
    goal: bool = False,
) -> EvaluationOutput:
    """Sample `protocol.trials` futures for each test clip and score them.

    The result's protocol says how many videos were scored: `protocol.num_videos`, or
    fewer when the split holds fewer long enough (`videos_requested` keeps the ask).

    `decoding` defaults to the model's `eval.decoding` (benchmarks sweep other settings).
    `goal` (goal-conditioned models; paper Table 1): the true frame right after the
    predicted ones is given as the goal, and the frames in between are scored.
    """
    if batch_size < 1:
        raise UserError(f"batch size must be at least 1, got {batch_size}")
    check_trials(protocol.trials)
    truth, actions = test_clips(store, protocol, split, protocol.num_videos, goal)
    requested = protocol.num_videos
    protocol = replace(protocol, num_videos=len(truth))  # what is scored
    goals = truth[:, protocol.total_frames] if goal else None
    truth = truth[:, :protocol.total_frames]
    networks = networks if networks is not None else MetricNetworks.load(metrics)
    evaluator = VideoPredictionEvaluator(protocol, metrics, networks=networks)
    use_actions = _uses_actions(predictor, store, actions)
    shown_truth, shown_pred = [], []
    tc, tp = protocol.context_frames, protocol.predicted_frames
    object_stream = ObjectScoreStream(objects, tc) if (objects := world_objects(store)) else None
    bar = tqdm(total=len(truth) * protocol.trials, desc="predicting", unit="sample",
               disable=not progress)
    for start in range(0, len(truth), batch_size):
        gt = truth[start:start + batch_size]
        act = actions[start:start + batch_size, : tc + tp] if use_actions else None
        goal_frames = None if goals is None else goals[start:start + batch_size]
        pred = _sample_trials(predictor, gt[:, :tc], act, goal_frames, protocol, decoding,
                              seed + start, bar)  # (B, N, Tp, H, W, 3)
        evaluator.update(gt, pred)
        if object_stream is not None:
            object_stream.update(gt, pred)
        room = max(show_videos - sum(len(x) for x in shown_truth), 0)  # the report shows a few
        shown_truth.append(gt[:room])
        shown_pred.append(pred[:room, :show_samples])
    bar.close()
    baseline = evaluate_copy_last_baseline(truth, protocol, metrics=metrics, networks=networks)
    result = evaluator.result()
    result["videos_requested"] = requested  # more than num_videos: the split had no more
    if object_stream is not None:
        result["objects"], baseline["objects"] = object_stream.results()
    return EvaluationOutput(result, baseline, np.concatenate(shown_truth),
                            np.concatenate(shown_pred))
