"""The decoding sampler draws exactly from the (top-p filtered) softmax, checked statistically.

Every test is seeded, so it either always passes or always fails (threshold: p > 1e-4).
Power, measured once by breaking the sampler on purpose: with 12 codes and 200 000 draws,
logits 3 % too sharp give p < 1e-4 (3 of 3 seeds), 5 % too sharp p < 1e-14; the
whole-decode comparison catches a sampler 10 % too sharp and uniform confidence noise in
place of Gumbel noise.
"""

import math

import pytest
import torch

from maskvit.config import DecodingConfig
from maskvit.errors import UserError
from maskvit.model.decoding import generate, iterative_decode, masked_counts, model_logits
from maskvit.model.sampling import draw_uniform, sample_categorical


def top_p_filter(logits: torch.Tensor, top_p: float | None) -> torch.Tensor:
    """Reference nucleus, written the plain way (full sort, cumulative sum): the smallest
    set of codes whose probability reaches `top_p`; the rest get -inf."""
    if top_p is None or top_p >= 1.0:
        return logits
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    probs = sorted_logits.softmax(dim=-1)
    drop = (probs.cumsum(dim=-1) - probs) >= top_p  # the codes above already reach top_p
    sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
    return torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)


def chi_square_p_value(observed: torch.Tensor, expected: torch.Tensor) -> float:
    """Goodness of fit; bins expected below 5 are pooled, as the χ² approximation needs."""
    observed, expected = observed.double(), expected.double()
    small = expected < 5
    if small.any():
        observed = torch.cat([observed[~small], observed[small].sum().view(1)])
        expected = torch.cat([expected[~small], expected[small].sum().view(1)])
    stat = ((observed - expected) ** 2 / expected).sum()
    dof = observed.numel() - 1
    if dof == 0:  # a single code: nothing to test beyond "always that code"
        return 1.0
    return float(torch.special.gammaincc(torch.tensor(dof / 2, dtype=torch.float64), stat / 2))


def homogeneity_p_value(a: torch.Tensor, b: torch.Tensor) -> float:
    """Two-sample χ² test that counts `a` and `b` (same bins) come from one distribution."""
    a, b = a.double(), b.double()
    keep = (a + b) > 0
    a, b = a[keep], b[keep]
    total = a.sum() + b.sum()
    pooled = (a + b) / total
    ea, eb = pooled * a.sum(), pooled * b.sum()
    stat = ((a - ea) ** 2 / ea).sum() + ((b - eb) ** 2 / eb).sum()
    dof = a.numel() - 1
    if dof == 0:
        return 1.0
    return float(torch.special.gammaincc(torch.tensor(dof / 2, dtype=torch.float64), stat / 2))


def exact_probabilities(logits: torch.Tensor, top_p: float | None) -> torch.Tensor:
    """Softmax restricted to the nucleus, in float64, written independently of the sampler."""
    probs = logits.double().softmax(-1)
    if top_p is None:
        return probs
    order = sorted(range(probs.numel()), key=lambda i: -float(probs[i]))
    kept, mass = [], 0.0
    for i in order:
        if mass >= top_p:
            break
        kept.append(i)
        mass += float(probs[i])
    nucleus = torch.zeros_like(probs)
    nucleus[kept] = probs[kept]
    return nucleus / nucleus.sum()


@pytest.mark.parametrize("codes", [12, 100, 512])  # one block, 4 blocks (padded), 16 blocks
@pytest.mark.parametrize("top_p", [None, 0.8])
@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_sampler_frequencies_match_the_exact_categorical(codes, top_p, temperature):
    generator = torch.Generator().manual_seed(codes + int(10 * temperature) + (top_p is None))
    logits = torch.randn(codes, generator=generator) * 2.0 / temperature  # temperature-scaled
    n = 200_000 if codes < 100 else 40_000  # ≥ 5 expected per bin either way, mostly far more
    uniform = draw_uniform(1, n, generator, torch.device("cpu"), torch.float64)[0]
    sampled, log_prob = sample_categorical(logits.expand(n, -1), uniform, top_p)
    expected = exact_probabilities(logits, top_p)
    counts = torch.bincount(sampled, minlength=codes)
    assert counts[expected == 0].sum() == 0  # nothing outside the nucleus, ever
    p_value = chi_square_p_value(counts[expected > 0], n * expected[expected > 0])
    assert p_value > 1e-4, p_value
    torch.testing.assert_close(log_prob, expected.log()[sampled].float(), rtol=1e-5, atol=1e-5)


