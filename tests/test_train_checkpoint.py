"""Checkpoints: atomic writes survive a crash, pruning, loading, config checks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from test_train_support import ToyDataset, ToyTask, toy_config

from maskvit.config import Config, apply_overrides
from maskvit.errors import UserError
from maskvit.run_dir import check_resume_config, checkpoint_dirs
from maskvit.train import Trainer, latest_checkpoint, load_checkpoint, load_run

TESTS = Path(__file__).parent

# Trains to step 2 (checkpoint), then dies inside the write of the step-4 checkpoint:
# the trainer state is half written and the process exits at once (no cleanup runs).
CRASHING_RUN = textwrap.dedent("""
    import os, sys, torch
    sys.path.insert(0, {tests!r})
    from test_train_support import ToyDataset, ToyTask, toy_config
    from maskvit.config import Config
    from maskvit.train import Trainer
    import maskvit.run_dir as ckpt

    cfg = toy_config(steps=6, checkpoint_every=2)
    calls = []
    real_save = ckpt._save_state
    def dying_save(state, folder):
        calls.append(folder)
        if len(calls) == 2:
            (folder / ckpt.STATE_JSON).write_text('{{"format": "maskvit-tr')
            os._exit(17)
        real_save(state, folder)
    ckpt._save_state = dying_save
    Trainer(ToyTask(), cfg, ToyDataset(), config=Config(train=cfg), out={out!r},
            progress=False, tensorboard=False).fit()
""")


def test_checkpoint_write_killed_half_way_leaves_the_previous_one_loadable(tmp_path):
    out = tmp_path / "run"
    script = CRASHING_RUN.format(tests=str(TESTS), out=str(out))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 17, proc.stderr
    leftovers = [p.name for p in (out / "checkpoints").iterdir() if p.name.startswith(".tmp-")]
    assert leftovers  # the write really was cut off half-way
    assert latest_checkpoint(out).name == "step_00000002"
    _, weights, _ = load_run(out)
    assert set(weights) == {"0.weight", "0.bias", "3.weight", "3.bias"}
    # The run resumes from step 2 and cleans the half-written folder away.
    trainer = Trainer(ToyTask(), toy_config(steps=6, checkpoint_every=2), ToyDataset(),
                      out=out, resume=True, progress=False, tensorboard=False)
    assert trainer.step == 2
    assert torch.equal(trainer.modules["model"][0].weight, weights["0.weight"])
    assert not any(p.name.startswith(".tmp-") for p in (out / "checkpoints").iterdir())
    assert trainer.fit().step == 6


def test_only_the_last_k_checkpoints_are_kept(tmp_path):
    cfg = toy_config(steps=7, checkpoint_every=2, keep_checkpoints=2)
    Trainer(ToyTask(), cfg, ToyDataset(), out=tmp_path, progress=False,
            tensorboard=False).fit()
    names = [p.name for p in checkpoint_dirs(tmp_path)]
    assert names == ["step_00000006", "step_00000007"]  # the end of training is saved too
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == "step_00000007"


def test_checkpoint_holds_config_weights_optimizer_rng_and_data_position(tmp_path):
    cfg = toy_config(steps=5, checkpoint_every=5)
    config = Config(train=cfg)
    Trainer(ToyTask(), cfg, ToyDataset(n=16), config=config, out=tmp_path, progress=False,
            tensorboard=False).fit()
    loaded_config, weights, ema = load_run(tmp_path)
    assert loaded_config == config and ema is None
    state = load_checkpoint(tmp_path / "checkpoints" / "step_00000005").state
    assert state["step"] == 5
    assert state["data_position"] == {"epoch": 2, "index": 1}  # 2 batches per epoch
    assert set(state["rng"][0]) >= {"python", "numpy", "torch", "generator"}
    assert state["optimizers"]["model"]["state"]  # Adam moments are there
    with pytest.raises(UserError, match="no checkpoint at step 3; available: 5"):
        load_run(tmp_path, step=3)
    with pytest.raises(UserError, match="no module 'vqgan'"):
        load_run(tmp_path, module="vqgan")


def test_resume_config_mismatch_names_the_differing_fields():
    saved = Config()
    check_resume_config(saved, apply_overrides(saved, ["train.log_every=7"]), Path("RUN"))
    other = apply_overrides(saved, ["train.lr=0.5", "transformer.depth=2"])
    with pytest.raises(UserError) as err:
        check_resume_config(saved, other, Path("RUN"))
    message = str(err.value)
    assert "train.lr" in message and "transformer.depth" in message and "\n" not in message
    assert "0.5" in message


def test_no_temporary_files_are_left_after_a_normal_run(tmp_path):
    Trainer(ToyTask(), toy_config(steps=2, checkpoint_every=1), ToyDataset(),
            config=Config(), out=tmp_path, progress=False, tensorboard=False).fit()
    stray = [p for p in tmp_path.rglob(".tmp-*")]
    assert stray == []
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["latest", "step_00000001",
                                                             "step_00000002"]
