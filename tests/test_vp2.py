"""maskvit.integrations.vp2: VP2's video-model contract on a tiny push model."""

import numpy as np
import pytest
from stand_ins import tiny_predictor

from maskvit.errors import UserError
from maskvit.integrations.vp2 import MaskViTVP2Model


@pytest.fixture(scope="module")
def predictor():
    return tiny_predictor()


def _batch(b=3, tc=2, horizon=3, size=64, seed=0):
    rng = np.random.default_rng(seed)
    return {"video": rng.uniform(0, 1, (b, tc, size, size, 3)).astype(np.float32),
            "actions": rng.uniform(-1, 1, (b, tc - 1 + horizon, 2)).astype(np.float32),
            "state_obs": np.zeros((tc, 5))}  # VP2 sends it; ignored


def test_shapes_ranges_and_contract_attributes(predictor):
    model = MaskViTVP2Model(predictor=predictor, action_scale=0.05, seed=7)
    assert model.num_context == 2 and model.base_prediction_modality == "rgb"
    batch = _batch()
    out = model(batch, grad_enabled=False)
    assert set(out) == {"rgb"}
    rgb = out["rgb"]
    # VP2's length: the context frames after the first (1), then the 3 predictions
    assert rgb.shape == (3, 1 + 3, 64, 64, 3) and rgb.dtype == np.float32
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0
    np.testing.assert_array_equal(rgb[:, 0], batch["video"][:, 1])
    model.close()


def test_the_default_action_scale_maps_vp2s_range_onto_the_models_bounds(predictor):
    model = MaskViTVP2Model(predictor=predictor)  # the push model's bounds are ±0.05 m
    np.testing.assert_allclose(model.action_scale, [0.05, 0.05])
    batch = _batch()
    batch["actions"] = np.sign(batch["actions"])  # VP2's extremes, ±1
    assert model(batch)["rgb"].shape == (3, 4, 64, 64, 3)
    with pytest.raises(UserError, match="action_scale"):
        MaskViTVP2Model(predictor=predictor, action_scale=[0.05, -1.0])


def test_same_seed_same_predictions_and_calls_draw_from_their_own_streams(predictor):
    batch = _batch()
    a = MaskViTVP2Model(predictor=predictor, action_scale=0.05, seed=3)
    b = MaskViTVP2Model(predictor=predictor, action_scale=0.05, seed=3)
    first_a, first_b = a(batch)["rgb"], b(batch)["rgb"]
    np.testing.assert_array_equal(first_a, first_b)
    second_a = a(batch)["rgb"]
    assert not np.array_equal(first_a, second_a)
    a.reseed(3)
    np.testing.assert_array_equal(a(batch)["rgb"], first_a)
    # an adapter seeded 4 does not repeat the second call of the one seeded 3
    assert not np.array_equal(MaskViTVP2Model(predictor=predictor, action_scale=0.05, seed=4)(batch)["rgb"],
                              second_a)
    # the predictions are the Predictor's, frames rounded to uint8 and back
    clip = np.concatenate([batch["actions"] * 0.05, np.zeros((3, 1, 2))], axis=1)
    frames = np.rint(batch["video"] * 255).astype(np.uint8)
    expected = predictor.predict(frames, actions=clip, num_frames=3, decoding=a.decoding, seed=a.call_seed(0))
    np.testing.assert_array_equal(first_a[:, 1:], expected.astype(np.float32) / 255)


def test_chunks_change_nothing_and_identical_rows_draw_independently(predictor):
    batch = _batch(b=4)
    batch["video"][:] = batch["video"][:1]  # four copies of one context, as MPPI tiles it
    batch["actions"][:] = batch["actions"][:1]
    whole = MaskViTVP2Model(predictor=predictor, action_scale=0.05, seed=1)(batch)["rgb"]
    chunked = MaskViTVP2Model(predictor=predictor, action_scale=0.05, seed=1, max_batch_size=1)(batch)["rgb"]
    np.testing.assert_array_equal(chunked, whole)
    assert len({row.tobytes() for row in whole[:, 1:]}) > 1


