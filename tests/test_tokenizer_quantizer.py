"""Vector quantizer: nearest codes, commitment on the encoder term, codebook hygiene."""

from __future__ import annotations

import math

import pytest
import torch

from maskvit.tokenizer.quantizer import VectorQuantizer


def as_grid(flat: torch.Tensor) -> torch.Tensor:
    """(N, D) -> (N, D, 1, 1): one latent per 'image'."""
    return flat[:, :, None, None]


@pytest.mark.parametrize("kind", ["cosine", "ema"])
def test_codes_are_the_nearest_codebook_vectors(kind):
    torch.manual_seed(0)
    q = VectorQuantizer(8, 4, kind=kind).eval()
    z = torch.randn(32, 4)
    out = q(as_grid(z))
    e = q.embeddings()
    if kind == "cosine":
        expected = (torch.nn.functional.normalize(z, dim=1) @ e.t()).argmax(1)
    else:
        expected = torch.cdist(z, e).argmin(1)
    assert torch.equal(out.codes.flatten(), expected)
    assert torch.allclose(out.z_q[:, :, 0, 0], e[expected])  # forward value is the code
    assert torch.equal(q.nearest_grid(as_grid(z)).flatten(), expected)


def test_commitment_gradient_pulls_the_encoder_output_towards_its_code():
    torch.manual_seed(0)
    q = VectorQuantizer(8, 4, kind="ema", commitment_weight=0.25, dead_code_threshold=0.0).eval()
    z = torch.randn(16, 4, requires_grad=True)
    out = q(as_grid(z))
    out.loss.backward()
    e = q.embeddings()[out.codes.flatten()]
    # d/dz of β·mean((z - sg(e))²) = 2β(z - e)/numel: the encoder moves, the code does not
    assert torch.allclose(z.grad, 2 * 0.25 * (z.detach() - e) / z.numel(), atol=1e-6)


def test_straight_through_passes_decoder_gradients_unchanged_to_the_encoder():
    q = VectorQuantizer(8, 4, kind="ema", dead_code_threshold=0.0).eval()
    z = torch.randn(16, 4, requires_grad=True)
    out = q(as_grid(z))
    g = torch.randn_like(out.z_q)
    (out.z_q * g).sum().backward()
    assert torch.allclose(z.grad, g[:, :, 0, 0])


@pytest.mark.parametrize("kind", ["cosine", "ema"])
def test_dead_code_restart_revives_unused_codes(kind):
    torch.manual_seed(0)
    k, d = 32, 8
    q = VectorQuantizer(k, d, kind=kind, dead_code_threshold=1.0)
    # A collapsed codebook: every code identical except the first, so one code wins all.
    collapsed = torch.zeros(k, d)
    collapsed[:, 0] = -1.0
    collapsed[0, 0] = 1.0
    with torch.no_grad():
        q.codebook.copy_(collapsed)
        if kind == "ema":
            q.ema_sum.copy_(collapsed)
        q.usage.fill_(5.0)
        q.usage[1:] = 0.0  # codes 1.. never used: below the threshold
    z = torch.randn(512, d).abs()  # positive first coordinate: all nearest to code 0
    z[:, 0] += 1.0
    before = q.eval()(as_grid(z)).codes.unique().numel()
    assert before == 1

    out = q.train()(as_grid(z))
    assert out.stats["restarted"] == k - 1
    after = q.eval()(as_grid(z)).codes.unique().numel()
    assert after > k // 2, f"only {after} of {k} codes in use after the restart"


def test_first_training_step_initialises_codes_from_encoder_outputs():
    torch.manual_seed(0)
    q = VectorQuantizer(16, 4, kind="ema").train()
    z = torch.randn(64, 4) * 10 + 100  # far (~200) from the random N(0, 1) initial codebook
    assert float(torch.cdist(q.codebook, z).min()) > 150
    q(as_grid(z))
    # every code now sits on (one EMA step away from) a latent it was restarted from
    assert float(torch.cdist(q.codebook, z).min(dim=1).values.max()) < 1.0


def test_restarted_codes_get_a_grace_period():
    torch.manual_seed(0)
    q = VectorQuantizer(16, 4, kind="cosine").train()
    z = as_grid(torch.randn(64, 4))
    assert q(z).stats["restarted"] == 16  # usage starts at zero: all codes initialised
    assert q(z).stats["restarted"] == 0  # not restarted again on the next step


def test_ema_codebook_moves_towards_the_mean_of_its_latents():
    torch.manual_seed(0)
    q = VectorQuantizer(1, 2, kind="ema", dead_code_threshold=0.0).train()
    target = torch.tensor([3.0, -2.0])
    for _ in range(300):
        q(as_grid(target + 0.1 * torch.randn(64, 2)))
    assert torch.allclose(q.codebook[0], target, atol=0.05)


def test_perplexity_and_usage_statistics():
    q = VectorQuantizer(4, 2, kind="ema", dead_code_threshold=0.0).eval()
    with torch.no_grad():
        q.codebook.copy_(torch.tensor([[10.0, 0], [0, 10], [-10, 0], [0, -10]]))
    uniform = q(as_grid(q.codebook.repeat(8, 1)))
    assert math.isclose(float(uniform.stats["perplexity"]), 4.0, rel_tol=1e-4)
    assert float(uniform.stats["batch_usage"]) == 1.0
    single = q(as_grid(q.codebook[:1].repeat(8, 1)))
    assert math.isclose(float(single.stats["perplexity"]), 1.0, rel_tol=1e-4)
    assert float(single.stats["batch_usage"]) == 0.25


def test_quantizer_runs_in_fp32_under_bf16_autocast():
    q = VectorQuantizer(8, 4, kind="cosine").eval()
    z = torch.randn(16, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = q(as_grid(z.bfloat16()))
    assert out.z_q.dtype == torch.float32
    assert torch.equal(out.codes.flatten(), q.nearest_grid(as_grid(z.bfloat16().float())).flatten())
