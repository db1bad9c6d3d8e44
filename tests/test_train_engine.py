"""The training loop: schedule, exact resume, signals, two optimizers, EMA, bf16."""

from __future__ import annotations

import math

import pytest
import torch
from test_train_support import ToyDataset, ToyGANTask, ToyTask, toy_config

from maskvit.config import Config
from maskvit.train import Trainer, latest_checkpoint, lr_at, read_metrics
from maskvit.train.optim import build_optimizer


def test_lr_warms_up_linearly_then_decays_by_cosine_to_the_floor():
    kw = dict(lr=1.0, warmup_steps=4, total_steps=14, min_lr_ratio=0.1)
    assert [lr_at(s, **kw) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_at(9, **kw) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_at(14, **kw) == pytest.approx(0.1)
    assert lr_at(100, **kw) == pytest.approx(0.1)
    values = [lr_at(s, **kw) for s in range(3, 15)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))


def test_weight_decay_skips_biases_norms_and_embeddings():
    net = torch.nn.Sequential(torch.nn.Embedding(5, 4), torch.nn.Linear(4, 4),
                              torch.nn.LayerNorm(4))
    opt = build_optimizer([net], toy_config(weight_decay=0.3))
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert decayed == {id(net[1].weight)}
    assert isinstance(opt, torch.optim.AdamW)
    assert type(build_optimizer([net], toy_config(optimizer="adam"))) is torch.optim.Adam


def _losses(run) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(run)}


def _train(out, resume=False, max_steps=None, kill_at_step=None, **cfg):
    task = ToyTask(noise=0.1, dropout=0.2, kill_at_step=kill_at_step)
    trainer = Trainer(task, toy_config(**cfg), ToyDataset(n=40), out=out, resume=resume,
                      max_steps=max_steps, progress=False, tensorboard=False)
    return trainer.fit(), task


def test_resume_after_max_steps_repeats_the_uninterrupted_losses(tmp_path):
    """n=40, batch 8: the 3 → 8 stretch crosses an epoch, masking noise and dropout."""
    full, _ = _train(tmp_path / "full")
    first, _ = _train(tmp_path / "split", max_steps=3)
    assert first.step == 3 and not first.interrupted
    second, _ = _train(tmp_path / "split", resume=True)
    assert full.step == second.step == 8
    reference, resumed = _losses(tmp_path / "full"), _losses(tmp_path / "split")
    assert sorted(resumed) == list(range(1, 9))  # log of the split run is complete
    for step in range(4, 9):
        assert resumed[step] == pytest.approx(reference[step], rel=1e-6, abs=1e-7)
    # And the change is real: another seed gives other losses.
    other, _ = _train(tmp_path / "other", seed=4)
    assert _losses(tmp_path / "other")[8] != pytest.approx(reference[8], rel=1e-3)


def test_sigterm_checkpoints_and_resume_continues_exactly(tmp_path):
    _train(tmp_path / "full")
    stopped, _ = _train(tmp_path / "stopped", kill_at_step=4)  # SIGTERM during step 5
    assert stopped.interrupted and stopped.step == 5
    assert latest_checkpoint(tmp_path / "stopped").name == "step_00000005"
    resumed, task = _train(tmp_path / "stopped", resume=True)
    assert resumed.step == 8 and not resumed.interrupted
    assert len(task.seen) == 3  # only steps 6, 7, 8 ran again
    reference, got = _losses(tmp_path / "full"), _losses(tmp_path / "stopped")
    for step in range(6, 9):
        assert got[step] == pytest.approx(reference[step], rel=1e-6, abs=1e-7)


