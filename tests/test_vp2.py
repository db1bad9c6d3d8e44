"""maskvit.integrations.vp2: VP2's video-model contract on a tiny push model."""

import numpy as np
import pytest

from maskvit.errors import UserError
from maskvit.integrations.vp2 import MaskViTVP2Model
from maskvit.serve.testing import tiny_predictor


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
    out = model(_batch(), grad_enabled=False)
    assert set(out) == {"rgb"}
    rgb = out["rgb"]
    assert rgb.shape == (3, 3, 64, 64, 3) and rgb.dtype == np.float32
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0
    model.close()


def test_same_seed_same_predictions_and_calls_advance_the_seed(predictor):
    batch = _batch()
    a = MaskViTVP2Model(predictor=predictor, action_scale=0.05, seed=3)
    b = MaskViTVP2Model(predictor=predictor, action_scale=0.05, seed=3)
    first_a, first_b = a(batch)["rgb"], b(batch)["rgb"]
    np.testing.assert_array_equal(first_a, first_b)
    second_a = a(batch)["rgb"]  # call 1 draws from seed 4
    assert not np.array_equal(first_a, second_a)
    a.reseed(3)
    np.testing.assert_array_equal(a(batch)["rgb"], first_a)
    # the predictions are the Predictor's, frames rounded to uint8 and back
    clip = np.concatenate([batch["actions"] * 0.05, np.zeros((3, 1, 2))], axis=1)
    frames = np.rint(batch["video"] * 255).astype(np.uint8)
    expected = predictor.predict(frames, actions=clip, num_frames=3, decoding=a.decoding, seed=3)
    np.testing.assert_array_equal(first_a, expected.astype(np.float32) / 255)


def test_other_frame_sizes_are_resized_in_and_out(predictor):
    model = MaskViTVP2Model(predictor=predictor, action_scale=0.05)
    rgb = model(_batch(b=2, horizon=2, size=48))["rgb"]
    assert rgb.shape == (2, 2, 48, 48, 3) and 0.0 <= rgb.min() and rgb.max() <= 1.0


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
