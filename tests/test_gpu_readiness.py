"""What a first GPU user would hit, checked without a GPU: checkpoints that move between
device types, the precision a run trains in, generators that follow the model's device,
device-dependent attention paths and sampling that does not depend on batch grouping.

CUDA is simulated where placement is all that matters (fake saved states, a model that
reports another device); every numeric comparison runs on the CPU.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from test_train_support import ToyDataset, ToyTask, toy_config

import maskvit.devices as devices
import maskvit.train.trainer as trainer_module
from maskvit.run_dir import latest_checkpoint, load_checkpoint
from maskvit.train import Trainer, read_metrics
from maskvit.train.rng import capture_rng, restore_rng, resume_seed

# A CUDA generator's state: its seed and its philox offset, 8 bytes each.
CUDA_GENERATOR_STATE = torch.tensor([7, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 0],
                                    dtype=torch.uint8)


def as_if_saved_on_cuda(state: dict, recorded: bool = True) -> dict:
    """`state` (from `capture_rng` on the CPU) as a CUDA run would have saved it."""
    state = dict(state, generator=CUDA_GENERATOR_STATE.clone(), cuda=[CUDA_GENERATOR_STATE.clone()])
    if recorded:
        state["generator_device"] = "cuda"
    else:  # a checkpoint from before the device was recorded
        state.pop("generator_device", None)
    return state


# ------------------------------------------------------------------ RNG portability


@pytest.mark.parametrize("recorded", [True, False])
def test_rng_state_saved_on_cuda_restores_on_the_cpu(recorded):
    generator = torch.Generator().manual_seed(1)
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    state = as_if_saved_on_cuda(capture_rng(generator), recorded)
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    torch.rand(3)  # move every global stream on
    random.random()
    np.random.rand()

    notes = restore_rng(state, generator, reseed=resume_seed(3, 0, 5))

    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
    reseeded = torch.Generator().manual_seed(resume_seed(3, 0, 5))
    assert torch.equal(torch.rand(4, generator=generator), torch.rand(4, generator=reseeded))
    assert len(notes) == 1 and "saved on cuda, resumed on cpu" in notes[0]


def test_rng_state_of_the_same_device_type_restores_exactly():
    generator = torch.Generator().manual_seed(1)
    state = capture_rng(generator)
    expected = torch.rand(4, generator=generator)
    assert restore_rng(state, generator, reseed=123) == []
    assert torch.equal(torch.rand(4, generator=generator), expected)


def test_resume_seeds_differ_by_rank_and_step_and_repeat():
    seeds = {resume_seed(3, rank, step) for rank in range(3) for step in range(3)}
    assert len(seeds) == 9 and resume_seed(3, 1, 2) == resume_seed(3, 1, 2)
    assert all(0 <= s < 2**63 for s in seeds)


def _train(out, resume=False, max_steps=None):
    task = ToyTask(noise=0.1, dropout=0.2)
    trainer = Trainer(task, toy_config(checkpoint_every=3), ToyDataset(n=40), out=out,
                      resume=resume, max_steps=max_steps, progress=False, tensorboard=False)
    return trainer, trainer.fit(), task


def test_a_run_checkpointed_on_cuda_resumes_on_the_cpu(tmp_path, monkeypatch):
    """Every checkpoint of a GPU run failed to resume on a CPU ("no intact checkpoint"):
    the engine generator's state is 16 bytes on CUDA and 5056 on the CPU."""
    _, _, uninterrupted = _train(tmp_path / "full")
    with monkeypatch.context() as patch:
        patch.setattr(trainer_module, "capture_rng",
                      lambda generator: as_if_saved_on_cuda(capture_rng(generator)))
        _train(tmp_path / "gpu", max_steps=3)
    assert latest_checkpoint(tmp_path / "gpu").name == "step_00000003"

    trainer, result, resumed = _train(tmp_path / "gpu", resume=True)

    assert result.step == 8 and trainer.warnings == []
    assert any("saved on cuda, resumed on cpu" in note for note in trainer.notes)
    assert resumed.seen == uninterrupted.seen[3:]  # the same data order
    # The re-seeded generator is a function of (seed, rank, step): resuming again repeats.
    losses = {r["step"]: r["loss"] for r in read_metrics(tmp_path / "gpu")}
    again = tmp_path / "gpu-again"
    with monkeypatch.context() as patch:
        patch.setattr(trainer_module, "capture_rng",
                      lambda generator: as_if_saved_on_cuda(capture_rng(generator)))
        _train(again, max_steps=3)
    _train(again, resume=True)
    assert {r["step"]: r["loss"] for r in read_metrics(again)} == losses


