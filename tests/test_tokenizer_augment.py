"""KITTI's VQ-GAN augmentation (§4.2): random resized crop + colour jitter, training only."""

from __future__ import annotations

import pytest
import torch

from maskvit.config import TokenizerConfig, apply_overrides, load_preset
from maskvit.errors import UserError
from maskvit.tokenizer.vqgan import uint8_to_float
from maskvit.tokenizer.vqgan_task import TokenizerTask, augment_frames
from maskvit.train.task_protocol import StepContext


def frames(b: int = 6, size: int = 16, seed: int = 0) -> torch.Tensor:
    """Smooth-ish random float frames (B, 3, H, W) in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(b, 3, size // 4, size // 4, generator=g) * 1.6 - 0.8
    return torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear")


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_shape_dtype_range_preserved_float_and_uint8():
    x = frames()
    y = augment_frames(x, gen(0))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert y.min() >= -1.0 and y.max() <= 1.0
    u8 = torch.randint(0, 256, (2, 3, 16, 16, 3), dtype=torch.uint8, generator=gen(1))
    v8 = augment_frames(u8, gen(0))
    assert v8.shape == u8.shape and v8.dtype == torch.uint8


def test_frames_change_but_stay_plausible():
    x = frames(b=32)
    y = augment_frames(x, gen(0), crop=(0.8, 1.0), brightness=0.2, contrast=0.2, saturation=0.2)
    changed = (y - x).abs().flatten(1).amax(dim=1) > 1e-3
    assert changed.all()  # every frame gets its own, non-trivial parameters
    # Mean intensity in [0, 1] moves by at most the brightness strength (plus crop slack).
    mean_x, mean_y = ((x + 1) / 2).mean(dim=(1, 2, 3)), ((y + 1) / 2).mean(dim=(1, 2, 3))
    assert ((mean_y - mean_x).abs() <= 0.2 + 0.1).all()
    assert (y - x).abs().mean() < 0.3


def test_same_seed_same_output_different_seed_differs():
    x = frames()
    assert torch.equal(augment_frames(x, gen(3)), augment_frames(x, gen(3)))
    assert not torch.equal(augment_frames(x, gen(3)), augment_frames(x, gen(4)))


def test_full_crop_no_jitter_is_identity():
    x = frames()
    y = augment_frames(x, gen(0), crop=(1.0, 1.0), brightness=0.0, contrast=0.0, saturation=0.0)
    torch.testing.assert_close(y, x, atol=1e-6, rtol=0)


def test_crop_alone_keeps_colours_and_zooms():
    x = frames(b=4)
    y = augment_frames(x, gen(0), crop=(0.5, 0.5), brightness=0.0, contrast=0.0, saturation=0.0)
    assert not torch.allclose(y, x)
    assert y.min() >= x.min() - 1e-6 and y.max() <= x.max() + 1e-6  # bilinear: no overshoot


def tiny_cfg(**kw) -> TokenizerConfig:
    return TokenizerConfig(resolution=16, downsample=4, channels=8, num_res_blocks=1,
                           codebook_size=16, code_dim=8, perceptual_weight=0.0,
                           disc_start=None, **kw)


def run_loss(task: TokenizerTask, batch: dict, generator: torch.Generator,
             training: bool = True) -> torch.Tensor:
    ctx = StepContext(step=0, modules=task.modules(), generator=generator,
                      device=torch.device("cpu"), training=training)
    task.loss("vqgan", batch, ctx)
    return ctx.scratch["real"]


def test_task_augments_training_batches_only_when_on(monkeypatch):
    torch.manual_seed(0)
    batch = {"frames": torch.randint(0, 256, (4, 16, 16, 3), dtype=torch.uint8, generator=gen(0))}
    plain = uint8_to_float(batch["frames"])
    off = TokenizerTask(tiny_cfg())
    g = gen(5)
    state = g.get_state()
    assert torch.equal(run_loss(off, batch, g), plain)  # off: batch unchanged ...
    assert torch.equal(g.get_state(), state)  # ... and the engine's RNG untouched
    on = TokenizerTask(tiny_cfg(augment=True))
    a = run_loss(on, batch, gen(5))
    assert not torch.equal(a, plain)
    assert torch.equal(a, run_loss(on, batch, gen(5)))  # reproducible from the engine RNG
    assert torch.equal(run_loss(on, batch, gen(5), training=False), plain)

    def boom(*args, **kwargs):
        raise AssertionError("validation must not augment")

    monkeypatch.setattr("maskvit.tokenizer.vqgan_task.augment_frames", boom)
    ctx = StepContext(step=0, modules=on.modules(), generator=gen(5),
                      device=torch.device("cpu"), training=False)
    with torch.no_grad():
        assert "psnr" in on.validation_step(batch, ctx)


def test_presets():
    assert load_preset("kitti64").tokenizer.augment
    assert load_preset("kitti256").tokenizer.augment
    assert not load_preset("push64").tokenizer.augment
    assert not load_preset("bair64").tokenizer.augment


@pytest.mark.parametrize("override", [
    "tokenizer.augment_crop=[0.0, 1.0]", "tokenizer.augment_crop=[0.9, 0.8]",
    "tokenizer.augment_crop=[0.8, 1.2]", "tokenizer.augment_jitter=-0.1",
    "tokenizer.augment_jitter=1.5", "tokenizer.augment=3",
])
def test_bad_config_is_one_line_user_error(override):
    with pytest.raises(UserError) as err:
        apply_overrides(load_preset("push64"), [override])
    assert "\n" not in str(err.value) and "tokenizer.augment" in str(err.value)
