"""`maskvit demo` sized to its time budget: the estimate, the choice, and that a rerun keeps it."""

import json

import pytest
import torch

from maskvit.cli import main
from maskvit.demo_budget import (
    SAFETY,
    SMALLEST_FRACTION,
    StepCosts,
    measure_step_costs,
    refit_transformer,
    size_demo,
    stage_overrides,
)
from maskvit.demo_pipeline import FULL, run_demo
from maskvit.errors import UserError

FAST = StepCosts(tokenizer_plain=0.3, tokenizer_gan=0.45, transformer=0.7)  # 12-min machine
SLOW = StepCosts(tokenizer_plain=0.75, tokenizer_gan=1.2, transformer=1.1)  # 22-min machine


def full_size(costs, minutes=15.0):
    return size_demo(costs, FULL.tokenizer_steps, FULL.disc_start, FULL.transformer_steps, minutes)


def test_a_fast_machine_gets_the_full_scale():
    sizing = full_size(FAST)
    assert sizing.fraction == 1.0
    assert (sizing.tokenizer_steps, sizing.transformer_steps) == (600, 400)
    assert sum(sizing.minutes.values()) < 15 * SAFETY


def test_a_slow_machine_gets_shorter_training_that_fits_the_budget():
    sizing = full_size(SLOW)
    assert 0.4 < sizing.fraction < 0.8
    assert sizing.tokenizer_steps < 600 and sizing.transformer_steps < 400
    assert sizing.tokenizer_steps % 10 == 0 and sizing.transformer_steps % 10 == 0
    assert sum(sizing.minutes.values()) <= 15 * SAFETY + 0.2  # + rounding to tens of steps
    # More time buys more steps, never more than the full scale.
    assert full_size(SLOW, 20).tokenizer_steps > sizing.tokenizer_steps
    assert full_size(SLOW, 60).fraction == 1.0


def test_a_hopeless_budget_still_trains_the_smallest_useful_demo():
    sizing = full_size(SLOW, minutes=1)
    assert sizing.fraction == SMALLEST_FRACTION and sizing.tokenizer_steps == 150


def test_the_tokenizers_real_time_refits_the_transformer():
    sizing = full_size(SLOW)
    fixed = {"collect": 20.0, "tokenize": 30.0}
    estimate = sizing.minutes["train-tokenizer"] * 60

    def refit(ratio):
        spent = {**fixed, "train-tokenizer": estimate * ratio}
        return refit_transformer(sizing, spent, FULL.transformer_steps)

    slower, faster = refit(1.15), refit(0.85)
    assert slower.transformer_steps < sizing.transformer_steps < faster.transformer_steps
    assert slower.tokenizer_ratio == pytest.approx(1.15)
    # What the rest is now expected to take still fits the budget.
    for result in (slower, faster):
        rest = result.probe_seconds / 60 + sum(result.minutes.values())
        assert rest <= 15 * SAFETY + 0.2
    assert refit(0.1).transformer_steps == FULL.transformer_steps  # never above the full scale
    assert refit(5.0).transformer_steps >= FULL.transformer_steps * SMALLEST_FRACTION


def fake_stage_runner(calls):
    def run(argv):
        calls.append(argv)
        return 0
    return run


def steps_of(argv, key):
    return next(int(s.split("=")[1]) for s in stage_overrides(argv) if s.startswith(key + "="))