# ------------------------------------------------------------------ train.precision auto

AMX = "processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile\n"
NO_AMX = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu avx512f avx512_bf16\n"


def fake_cpu(monkeypatch, cpuinfo: str) -> None:
    monkeypatch.setattr(devices, "read_cpu_flags", lambda *a: devices.cpu_flags(cpuinfo))
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: "amx_tile" in cpuinfo,
                        raising=False)


def _auto_trainer(out, resume=False, max_steps=None):
    return Trainer(ToyTask(noise=0.0), toy_config(precision="auto", checkpoint_every=2),
                   ToyDataset(n=40), out=out, resume=resume, max_steps=max_steps,
                   progress=False, tensorboard=False)


def test_auto_precision_is_printed_at_start_and_recorded_in_checkpoints(tmp_path, monkeypatch,
                                                                         capsys):
    fake_cpu(monkeypatch, AMX)
    trainer = _auto_trainer(tmp_path / "amx", max_steps=2)
    assert (trainer.precision, trainer.autocast_dtype) == ("bf16", torch.bfloat16)
    trainer.fit()
    assert "precision: auto -> bf16 (AMX)" in capsys.readouterr().err
    assert load_checkpoint(latest_checkpoint(tmp_path / "amx")).state["precision"] == "bf16"

    fake_cpu(monkeypatch, NO_AMX)
    trainer = _auto_trainer(tmp_path / "intel", max_steps=2)
    assert (trainer.precision, trainer.autocast_dtype) == ("fp32", None)
    trainer.fit()
    assert "precision: auto -> fp32 (no fast bf16)" in capsys.readouterr().err
    assert load_checkpoint(latest_checkpoint(tmp_path / "intel")).state["precision"] == "fp32"


def test_a_resumed_auto_run_keeps_the_precision_it_recorded(tmp_path, monkeypatch):
    """Trained on an AMX machine (bf16), resumed on a Xeon without fast bf16: still bf16, and said so."""
    fake_cpu(monkeypatch, AMX)
    _auto_trainer(tmp_path / "run", max_steps=2).fit()
    fake_cpu(monkeypatch, NO_AMX)
    resumed = _auto_trainer(tmp_path / "run", resume=True, max_steps=4)
    assert (resumed.precision, resumed.autocast_dtype) == ("bf16", torch.bfloat16)
    assert resumed.notes[0].startswith("precision: auto -> bf16 (the run's recorded choice; "
                                       "on this machine auto is fp32: no fast bf16)")
    resumed.fit()
    assert load_checkpoint(latest_checkpoint(tmp_path / "run")).state["precision"] == "bf16"


def test_the_shipped_bundle_config_loads_with_its_recorded_precisions():
    from maskvit.config import load_config
    from maskvit.pretrained import pretrained_path

    root = pretrained_path()
    transformer = load_config(root / "transformer" / "config.yaml")
    tokenizer = load_config(root / "tokenizer" / "config.yaml")
    assert transformer.train.precision == "bf16" and tokenizer.tokenizer_train.precision == "fp32"


def test_presets_train_the_transformer_in_auto_precision():
    from maskvit.config import load_preset, preset_names

    for name in preset_names():
        assert load_preset(name).train.precision == "auto", name


