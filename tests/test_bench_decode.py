"""The decoding benchmark's baselines are real: their caches give the uncached results."""

import pytest
import torch

from maskvit.bench.baseline_blocks import parameter_count
from maskvit.bench.decode import CausalVideoDecoder, decode_causal_kv, time_plan
from maskvit.bench.factorised import FactorisedVideoTransformer, decode_factorised
from maskvit.config import DecodingConfig, load_preset
from maskvit.model import MaskViT
from maskvit.model.decoding import assemble_clip

TOL = dict(rtol=1e-5, atol=1e-5)


@pytest.fixture
def cfg(tiny_transformer_config):
    tiny_transformer_config.action_dim = 2
    return tiny_transformer_config  # 4 frames of 4×4 tokens, 8 codes, 2 blocks of 32 wide


def test_kv_cached_steps_give_the_logits_of_a_full_causal_pass(cfg):
    torch.manual_seed(0)
    model = CausalVideoDecoder(cfg).eval()
    tokens = torch.randint(0, 9, (2, 64))
    actions = torch.randn(2, 4, 2)
    with torch.no_grad():
        cache = model.new_cache(2)
        stepped = [model(tokens[:, :20], 0, cache, actions)]  # prefill
        stepped += [model(tokens[:, p:p + 1], p, cache, actions) for p in range(20, 64)]
        for p, logits in zip(range(19, 64), stepped, strict=True):
            whole = model(tokens[:, :p + 1], 0, model.new_cache(2), actions)
            torch.testing.assert_close(logits, whole, **TOL)


def test_factorised_frames_cached_one_by_one_give_the_logits_of_all_frames_at_once(cfg):
    torch.manual_seed(0)
    model = FactorisedVideoTransformer(cfg).eval()
    tokens = torch.randint(0, 9, (2, 4, 16))
    actions = torch.randn(2, 4, 2)
    with torch.no_grad():
        whole = model(tokens, 0, model.new_cache(2), actions).view(2, 4, 16, -1)
        cache = model.new_cache(2)
        model(tokens[:, :2], 0, cache, actions, head=False)
        for frame in (2, 3):
            logits = model(tokens[:, frame:frame + 1], frame, cache, actions)
            torch.testing.assert_close(logits, whole[:, frame], **TOL)
        # Causal in time: frame 1 does not see frames 2 and 3.
        first_two = model(tokens[:, :2], 0, model.new_cache(2), actions).view(2, 2, 16, -1)
        torch.testing.assert_close(first_two[:, 1], whole[:, 1], **TOL)
        # Training's cache-free pass (the benchmarked step) computes the same logits.
        uncached = model(tokens, 0, None, actions).view(2, 4, 16, -1)
        torch.testing.assert_close(uncached, whole, **TOL)
        with pytest.raises(ValueError, match="start at frame 0"):
            model(tokens[:, 2:], 2, None, actions)


def test_baselines_decode_every_future_token_and_count_their_passes(cfg):
    torch.manual_seed(0)
    context = torch.randint(0, 8, (3, 1, 4, 4))
    codes, known = assemble_clip(context, 3, cfg.mask_token_id)
    actions = torch.randn(3, 4, 2)
    with torch.no_grad():
        kv_codes, kv_passes = decode_causal_kv(CausalVideoDecoder(cfg).eval(), codes, known,
                                               actions, top_p=0.9,
                                               generator=torch.Generator().manual_seed(0))
        fa_codes, fa_passes = decode_factorised(FactorisedVideoTransformer(cfg).eval(), codes,
                                                known, DecodingConfig(steps=2), actions=actions,
                                                generator=torch.Generator().manual_seed(0))
    for out in (kv_codes, fa_codes):
        assert torch.equal(out[:, :1], context) and int(out.max()) < cfg.codebook_size
    assert kv_passes == 48  # prefill + one step per further token of 3 × 16
    assert fa_passes == 1 + 3 * (2 + 1)  # prefill, then per frame 2 MaskGIT steps + caching


def test_baselines_match_maskvit_in_size_but_for_its_bias_tables(cfg):
    maskvit = MaskViT(cfg)
    tables = sum(p.numel() for n, p in maskvit.named_parameters() if "bias.table" in n)
    for baseline in (CausalVideoDecoder(cfg), FactorisedVideoTransformer(cfg)):
        assert parameter_count(baseline) == parameter_count(maskvit) - tables


def test_bench_decode_rejects_bad_arguments_in_one_line(capsys):
    from maskvit.cli import main

    for extra in (["--precision", "fp16"], ["--batches", "0"], ["--batches", "a"],
                  ["--rounds", "0"], ["--factorised-steps", "0"]):
        assert main(["bench", "decode", "--presets", "push64", *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "error" in err and "Traceback" not in err


def test_a_plan_entry_may_set_maskvits_steps():
    preset_steps = load_preset("push64").eval.decoding.steps
    rows = time_plan([("push64", 1, "fp32"), ("push64", 1, "fp32", 2)], ar_passes=1, rounds=1)
    assert [r.iterative_passes for r in rows] == [preset_steps, 2]
    assert all(len(r.seconds["maskvit"]) == 1 for r in rows)
