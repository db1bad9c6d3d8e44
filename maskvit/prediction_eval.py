"""Evaluate a Predictor on held-out episodes with the paper's protocol (§4.1).

One clip per test episode (its first context + predicted frames), N sampled futures per
clip, best-of-N PSNR / SSIM / LPIPS per video and FVD over all samples, next to the
copy-last-frame baseline scored by the same code; on push and RoboDesk stores also the
objects' fidelity (`maskvit.metrics.objects`, `maskvit.metrics.desk_objects`).

The videos can be shared out over processes (`maskvit.sharding`): each process scores its
round-robin share and sends its per-video scores, FVD features and shown frames to rank 0,
which puts them back in video order and summarises. Every sample is seeded from (seed,
trial, the video's index in the evaluation), never from what else ran in the process, so
the merged numbers equal one process's, video by video.
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
from maskvit.metrics import MetricNetworks, Protocol, VideoPredictionEvaluator, copy_last_frame
from maskvit.metrics.desk_objects import FRAME_SIZE as DESK_FRAME_SIZE
from maskvit.metrics.desk_objects import (
    DeskScoreStream,
    is_desk_store,
    load_sided_state,
    sided_state,
)
from maskvit.metrics.objects import (
    ColourObject,
    object_scores,
    summarize_object_scores,
    world_objects,
)
from maskvit.metrics.protocol import check_trials
from maskvit.model.sampling import video_generators
from maskvit.sharding import Shard, gather_arrays, merge_arrays_round_robin


@dataclass
class EvaluationOutput:
    result: dict[str, Any]
    baseline: dict[str, Any]
    ground_truth: np.ndarray  # (V_shown, T, H, W, 3) for the report's GIFs
    predictions: np.ndarray  # (V_shown, N_shown, Tp, H, W, 3)


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


def check_store_fits(predictor: Predictor, store: EpisodeStore) -> None:
    """A one-line error when the store's frames or actions are not the model's (a RoboDesk
    store, 5-D actions, given to the push model, 2-D), before any work."""
    size = predictor.resolution
    if tuple(store.resolution) != (size, size):
        raise UserError(f"{store.path} holds {store.resolution[0]}×{store.resolution[1]} frames; "
                        f"the model predicts {size}×{size}")
    width = predictor.spec.action_dim
    if width and store.action_dim != width:
        raise UserError(f"{store.path} holds {store.source} episodes with {store.action_dim}-D "
                        f"actions; the model ({predictor.config.name}) takes {width}-D actions: "
                        f"evaluate it on data of its own world, or train a model on this store")


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

    def state(self) -> dict[str, np.ndarray]:
        """The raw per-video scores so far (`sided_state`), to merge across processes."""
        return sided_state(self)

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        load_sided_state(self, state)

    def results(self) -> tuple[dict, dict]:
        def merged(parts: list[dict[str, np.ndarray]]) -> dict[str, Any]:
            scores = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
            return summarize_object_scores(scores, self.objects)

        return merged(self.model), merged(self.copy_last)


class _EvaluationScores:
    """What an evaluation accumulates batch by batch: the paper's metrics of the samples and
    of copy-last on the same clips, and the objects' fidelity where the store's world has
    objects the metrics can read (push boxes; RoboDesk lights, slide, drawer and blocks)."""

    def __init__(self, protocol: Protocol, metrics: tuple[str, ...], networks: MetricNetworks,
                 store: EpisodeStore) -> None:
        self.protocol = protocol
        self.model = VideoPredictionEvaluator(protocol, metrics, networks=networks)
        self.copy_last = VideoPredictionEvaluator(protocol, metrics, networks=networks)
        objects = world_objects(store)
        self.objects = ObjectScoreStream(objects, protocol.context_frames) if objects else None
        self.desk, self.desk_skipped = None, None
        if is_desk_store(store):
            if tuple(store.resolution) == (DESK_FRAME_SIZE, DESK_FRAME_SIZE):
                self.desk = DeskScoreStream(protocol.context_frames)
            else:
                self.desk_skipped = (f"the desk objects are read from {DESK_FRAME_SIZE}×"
                                     f"{DESK_FRAME_SIZE} frames (VP2's view); this store's are "
                                     f"{store.resolution[0]}×{store.resolution[1]}")

    def _parts(self) -> dict[str, Any]:
        parts = {"model": self.model, "copy_last": self.copy_last, "objects": self.objects,
                 "desk": self.desk}
        return {name: part for name, part in parts.items() if part is not None}

    def update(self, truth: np.ndarray, samples: np.ndarray) -> None:
        """truth (B, T, H, W, 3), samples (B, N, Tp, H, W, 3), both uint8."""
        p = self.protocol
        self.model.update(truth, samples)
        self.copy_last.update(truth, copy_last_frame(truth, p.context_frames, p.predicted_frames))
        for stream in (self.objects, self.desk):
            if stream is not None:
                stream.update(truth, samples)

    def state(self) -> dict[str, np.ndarray]:
        """Every per-video array so far, "PART/..." (first axis the video)."""
        return {f"{name}/{key}": array for name, part in self._parts().items()
                for key, array in part.state().items()}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        for name, part in self._parts().items():
            part.load_state({k.split("/", 1)[1]: v for k, v in state.items()
                             if k.startswith(f"{name}/")})

    def results(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(model, copy-last) results, as metrics.json holds them."""
        result, baseline = self.model.result(), self.copy_last.result()
        if self.objects is not None:
            result["objects"], baseline["objects"] = self.objects.results()
        if self.desk is not None:
            result["desk_objects"], baseline["desk_objects"] = self.desk.results()
        if self.desk_skipped:
            result["skipped"]["desk_objects"] = self.desk_skipped
        return result, baseline


