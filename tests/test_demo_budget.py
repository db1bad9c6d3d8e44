"""`maskvit demo` sized to its time budget: the estimate, the choice, and that a rerun keeps it."""

import json

import pytest
import torch

import maskvit.pretrained as pretrained
from maskvit.cli import main
from maskvit.demo_budget import (
    FIXED_STAGE_STEPS,
    SAFETY,
    SMALLEST_FRACTION,
    StepCosts,
    measure_step_costs,
    refit_transformer,
    size_demo,
    stage_overrides,
)
from maskvit.demo_pipeline import FULL, FULL_FROM_SCRATCH, run_demo
from maskvit.errors import UserError

FAST = StepCosts(tokenizer_plain=0.3, tokenizer_gan=0.45, transformer=0.7)  # 12-min machine
SLOW = StepCosts(tokenizer_plain=0.75, tokenizer_gan=1.2, transformer=1.1)  # 22-min machine
TRANSFORMER_ONLY = StepCosts(tokenizer_plain=0.0, tokenizer_gan=0.0, transformer=0.83)
FIXED = tuple(FIXED_STAGE_STEPS)  # every stage but the trainings, the shipped model's included


def scratch_size(costs, minutes=15.0):
    full = FULL_FROM_SCRATCH
    return size_demo(costs, full.tokenizer_steps, full.disc_start, full.transformer_steps,
                     minutes, fixed_stages=FIXED)


def shipped_tokenizer_size(costs, minutes=15.0):
    return size_demo(costs, 0, 0, FULL.transformer_steps, minutes, fixed_stages=FIXED)


def test_a_fast_machine_gets_the_full_scale():
    sizing = scratch_size(FAST)
    assert sizing.fraction == 1.0
    assert (sizing.tokenizer_steps, sizing.transformer_steps) == (600, 400)
    assert sum(sizing.minutes.values()) < 15 * SAFETY


def test_a_slow_machine_gets_shorter_training_that_fits_the_budget():
    sizing = scratch_size(SLOW)
    assert 0.4 < sizing.fraction < 0.8
    assert sizing.tokenizer_steps < 600 and sizing.transformer_steps < 400
    assert sizing.tokenizer_steps % 10 == 0 and sizing.transformer_steps % 10 == 0
    assert sum(sizing.minutes.values()) <= 15 * SAFETY + 0.2  # + rounding to tens of steps
    # More time buys more steps, never more than the full scale.
    assert scratch_size(SLOW, 20).tokenizer_steps > sizing.tokenizer_steps
    assert scratch_size(SLOW, 60).fraction == 1.0


def test_on_the_shipped_tokenizer_the_transformer_gets_the_whole_budget():
    sizing = shipped_tokenizer_size(TRANSFORMER_ONLY)
    assert sizing.tokenizer_steps == 0 and "train-tokenizer" not in sizing.minutes
    fixed_s = sum(FIXED_STAGE_STEPS.values()) * TRANSFORMER_ONLY.transformer
    fitting = (15 * 60 * SAFETY - fixed_s) / TRANSFORMER_ONLY.transformer
    assert abs(sizing.transformer_steps - fitting) <= 5  # rounded to tens
    assert sum(sizing.minutes.values()) <= 15 * SAFETY + 0.1
    # A faster step (an AMX machine) trains more steps in the same time, up to the cap.
    faster = shipped_tokenizer_size(StepCosts(0.0, 0.0, 0.37))
    assert faster.transformer_steps > 2 * sizing.transformer_steps
    assert shipped_tokenizer_size(TRANSFORMER_ONLY, 60).transformer_steps == FULL.transformer_steps


def test_a_hopeless_budget_still_trains_the_smallest_useful_demo():
    sizing = scratch_size(SLOW, minutes=1)
    assert sizing.fraction == SMALLEST_FRACTION and sizing.tokenizer_steps == 150


def test_the_tokenizers_real_time_refits_the_transformer():
    sizing = scratch_size(SLOW)
    fixed = {name: sizing.minutes[name] * 60  # the other stages took what was estimated
             for name in ("collect", "evaluate-shipped", "plan-shipped", "tokenize")}
    estimate = sizing.minutes["train-tokenizer"] * 60

    def refit(ratio):
        spent = {**fixed, "train-tokenizer": estimate * ratio}
        return refit_transformer(sizing, spent, FULL_FROM_SCRATCH.transformer_steps)

    slower, faster = refit(1.15), refit(0.85)
    assert slower.transformer_steps < sizing.transformer_steps < faster.transformer_steps
    assert slower.tokenizer_ratio == pytest.approx(1.15)
    # What the rest is now expected to take still fits the budget.
    for result in (slower, faster):
        rest = result.probe_seconds / 60 + sum(result.minutes.values())
        assert rest <= 15 * SAFETY + 0.2
    assert refit(0.1).transformer_steps == 400  # never above the full scale
    assert refit(5.0).transformer_steps >= 400 * SMALLEST_FRACTION