def test_sampler_keeps_the_same_nucleus_as_top_p_filter():
    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(64, 40, generator=generator) * 3
    for top_p in (0.1, 0.5, 0.9, 0.99):
        allowed = torch.isfinite(top_p_filter(logits, top_p))
        for _ in range(20):
            uniform = torch.rand(64, generator=generator, dtype=torch.float64)
            codes, _ = sample_categorical(logits, uniform, top_p)
            assert allowed.gather(1, codes[:, None]).all()


def test_uniforms_at_the_ends_pick_codes_that_carry_mass():
    logits = torch.tensor([[float("-inf"), 0.0, 1.0, float("-inf")]] * 3)
    uniform = torch.tensor([0.0, 0.5, math.nextafter(1.0, 0.0)], dtype=torch.float64)
    for top_p in (None, 0.99):
        codes, log_prob = sample_categorical(logits, uniform, top_p)
        assert set(codes.tolist()) <= {1, 2} and torch.isfinite(log_prob).all()
    # Mass in one code of the first block only; whole blocks of impossible codes after it.
    sparse = torch.full((3, 100), float("-inf"))
    sparse[:, 3] = 0.0
    for top_p in (None, 0.5):
        codes, log_prob = sample_categorical(sparse, uniform, top_p)
        assert codes.tolist() == [3, 3, 3] and torch.allclose(log_prob, torch.zeros(3))
    with pytest.raises(UserError, match="top_p"):
        sample_categorical(logits, uniform, 0.0)


class FixedLogitsModel(torch.nn.Module):
    """Logits that depend on the tokens: base[p] plus a pull toward the previous position's
    code when it is decided, so later steps depend on earlier ones."""

    def __init__(self, base: torch.Tensor) -> None:
        super().__init__()
        self.base = base  # (L, K)
        self.mask_token_id = base.shape[1]

    def forward(self, tokens: torch.Tensor, actions=None) -> torch.Tensor:
        b, k = tokens.shape[0], self.mask_token_id
        flat = tokens.reshape(b, -1)
        previous = torch.roll(flat, 1, dims=1)
        pull = torch.nn.functional.one_hot(previous.clamp(max=k - 1), k).float()
        pull = pull * (previous < k).unsqueeze(-1)
        return (self.base + 1.5 * pull).view(*tokens.shape, k)


def reference_decode(model, codes, known, steps, schedule, temperature, top_p, generator):
    """The decoding loop as it was before the fast sampler: torch.multinomial over every
    position, Gumbel noise on every position, one argsort over the clip."""
    b, mask_id = codes.shape[0], model.mask_token_id
    known = known.reshape(b, -1)
    tokens = codes.reshape(b, -1).masked_fill(~known, mask_id).clone()
    still_masked = ~known.clone()
    for s, n_keep in enumerate(masked_counts(schedule, steps, int((~known[0]).sum())), start=1):
        logits = top_p_filter(model(tokens.view_as(codes)).reshape(b, tokens.shape[1], -1), top_p)
        log_probs = logits.float().log_softmax(-1).reshape(-1, logits.shape[-1])
        sampled = torch.multinomial(log_probs.exp(), 1, generator=generator).squeeze(-1)
        log_prob = log_probs.gather(-1, sampled[:, None]).view(b, -1)
        sampled = sampled.view(b, -1)
        u = torch.rand(log_prob.shape, generator=generator).clamp_(1e-20, 1.0 - 1e-7)
        score = log_prob + temperature * (1.0 - s / steps) * -torch.log(-torch.log(u))
        score = score.masked_fill(~still_masked, float("inf"))
        candidate = torch.where(still_masked, sampled, tokens)
        remask = torch.zeros_like(still_masked)
        remask.scatter_(1, score.argsort(dim=1)[:, :n_keep], True)
        tokens = candidate.masked_fill(remask, mask_id)
        still_masked = remask
    return tokens


