import math

import pytest
import torch

from maskvit.errors import UserError
from maskvit.model.masking import (
    changed_tokens,
    mask_for_training,
    masked_count,
    masked_cross_entropy,
    sample_generators,
    sample_mask_ratios,
)


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


def per_video_masks(tokens, indices, step=5, seed=3):
    """Masks of the videos `tokens[indices]` batched together, keyed on their indices."""
    _, mask = mask_for_training(tokens[indices], 1, "variable",
                                generator=sample_generators(seed, step, indices), mask_token_id=8)
    return mask


def test_a_videos_mask_does_not_depend_on_the_batch_it_is_drawn_in():
    tokens = torch.randint(0, 8, (8, 4, 4, 4))
    whole = per_video_masks(tokens, list(range(8)))
    halves = torch.cat([per_video_masks(tokens, [0, 1, 2, 3]), per_video_masks(tokens, [4, 5, 6, 7])])
    assert torch.equal(halves, whole)  # 2 processes × 4 videos = 1 process × 8
    reordered = per_video_masks(tokens, [6, 2, 5])
    assert torch.equal(reordered, whole[[6, 2, 5]])
    assert torch.equal(per_video_masks(tokens, [5]), whole[[5]])
    counts = whole.flatten(1).sum(1)
    assert len(set(counts.tolist())) > 1  # each video draws its own ratio, in [0.5, 1)
    assert ((counts >= 24) & (counts < 48)).all()
    assert not torch.equal(per_video_masks(tokens, list(range(8)), step=6), whole)
    assert not torch.equal(per_video_masks(tokens, list(range(8)), seed=4), whole)


@pytest.mark.parametrize("ratio", ["variable", 0.6])
def test_masked_count_of_a_global_batch_needs_only_the_indices(ratio):
    tokens = torch.randint(0, 8, (6, 4, 4, 4))
    _, mask = mask_for_training(tokens, 1, ratio, generator=sample_generators(3, 7, range(6)),
                                mask_token_id=8)
    assert masked_count(3, 7, range(6), ratio, n_future=48) == int(mask.sum())


def test_loss_with_a_normalizer_is_a_share_of_the_mean_over_a_larger_batch():
    logits, targets = torch.randn(4, 3, 2, 2, 5), torch.randint(0, 5, (4, 3, 2, 2))
    mask = torch.zeros(4, 3, 2, 2, dtype=torch.bool)
    mask[0], mask[1, 0], mask[2:, 1, 0, 0] = True, True, True  # 16 masked, then 2
    whole, _ = masked_cross_entropy(logits, targets, mask)
    total = float(mask.sum())
    # Two halves, each scaled by its share: their average is the whole batch's mean.
    halves = [masked_cross_entropy(logits[i:i + 2], targets[i:i + 2], mask[i:i + 2],
                                   normalizer=total * 2 / 4)[0] for i in (0, 2)]
    assert torch.allclose((halves[0] + halves[1]) / 2, whole)
    assert not torch.allclose(halves[0], masked_cross_entropy(logits[:2], targets[:2], mask[:2])[0])


def test_one_generator_per_video_is_checked():
    with pytest.raises(UserError, match="3 per-video generators for a batch of 2"):
        mask_for_training(torch.zeros(2, 4, 2, 2, dtype=torch.long), 1,
                          generator=sample_generators(0, 0, range(3)), mask_token_id=8)


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


def test_changed_tokens_weigh_more_where_they_differ_from_the_frame_before():
    tokens = torch.zeros(1, 3, 2, 2, dtype=torch.long)
    tokens[0, 2, 0, 0] = 4  # one token changes, in the last frame
    changed = changed_tokens(tokens)
    assert changed.sum() == 1 and changed[0, 2, 0, 0]
    logits = torch.randn(1, 3, 2, 2, 5)
    mask = torch.zeros(1, 3, 2, 2, dtype=torch.bool)
    mask[0, 1:] = True  # 8 masked, one of them changed
    terms = torch.nn.functional.cross_entropy(logits[mask], tokens[mask], reduction="none")
    weights = 1.0 + 4.0 * changed.float()
    weighted, _ = masked_cross_entropy(logits, tokens, mask, weights=weights)
    expected = (terms.sum() + 4.0 * torch.nn.functional.cross_entropy(logits[0, 2, 0, 0][None], tokens[0, 2, 0, 0][None])) / 8
    assert torch.allclose(weighted, expected)
    plain, _ = masked_cross_entropy(logits, tokens, mask, weights=torch.ones_like(weights))
    assert torch.allclose(plain, masked_cross_entropy(logits, tokens, mask)[0])