def test_the_shipped_models_stages_price_the_demo_models_own():
    """On the shipped tokenizer nothing has trained before the transformer: the probe's step
    time stands, and the evaluate and plan stages to come cost what their twins took."""
    sizing = shipped_tokenizer_size(TRANSFORMER_ONLY)
    before = {"collect": 15.0, "tokenize": 20.0}

    def refit(evaluate_s, plan_s):
        spent = {**before, "evaluate-shipped": evaluate_s, "plan-shipped": plan_s}
        return refit_transformer(sizing, spent, FULL.transformer_steps)

    quick, slow = refit(10.0, 20.0), refit(40.0, 80.0)
    assert quick.tokenizer_ratio == slow.tokenizer_ratio == 1.0
    assert quick.minutes["evaluate"] == pytest.approx(10 / 60)
    assert slow.minutes["plan"] == pytest.approx(80 / 60)
    # The slower shipped stages cost their own time twice: before training, and again as
    # the estimate of the demo model's (30 + 60 s, twice: 180 s of steps).
    lost = (quick.transformer_steps - slow.transformer_steps) * TRANSFORMER_ONLY.transformer
    assert abs(lost - 180) <= 10 * TRANSFORMER_ONLY.transformer
    for result in (quick, slow):
        assert sum(result.minutes.values()) <= 15 * SAFETY + 0.1


def fake_stage_runner(calls):
    def run(argv):
        calls.append(argv)
        return 0
    return run


def value_of(argv, flag):
    return argv[argv.index(flag) + 1]


def steps_of(argv, key):
    return next(float(s.split("=")[1]) for s in stage_overrides(argv) if s.startswith(key + "="))


def test_the_sizing_drives_the_stages_and_a_rerun_keeps_it(tmp_path, monkeypatch, capsys):
    calls = []
    run_demo(tmp_path, run_command=fake_stage_runner(calls), measure=lambda tok, tr: SLOW,
             from_scratch=True)
    expected = scratch_size(SLOW)
    tokenizer = next(c for c in calls if c[0] == "train-tokenizer")
    transformer = next(c for c in calls if c[0] == "train")
    assert steps_of(tokenizer, "tokenizer_train.steps") == expected.tokenizer_steps
    assert steps_of(tokenizer, "tokenizer.disc_start") == expected.tokenizer_steps * 2 // 5
    # The transformer's steps were re-fitted to the time the (instant) stages before it took.
    spent = {name: float((tmp_path / ".stages" / name).read_text().split()[0])
             for name in ("collect", "evaluate-shipped", "plan-shipped", "train-tokenizer",
                          "tokenize")}
    refit = refit_transformer(expected, spent, FULL_FROM_SCRATCH.transformer_steps)
    assert steps_of(transformer, "train.steps") == refit.transformer_steps
    assert steps_of(transformer, "train.warmup_steps") == max(1, refit.transformer_steps // 20)
    saved = json.loads((tmp_path / ".stages" / "sizing.json").read_text())
    assert saved["tokenizer_steps"] == expected.tokenizer_steps
    assert saved["costs"]["transformer"] == 1.1
    assert saved["transformer_steps"] == refit.transformer_steps and saved["tokenizer_ratio"] == 0.5
    assert f"tokenizer {expected.tokenizer_steps} of 600 steps" in capsys.readouterr().out

    # A second run (another budget, a machine that now measures fast) keeps the first sizing.
    for stage in ("train-tokenizer", "train"):
        (tmp_path / ".stages" / stage).unlink()

    def must_not_measure(tok, tr):
        raise AssertionError("a sized demo folder was measured again")

    calls.clear()
    run_demo(tmp_path, run_command=fake_stage_runner(calls), minutes=30, measure=must_not_measure,
             from_scratch=True)
    assert [c[0] for c in calls] == ["train-tokenizer", "train"]
    assert steps_of(calls[0], "tokenizer_train.steps") == expected.tokenizer_steps
    assert steps_of(calls[1], "train.steps") == refit.transformer_steps  # re-fitted once only
    assert "sized for 15 min when it began" in capsys.readouterr().out


def test_by_default_only_the_transformer_trains_on_the_shipped_tokens(tmp_path, capsys):
    calls, probed = [], []

    def measure(tokenizer_argv, transformer_argv):
        probed.append(tokenizer_argv)
        return TRANSFORMER_ONLY

    run_demo(tmp_path, run_command=fake_stage_runner(calls), measure=measure)
    assert probed == [None]  # no tokenizer step was timed
    commands = [c[0] for c in calls]
    assert commands == ["collect", "evaluate", "plan", "tokenize", "train", "evaluate", "plan"]
    shipped = pretrained.pretrained_path()
    tokenize = calls[3]
    assert tokenize[tokenize.index("--tokenizer") + 1] == str(shipped / "tokenizer")
    # The shipped model and the demo's are scored on the same clips and tasks.
    shipped_eval, demo_eval = calls[1], calls[5]
    assert shipped_eval[shipped_eval.index("--model") + 1] == str(shipped)
    for flag in ("--data", "--num-videos", "--trials", "--metrics"):
        assert value_of(shipped_eval, flag) == value_of(demo_eval, flag)
    assert "fvd" in value_of(demo_eval, "--metrics")
    shipped_plan, demo_plan = calls[2], calls[6]
    for flag in ("--first-task", "--episodes"):
        assert value_of(shipped_plan, flag) == value_of(demo_plan, flag)
    assert stage_overrides(shipped_plan) == stage_overrides(demo_plan)
    train = calls[4]
    assert "train.precision=auto" in stage_overrides(train)
    assert steps_of(train, "train.lr") == FULL.transformer_lr
    assert "the transformer trains" in capsys.readouterr().out
    assert (tmp_path / "index.html").is_file()


def test_a_demo_folder_keeps_its_chain(tmp_path):
    run_demo(tmp_path / "a", quick=True, run_command=fake_stage_runner([]))
    with pytest.raises(UserError, match="begun without --from-scratch .* continue it with "
                                        "`maskvit demo --out .* --quick`"):
        run_demo(tmp_path / "a", quick=True, run_command=fake_stage_runner([]), from_scratch=True)
    # A folder an older demo began (stage markers, no chain recorded) trained its tokenizer.
    (tmp_path / "b" / ".stages").mkdir(parents=True)
    (tmp_path / "b" / ".stages" / "collect").write_text("1.0 s\n")
    with pytest.raises(UserError, match="begun with --from-scratch"):
        run_demo(tmp_path / "b", quick=True, run_command=fake_stage_runner([]))


def test_without_a_shipped_model_only_the_whole_chain_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "PRETRAINED_ROOT", tmp_path / "nothing")
    calls = []
    with pytest.raises(UserError, match="no shipped model.*--from-scratch"):
        run_demo(tmp_path / "demo", quick=True, run_command=fake_stage_runner(calls))
    assert calls == [] and not (tmp_path / "demo").exists()
    run_demo(tmp_path / "demo", quick=True, run_command=fake_stage_runner(calls),
             from_scratch=True)
    assert [c[0] for c in calls] == ["collect", "train-tokenizer", "tokenize", "train",
                                     "evaluate", "plan"]
    assert "no shipped model" in (tmp_path / "demo" / "index.html").read_text()


