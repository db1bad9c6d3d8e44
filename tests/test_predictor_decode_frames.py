"""`Predictor.predict(decode_frames=...)`: the same pixels as decoding everything, fewer frames."""

import numpy as np
import pytest
from stand_ins import tiny_predictor

from maskvit.errors import UserError


@pytest.fixture(scope="module")
def predictor():
    return tiny_predictor(0)  # 6-frame clips, 2 context frames, 2-D actions


def _request(predictor):
    rng = np.random.default_rng(0)
    size = predictor.config.tokenizer.resolution
    context = rng.integers(0, 256, (3, 2, size, size, 3), dtype=np.uint8)
    actions = rng.uniform(-0.05, 0.05, (3, 6, 2)).astype(np.float32)
    return context, actions


def test_decoding_some_frames_gives_those_frames_of_the_whole_prediction(predictor):
    context, actions = _request(predictor)
    whole = predictor.predict(context, actions, num_frames=4, seed=5)
    last = predictor.predict(context, actions, num_frames=4, seed=5, decode_frames=[-1])
    picked = predictor.predict(context, actions, num_frames=4, seed=5, decode_frames=[0, 2])
    assert last.shape == (3, 1, *whole.shape[2:])
    gap = np.abs(last[:, 0].astype(int) - whole[:, -1].astype(int))
    assert gap.max() <= 1  # the decoder's batch differs; its rounding may, by one level
    assert np.abs(picked.astype(int) - whole[:, [0, 2]].astype(int)).max() <= 1


@pytest.mark.parametrize("frames", [[], [4], [-5]])
def test_frames_outside_the_prediction_are_a_one_line_error(predictor, frames):
    context, actions = _request(predictor)
    with pytest.raises(UserError, match="indices into the 4 predicted frames"):
        predictor.predict(context, actions, num_frames=4, seed=5, decode_frames=frames)


def test_a_read_only_context_is_taken_without_a_warning(predictor):
    import warnings

    context, actions = _request(predictor)
    one = np.broadcast_to(context[:1], context[:1].shape)  # read-only, C-contiguous: as the planner sends
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predictor.predict(one, actions[:1], num_frames=4, seed=5)


def test_latents_are_the_code_vectors_the_frames_were_decoded_from(predictor):
    """`output="latents"` skips the decoder: its vectors are codebook rows, and decoding
    those codes gives the pixels `predict` returns for the same seed."""
    import torch

    context, actions = _request(predictor)
    whole = predictor.predict(context, actions, num_frames=4, seed=5)
    latents = predictor.predict(context, actions, num_frames=4, seed=5, output="latents")
    grid = predictor.tokenizer.cfg.token_grid
    book = predictor.tokenizer.quantizer.embeddings().detach().numpy()
    assert latents.shape == (3, 4, grid, grid, book.shape[1]) and latents.dtype == np.float32
    gaps = ((latents[..., None, :] - book) ** 2).sum(-1)  # (3, 4, g, g, K)
    codes = gaps.argmin(-1)
    assert np.allclose(gaps.min(-1), 0.0, atol=1e-6)  # every vector is a code's own
    again = predictor.tokenizer.decode(torch.from_numpy(codes)).numpy()
    assert np.abs(again.astype(int) - whole.astype(int)).max() <= 1
    assert np.allclose(predictor.latents(context[:, -1]), book[predictor.encode(context[:, -1]).numpy()])
    with pytest.raises(UserError, match="pixels' or 'latents"):
        predictor.predict(context, actions, num_frames=4, seed=5, output="tokens")
