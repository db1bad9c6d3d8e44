"""The inference fast paths of the window transformer give the outputs of the plain path.

Fast paths: the relative-position bias built once and kept while no gradient is recorded,
and the output head run only at the positions decoding asks for. Reference values were
computed with the transformer before these paths existed (same weights, same inputs).
"""

import math

import pytest
import torch

from maskvit.config import TransformerConfig
from maskvit.model import MaskViT

TOL = dict(rtol=1e-5, atol=1e-5)


def fixed_tiny_model() -> MaskViT:
    """A tiny action-conditioned MaskViT with weights from a formula (no RNG involved).

    Scaled so that attention, the bias tables and the actions all move the logits.
    """
    cfg = TransformerConfig(
        num_frames=4, context_frames=1, tokens_h=4, tokens_w=4, codebook_size=8,
        spatial_window=(1, 4, 4), spatiotemporal_window=(0, 2, 2), depth=2, heads=2,
        dim=32, mlp_dim=64, dropout=0.0, action_dim=2,
    )
    model = MaskViT(cfg).eval()
    weights = {}
    for i, (key, value) in enumerate(sorted(model.state_dict().items())):
        wave = torch.sin(torch.arange(value.numel(), dtype=torch.float64) * 1.618 + i)
        if "norm" in key:
            wave = (1.0 if key.endswith("weight") else 0.0) + 0.2 * wave
        elif value.dim() == 2 and "table" not in key and "position" not in key:
            wave = wave * 1.5 / math.sqrt(value.shape[1])  # variance-keeping scale
        weights[key] = wave.float().view(value.shape)
    model.load_state_dict(weights)
    return model


def tiny_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    tokens = (torch.arange(2 * 4 * 16).view(2, 4, 4, 4) * 5) % 9  # includes [MASK] = 8
    actions = torch.linspace(-1, 1, 2 * 4 * 2).view(2, 4, 2)
    return tokens, actions


# Logits of `fixed_tiny_model` on `tiny_inputs`, from the transformer before the fast paths:
# one machine's float32 values, each within 1e-6 of the exact logit (|logit| < 4; measured
# against a float64 forward). Sums are over all 1024 (768 for 3 frames) logits.
TINY_ENTRIES = [(0, 0, 0, 0, 0), (0, 1, 2, 3, 7), (1, 2, 1, 0, 3), (1, 3, 3, 3, 5),
                (0, 3, 0, 2, 1), (1, 0, 3, 1, 6)]
TINY_4_FRAMES = [-2.682248115539551, -2.744180202484131, 1.8711175918579102,
                 -1.664635419845581, -1.3527919054031372, 3.070518970489502]
TINY_3_FRAMES = [-2.6823787689208984, -2.756026268005371, 1.8711175918579102,
                 -0.022972524166107178, -0.2248018980026245, 3.070518970489502]
TINY_SUM_4, TINY_SQUARES_4, TINY_SQUARES_3 = 33.60459244251251, 5556.829143584435, 4016.7990744977346
# The pins carry their machine's float32 rounding (< 1e-6 a logit), while a float64
# forward rounds ~1e-15 on any CPU and thread count: so float64 logits match the pins to
# 1e-5 (10x room), a sum of 1024 to 1e-3 and a sum of squares (|d x²| < 8e-6) to 1e-5
# relative, whatever CPU runs the test.
PINNED = dict(rtol=0.0, atol=1e-5)
# float32 against float64 on the same inputs: reduction order differs between CPUs (AVX2,
# AVX-512, AMX machines) and thread counts, so this allows float32's own error with room:
# measured at most 7.6e-6 (AMD EPYC, 1 and 2 threads), allowed 1e-4.
FLOAT32 = dict(rtol=1e-4, atol=1e-4)


def tiny_logits(model: MaskViT, frames: int) -> torch.Tensor:
    """Inference logits of `model` on the first `frames` frames of `tiny_inputs`, in its dtype."""
    tokens, actions = tiny_inputs()
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        return model(tokens[:, :frames], actions[:, :frames].to(dtype))


def test_tiny_model_gives_the_logits_it_gave_before():
    exact = fixed_tiny_model().double()
    single = fixed_tiny_model()
    for _ in range(2):  # the second call reads the kept bias
        full, short = tiny_logits(exact, 4), tiny_logits(exact, 3)  # a smaller spatiotemporal window
        got4 = torch.tensor([float(full[i]) for i in TINY_ENTRIES], dtype=torch.float64)
        got3 = torch.tensor([float(short[i[:1] + (min(i[1], 2),) + i[2:]]) for i in TINY_ENTRIES],
                            dtype=torch.float64)
        torch.testing.assert_close(got4, torch.tensor(TINY_4_FRAMES, dtype=torch.float64), **PINNED)
        torch.testing.assert_close(got3, torch.tensor(TINY_3_FRAMES, dtype=torch.float64), **PINNED)
        assert float(full.sum()) == pytest.approx(TINY_SUM_4, abs=1e-3)
        assert float(full.pow(2).sum()) == pytest.approx(TINY_SQUARES_4, rel=1e-5)
        assert float(short.pow(2).sum()) == pytest.approx(TINY_SQUARES_3, rel=1e-5)
        # The float32 model that inference runs gives the same logits, to float32 rounding.
        torch.testing.assert_close(tiny_logits(single, 4).double(), full, **FLOAT32)
        torch.testing.assert_close(tiny_logits(single, 3).double(), short, **FLOAT32)