# ------------------------------------------------------------------ generators follow the device

META = torch.device("meta")  # a device that is not the CPU, for placement only


@pytest.fixture
def strict_generators(monkeypatch):
    """torch.rand refuses a generator of another device than the tensor's, as CUDA does
    (on the CPU and meta devices torch does not check)."""
    real_rand = torch.rand

    def rand(*size, generator=None, device=None, **kwargs):
        wanted = torch.device(device if device is not None else "cpu").type
        if generator is not None and generator.device.type != wanted:
            raise RuntimeError(f"Expected a '{wanted}' device type for generator but found "
                               f"'{generator.device.type}'")
        return real_rand(*size, generator=generator, device=device, **kwargs)

    monkeypatch.setattr(torch, "rand", rand)


def test_a_cpu_generator_draws_uniforms_for_a_model_on_another_device(strict_generators):
    from maskvit.model.sampling import draw_uniform

    got = draw_uniform(2, 5, torch.Generator().manual_seed(4), META)
    assert got.device == META and got.shape == (2, 5)
    per_video = draw_uniform(2, 5, [torch.Generator().manual_seed(i) for i in range(2)], META,
                             torch.float64)
    assert per_video.device == META and per_video.dtype == torch.float64
    # On the CPU the numbers are the generator's own, as before.
    on_cpu = draw_uniform(2, 5, torch.Generator().manual_seed(4), torch.device("cpu"))
    assert torch.equal(on_cpu, torch.rand(2, 5, generator=torch.Generator().manual_seed(4)))


def test_a_cpu_generator_masks_tokens_on_another_device(strict_generators):
    from maskvit.model.masking import goal_flags, mask_for_training, sample_mask_ratios

    assert sample_mask_ratios(3, "variable", torch.Generator(), META).device == META
    assert goal_flags(3, 0.5, torch.Generator(), META).device == META
    tokens = torch.zeros(2, 4, 2, 2, dtype=torch.long)
    inputs, mask = mask_for_training(tokens.to(META), 1, goal=0.5, mask_token_id=8,
                                     generator=torch.Generator().manual_seed(0))
    assert inputs.device == mask.device == META and mask.shape == (2, 4, 2, 2)
    # The same generator on the CPU gives the mask it always gave.
    cpu_inputs, cpu_mask = mask_for_training(tokens, 1, goal=0.5, mask_token_id=8,
                                             generator=torch.Generator().manual_seed(0))
    assert torch.equal(cpu_mask, _reference_mask(tokens, 1, 0.5, torch.Generator().manual_seed(0)))
    assert torch.equal(cpu_inputs, tokens.masked_fill(cpu_mask, 8))


def _reference_mask(tokens, context_frames, goal, generator):
    """`mask_for_training`'s mask as written before masks were drawn off the device."""
    b, t, h, w = tokens.shape
    ratios = 0.5 + 0.5 * torch.rand(b, generator=generator)
    goals = torch.rand(b, generator=generator) < goal
    scores = torch.rand(b, t * h * w, generator=generator)
    frames = torch.zeros(b, t, dtype=torch.bool)
    frames[:, context_frames:] = True
    frames[:, -1] &= ~goals
    maskable = frames[:, :, None].expand(b, t, h * w).reshape(b, -1)
    counts = torch.floor(ratios * maskable.sum(dim=1)).long()
    ranks = scores.masked_fill(~maskable, 2.0).argsort(dim=1).argsort(dim=1)
    return (ranks < counts[:, None]).view(b, t, h, w)


