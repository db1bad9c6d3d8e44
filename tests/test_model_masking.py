import math

import pytest
import torch

from maskvit.errors import UserError
from maskvit.model.masking import mask_for_training, masked_cross_entropy, sample_mask_ratios


def test_variable_ratios_fall_in_half_open_interval():
    ratios = sample_mask_ratios(10_000, "variable", torch.Generator().manual_seed(0))
    assert float(ratios.min()) >= 0.5 and float(ratios.max()) < 1.0
    assert 0.74 < float(ratios.mean()) < 0.76  # uniform on [0.5, 1)


@pytest.mark.parametrize("goal", [False, True])
def test_masked_counts_are_floor_of_ratio_times_future_tokens(goal):
    gen = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, 8, (64, 6, 4, 4))
    context = 2
    n_future = (6 - context - int(goal)) * 16
    # Recompute the ratios the function draws (the same generator stream comes first).
    ratios = sample_mask_ratios(64, "variable", torch.Generator().manual_seed(1))
    _, mask = mask_for_training(tokens, context, "variable", goal, gen, mask_token_id=8)
    counts = mask.flatten(1).sum(1)
    expected = torch.tensor([math.floor(float(r) * n_future) for r in ratios])
    assert torch.equal(counts, expected)


@pytest.mark.parametrize("goal", [False, True])
def test_context_and_goal_tokens_are_never_masked(goal):
    tokens = torch.randint(0, 8, (128, 6, 4, 4))
    inputs, mask = mask_for_training(tokens, 2, 0.999, goal, torch.Generator().manual_seed(0),
                                     mask_token_id=8)
    assert not mask[:, :2].any()
    assert torch.equal(inputs[:, :2], tokens[:, :2])
    if goal:
        assert not mask[:, -1].any() and torch.equal(inputs[:, -1], tokens[:, -1])
    assert torch.equal(inputs[mask], torch.full_like(inputs[mask], 8))
    assert torch.equal(inputs[~mask], tokens[~mask])


def test_fixed_ratio_masks_the_same_count_in_every_video():
    tokens = torch.randint(0, 8, (16, 4, 4, 4))
    _, mask = mask_for_training(tokens, 1, 0.75, False, torch.Generator().manual_seed(0),
                                mask_token_id=8)
    assert (mask.flatten(1).sum(1) == math.floor(0.75 * 48)).all()


def test_masked_positions_are_spread_over_all_future_tokens():
    tokens = torch.zeros(4000, 3, 2, 2, dtype=torch.long)
    _, mask = mask_for_training(tokens, 1, 0.5, False, torch.Generator().manual_seed(0),
                                mask_token_id=8)
    frequency = mask[:, 1:].float().mean(0)  # each future position masked ~half the time
    assert torch.allclose(frequency, torch.full_like(frequency, 0.5), atol=0.04)


def test_bad_ratio_is_a_clear_error():
    with pytest.raises(UserError, match="mask ratio"):
        mask_for_training(torch.zeros(1, 4, 2, 2, dtype=torch.long), 1, 1.5, mask_token_id=8)


def test_loss_counts_masked_positions_only():
    targets = torch.randint(0, 5, (2, 3, 2, 2))
    logits = torch.randn(2, 3, 2, 2, 5)
    mask = torch.zeros(2, 3, 2, 2, dtype=torch.bool)
    mask[0, 1, 0, 0] = True
    logits_changed = logits.clone()
    logits_changed[~mask] = torch.randn_like(logits_changed[~mask])  # unmasked: irrelevant
    loss_a, _ = masked_cross_entropy(logits, targets, mask)
    loss_b, _ = masked_cross_entropy(logits_changed, targets, mask)
    assert torch.allclose(loss_a, loss_b)
    expected = torch.nn.functional.cross_entropy(logits[0, 1, 0, 0][None], targets[0, 1, 0, 0][None])
    assert torch.allclose(loss_a, expected)
