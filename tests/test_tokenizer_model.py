"""VQ-GAN model: shapes for every preset, frame formats, gradient paths."""

from __future__ import annotations

import pytest
import torch

from maskvit.config import TokenizerConfig, load_preset, preset_names
from maskvit.errors import UserError
from maskvit.tokenizer import VQGAN
from maskvit.tokenizer.vqgan import Decoder, Encoder, float_to_uint8, uint8_to_float


def tiny_config(**kw) -> TokenizerConfig:
    base = dict(resolution=16, downsample=4, channels=8, num_res_blocks=1,
                codebook_size=16, code_dim=8)
    return TokenizerConfig(**{**base, **kw})


@pytest.mark.parametrize("preset", preset_names())
def test_every_preset_maps_frames_to_its_token_grid_and_back(preset):
    cfg = load_preset(preset).tokenizer
    with torch.device("meta"):  # full-size networks without allocating their weights
        encoder, decoder = Encoder(cfg), Decoder(cfg)
        x = torch.empty(2, 3, cfg.resolution, cfg.resolution)
        z = encoder(x)
        assert z.shape == (2, cfg.code_dim, cfg.token_grid, cfg.token_grid)
        assert decoder(z).shape == x.shape
    # The paper: 16×16 tokens at every resolution; the CPU-sized presets of our simulated
    # worlds: 8×8 (push64: RESULTS.md "Object fidelity"; robodesk64: until its grid comparison decides).
    expected = {"push64": 8, "robodesk64": 8}.get(preset, 16)
    assert cfg.token_grid == expected


def test_push64_encodes_uint8_frames_to_codes_and_decodes_to_uint8():
    model = VQGAN(load_preset("push64").tokenizer).eval()
    frames = torch.randint(0, 256, (2, 3, 64, 64, 3), dtype=torch.uint8)  # leading dims kept
    codes = model.encode(frames)
    assert codes.shape == (2, 3, 8, 8) and codes.dtype == torch.int64
    assert 0 <= int(codes.min()) and int(codes.max()) < 512
    out = model.decode(codes)
    assert out.shape == frames.shape and out.dtype == torch.uint8


def test_float_and_uint8_inputs_give_the_same_codes():
    torch.manual_seed(0)
    model = VQGAN(tiny_config()).eval()
    frames = torch.randint(0, 256, (4, 16, 16, 3), dtype=torch.uint8)
    as_float = uint8_to_float(frames)
    assert as_float.shape == (4, 3, 16, 16) and -1.0 <= float(as_float.min()) <= float(as_float.max()) <= 1.0
    assert torch.equal(model.encode(frames), model.encode(as_float))
    assert torch.equal(model.encode(frames.numpy()), model.encode(frames))
    recon = model.reconstruct(as_float)
    assert recon.dtype == torch.float32 and recon.shape == (4, 3, 16, 16)
    assert float(recon.abs().max()) <= 1.0
    assert torch.equal(float_to_uint8(recon), model.reconstruct(frames))


def test_pixel_conversion_round_trips_uint8_exactly():
    frames = torch.arange(256, dtype=torch.uint8).reshape(1, 16, 16, 1).expand(1, 16, 16, 3)
    assert torch.equal(float_to_uint8(uint8_to_float(frames)), frames)


def test_gradients_reach_the_encoder_through_the_quantizer():
    torch.manual_seed(0)
    model = VQGAN(tiny_config())
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    x_hat, q = model(x)
    (x_hat - x).abs().mean().backward()  # reconstruction only: the straight-through path
    assert model.encoder.conv_in.weight.grad is not None
    assert model.encoder.conv_in.weight.grad.abs().sum() > 0
    assert model.quantizer.codebook.grad is None  # the decoder loss does not move codes


def test_quantizer_loss_trains_the_cosine_codebook():
    torch.manual_seed(0)
    model = VQGAN(tiny_config(quantizer="cosine"))
    _, q = model(torch.rand(2, 3, 16, 16) * 2 - 1)
    q.loss.backward()
    assert model.quantizer.codebook.grad.abs().sum() > 0


def test_bad_inputs_raise_one_line_user_errors():
    model = VQGAN(tiny_config()).eval()
    with pytest.raises(UserError, match="uint8 frames must have shape"):
        model.encode(torch.zeros(1, 32, 32, 3, dtype=torch.uint8))
    with pytest.raises(UserError, match="codes must have shape"):
        model.decode(torch.zeros(1, 3, 3, dtype=torch.int64))
    with pytest.raises(UserError, match="power of two"):
        VQGAN(tiny_config(downsample=3))
    with pytest.raises(UserError, match="uint16"):
        VQGAN(tiny_config(codebook_size=70000))


def test_cpu_inference_in_chunks_gives_the_whole_batch_values(monkeypatch):
    import maskvit.tokenizer.vqgan as vqgan

    torch.manual_seed(0)
    model = VQGAN(tiny_config()).eval()
    frames = torch.randint(0, 256, (2, 5, 16, 16, 3), dtype=torch.uint8)  # 10 frames
    whole_codes = model.encode(frames)
    whole_frames = model.decode(whole_codes, dtype=torch.float32)
    monkeypatch.setattr(vqgan, "INFERENCE_CHUNK_PIXELS", 3 * 16 * 16)  # 3-frame chunks, 1 left over
    assert torch.equal(model.encode(frames), whole_codes)
    chunked = model.decode(whole_codes, dtype=torch.float32)
    assert chunked.shape == whole_frames.shape
    torch.testing.assert_close(chunked, whole_frames, rtol=0, atol=1e-5)