def test_the_sizing_drives_the_stages_and_a_rerun_keeps_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("maskvit.demo_pipeline.summarise", lambda out: {})
    calls = []
    run_demo(tmp_path, run_command=fake_stage_runner(calls), measure=lambda tok, tr: SLOW)
    expected = full_size(SLOW)
    tokenizer = next(c for c in calls if c[0] == "train-tokenizer")
    transformer = next(c for c in calls if c[0] == "train")
    assert steps_of(tokenizer, "tokenizer_train.steps") == expected.tokenizer_steps
    assert steps_of(tokenizer, "tokenizer.disc_start") == expected.tokenizer_steps * 2 // 5
    # The transformer's steps were re-fitted to the time the (instant) stages before it took.
    spent = {name: float((tmp_path / ".stages" / name).read_text().split()[0])
             for name in ("collect", "train-tokenizer", "tokenize")}
    refit = refit_transformer(expected, spent, FULL.transformer_steps)
    assert steps_of(transformer, "train.steps") == refit.transformer_steps
    saved = json.loads((tmp_path / ".stages" / "sizing.json").read_text())
    assert saved["tokenizer_steps"] == expected.tokenizer_steps and saved["costs"]["transformer"] == 1.1
    assert saved["transformer_steps"] == refit.transformer_steps and saved["tokenizer_ratio"] == 0.5
    assert f"tokenizer {expected.tokenizer_steps} of 600 steps" in capsys.readouterr().out

    # A second run (another budget, a machine that now measures fast) keeps the first sizing.
    for stage in ("train-tokenizer", "train"):
        (tmp_path / ".stages" / stage).unlink()

    def must_not_measure(tok, tr):
        raise AssertionError("a sized demo folder was measured again")

    calls.clear()
    run_demo(tmp_path, run_command=fake_stage_runner(calls), minutes=30, measure=must_not_measure)
    assert [c[0] for c in calls] == ["train-tokenizer", "train"]
    assert steps_of(calls[0], "tokenizer_train.steps") == expected.tokenizer_steps
    assert steps_of(calls[1], "train.steps") == refit.transformer_steps  # re-fitted once only
    assert "sized for 15 min when it began" in capsys.readouterr().out


def test_a_folder_begun_before_sizing_keeps_the_full_scale(tmp_path, monkeypatch):
    monkeypatch.setattr("maskvit.demo_pipeline.summarise", lambda out: {})
    (tmp_path / "tokenizer").mkdir()
    (tmp_path / "tokenizer" / "config.yaml").write_text("{}\n")
    calls = []
    run_demo(tmp_path, run_command=fake_stage_runner(calls),
             measure=lambda tok, tr: pytest.fail("measured a folder whose runs had begun"))
    tokenizer = next(c for c in calls if c[0] == "train-tokenizer")
    assert steps_of(tokenizer, "tokenizer_train.steps") == FULL.tokenizer_steps
    assert "--resume" in tokenizer


@pytest.mark.parametrize("damage", [
    "{not json", "[]",
    '{"fraction": 1, "tokenizer_steps": 1, "transformer_steps": 1, "minutes": 5}'])
def test_a_damaged_sizing_file_is_a_one_line_error(tmp_path, damage):
    (tmp_path / ".stages").mkdir()
    (tmp_path / ".stages" / "sizing.json").write_text(damage)
    with pytest.raises(UserError, match="sizing.json is damaged"):
        run_demo(tmp_path, run_command=fake_stage_runner([]), measure=lambda tok, tr: SLOW)


@pytest.mark.parametrize("argv, message", [
    (["--quick", "--minutes", "5"], "--minutes sizes the full demo"),
    (["--minutes", "0"], "--minutes must be a positive number"),
    (["--minutes", "nan"], "--minutes must be a positive number"),
])
def test_bad_minutes_are_one_line_errors(tmp_path, capsys, argv, message):
    assert main(["demo", "--out", str(tmp_path / "demo"), *argv]) != 0
    assert message in capsys.readouterr().err


def test_the_probe_times_both_models_without_touching_the_global_rng():
    tiny = ["--set", "tokenizer_train.batch_size=1", "--set", "tokenizer.disc_start=1"]
    state = torch.random.get_rng_state()
    costs = measure_step_costs(tiny, ["--set", "train.batch_size=1"], repeats=1)
    assert torch.equal(state, torch.random.get_rng_state())
    for seconds in (costs.tokenizer_plain, costs.tokenizer_gan, costs.transformer):
        assert 0 < seconds < 60