def test_predictor_passes_a_callers_generator_on_and_seeds_cpu_generators_per_video(monkeypatch):
    """A caller's generator reaches decoding as given (whose draws then happen on its own
    device: the tests above); a seed becomes one CPU generator per video, whatever the
    model's device."""
    from stand_ins import tiny_predictor

    import maskvit.inference.predictor as predictor_module

    seen = []
    real_generate = predictor_module.generate

    def spy(*args, generator=None, **kwargs):
        seen.append(generator)
        return real_generate(*args, generator=generator, **kwargs)

    monkeypatch.setattr(predictor_module, "generate", spy)
    predictor = tiny_predictor()
    frames, actions = _clip(3)
    mine = torch.Generator().manual_seed(9)
    predictor.predict(frames, actions=actions, num_frames=2, generator=mine, batch_size=2)
    assert seen == [mine, mine]
    seen.clear()
    predictor.predict(frames, actions=actions, num_frames=2, seed=5, batch_size=2)
    assert [len(rows) for rows in seen] == [2, 1]
    assert all(g.device.type == "cpu" for rows in seen for g in rows)


# ------------------------------------------------------------------ sampling independent of batching


def _clip(b: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (b, 2, 64, 64, 3), dtype=np.uint8)
    actions = rng.normal(scale=0.05, size=(b, 4, 2)).astype(np.float32)
    return frames, actions


def test_a_batch_of_four_predicts_what_four_batches_of_one_do():
    """Row i of a prediction seeded with s draws from its own generator, seeded from
    (s, i), so how rows are grouped into batches changes nothing (on a GPU too: the
    generators are CPU generators)."""
    from stand_ins import tiny_predictor

    predictor = tiny_predictor()
    frames, actions = _clip(4)
    together = predictor.predict(frames, actions=actions, num_frames=2, seed=7)
    one_by_one = predictor.predict(frames, actions=actions, num_frames=2, seed=7, batch_size=1)
    assert np.array_equal(together, one_by_one)
    pairs = predictor.predict(frames, actions=actions, num_frames=2, seed=7, batch_size=3)
    assert np.array_equal(together, pairs)
    other = predictor.predict(frames, actions=actions, num_frames=2, seed=8)
    assert not np.array_equal(together, other)  # the seed does matter


def test_decoding_a_batch_equals_decoding_its_rows_alone(tiny_transformer_config):
    from maskvit.config import DecodingConfig
    from maskvit.model import MaskViT, generate
    from maskvit.model.sampling import video_generators

    torch.manual_seed(0)
    model = MaskViT(tiny_transformer_config)
    context = torch.randint(0, 8, (4, 1, 4, 4))
    decoding = DecodingConfig(steps=3)
    together = generate(model, context, 3, decoding, generator=video_generators(11, range(4))).codes
    alone = [generate(model, context[i:i + 1], 3, decoding,
                      generator=video_generators(11, [i])).codes for i in range(4)]
    assert torch.equal(together, torch.cat(alone))


def test_server_rows_get_the_generators_predictor_gives_each_request_alone():
    from maskvit.inference.batching import row_generators
    from maskvit.model.sampling import video_generators

    rows = row_generators([1, 3], [5, 9], device="cuda")  # no GPU needed: CPU generators
    expected = video_generators(5, range(1)) + video_generators(9, range(3))
    assert [g.initial_seed() for g in rows] == [g.initial_seed() for g in expected]
    assert all(g.device.type == "cpu" for g in rows)
    assert len({g.initial_seed() for g in rows}) == 4  # no two rows share a stream


# ------------------------------------------------------------------ attention by device


def test_training_attention_path_follows_the_device():
    from maskvit.model.attention import WindowAttention

    cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
    assert WindowAttention.training_path(cuda, 0.0) == "sdpa"  # no CPU-cache-sized loop
    assert WindowAttention.training_path(cuda, 0.1) == "sdpa"
    assert WindowAttention.training_path(cpu, 0.0) == "chunked"
    assert WindowAttention.training_path(cpu, 0.1) == "written"


