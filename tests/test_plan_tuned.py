"""`maskvit plan --env robodesk --tuned`: the model plays each task with the settings its
tuning instances chose, the user's --set still wins, the baselines keep the preset's, and
asking for it where it means nothing is one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maskvit.cli import main
from maskvit.config import load_preset
from maskvit.errors import UserError
from maskvit.plan.closed_loop import EpisodeJob, PlanSetup
from maskvit.plan.tuned_settings import settings_record, task_plan_configs, tuned_overrides
from maskvit.pretrained import pretrained_path

TINY = ["--set", "plan.samples=4", "--set", "plan.horizon=2", "--set", "plan.episode_steps=3",
        "--set", "plan.chunk_size=4"]


def test_each_task_gets_its_tuned_plan_and_the_users_set_wins():
    config = load_preset("robodesk64")
    plans = task_plan_configs(config, ["push_red", "push_green", "open_slide"], [])
    assert (plans["push_red"].samples, plans["push_red"].cost) == (128, "pixel_l2_reach")
    assert (plans["push_green"].samples, plans["push_green"].cost) == (64, "pixel_l2")
    assert plans["open_slide"] == config.plan  # no tuned setting: the preset's (VP2's protocol)
    mine = task_plan_configs(config, ["push_red"], ["plan.samples=32"])["push_red"]
    assert (mine.samples, mine.cost) == (32, "pixel_l2_reach")
    assert settings_record(config.plan, plans) == {
        "push_red": {"samples": 128, "cost": "pixel_l2_reach"}, "push_green": {"samples": 64}, "open_slide": {}}


def test_only_the_model_policy_plays_the_tuned_plan():
    config = load_preset("robodesk64")
    plans = task_plan_configs(config, ["push_red"], [])
    setup = PlanSetup("robodesk", config.plan, model_plans=plans)
    assert setup.plan_for(EpisodeJob("push_red", "model", 0)).samples == 128
    assert setup.plan_for(EpisodeJob("push_red", "oracle", 0)) == config.plan
    assert setup.plan_for(EpisodeJob("open_drawer", "model", 0)) == config.plan


def test_a_preset_without_tuned_settings_is_one_line():
    with pytest.raises(UserError, match="no tuned planning settings for push64 models"):
        tuned_overrides("push64", "push_red")


def test_plan_tuned_records_what_each_task_changed(tmp_path, capsys):
    assert pretrained_path("robodesk64") is not None, "the shipped robodesk64 bundle is part of the repository"
    out = tmp_path / "out"
    code = main(["plan", "--env", "robodesk", "--tuned", "--policy", "model", "--task", "push_red",
                 "--task", "push_green", "--episodes", "1", "--out", str(out), "--no-progress", *TINY])
    assert code == 0, capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    # push_red's reach cost stays (the user set only samples, which win); green's 64 lost to them too
    assert results["model_settings"] == {"push_red": {"cost": "pixel_l2_reach"}, "push_green": {}}
    assert results["classifier"].endswith("robodesk64_reach")  # the reach reader shipped with the model
    assert results["per_task"]["push_red"]["model"]["episodes"] == 1


@pytest.mark.parametrize("argv, message", [
    (["--env", "push", "--tuned", "--policy", "random"], "--tuned is for --env robodesk"),
    (["--env", "robodesk", "--tuned", "--policy", "random"], "--tuned sets the model policy's settings"),
])
def test_tuned_where_it_means_nothing_is_one_line(tmp_path: Path, capsys, argv, message):
    code = main(["plan", *argv, "--episodes", "1", "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()