def test_vp2s_mppi_batch_and_squared_error_cost_run_on_the_output(predictor):
    """The batch built as VP2's MPPI builds it (context tiled over the samples, float64 video,
    actions drawn around a mean and clipped to [−1, 1], `state_obs` present), then VP2's
    SquaredError reward against a goal of n_context − 1 + H frames and MPPI's update."""
    model = MaskViTVP2Model(predictor=predictor, seed=0)
    n_context, horizon, samples, dim = model.num_context, 3, 8, 2
    rng = np.random.default_rng(0)
    observed = rng.integers(0, 256, (n_context, 64, 64, 3)) / 255.0  # float64, as VP2's obs lists
    history = rng.uniform(-1, 1, (n_context - 1, dim))
    mean, std = np.zeros((horizon, dim)), np.full((horizon, dim), 0.5)
    planned = np.clip(rng.normal(mean, std, (samples, horizon, dim)), -1, 1)
    batch = {"video": np.tile(observed[None], (samples, 1, 1, 1, 1)),
             "actions": np.concatenate([np.tile(history[None], (samples, 1, 1)), planned], axis=1),
             "state_obs": rng.normal(size=(n_context, 19))}
    assert batch["video"].dtype == np.float64
    predictions = model(batch)
    goal = {"rgb": np.repeat(rng.uniform(0, 1, (1, 64, 64, 3)), n_context - 1 + horizon, axis=0)}
    reward = -((predictions["rgb"] - goal["rgb"]) ** 2).sum(axis=(1, 2, 3, 4))[:, None, None]
    assert reward.shape == (samples, 1, 1) and np.isfinite(reward).all()
    weights = np.exp(0.05 * (reward - reward.max()))
    mu = (weights * batch["actions"][:, n_context - 1:]).sum(0) / (weights.sum(0) + 1e-10)
    assert mu.shape == (horizon, dim) and np.all(np.abs(mu) <= 1)


def test_other_frame_sizes_are_resized_in_and_out(predictor):
    model = MaskViTVP2Model(predictor=predictor, action_scale=0.05)
    rgb = model(_batch(b=2, horizon=2, size=48))["rgb"]
    assert rgb.shape == (2, 1 + 2, 48, 48, 3) and 0.0 <= rgb.min() and rgb.max() <= 1.0


@pytest.mark.parametrize("change, message", [
    (lambda b: b.update(video=b["video"] * 2), "in \\[0, 1\\]"),
    (lambda b: b.update(actions=b["actions"][:, :, :1]), "actions"),
    (lambda b: b.update(actions=np.full_like(b["actions"], np.nan)), "finite"),
    (lambda b: b.update(actions=b["actions"] * 5), "bounds"),
    (lambda b: b.update(actions=np.zeros((3, 9, 2))), "to predict"),
    (lambda b: b.pop("video"), "missing"),
])
def test_bad_batches_are_one_line_errors(predictor, change, message):
    model = MaskViTVP2Model(predictor=predictor, action_scale=0.05)
    batch = _batch()
    change(batch)
    with pytest.raises(UserError, match=message):
        model(batch)


def test_gradients_are_refused(predictor):
    with pytest.raises(UserError, match="no gradients"):
        MaskViTVP2Model(predictor=predictor, action_scale=0.05)(_batch(), grad_enabled=True)


def test_the_shipped_vp2_model_config_names_the_adapter_and_its_arguments(predictor):
    """docs/vp2/maskvit.yaml is what a VP2 user copies: its target and keys must stay valid."""
    import importlib
    import inspect
    from pathlib import Path

    import yaml

    config = yaml.safe_load((Path(__file__).parents[1] / "docs" / "vp2" / "maskvit.yaml").read_text())
    module, _, name = config.pop("_target_").rpartition(".")
    target = getattr(importlib.import_module(module), name)
    assert target is MaskViTVP2Model
    assert set(config) <= set(inspect.signature(MaskViTVP2Model.__init__).parameters)
    config.update(model=None, planning_modalities=["rgb"])  # Hydra fills the interpolation
    model = MaskViTVP2Model(predictor=predictor, **{k: v for k, v in config.items() if k != "model"})
    assert model(_batch())["rgb"].shape == (3, 4, 64, 64, 3)
