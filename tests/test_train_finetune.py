"""`maskvit train --init-from MODEL --data A B`: fine-tuning a trained transformer on its old
tokens pooled with new ones. The run starts from those weights, pools every cache's clips,
refuses caches of two tokenizers, and a resume must name the same start and the same caches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fault_pipeline import files, one_line_error

from maskvit.cli import main
from maskvit.commands.train import open_token_data
from maskvit.config import load_preset
from maskvit.data import TokenCacheWriter
from maskvit.train import load_run

TINY = ["transformer.depth=1", "transformer.dim=32", "transformer.mlp_dim=64",
        "transformer.heads=2", "train.batch_size=4", "train.steps=4", "train.warmup_steps=1",
        "train.log_every=1", "train.checkpoint_every=1", "train.val_every=0",
        "train.precision=fp32"]


def _cache(path: Path, seed: int, episodes: int, fingerprint: str = "tok-a") -> Path:
    rng = np.random.default_rng(seed)
    with TokenCacheWriter(path, token_shape=(8, 8), action_dim=2, codebook_size=512,
                          extra={"tokenizer": "tok", "tokenizer_step": 1,
                                 "tokenizer_fingerprint": fingerprint}) as w:
        for i in range(episodes):
            w.add(f"ep{i}", rng.integers(0, 512, (14, 8, 8)), rng.normal(size=(14, 2)).astype(np.float32),
                  "val" if i == episodes - 1 else "train")
    return path


def train(*args: str, sets: tuple[str, ...] = ()) -> int:
    return main(["train", "--preset", "push64", "--no-progress", "--device", "cpu",
                 *[a for s in (*TINY, *sets) for a in ("--set", s)], *args])


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("finetune")
    old, new = _cache(root / "old", 0, 4), _cache(root / "new", 1, 3)
    start = root / "start"
    assert train("--data", str(old), "--out", str(start), sets=("train.seed=3",)) == 0
    return {"old": old, "new": new, "start": start, "root": root}


def _distance(a: dict, b: dict) -> float:
    return sum(float((a[k].float() - b[k].float()).pow(2).sum()) for k in a) ** 0.5


def test_a_run_started_from_a_transformer_begins_at_its_weights(runs, tmp_path):
    """One step at a tiny rate from the start's weights stays next to them; a run from random
    weights (same seed, same step) lies far away."""
    tuned, fresh = tmp_path / "tuned", tmp_path / "fresh"
    data = ["--data", str(runs["old"]), str(runs["new"])]
    assert train(*data, "--out", str(tuned), "--init-from", str(runs["start"]), "--max-steps", "1",
                 sets=("train.lr=1e-7",)) == 0
    assert train(*data, "--out", str(fresh), "--max-steps", "1", sets=("train.lr=1e-7",)) == 0
    start = load_run(runs["start"])[1]
    assert _distance(load_run(tuned)[1], start) < 0.01 * _distance(load_run(fresh)[1], start)
    sources = json.loads((tuned / "sources.json").read_text())
    assert sources["init_from"] == str(runs["start"].resolve())
    assert sources["token_caches"] == [str(runs["old"].resolve()), str(runs["new"].resolve())]


def test_several_caches_pool_their_clips(runs):
    config = load_preset("push64", TINY)
    old_train, old_val = open_token_data(runs["old"], config)
    new_train, new_val = open_token_data(runs["new"], config)
    both_train, both_val = open_token_data([runs["old"], runs["new"]], config)
    assert len(both_train) == len(old_train) + len(new_train) > len(old_train)
    assert len(both_val) == len(old_val) + len(new_val)
    assert (both_train[len(old_train)]["tokens"] == new_train[0]["tokens"]).all()


def test_caches_of_two_tokenizers_are_refused(runs, tmp_path, capsys):
    other = _cache(tmp_path / "other", 2, 3, fingerprint="tok-b")
    out = tmp_path / "run"
    assert train("--data", str(runs["old"]), str(other), "--out", str(out)) == 2
    one_line_error(capsys, "train", "different tokenizers")
    assert train("--data", str(runs["old"]), str(runs["old"]), "--out", str(out)) == 2
    one_line_error(capsys, "train", "twice")
    assert not out.exists()


def test_a_resume_must_name_the_same_start_and_caches(runs, tmp_path, capsys):
    tuned = tmp_path / "tuned"
    data = ["--data", str(runs["old"]), str(runs["new"])]
    assert train(*data, "--out", str(tuned), "--init-from", str(runs["start"]), "--max-steps", "1") == 0
    capsys.readouterr()
    before = files(tuned)
    assert train(*data, "--out", str(tuned), "--resume", "--max-steps", "2") == 2
    one_line_error(capsys, "train", "--init-from", str(runs["start"].resolve()))
    assert train("--data", str(runs["old"]), "--out", str(tuned), "--resume", "--init-from",
                 str(runs["start"]), "--max-steps", "2") == 2
    one_line_error(capsys, "train", "same --data")
    assert files(tuned) == before
    assert train(*data, "--out", str(tuned), "--resume", "--init-from", str(runs["start"]),
                 "--max-steps", "2") == 0
    assert files(tuned) != before


def test_a_start_of_another_architecture_is_one_line(runs, tmp_path, capsys):
    out = tmp_path / "wide"
    assert train("--data", str(runs["old"]), "--out", str(out), "--init-from", str(runs["start"]),
                 sets=("transformer.dim=64",)) == 2
    one_line_error(capsys, "train", "another architecture")
    assert not out.exists()


def test_a_start_trained_on_another_tokenizers_codes_is_refused(runs, tmp_path, capsys):
    """The start's codes came from tokenizer "tok-a" (its sources.json); codes of "tok-b" mean
    other images to it."""
    other = _cache(tmp_path / "other", 2, 3, fingerprint="tok-b")
    out = tmp_path / "run"
    assert train("--data", str(other), "--out", str(out), "--init-from", str(runs["start"])) == 2
    one_line_error(capsys, "train", "another tokenizer")
    assert not out.exists()


def test_data_repeats_pool_a_cache_several_times(runs):
    """`train.data_repeats` weighs a small cache up by repeating its training clips; the
    validation split stays each cache once."""
    plain = load_preset("push64", TINY)
    weighed = load_preset("push64", [*TINY, "train.data_repeats=[1, 3]"])
    old_train, _ = open_token_data(runs["old"], plain)
    new_train, _ = open_token_data(runs["new"], plain)
    pooled_train, pooled_val = open_token_data([runs["old"], runs["new"]], weighed)
    _, plain_val = open_token_data([runs["old"], runs["new"]], plain)
    assert len(pooled_train) == len(old_train) + 3 * len(new_train)
    assert len(pooled_val) == len(plain_val)
    last = len(pooled_train) - 1  # the third copy's last clip is the new cache's last clip
    assert (pooled_train[last]["tokens"] == new_train[len(new_train) - 1]["tokens"]).all()


def test_data_repeats_that_do_not_fit_the_caches_are_one_line(runs, tmp_path, capsys):
    out = tmp_path / "run"
    data = ["--data", str(runs["old"]), str(runs["new"])]
    assert train(*data, "--out", str(out), sets=("train.data_repeats=[1, 2, 3]",)) == 2
    one_line_error(capsys, "train", "one per cache")
    assert train(*data, "--out", str(out), sets=("train.data_repeats=[1, 0]",)) == 2
    one_line_error(capsys, "train", "data_repeats")
    assert not out.exists()


def test_a_resume_with_other_data_repeats_is_refused(runs, tmp_path, capsys):
    run = tmp_path / "run"
    data = ["--data", str(runs["old"]), str(runs["new"])]
    assert train(*data, "--out", str(run), "--max-steps", "1", sets=("train.data_repeats=[1, 2]",)) == 0
    capsys.readouterr()
    before = files(run)
    assert train(*data, "--out", str(run), "--resume", "--max-steps", "2", sets=("train.data_repeats=[1, 3]",)) == 2
    one_line_error(capsys, "train", "data_repeats")
    assert files(run) == before