@pytest.mark.parametrize("top_p,temperature", [(None, 3.0), (0.85, 4.5), (0.6, 0.0)])
def test_decoding_matches_the_multinomial_loop_in_distribution(top_p, temperature):
    """Whole decodes (3 steps, context + 6 future positions, 5 codes, 20 000 videos each):
    the code of every future position and the pair of codes at two neighbours, new loop
    vs the old one, two-sample χ² tests (Bonferroni over all of them)."""
    generator = torch.Generator().manual_seed(11)
    base = torch.randn(8, 5, generator=generator) * 1.5
    model = FixedLogitsModel(base)
    n = 20_000
    codes = torch.full((n, 2, 2, 2), 5)
    codes[:, 0, 0] = torch.tensor([1, 3])  # context: the first two positions
    known = torch.zeros(n, 2, 2, 2, dtype=torch.bool)
    known[:, 0, 0] = True
    new = iterative_decode(lambda tokens, positions: model_logits(model, tokens, None, positions),
                           codes, known, 5, DecodingConfig(3, "cosine", temperature, top_p),
                           generator=torch.Generator().manual_seed(1)).codes.reshape(n, -1)
    old = reference_decode(model, codes, known, 3, "cosine", temperature, top_p,
                           torch.Generator().manual_seed(2)).reshape(n, -1)
    assert (new[:, :2] == torch.tensor([1, 3])).all() and (new < 5).all()
    p_values = [homogeneity_p_value(torch.bincount(new[:, p], minlength=5),
                                    torch.bincount(old[:, p], minlength=5)) for p in range(2, 8)]
    pairs = [homogeneity_p_value(torch.bincount(new[:, p] * 5 + new[:, p + 1], minlength=25),
                                 torch.bincount(old[:, p] * 5 + old[:, p + 1], minlength=25))
             for p in range(2, 7)]
    assert min(p_values + pairs) > 1e-4 / 11, (p_values, pairs)


def test_per_video_generators_make_a_video_independent_of_its_batch_mates(tiny_transformer_config):
    from maskvit.model import MaskViT

    torch.manual_seed(0)
    model = MaskViT(tiny_transformer_config)
    context = torch.randint(0, 8, (3, 1, 4, 4))
    decoding = DecodingConfig(steps=4, top_p=0.9)

    def run(indices):
        generators = [torch.Generator().manual_seed(100 + i) for i in indices]
        return model.generate(context[indices], 3, decoding, generator=generators)

    alone = run([1])
    together = run([0, 1, 2])
    assert torch.equal(alone[0], together[1])
    # Rows may share a generator: they draw from it in row order, exactly as one generator
    # for those rows alone would (what a server batching requests of several videos needs).
    shared = torch.Generator().manual_seed(5)
    mixed = model.generate(context, 3, decoding,
                           generator=[shared, shared, torch.Generator().manual_seed(102)])
    pair = model.generate(context[:2], 3, decoding,
                          generator=torch.Generator().manual_seed(5))
    assert torch.equal(mixed[:2], pair) and torch.equal(mixed[2], together[2])
    assert torch.equal(run([0, 1, 2]), together)  # seeded: same generators, same output
    with pytest.raises(UserError, match="per-video generators"):
        generate(model, context, 3, DecodingConfig(steps=2), generator=[torch.Generator()])


def test_more_steps_than_tokens_still_decodes_everything(tiny_transformer_config):
    from maskvit.model import MaskViT

    model = MaskViT(tiny_transformer_config)
    context = torch.randint(0, 8, (2, 3, 4, 4))
    result = generate(model, context, 1, DecodingConfig(steps=20), generator=torch.Generator().manual_seed(0))
    assert result.forward_passes == 20 and not (result.codes == model.mask_token_id).any()
