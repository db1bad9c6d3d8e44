import math

import pytest
import torch

from maskvit.config import DecodingConfig
from maskvit.errors import UserError
from maskvit.model import MaskViT
from maskvit.model.decoding import SCHEDULES, generate, get_schedule, masked_counts
from maskvit.model.sampling import sample_categorical


class CountingModel(torch.nn.Module):
    """Wraps a MaskViT and records how many [MASK] tokens each forward pass sees."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.masked_seen = []

    @property
    def mask_token_id(self):
        return self.model.mask_token_id

    def forward(self, tokens, actions=None):
        self.masked_seen.append(int((tokens == self.mask_token_id).sum(dim=(1, 2, 3))[0]))
        return self.model(tokens, actions)


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedules_start_at_one_end_at_zero_and_decrease(name):
    gamma = get_schedule(name)
    assert gamma(0.0) == pytest.approx(1.0) and gamma(1.0) == pytest.approx(0.0, abs=1e-12)
    values = [gamma(i / 50) for i in range(51)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))


def test_concave_schedules_lie_above_linear_and_convex_below():
    for r in (0.25, 0.5, 0.75):
        for name in ("cosine", "square", "cubic", "exponential"):
            assert get_schedule(name)(r) > 1 - r
        assert get_schedule("sqrt")(r) < 1 - r


@pytest.mark.parametrize("schedule", ["cosine", "square", "linear", "sqrt"])
def test_after_each_step_ceil_gamma_of_future_tokens_remain_masked(tiny_transformer_config, schedule):
    torch.manual_seed(0)
    model = CountingModel(MaskViT(tiny_transformer_config))
    context = torch.randint(0, 8, (2, 1, 4, 4))
    steps = 5
    result = generate(model, context, num_frames=3,
                      decoding=DecodingConfig(steps=steps, schedule=schedule),
                      generator=torch.Generator().manual_seed(0))
    n = 3 * 16
    gamma = get_schedule(schedule)
    # Forward pass s+1 sees the tokens left masked after step s.
    expected_after = [math.ceil(gamma(s / steps) * n - 1e-9) for s in range(1, steps)]
    assert model.masked_seen == [n] + expected_after
    assert result.forward_passes == steps == len(model.masked_seen)
    assert not (result.codes == model.mask_token_id).any()  # everything decoded at the end
    assert masked_counts(schedule, steps, n)[-1] == 0


def test_context_codes_come_back_unchanged_at_any_positions(tiny_transformer_config):
    model = MaskViT(tiny_transformer_config)
    context = torch.randint(0, 8, (3, 2, 4, 4))
    result = generate(model, context, num_frames=2, decoding=DecodingConfig(steps=3),
                      context_positions=[0, 2],
                      generator=torch.Generator().manual_seed(1))
    assert torch.equal(result.codes[:, [0, 2]], context)


def test_goal_frame_sits_unchanged_at_the_last_step(tiny_transformer_config):
    model = MaskViT(tiny_transformer_config)
    context = torch.randint(0, 8, (2, 1, 4, 4))
    goal = torch.randint(0, 8, (2, 4, 4))
    codes = model.generate(context, num_frames=3, decoding=DecodingConfig(steps=2), goal_codes=goal,
                           generator=torch.Generator().manual_seed(0))
    assert torch.equal(codes[:, -1], goal) and torch.equal(codes[:, :1], context)


def test_autoregressive_mode_makes_one_pass_per_future_token(tiny_transformer_config):
    model = CountingModel(MaskViT(tiny_transformer_config))
    context = torch.randint(0, 8, (1, 3, 4, 4))
    result = generate(model, context, num_frames=1, mode="autoregressive",
                      generator=torch.Generator().manual_seed(0))
    assert result.forward_passes == 16 == len(model.masked_seen)
    assert model.masked_seen == list(range(16, 0, -1))  # one fewer [MASK] per pass
    assert torch.equal(result.codes[:, :3], context)


@pytest.mark.parametrize("unmask", ["confidence", "random"])
def test_same_seed_gives_same_output(tiny_transformer_config, unmask):
    model = MaskViT(tiny_transformer_config)
    context = torch.randint(0, 8, (2, 1, 4, 4))

    def run(seed):
        return model.generate(context, 3, DecodingConfig(steps=4, top_p=0.9, unmask=unmask),
                              generator=torch.Generator().manual_seed(seed))

    assert torch.equal(run(7), run(7))
    assert not torch.equal(run(7), run(8))


def test_top_p_keeps_the_smallest_set_reaching_p():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05])).expand(1000, 4)
    uniform = torch.linspace(0, 1, 1001, dtype=torch.float64)[:-1]  # the whole of [0, 1)
    codes, _ = sample_categorical(logits, uniform, 0.75)
    assert set(codes.tolist()) == {0, 1}
    codes, _ = sample_categorical(logits, uniform, 0.1)
    assert set(codes.tolist()) == {0}


def test_bad_inputs_raise_clear_value_errors(tiny_transformer_config):
    model = MaskViT(tiny_transformer_config)
    with pytest.raises(ValueError, match="token ids must lie"):
        model(torch.full((1, 4, 4, 4), 9))
    with pytest.raises(ValueError, match="shape"):
        model(torch.zeros(1, 4, 3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="not action-conditioned"):
        model(torch.zeros(1, 4, 4, 4, dtype=torch.long), torch.zeros(1, 4, 2))
    with pytest.raises(UserError, match="schedule"):
        model.generate(torch.zeros(1, 1, 4, 4, dtype=torch.long), 3, DecodingConfig(schedule="nope"))


def test_actions_of_the_wrong_width_raise(tiny_transformer_config):
    tiny_transformer_config.action_dim = 2
    model = MaskViT(tiny_transformer_config)
    with pytest.raises(ValueError, match="actions must have shape"):
        model(torch.zeros(1, 4, 4, 4, dtype=torch.long), torch.zeros(1, 4, 3))


def test_zero_initialised_action_projection_leaves_predictions_unchanged(tiny_transformer_config):
    tiny_transformer_config.action_dim = 2
    model = MaskViT(tiny_transformer_config)
    tokens = torch.randint(0, 9, (2, 4, 4, 4))
    assert torch.allclose(model(tokens), model(tokens, torch.randn(2, 4, 2)))


class KnownConfidenceModel(torch.nn.Module):
    """Stub logits with known confidences: each call, position p is uniform over its first
    m_p codes (m a fresh permutation of 1..L per video), so whatever code is sampled there
    has log-probability −log m_p. Records the tokens and the m of every call."""

    def __init__(self, codebook_size: int, seed: int = 0) -> None:
        super().__init__()
        self.mask_token_id = codebook_size
        self.generator = torch.Generator().manual_seed(seed)
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []  # (tokens (B, L), m (B, L))

    def forward(self, tokens: torch.Tensor, actions: torch.Tensor | None = None) -> torch.Tensor:
        b, length = tokens.shape[0], tokens[0].numel()
        m = torch.stack([torch.randperm(length, generator=self.generator) + 1 for _ in range(b)])
        logits = torch.zeros(b, length, self.mask_token_id)
        logits[torch.arange(self.mask_token_id) >= m[..., None]] = float("-inf")
        self.calls.append((tokens.reshape(b, -1).clone(), m))
        return logits.view(*tokens.shape, -1)


@pytest.mark.parametrize("schedule,steps", [("cosine", 6), ("linear", 4), ("sqrt", 3)])
def test_each_step_keeps_the_most_confident_tokens_and_remasks_the_least(schedule, steps):
    model = KnownConfidenceModel(codebook_size=64)  # K ≥ L = 64 positions: distinct m
    context = torch.randint(0, 64, (3, 1, 4, 4))
    result = generate(model, context, num_frames=3,
                      decoding=DecodingConfig(steps=steps, schedule=schedule, temperature=None),
                      generator=torch.Generator().manual_seed(0))
    masked = torch.zeros(3, 64, dtype=torch.bool)
    masked[:, 16:] = True  # every future token, none of the context's
    counts = masked_counts(schedule, steps, 48)
    for s, n_left in enumerate(counts):
        tokens, m = model.calls[s]
        assert torch.equal(tokens == model.mask_token_id, masked)
        # Least confident = largest m: the n_left of them among the still-masked stay masked.
        least = m.masked_fill(~masked, 0).topk(n_left, dim=1).indices if n_left else None
        decided = masked.clone()
        if least is not None:
            decided.scatter_(1, least, False)
        after = model.calls[s + 1][0] if s + 1 < steps else result.codes.reshape(3, -1)
        assert 0 < int(decided.sum()) and torch.equal(after != model.mask_token_id, ~masked | decided)
        assert (after[decided] < m[decided]).all()  # sampled from this step's own logits
        assert torch.equal(result.codes.reshape(3, -1)[decided], after[decided])  # kept to the end
        masked &= ~decided
    assert not masked.any() and len(model.calls) == steps
