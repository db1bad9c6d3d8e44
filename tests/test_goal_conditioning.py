"""Goal-conditioned prediction end to end (paper Table 1): training masks that give a
video its goal with a probability, the goal in the clip's last slot at inference, and
`predict --goal` / `evaluate --goal` on a tiny model saved as a bundle."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from stand_ins import save_tiny_bundle, tiny_predictor

from maskvit.cli import main
from maskvit.data import EpisodeStore, EpisodeStoreWriter
from maskvit.errors import UserError
from maskvit.inference.predictor import Predictor
from maskvit.metrics import Protocol
from maskvit.model.masking import mask_for_training, masked_count, sample_generators
from maskvit.prediction_eval import evaluate_predictor


def test_a_goal_probability_gives_some_videos_their_last_frame_and_counts_stay_exact():
    tokens = torch.randint(0, 8, (64, 6, 2, 2))
    generators = sample_generators(5, 3, range(64))
    _, mask = mask_for_training(tokens, 2, 0.999, 0.5, generators, mask_token_id=8)
    last_masked = mask[:, -1].flatten(1).any(dim=1)
    assert 16 < int((~last_masked).sum()) < 48  # about half the videos were given the goal
    assert not mask[:, :2].any()  # context is never masked
    # The global-batch count the loss divides by reads the same draws.
    assert masked_count(5, 3, range(64), 0.999, n_future=4 * 4, goal=0.5,
                        frame_tokens=4) == int(mask.sum())
    # Always / never: the draws (and so the masks) are those of a plain bool goal.
    for goal in (True, False):
        a = mask_for_training(tokens, 2, "variable", goal, sample_generators(1, 0, range(64)),
                              mask_token_id=8)[1]
        b = mask_for_training(tokens, 2, "variable", float(goal),
                              sample_generators(1, 0, range(64)), mask_token_id=8)[1]
        assert torch.equal(a, b)


def goal_predictor(seed: int = 0) -> Predictor:
    return tiny_predictor(seed, goal=True)


def test_the_goal_fills_the_clips_last_slot_and_a_plain_model_refuses_one():
    predictor = goal_predictor()
    rng = np.random.default_rng(0)
    context = rng.integers(0, 256, (2, 2, 64, 64, 3), dtype=np.uint8)
    actions = rng.normal(0, 0.01, (2, 5, 2)).astype(np.float32)
    goal = rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    frames = predictor.predict(context, actions=actions, num_frames=3, goal_frame=goal, seed=1)
    assert tuple(frames.shape) == (2, 3, 64, 64, 3)
    again = predictor.predict(context, actions=actions, num_frames=3, goal_frame=goal, seed=1)
    np.testing.assert_array_equal(np.asarray(frames), np.asarray(again))
    with pytest.raises(UserError, match="predict 3 frames from 2 context"):
        predictor.predict(context, actions=actions[:, :4], num_frames=2, goal_frame=goal)
    with pytest.raises(UserError, match="trained without goal frames"):
        tiny_predictor().predict(context, actions=actions, num_frames=3, goal_frame=goal)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("goal") / "data"
    rng = np.random.default_rng(0)
    with EpisodeStoreWriter(path, source="push", action_dim=2, resolution=64) as writer:
        for i in range(3):
            writer.add(f"ep{i}", rng.integers(0, 256, (8, 64, 64, 3), dtype=np.uint8),
                       rng.normal(0, 0.01, (8, 2)).astype(np.float32), split="test")
    return EpisodeStore.open(path)


def test_evaluation_gives_the_true_next_frame_as_goal_and_scores_the_frames_between(store):
    predictor = goal_predictor()
    protocol = dataclasses.replace(Protocol.from_config(predictor.config), trials=1,
                                   num_videos=2)
    assert (protocol.context_frames, protocol.predicted_frames) == (2, 3)
    seen = []
    real_predict = predictor.predict

    def spy(*args, **kwargs):
        seen.append(kwargs.get("goal_frame"))
        return real_predict(*args, **kwargs)

    predictor.predict = spy
    out = evaluate_predictor(predictor, store, protocol, metrics=("psnr",), networks=None,
                             progress=False, goal=True)
    truth = np.stack([store.load_clip(f"ep{i}", 0, 6)["frames"] for i in range(2)])
    np.testing.assert_array_equal(seen[0], truth[:, 5])  # the goal: the frame after the 3 predicted
    assert out.predictions.shape[2] == 3 and out.ground_truth.shape[1] == 5
    plain = evaluate_predictor(predictor, store, protocol, metrics=("psnr",), networks=None,
                               progress=False, goal=False)
    assert seen[-1] is None and plain.predictions.shape[2] == 3


def test_predict_and_evaluate_take_a_goal_on_the_command_line(store, tmp_path, capsys):
    bundle = save_tiny_bundle(tmp_path / "bundle", goal=True)
    out = tmp_path / "pred.gif"
    assert main(["predict", "--model", str(bundle), "--input", str(store.path),
                 "--episode", "ep1", "--goal", "input", "--out", str(out)]) == 0
    assert np.load(out.with_suffix(".npy")).shape == (1, 3, 64, 64, 3)
    assert main(["evaluate", "--model", str(bundle), "--data", str(store.path), "--out",
                 str(tmp_path / "report"), "--num-videos", "2", "--trials", "1",
                 "--metrics", "psnr", "--no-progress"]) == 0
    assert "goal-conditioned protocol: 2 context + 3 predicted (scored) + 1 goal" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["model"]["goal_conditioned_protocol"] is True
    # A plain model refuses --goal in one line.
    plain = save_tiny_bundle(tmp_path / "plain")
    assert main(["predict", "--model", str(plain), "--input", str(store.path), "--goal",
                 "input", "--out", str(tmp_path / "p.gif")]) == 2
    assert "trained without goal frames" in capsys.readouterr().err


def test_bair64_with_a_goal_takes_the_papers_geometry():
    from maskvit.config import load_preset

    config = load_preset("bair64", ["transformer.goal_conditioned=true"])
    assert (config.eval.context_frames, config.eval.predicted_frames) == (1, 14)
    assert config.transformer.num_frames == 16  # 1 context + 14 predicted + the goal
    with pytest.raises(UserError, match="goal_prob"):
        load_preset("bair64", ["transformer.goal_prob=1.5"])