def test_gpu_training_attention_has_the_cpu_paths_values_and_gradients(monkeypatch):
    """The GPU path (SDPA with a bias that takes a gradient) computes what the CPU's
    chunked path does: run here through SDPA's CPU kernels."""
    from maskvit.model.attention import WindowAttention

    torch.manual_seed(0)
    layer = WindowAttention(dim=16, heads=2, window=(2, 2, 2), max_grid=(4, 4, 4))
    x = torch.randn(2, 4, 4, 4, 16)
    results = {}
    for path in ("chunked", "sdpa"):
        monkeypatch.setattr(WindowAttention, "training_path",
                            classmethod(lambda cls, device, dropout, path=path: path))
        layer.zero_grad(set_to_none=True)
        out = layer(x)
        out.pow(2).sum().backward()
        results[path] = [out.detach()] + [p.grad.clone() for p in layer.parameters()]
    for a, b in zip(results["chunked"], results["sdpa"], strict=True):
        scale = a.abs().max().clamp(min=1e-6)
        torch.testing.assert_close(b / scale, a / scale, rtol=1e-5, atol=1e-6)


def test_relative_position_indices_are_kept_on_the_device_once_for_all_layers():
    from maskvit.model.attention import (
        RelativePositionBias,
        relative_position_index,
        relative_position_index_on,
    )

    cpu = torch.device("cpu")
    first = relative_position_index_on((2, 2, 2), (4, 2, 2), cpu)
    assert relative_position_index_on((2, 2, 2), (4, 2, 2), cpu) is first  # no new copy
    assert torch.equal(first, relative_position_index((2, 2, 2), (4, 2, 2)).reshape(-1))
    bias = RelativePositionBias((4, 2, 2), heads=3)
    index = relative_position_index((2, 2, 2), (4, 2, 2))
    assert torch.equal(bias((2, 2, 2)), bias.table[index].permute(2, 0, 1))


# ------------------------------------------------------------------ a training step without waits


def test_training_loss_at_mask_positions_equals_the_boolean_mask_form(tiny_transformer_config):
    """The task selects the masked positions by indices made on the CPU (no wait on a GPU
    for the mask's count); loss and gradients are exactly those of `logits[mask]`."""
    from maskvit.config import TrainConfig
    from maskvit.model.masked_video_task import MaskedVideoTask
    from maskvit.model.masking import mask_for_training, masked_cross_entropy, sample_generators
    from maskvit.train.task_protocol import StepContext

    cfg = tiny_transformer_config
    task = MaskedVideoTask(cfg, TrainConfig(batch_size=3, seed=2))
    model = task.model
    tokens = torch.randint(0, cfg.codebook_size, (3, cfg.num_frames, cfg.tokens_h, cfg.tokens_w))
    ctx = StepContext(step=4, modules={"model": model}, generator=torch.Generator(),
                      device=torch.device("cpu"))
    loss, logs = task.loss("model", {"tokens": tokens}, ctx)
    loss.backward()
    new_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)

    inputs, mask = mask_for_training(tokens, cfg.context_frames, "variable",
                                     generator=sample_generators(2, 4, range(3)),
                                     mask_token_id=cfg.mask_token_id)
    old_loss, old_accuracy = masked_cross_entropy(
        model(inputs, None, select=mask), tokens, mask, task.loss_normalizer(ctx, tokens))
    old_loss.backward()
    assert torch.equal(loss, old_loss) and torch.equal(logs["accuracy"], old_accuracy)
    for new, old in zip(new_grads, (p.grad for p in model.parameters()), strict=True):
        assert torch.equal(new, old)


def test_bf16_training_on_a_gpu_without_bf16_is_refused_before_it_starts(monkeypatch):
    from maskvit.errors import UserError
    from maskvit.train.distributed import DistEnv

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    gpu = DistEnv(device=torch.device("cuda", 0))
    with pytest.raises(UserError, match="has no bf16 support"):
        Trainer(ToyTask(), toy_config(precision="bf16"), ToyDataset(), env=gpu, progress=False)