def test_discriminator_optimizer_waits_for_its_start_and_uses_its_own_lr(tmp_path):
    cfg = toy_config(steps=4, warmup_steps=0, log_every=1)
    task = ToyGANTask(cfg, disc_start=2, disc_lr=5e-3)
    disc0 = task.disc.weight.detach().clone()
    trainer = Trainer(task, cfg, ToyDataset(), out=tmp_path / "gan", progress=False,
                      tensorboard=False, max_steps=2)
    trainer.fit()
    assert torch.equal(task.disc.weight, disc0)  # phase skipped: no update at all
    rows = read_metrics(tmp_path / "gan")
    assert "disc_loss" not in rows[0] and "gen_loss" in rows[0]
    trainer = Trainer(ToyGANTask(cfg, disc_start=2, disc_lr=5e-3), cfg, ToyDataset(),
                      out=tmp_path / "gan", resume=True, progress=False, tensorboard=False)
    trainer.fit()
    assert not torch.equal(trainer.modules["disc"].weight.cpu(), disc0)
    last = read_metrics(tmp_path / "gan")[-1]
    assert last["step"] == 4 and "disc_loss" in last and "disc_grad_norm" in last
    assert last["gen_lr"] == pytest.approx(lr_at(3, lr=cfg.lr, warmup_steps=0, total_steps=4),
                                           rel=1e-5)
    assert last["disc_lr"] == pytest.approx(lr_at(3, lr=5e-3, warmup_steps=0, total_steps=4),
                                            rel=1e-5)


def test_ema_weights_follow_the_model_and_are_checkpointed(tmp_path):
    from maskvit.train import load_run

    cfg = toy_config(steps=5, ema_decay=0.5)
    task = ToyTask(noise=0.0)
    start = task.net[0].weight.detach().clone()
    trainer = Trainer(task, cfg, ToyDataset(), out=tmp_path / "ema", config=Config(train=cfg),
                      progress=False, tensorboard=False)
    trainer.fit()
    ema = trainer.emas["model"].state_dict()["0.weight"]
    now = task.net[0].weight.detach()
    assert not torch.equal(ema, now) and not torch.equal(ema, start)
    # Between the start and the current weights (decay 0.5 lags a few steps behind).
    assert (ema - now).norm() < (start - now).norm()
    _, weights, ema_weights = load_run(tmp_path / "ema")
    assert torch.equal(weights["0.weight"], now) and torch.equal(ema_weights["0.weight"], ema)


def test_bf16_autocast_keeps_fp32_master_weights():
    cfg = toy_config(precision="bf16", steps=3)
    task = ToyTask(noise=0.0)
    seen = {}

    class Probe(ToyTask):
        def loss(self, phase, batch, ctx):
            out = ctx.modules["model"][0](batch["x"])
            seen["dtype"] = out.dtype
            return super().loss(phase, batch, ctx)

    task = Probe(noise=0.0)
    result = Trainer(task, cfg, ToyDataset(), progress=False).fit()
    assert seen["dtype"] == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in task.net.parameters())
    assert math.isfinite(result.last_train["loss"])


def test_validation_is_averaged_and_deterministic(tmp_path):
    cfg = toy_config(steps=4, val_every=2, val_batches=2)
    out = []
    for name in ("a", "b"):
        Trainer(ToyTask(), cfg, ToyDataset(), val_data=ToyDataset(n=16, offset=1000),
                out=tmp_path / name, progress=False, tensorboard=False).fit()
        out.append(read_metrics(tmp_path / name, split="val"))
    assert [r["step"] for r in out[0]] == [2, 4]
    assert out[0] == out[1]
    assert out[0][1]["loss"] != out[0][0]["loss"]


def test_tensorboard_and_progress_outputs_exist(tmp_path, capsys):
    Trainer(ToyTask(), toy_config(steps=2), ToyDataset(), out=tmp_path / "tb",
            progress=True).fit()
    events = list((tmp_path / "tb" / "tb").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    err = capsys.readouterr().err
    assert "2/2" in err and "loss=" in err and "tokens_per_s=" in err
    row = read_metrics(tmp_path / "tb")[-1]
    for key in ("loss", "lr", "grad_norm", "tokens_per_s", "memory_mb"):
        assert key in row