def test_shipped_push64_checkpoint_loads_and_its_fast_paths_match_the_plain_forward():
    """Strict load (same keys), then inference with the kept bias and CPU chunking against
    the plain path (autograd on: bias rebuilt per call, batch in one piece), on the real
    weights; the values are pinned on the fixed tiny model above, which does not change
    when a new reference model is shipped."""
    from maskvit.pretrained import pretrained_path
    from maskvit.train import load_run

    path = pretrained_path()
    if path is None:
        pytest.skip("no shipped push64 bundle in this install")
    config, weights, ema = load_run(path / "transformer")
    model = MaskViT(config.transformer).eval()
    model.load_state_dict(ema if ema is not None else weights)  # strict: same keys
    batch = 7  # more videos than one inference chunk holds
    tokens = (torch.arange(batch * 12 * 64).view(batch, 12, 8, 8) * 37) % 513
    actions = torch.linspace(-0.05, 0.05, batch * 24).view(batch, 12, 2)
    with torch.enable_grad():
        plain = model(tokens, actions).detach()
    with torch.no_grad():
        for _ in range(2):  # the second call reads the kept bias
            # SDPA picks another kernel with autograd on: float32 rounding, |logit| ~ 10
            torch.testing.assert_close(model(tokens, actions), plain, rtol=1e-4, atol=1e-4)


def test_head_at_positions_equals_the_full_logits_there():
    model = fixed_tiny_model()
    tokens, actions = tiny_inputs()
    positions = torch.tensor([[0, 5, 17, 63], [2, 3, 40, 41]])
    with torch.no_grad():
        full = model(tokens, actions).reshape(2, 64, -1)
        picked = model(tokens, actions, positions=positions)
    assert picked.shape == (2, 4, 8)
    torch.testing.assert_close(picked, full.gather(1, positions[..., None].expand(-1, -1, 8)), **TOL)
    with pytest.raises(ValueError, match="positions"):
        model(tokens, actions, positions=positions[0])


def test_kept_bias_follows_new_weights_and_gradients_still_reach_the_table():
    model = fixed_tiny_model()
    tokens, actions = tiny_inputs()
    with torch.no_grad():
        model(tokens, actions)  # builds and keeps every layer's bias
        for block in model.blocks:
            table = block.spatiotemporal.attn.bias.table
            table.add_(torch.linspace(-1, 1, table.numel()).view_as(table))  # in place, as
            # load_state_dict does (not a constant: softmax ignores those)
        kept = model(tokens, actions)
    fresh = fixed_tiny_model()
    fresh.load_state_dict(model.state_dict())
    with torch.enable_grad():  # the plain path: the bias is rebuilt and differentiable
        plain = fresh(tokens, actions)
        plain.square().mean().backward()
    torch.testing.assert_close(kept, plain.detach(), **TOL)
    assert all(b.spatial.attn.bias.table.grad.abs().sum() > 0 for b in fresh.blocks)
    assert set(model.state_dict()) == set(fresh.state_dict())  # nothing kept in the state dict
    assert not any("cache" in key for key in model.state_dict())


def test_spatial_window_partition_is_a_view():
    from maskvit.model.attention import window_merge, window_partition

    x = torch.randn(2, 3, 4, 4, 8)
    windows = window_partition(x, (1, 4, 4))
    assert windows.data_ptr() == x.data_ptr()  # a whole frame per window: no copy
    assert window_merge(windows, (1, 4, 4), (3, 4, 4)).data_ptr() == x.data_ptr()


def test_cpu_inference_in_chunks_of_videos_gives_the_batch_logits(monkeypatch):
    import maskvit.model.transformer as transformer

    model = fixed_tiny_model()
    tokens, actions = tiny_inputs()
    tokens, actions = tokens.repeat(3, 1, 1, 1), actions.repeat(3, 1, 1) * torch.linspace(
        0.5, 1.5, 6).view(6, 1, 1)
    whole = model(tokens, actions).detach()  # autograd on: one pass over the batch
    monkeypatch.setattr(transformer, "INFERENCE_CHUNK_TOKENS", 128)  # 2 videos a chunk
    positions = torch.arange(0, 64, 3).expand(6, -1)
    with torch.no_grad():
        torch.testing.assert_close(model(tokens, actions), whole, **TOL)
        picked = model(tokens, actions, positions=positions)
    torch.testing.assert_close(picked, whole.reshape(6, 64, -1)[:, ::3], **TOL)


def test_training_head_at_the_masked_positions_gives_the_same_loss_and_gradients():
    """`select=mask` (what `MaskedVideoTask` passes) runs the head only where the loss
    looks: same logits there, same loss, same gradient for every parameter."""
    from maskvit.model.masking import masked_cross_entropy

    model = fixed_tiny_model().train()
    tokens, actions = tiny_inputs()
    targets = tokens.clamp(max=7)
    mask = tokens == 8
    results = []
    for select in (None, mask):
        model.zero_grad(set_to_none=True)
        logits = model(tokens, actions, select=select)
        loss, accuracy = masked_cross_entropy(logits, targets, mask, normalizer=7.0)
        loss.backward()
        picked = logits if select is not None else logits[mask]
        results.append([picked.detach(), loss.detach(), accuracy]
                       + [p.grad.clone() for p in model.parameters()])
    assert results[0][0].shape == (int(mask.sum()), 8)
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, **TOL)


def test_select_of_the_wrong_form_is_a_clear_error():
    from maskvit.errors import UserError
    from maskvit.model.masking import masked_cross_entropy

    model = fixed_tiny_model()
    tokens, actions = tiny_inputs()
    with pytest.raises(UserError, match="select must be bool"):
        model(tokens, actions, select=(tokens == 8).long())
    with pytest.raises(UserError, match="not both"):
        model(tokens, actions, positions=torch.zeros(2, 1, dtype=torch.long), select=tokens == 8)
    with pytest.raises(ValueError, match="rows of logits"):
        masked_cross_entropy(torch.zeros(3, 8), tokens, tokens == 8)
