"""`maskvit train-tokenizer --init-from TOKENIZER`: fine-tuning a trained tokenizer on a new
store. The run starts from those weights, records them, and a resume must name the same start."""

from __future__ import annotations

from pathlib import Path

import pytest
from fault_pipeline import TOKENIZER, files, one_line_error, write_store

from maskvit.cli import main
from maskvit.tokenizer.vqgan import load_vqgan

TINY_RUN = ["tokenizer.perceptual_weight=0", "tokenizer.disc_start=null", "tokenizer.salience_weight=0",
            "tokenizer.event_frame_repeat=1", "tokenizer_train.batch_size=4", "tokenizer_train.steps=4",
            "tokenizer_train.warmup_steps=1", "tokenizer_train.checkpoint_every=1",
            "tokenizer_train.val_every=0", "tokenizer_train.log_every=1",
            "tokenizer_train.precision=fp32"]


def _train_tokenizer(data: Path, out: Path, *extra: str, sets: tuple[str, ...] = ()) -> int:
    return main(["train-tokenizer", "--preset", "push64", "--data", str(data), "--out", str(out),
                 "--device", "cpu", "--no-progress",
                 *[a for o in (*TOKENIZER, *TINY_RUN, *sets) for a in ("--set", o)], *extra])


def _distance(a: Path, b: Path) -> float:
    wa, wb = load_vqgan(a).state_dict(), load_vqgan(b).state_dict()
    return sum(float((wa[k].float() - wb[k].float()).pow(2).sum()) for k in wa) ** 0.5


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A store, a tokenizer trained on it, and a second store to fine-tune on."""
    root = tmp_path_factory.mktemp("init")
    data, new_data = write_store(root / "data"), write_store(root / "new_data", seed=7)
    start = root / "start"
    assert _train_tokenizer(data, start, "--max-steps", "4", sets=("tokenizer_train.seed=3",)) == 0
    return {"root": root, "data": data, "new_data": new_data, "start": start}


def test_a_run_started_from_a_tokenizer_begins_at_its_weights(runs, tmp_path):
    """After one step at a small rate the fine-tuned weights lie near the start's; a run from
    random weights (the same seed, the same step) lies far from it."""
    tuned, fresh = tmp_path / "tuned", tmp_path / "fresh"
    small_rate = ("tokenizer_train.lr=1e-5",)
    assert _train_tokenizer(runs["new_data"], tuned, "--init-from", str(runs["start"]),
                            "--max-steps", "1", sets=small_rate) == 0
    assert _train_tokenizer(runs["new_data"], fresh, "--max-steps", "1", sets=small_rate) == 0
    assert _distance(tuned, runs["start"]) < 0.05 * _distance(fresh, runs["start"])
    sources = (tuned / "sources.json").read_text()
    assert str(runs["start"].resolve()) in sources and load_vqgan(runs["start"]).fingerprint() in sources


def test_a_resume_must_name_the_same_start(runs, tmp_path, capsys):
    tuned, other = tmp_path / "tuned", tmp_path / "other"
    assert _train_tokenizer(runs["new_data"], other, "--max-steps", "1") == 0  # random start
    assert _train_tokenizer(runs["new_data"], tuned, "--init-from", str(runs["start"]), "--max-steps", "1") == 0
    capsys.readouterr()
    before = files(tuned)
    assert _train_tokenizer(runs["new_data"], tuned, "--resume", "--max-steps", "2") == 2
    one_line_error(capsys, "train-tokenizer", "--init-from", str(runs["start"].resolve()))
    assert _train_tokenizer(runs["new_data"], tuned, "--resume", "--init-from", str(other), "--max-steps", "2") == 2
    one_line_error(capsys, "train-tokenizer", "other weights")
    assert files(tuned) == before
    before_other = files(other)
    assert _train_tokenizer(runs["new_data"], other, "--resume", "--init-from", str(runs["start"]),
                            "--max-steps", "2") == 2
    one_line_error(capsys, "train-tokenizer", "random weights", "without --init-from")
    assert files(other) == before_other
    assert _train_tokenizer(runs["new_data"], tuned, "--resume", "--init-from", str(runs["start"]),
                            "--max-steps", "2") == 0
    assert files(tuned) != before


def test_a_start_of_another_architecture_is_one_line(runs, tmp_path, capsys):
    out = tmp_path / "wide"
    assert _train_tokenizer(runs["new_data"], out, "--init-from", str(runs["start"]), "--max-steps", "1",
                            sets=("tokenizer.channels=16",)) == 2
    one_line_error(capsys, "train-tokenizer", "tokenizer.channels", "another architecture")
    assert not out.exists()
    assert _train_tokenizer(runs["new_data"], out, "--init-from", str(tmp_path / "missing"),
                            "--max-steps", "1") == 2
    one_line_error(capsys, "train-tokenizer", "missing")
    assert not out.exists()