def test_a_folder_begun_before_sizing_keeps_the_full_scale(tmp_path, monkeypatch):
    (tmp_path / "tokenizer").mkdir()
    (tmp_path / "tokenizer" / "config.yaml").write_text("{}\n")
    calls = []
    run_demo(tmp_path, run_command=fake_stage_runner(calls), from_scratch=True,
             measure=lambda tok, tr: pytest.fail("measured a folder whose runs had begun"))
    tokenizer = next(c for c in calls if c[0] == "train-tokenizer")
    assert steps_of(tokenizer, "tokenizer_train.steps") == FULL_FROM_SCRATCH.tokenizer_steps
    assert "--resume" in tokenizer


@pytest.mark.parametrize("damage", [
    "{not json", "[]",
    '{"fraction": 1, "tokenizer_steps": 1, "transformer_steps": 1, "minutes": 5}'])
def test_a_damaged_sizing_file_is_a_one_line_error(tmp_path, damage):
    (tmp_path / ".stages").mkdir()
    (tmp_path / ".stages" / "sizing.json").write_text(damage)
    with pytest.raises(UserError, match="sizing.json is damaged"):
        run_demo(tmp_path, run_command=fake_stage_runner([]), measure=lambda tok, tr: SLOW,
                 from_scratch=True)


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
    alone = measure_step_costs(None, ["--set", "train.batch_size=1"], repeats=1)
    assert alone.tokenizer_plain == alone.tokenizer_gan == 0.0 and alone.transformer > 0


@pytest.mark.parametrize("precision, autocast", [("bf16", True), ("fp32", False)])
def test_the_probe_times_the_step_in_the_precision_the_run_trains_in(monkeypatch, precision,
                                                                      autocast):
    """The demo trains with train.precision auto (bf16 on AMX and AMD avx512_bf16 CPUs); a
    probe timing fp32 steps there priced each step ~1.3x too high."""
    from maskvit.model.masked_video_task import MaskedVideoTask

    seen = []
    loss = MaskedVideoTask.loss

    def recording_loss(self, *args, **kwargs):
        seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        return loss(self, *args, **kwargs)

    monkeypatch.setattr(MaskedVideoTask, "loss", recording_loss)
    measure_step_costs(None, ["--set", "train.batch_size=1", "--set",
                              f"train.precision={precision}"], repeats=1)
    assert seen and all(enabled == autocast for enabled, _ in seen)
    if autocast:
        assert all(dtype == torch.bfloat16 for _, dtype in seen)