def _sample_trials(predictor: Predictor, context: np.ndarray, actions: np.ndarray | None,
                   goals: np.ndarray | None, protocol: Protocol, decoding: DecodingConfig | None,
                   seed: int, videos: list[int], bar: tqdm) -> np.ndarray:
    """`protocol.trials` sampled futures of each video, (B, N, Tp, H, W, 3). Trial i of
    video v (its index in the evaluation) draws from the generator of (seed + 1000 i, v),
    whatever batch or process it runs in."""
    samples = []
    for trial in range(protocol.trials):
        samples.append(predictor.predict(context, actions=actions, num_frames=protocol.predicted_frames,
                                         decoding=decoding, goal_frame=goals,
                                         generator=video_generators(seed + 1000 * trial, videos)))
        bar.update(len(context))
    return np.stack(samples, axis=1)


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
    shard: Shard | None = None,
) -> EvaluationOutput | None:
    """Sample `protocol.trials` futures for each test clip and score them.

    The result's protocol says how many videos were scored: `protocol.num_videos`, or
    fewer when the split holds fewer long enough (`videos_requested` keeps the ask).

    `decoding` defaults to the model's `eval.decoding` (benchmarks sweep other settings).
    `goal` (goal-conditioned models; paper Table 1): the true frame right after the
    predicted ones is given as the goal, and the frames in between are scored.
    `shard`: this process scores its round-robin share of the videos; rank 0 returns the
    merged output (equal to one process's), the other ranks None. Every rank must call
    this with the same arguments.
    """
    if batch_size < 1:
        raise UserError(f"batch size must be at least 1, got {batch_size}")
    check_trials(protocol.trials)
    check_store_fits(predictor, store)
    shard = shard or Shard()
    truth, actions = test_clips(store, protocol, split, protocol.num_videos, goal)
    requested = protocol.num_videos
    protocol = replace(protocol, num_videos=len(truth))  # what is scored
    goals = truth[:, protocol.total_frames] if goal else None
    truth = truth[:, :protocol.total_frames]
    networks = networks if networks is not None else MetricNetworks.load(metrics)
    scores = _EvaluationScores(protocol, metrics, networks, store)
    if predictor.spec.action_dim == 0:
        actions = None
    state = _predict_and_score(predictor, scores, (truth, actions, goals), shard.take(range(len(truth))),
                               protocol, decoding, seed, batch_size, (show_videos, show_samples),
                               progress)
    parts = gather_arrays(state, shard)
    if parts is None:  # not rank 0: rank 0 has our scores
        return None
    merged = merge_arrays_round_robin(parts)
    scores.load_state(merged)
    result, baseline = scores.results()
    result["videos_requested"] = requested  # more than num_videos: the split had no more
    return EvaluationOutput(result, baseline, merged["shown/truth"], merged["shown/predictions"])


def _predict_and_score(predictor: Predictor, scores: _EvaluationScores,
                       clips: tuple[np.ndarray, np.ndarray | None, np.ndarray | None],
                       videos: list[int], protocol: Protocol, decoding: DecodingConfig | None,
                       seed: int, batch_size: int, show: tuple[int, int],
                       progress: bool) -> dict[str, np.ndarray]:
    """Predict `protocol.trials` futures of each of `videos` (indices into `clips`: the true
    frames, actions or None, goal frames or None) and score them; the scores' state, with
    the report's first videos and samples ("shown/...")."""
    truth, actions, goals = clips
    show_videos, show_samples = show
    tc, tp = protocol.context_frames, protocol.predicted_frames
    shown_truth, shown_pred = [], []
    bar = tqdm(total=len(videos) * protocol.trials, desc="predicting", unit="sample",
               disable=not progress)
    for start in range(0, len(videos), batch_size):
        batch = videos[start:start + batch_size]
        gt = truth[batch]
        act = None if actions is None else actions[batch, : tc + tp]
        goal_frames = None if goals is None else goals[batch]
        pred = _sample_trials(predictor, gt[:, :tc], act, goal_frames, protocol, decoding,
                              seed, batch, bar)  # (B, N, Tp, H, W, 3)
        for i in range(len(batch)):
            # One video at a time: the metric networks and readers then see the same
            # shapes whatever batch or process a video is in, and floating point rounds
            # alike, so a sharded run's per-video numbers equal one process's to the bit.
            scores.update(gt[i:i + 1], pred[i:i + 1])
        shown = [i for i, video in enumerate(batch) if video < show_videos]  # the report's GIFs
        shown_truth.append(gt[shown])
        shown_pred.append(pred[shown, :show_samples])
    bar.close()
    state = scores.state()
    if shown_truth:
        state["shown/truth"], state["shown/predictions"] = (np.concatenate(shown_truth),
                                                            np.concatenate(shown_pred))
    return state
