"""Best-of-N protocol, FVD over all samples, the copy-last baseline, missing weights."""

import math

import numpy as np
import pytest
import torch

from maskvit.errors import UserError
from maskvit.metrics import (
    LPIPS,
    MetricNetworks,
    Protocol,
    best_of_n,
    copy_last_frame,
    evaluate_batches,
    evaluate_copy_last_baseline,
    evaluate_predictions,
    protocol_for_preset,
)
from maskvit.metrics import weights as weights_module
from maskvit.metrics.fvd import fvd_from_features

PROTOCOL = Protocol("tiny", context_frames=2, predicted_frames=3, trials=3, num_videos=4)


def mean_colour_features(videos: np.ndarray) -> np.ndarray:
    """A cheap stand-in for I3D: per-frame mean colours, flattened."""
    return videos.astype(np.float64).mean(axis=(2, 3)).reshape(len(videos), -1)


def tiny_networks() -> MetricNetworks:
    torch.manual_seed(0)
    return MetricNetworks(lpips_model=LPIPS("alex").eval(), fvd_features=mean_colour_features)


def moving_videos(num_videos: int = 4, frames: int = 5) -> np.ndarray:
    rng = np.random.default_rng(0)
    videos = rng.integers(0, 60, (num_videos, frames, 32, 32, 3), dtype=np.uint8)
    for v in range(num_videos):
        for t in range(frames):
            videos[v, t, 6:14, 2 + 3 * t + v : 10 + 3 * t + v] = (220, 120, 30 * v)
    return videos


def noisy(frames: np.ndarray, amount: int, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).integers(-amount, amount + 1, frames.shape)
    return np.clip(frames.astype(int) + noise, 0, 255).astype(np.uint8)


def test_best_of_n_picks_the_best_trial_per_video_by_its_frame_mean():
    scores = np.array([[[1.0, 5.0], [3.0, 4.0], [0.0, 0.0]], [[2.0, 2.0], [9.0, 1.0], [6.0, 6.0]]])
    summary, best = best_of_n(scores, higher_is_better=True)
    assert best["best_trial"] == [1, 2]  # means (3, 3.5, 0) and (2, 5, 6)
    assert best["best"] == [3.5, 6.0]
    assert summary["mean"] == pytest.approx(4.75)
    assert summary["stderr"] == pytest.approx(np.std([3.5, 6.0], ddof=1) / math.sqrt(2))
    assert summary["per_frame"] == pytest.approx([4.5, 5.0])  # frames of trials 1 and 2
    _, lowest = best_of_n(scores, higher_is_better=False)
    assert lowest["best_trial"] == [2, 0]


def test_evaluation_selects_the_sample_closest_to_the_truth():
    truth = moving_videos()
    future = truth[:, 2:]
    samples = np.stack([noisy(future, 60, 1), noisy(future, 5, 2), noisy(future, 30, 3)], axis=1)
    result = evaluate_predictions(truth, samples, PROTOCOL, batch_size=3, networks=tiny_networks())
    for metric in ("psnr", "ssim", "lpips"):
        assert result["per_video"][metric]["best_trial"] == [1, 1, 1, 1], metric
        assert len(result["metrics"][metric]["per_frame"]) == 3
    assert result["num_videos"] == 4 and result["trials"] == 3 and result["skipped"] == {}
    fvd = result["metrics"]["fvd"]
    assert fvd["num_real"] == 4 and fvd["num_generated"] == 12
    # the headline FVD compares equal-sized sets: the truth against each trial's samples
    clips = np.concatenate([np.repeat(truth[:, None, :2], 3, axis=1), samples], axis=2)
    expected = [fvd_from_features(mean_colour_features(truth), mean_colour_features(clips[:, t]))
                for t in range(3)]
    assert fvd["per_trial"] == pytest.approx(expected)
    assert fvd["value"] == pytest.approx(np.mean(expected))
    assert fvd["pooled"] == pytest.approx(fvd_from_features(
        mean_colour_features(truth), mean_colour_features(clips.reshape(12, *truth.shape[1:]))))


def test_copy_last_baseline_scores_static_videos_perfectly():
    truth = np.repeat(moving_videos()[:, :1], 5, axis=1)  # nothing moves after the context
    baseline = copy_last_frame(truth, 2, 3)
    assert baseline.shape == (4, 1, 3, 32, 32, 3)
    result = evaluate_copy_last_baseline(truth, PROTOCOL, networks=tiny_networks())
    metrics = result["metrics"]
    assert metrics["psnr"]["mean"] == math.inf
    assert metrics["ssim"]["mean"] == pytest.approx(1.0, abs=1e-12)
    assert metrics["lpips"]["mean"] == 0.0
    assert metrics["fvd"]["value"] == pytest.approx(0.0, abs=1e-6)


