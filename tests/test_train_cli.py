"""`maskvit train`: the transformer end to end from a token cache, and its user errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from maskvit.cli import main
from maskvit.config import load_preset
from maskvit.data import TokenCacheWriter
from maskvit.model import MaskViT
from maskvit.train import load_checkpoint, load_run, read_metrics

TINY = ["transformer.depth=1", "transformer.dim=32", "transformer.mlp_dim=64",
        "transformer.heads=2", "train.batch_size=4", "train.steps=4", "train.warmup_steps=1",
        "train.log_every=1", "train.checkpoint_every=2", "train.val_every=2",
        "train.val_batches=1", "train.precision=fp32"]


@pytest.fixture(scope="module")
def tokens(tmp_path_factory) -> Path:
    """A push64-shaped token cache: 8×8 codes from 512, 2-d actions, train + val."""
    path = tmp_path_factory.mktemp("data") / "tokens"
    rng = np.random.default_rng(0)
    with TokenCacheWriter(path, token_shape=(8, 8), action_dim=2, codebook_size=512) as w:
        for i, split in enumerate(["train", "train", "train", "val"]):
            n = 16 if split == "val" else 14  # val: 5 clips of 12 frames, one batch of 4
            w.add(f"ep{i}", rng.integers(0, 512, (n, 8, 8)),
                  rng.normal(size=(n, 2)).astype(np.float32), split)
    return path


def train(*args: str) -> int:
    sets = [a for s in TINY for a in ("--set", s)]
    return main(["train", "--no-progress", "--device", "cpu", *sets, *args])


def test_train_then_resume_matches_one_uninterrupted_run(tokens, tmp_path, capsys):
    assert train("--preset", "push64", "--data", str(tokens), "--out", str(tmp_path / "a")) == 0
    assert train("--preset", "push64", "--data", str(tokens), "--out", str(tmp_path / "b"),
                 "--max-steps", "2") == 0
    assert "trained to step 2" in capsys.readouterr().out
    assert train("--data", str(tokens), "--out", str(tmp_path / "b"), "--resume") == 0
    a, b = read_metrics(tmp_path / "a"), read_metrics(tmp_path / "b")
    assert [r["step"] for r in b] == [1, 2, 3, 4]
    for ra, rb in zip(a[2:], b[2:], strict=True):  # steps 3 and 4 (masking RNG restored)
        assert rb["loss"] == pytest.approx(ra["loss"], rel=1e-5)
        assert rb["accuracy"] == pytest.approx(ra["accuracy"], abs=1e-6)
    val = read_metrics(tmp_path / "b", split="val")
    assert [r["step"] for r in val] == [2, 4] and 0 <= val[-1]["accuracy"] <= 1
    capsys.readouterr()
    assert train("--data", str(tokens), "--out", str(tmp_path / "b"), "--resume") == 0  # finished
    assert "already trained to step 4; nothing to do" in capsys.readouterr().out
    assert len(read_metrics(tmp_path / "b")) == 4
    assert val[-1]["loss"] == pytest.approx(read_metrics(tmp_path / "a", "val")[-1]["loss"])

    config, weights, ema = load_run(tmp_path / "b")
    assert config == load_preset("push64", TINY) and ema is None
    model = MaskViT(config.transformer)
    model.load_state_dict(weights)  # the run directory loads the trained model back
    a_weights = load_run(tmp_path / "a")[1]
    for name, value in weights.items():
        torch.testing.assert_close(value, a_weights[name], rtol=1e-5, atol=1e-6)


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("maskvit train: error: ")
    return err


def test_wrong_preset_is_a_one_line_error(tokens, tmp_path, capsys):
    out = tmp_path / "run"
    assert train("--preset", "bair65", "--data", str(tokens), "--out", str(out)) == 2
    assert "unknown preset 'bair65'" in _one_line_error(capsys)
    assert not out.exists()


def test_missing_data_directory_is_a_one_line_error(tmp_path, capsys):
    out = tmp_path / "run"
    assert train("--data", str(tmp_path / "nope"), "--out", str(out)) == 2
    assert "data directory not found" in _one_line_error(capsys)
    assert not out.exists()


def test_unwritable_output_directory_is_a_one_line_error(tokens, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert train("--data", str(tokens), "--out", str(blocker / "run")) == 2
    assert "cannot write to output directory" in _one_line_error(capsys)
    assert blocker.read_text() == "not a folder"


def test_mismatched_resume_config_and_existing_run_overwrite_nothing(tokens, tmp_path, capsys):
    out = tmp_path / "run"
    assert train("--data", str(tokens), "--out", str(out), "--max-steps", "2") == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    assert train("--data", str(tokens), "--out", str(out), "--resume",
                 "--set", "train.lr=0.5") == 2
    err = _one_line_error(capsys)
    assert "train.lr (0.001 in the run, 0.5 requested)" in err
    assert train("--data", str(tokens), "--out", str(out)) == 2
    assert "already holds a run" in _one_line_error(capsys)
    assert train("--data", str(tokens), "--out", str(tmp_path / "new"), "--resume") == 2
    assert "nothing to resume" in _one_line_error(capsys)

    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before


def test_cli_process_exits_non_zero_with_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "maskvit", "train", "--preset", "nope", "--data",
         str(tmp_path), "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "unknown preset 'nope'" in proc.stderr


def test_torchrun_two_processes_train_and_one_process_resumes(tokens, tmp_path, capsys):
    out = tmp_path / "ddp"
    sets = [a for s in TINY for a in ("--set", s)]
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "maskvit", "train", "--no-progress", "--device", "cpu", "--data", str(tokens),
         "--out", str(out), "--max-steps", "2", *sets],
        capture_output=True, text=True, timeout=180,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("trained to step 2") == 1  # rank 0 alone reports
    assert [r["step"] for r in read_metrics(out)] == [1, 2]
    state = load_checkpoint(out / "checkpoints" / "step_00000002").state
    assert state["world_size"] == 2 and len(state["rng"]) == 2
    # A different process count resumes the same run (same global batch, same data order).
    assert train("--data", str(tokens), "--out", str(out), "--resume") == 0
    captured = capsys.readouterr()
    assert "trained to step 4" in captured.out and "saved by 2 process(es)" in captured.err
