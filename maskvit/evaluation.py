"""Evaluate a Predictor on held-out episodes with the paper's protocol (§4.1).

One clip per test episode (its first context + predicted frames), N sampled futures per
clip, best-of-N PSNR / SSIM / LPIPS per video and FVD over all samples, next to the
copy-last-frame baseline scored by the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from maskvit.data import EpisodeStore
from maskvit.errors import UserError
from maskvit.metrics import (
    MetricNetworks,
    Protocol,
    VideoPredictionEvaluator,
    evaluate_copy_last_baseline,
)
from maskvit.predictor import Predictor


@dataclass
class EvaluationOutput:
    result: dict[str, Any]
    baseline: dict[str, Any]
    ground_truth: np.ndarray  # (V_shown, T, H, W, 3) for the report's GIFs
    predictions: np.ndarray  # (V_shown, N_shown, Tp, H, W, 3)


def test_clips(store: EpisodeStore, protocol: Protocol, split: str,
               num_videos: int) -> tuple[np.ndarray, np.ndarray]:
    """The first clip of each of the first `num_videos` episodes of `split`."""
    frames, actions = [], []
    for episode_id in store.episode_ids(split):
        if store.length(episode_id) < protocol.total_frames:
            continue
        clip = store.load_clip(episode_id, 0, protocol.total_frames)
        frames.append(clip["frames"])
        actions.append(clip["actions"])
        if len(frames) == num_videos:
            break
    if not frames:
        raise UserError(f"{store.path}: no {split} episode has {protocol.total_frames} frames "
                        f"({protocol.context_frames} context + {protocol.predicted_frames} predicted)")
    return np.stack(frames), np.stack(actions).astype(np.float32)


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
) -> EvaluationOutput:
    """Sample `protocol.trials` futures for each test clip and score them."""
    truth, actions = test_clips(store, protocol, split, protocol.num_videos)
    networks = networks if networks is not None else MetricNetworks.load(metrics)
    evaluator = VideoPredictionEvaluator(protocol, metrics, networks=networks)
    use_actions = predictor.config.transformer.action_dim > 0
    if use_actions and actions.shape[-1] != predictor.config.transformer.action_dim:
        raise UserError(f"{store.path} has {actions.shape[-1]}-D actions; the model expects "
                        f"{predictor.config.transformer.action_dim}")
    shown_truth, shown_pred = [], []
    tc, tp = protocol.context_frames, protocol.predicted_frames
    bar = tqdm(total=len(truth) * protocol.trials, desc="predicting", unit="sample",
               disable=not progress)
    for start in range(0, len(truth), batch_size):
        gt = truth[start:start + batch_size]
        act = actions[start:start + batch_size, : tc + tp] if use_actions else None
        samples = []
        for trial in range(protocol.trials):
            samples.append(predictor.predict(gt[:, :tc], actions=act, num_frames=tp,
                                             seed=seed + 1000 * trial + start))
            bar.update(len(gt))
        pred = np.stack(samples, axis=1)  # (B, N, Tp, H, W, 3)
        evaluator.update(gt, pred)
        room = show_videos - sum(len(x) for x in shown_truth)
        if room > 0:
            shown_truth.append(gt[:room])
            shown_pred.append(pred[:room, :show_samples])
    bar.close()
    baseline = evaluate_copy_last_baseline(truth, protocol, metrics=metrics, networks=networks)
    return EvaluationOutput(evaluator.result(), baseline, np.concatenate(shown_truth),
                            np.concatenate(shown_pred))