def test_copy_last_baseline_is_worse_than_exact_predictions_on_moving_videos():
    truth = moving_videos()
    networks = tiny_networks()
    baseline = evaluate_copy_last_baseline(truth, PROTOCOL, networks=networks)
    exact = evaluate_predictions(truth, truth[:, None, 2:], PROTOCOL, networks=networks)
    assert (
        baseline["metrics"]["ssim"]["mean"] < exact["metrics"]["ssim"]["mean"] == pytest.approx(1.0)
    )
    assert baseline["metrics"]["fvd"]["value"] > exact["metrics"]["fvd"]["value"]


def test_missing_weights_skip_lpips_and_fvd_with_a_reason_but_keep_psnr_ssim(monkeypatch, tmp_path):
    monkeypatch.setattr(weights_module, "_package_dir", lambda package: None)
    monkeypatch.delenv("MASKVIT_WEIGHTS", raising=False)
    truth = moving_videos()
    result = evaluate_predictions(truth, truth[:, None, 2:], PROTOCOL, weights_dir=tmp_path)
    assert set(result["metrics"]) == {"psnr", "ssim"}
    assert "alexnet.ckpt" in result["skipped"]["lpips"] and "\n" not in result["skipped"]["lpips"]
    assert "i3d-kinetics-400.ckpt" in result["skipped"]["fvd"]


def test_streamed_batches_equal_whole_arrays():
    truth = moving_videos()
    samples = np.stack([noisy(truth[:, 2:], 20, s) for s in range(2)], axis=1)
    networks = tiny_networks()
    whole = evaluate_predictions(truth, samples, PROTOCOL, batch_size=16, networks=networks)
    streamed = evaluate_batches(
        ((truth[i : i + 1], samples[i : i + 1]) for i in range(4)), PROTOCOL, networks=networks
    )
    assert whole["metrics"]["psnr"] == streamed["metrics"]["psnr"]
    assert whole["metrics"]["fvd"]["value"] == pytest.approx(streamed["metrics"]["fvd"]["value"])


def test_whole_clip_predictions_are_accepted_and_bad_shapes_are_user_errors():
    truth = moving_videos()
    networks = MetricNetworks()
    whole = evaluate_predictions(
        truth, truth[:, None], PROTOCOL, metrics=("psnr",), networks=networks
    )
    assert whole["metrics"]["psnr"]["mean"] == math.inf
    with pytest.raises(UserError, match="predicts 3"):
        evaluate_predictions(
            truth, truth[:, None, :2], PROTOCOL, metrics=("psnr",), networks=networks
        )
    with pytest.raises(UserError, match="uint8"):
        evaluate_predictions(
            truth.astype(np.float32),
            truth[:, None, 2:],
            PROTOCOL,
            metrics=("psnr",),
            networks=networks,
        )
    with pytest.raises(UserError, match="needs 2 context"):
        evaluate_predictions(
            truth[:, :4], truth[:, None, 2:], PROTOCOL, metrics=("psnr",), networks=networks
        )
    with pytest.raises(UserError, match="unknown metric"):
        evaluate_predictions(
            truth, truth[:, None, 2:], PROTOCOL, metrics=("fid",), networks=networks
        )


@pytest.mark.parametrize(
    ("preset", "context", "predicted", "trials", "actions"),
    [
        ("bair64", 1, 15, 1, False),
        ("kitti64", 5, 25, 100, False),
        ("robonet64", 2, 10, 100, True),
        ("push64", 2, 10, 10, True),
    ],
)
def test_presets_carry_the_paper_protocols(preset, context, predicted, trials, actions):
    protocol = protocol_for_preset(preset)
    assert (protocol.context_frames, protocol.predicted_frames) == (context, predicted)
    assert protocol.trials == trials and protocol.action_conditioned == actions
    assert protocol.num_videos == protocol_for_preset(preset).num_videos > 0


def test_headline_numbers_take_means_fvd_value_and_boxes_when_scored():
    """The one reading of metrics.json that `evaluate`, the demo and the benchmarks share."""
    from maskvit.metrics.protocol import headline_numbers

    side = {"metrics": {"psnr": {"mean": 25.0, "stderr": 0.3}, "fvd": {"value": 231.0}},
            "objects": {"iou": {"mean": 0.77, "se": 0.02}, "centroid_error_px": {"mean": 1.9}}}
    assert headline_numbers(side) == {"psnr": 25.0, "fvd": 231.0, "box_iou": 0.77,
                                      "box_centroid_error_px": 1.9}
    assert headline_numbers({"metrics": {"ssim": {"mean": 0.8}}}) == {"ssim": 0.8}
    assert headline_numbers({}) == {}
