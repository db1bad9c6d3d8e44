"""`maskvit plan --env robodesk`: the simulator oracle on RoboDesk, the report per task and
over all tasks, and one-line errors (nothing written) for bad input."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from stand_ins import save_tiny_bundle

from maskvit.cli import main
from maskvit.config import load_preset
from maskvit.plan.baselines import OraclePolicy, simulate_state_costs
from maskvit.plan.mpc import run_episode
from maskvit.plan.worlds import ACTION_DIMS, make_world
from maskvit.pretrained import pretrained_path
from maskvit.sim.desk_instances import SHIPPED
from maskvit.sim.desk_policies import scripted_policy

# Tiny MPPI settings for RoboDesk (VP2's noise shape), so an episode takes seconds.
TINY = ["--set", "plan.samples=4", "--set", "plan.horizon=2", "--set", "plan.episode_steps=3",
        "--set", "plan.chunk_size=4"]


@pytest.fixture(scope="module")
def desk():
    world = make_world("robodesk", task="push_red", split="tuning")
    yield world
    world.close()


def test_the_worlds_action_sizes_are_what_models_are_checked_against(desk):
    push = make_world("push")
    try:
        assert len(push.action_low) == ACTION_DIMS["push"]
    finally:
        push.close()
    assert len(desk.action_low) == ACTION_DIMS["robodesk"]


def test_the_state_oracle_scores_what_the_world_then_does(desk):
    """The scratch world's cost of a sequence is the cost of the states the planning world
    then reaches (read back into a second scratch): the oracle simulates the real future."""
    desk.reset(0)
    desk.step(np.zeros(5))
    scratch, reader = desk.scratch(), desk.scratch()
    try:
        actions = np.random.default_rng(0).uniform(-1, 1, (2, 3, 5))
        costs = simulate_state_costs(scratch, desk.get_state(), actions)
        for sequence, expected in zip(actions, costs, strict=True):
            desk.reset(0)
            desk.step(np.zeros(5))
            shown = []
            for action in sequence:
                desk.step(action)
                reader.set_state(desk.get_state())
                shown.append(reader.state_cost())
            np.testing.assert_array_equal(shown, expected)
        assert not np.array_equal(costs[0], costs[1])  # different sequences, different futures
    finally:
        scratch.close()
        reader.close()


def test_the_state_oracle_shows_the_true_frames_of_the_steps_it_runs(desk):
    """The state oracle renders only its chosen plan's executed steps (all a GIF shows), and
    they are exactly the frames the world then shows (RoboDesk's state restores bit for bit)."""
    config = dataclasses.replace(load_preset("robodesk64").plan, samples=2, horizon=3, episode_steps=3)
    oracle = OraclePolicy(desk, config)
    try:
        result = run_episode(desk, oracle, 0, config, np.random.default_rng(0))
    finally:
        oracle.close()
    assert [record.step for record in result.plans] == [1, 2]
    for record in result.plans:
        assert record.predicted.shape == (1, 64, 64, 3)
        np.testing.assert_array_equal(record.predicted[0], result.frames[record.step + 1])


def test_the_desk_state_cost_falls_as_the_scripted_controller_presses_the_button(desk):
    """The oracle's state cost: 1 + reach at the start (all of the task left), near 0 once
    pressed, and falling on the way as the fingertips close in (before the light moves)."""
    desk.reset(0)
    scratch = desk.scratch()
    try:
        scratch.set_state(desk.get_state())
        controller = scripted_policy("push_red")
        controller.reset(scratch.world, np.random.default_rng(0))
        costs = [scratch.state_cost()]
        while not scratch.world.progress("push_red").solved and len(costs) < 30:
            scratch.move(controller.action(scratch.world))
            costs.append(scratch.state_cost())
    finally:
        scratch.close()
    assert costs[0] > 1.0 and costs[-1] < 0.1, costs
    assert costs[-2] < costs[0] - 0.1  # the approach alone already counts


def _run(tmp_path: Path, *argv: str) -> int:
    return main(["plan", "--env", "robodesk", "--out", str(tmp_path / "out"), "--no-progress", *argv])


def test_plan_robodesk_writes_a_report_per_task_and_over_all_tasks(tmp_path, capsys):
    code = _run(tmp_path, "--task", "push_red", "--task", "open_slide", "--split", "tuning",
                "--episodes", "1", "--first-task", "3", "--policy", "random", "--policy", "oracle", *TINY)
    assert code == 0, capsys.readouterr().err
    out = tmp_path / "out"
    overall = json.loads((out / "results.json").read_text())
    assert overall["tasks"] == ["push_red", "open_slide"] and overall["split"] == "tuning"
    assert overall["config"]["optimizer"] == "mppi"  # robodesk64's plan section by default
    assert set(overall["policies"]) == {"random", "oracle"}  # the model's own test is below
    for task in ("push_red", "open_slide"):
        results = json.loads((out / task / "results.json").read_text())
        assert results["task"] == task
        for name, summary in results["policies"].items():
            rows = summary["per_episode"]
            assert [r["task_seed"] for r in rows] == [3]
            assert all((out / task / r["gif"]).stat().st_size > 0 for r in rows)
            # steps played: the whole episode (3), or fewer where a solve ended it
            assert all(r["steps"] == 3 or (r["success"] and 1 <= r["steps"] < 3) for r in rows)
            assert overall["per_task"][task][name]["successes"] == summary["successes"]
            lo, hi = summary["ci95"]
            assert 0 <= lo <= summary["success_rate"] <= hi <= 1
        assert f"{task}/index.html" in (out / "index.html").read_text()  # the overview links it
    for name, pooled in overall["policies"].items():
        assert pooled["episodes"] == 2  # one instance of each of the two tasks
        assert pooled["successes"] == sum(overall["per_task"][t][name]["successes"] for t in overall["tasks"])
    printed = capsys.readouterr().out
    assert "push_red" in printed and "all tasks" in printed


def _damaged(tmp_path: Path) -> Path:
    path = tmp_path / "damaged.npz"
    path.write_bytes(SHIPPED.read_bytes()[:5000])
    return path


def _other_version(tmp_path: Path) -> Path:
    with np.load(SHIPPED, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    header = json.loads(arrays["header"].tobytes().decode())
    arrays["header"] = np.frombuffer(json.dumps({**header, "version": 99}).encode(), dtype=np.uint8)
    path = tmp_path / "v99.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("argv, message", [
    (["--task", "push_rd"], "unknown RoboDesk task 'push_rd'; did you mean push_red?"),
    (["--split", "validation"], "unknown --split 'validation'; choose from: tuning, test"),
    (["--task", "push_red", "--split", "tuning", "--first-task", "8", "--episodes", "3"],
     "asks for push_red's tuning instances 8..10, but it has 10 (0..9)"),
    (["--first-task", "30"], "asks for push_red's test instances 30..30, but it has 30"),
    (["--workers", "0"], "--workers must be 1 or more"),
    (["--set", "plan.init_mean=[0.0,0.0]", "--set", "plan.init_std=[0.1,0.1]"],
     "plan.init_mean has 2 entries but the environment's actions have 5"),
    (["--policy", "model"], "--policy model needs --model RUN (this install ships no robodesk model; "
                            "train one with --preset robodesk64)"),
    ("damaged", "damaged RoboDesk instance file"),
    ("other version", "RoboDesk instances of version 99, this maskvit reads version 1"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch, argv, message):
    if argv == ["--policy", "model"]:  # an install without the shipped robodesk64 bundle
        monkeypatch.setattr("maskvit.commands.plan.pretrained_path", lambda name: None)
    if argv == "damaged":
        argv = ["--instances", str(_damaged(tmp_path))]
    elif argv == "other version":
        argv = ["--instances", str(_other_version(tmp_path))]
    code = _run(tmp_path, "--episodes", "1", *argv, *TINY)
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_the_model_policy_uses_the_shipped_robodesk_model_by_default(tmp_path, capsys):
    """robodesk64 ships (it beat copy-last; benchmarks/RESULTS.md): `plan --env robodesk`
    plays it without --model, on 5-D actions, and says which model it used."""
    shipped = pretrained_path("robodesk64")
    assert shipped is not None, "the shipped robodesk64 bundle is part of the repository"
    code = _run(tmp_path, "--policy", "model", "--task", "push_red", "--episodes", "1", *TINY)
    assert code == 0, capsys.readouterr().err
    assert f"using the shipped reference model {shipped}" in capsys.readouterr().out
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["per_task"]["push_red"]["model"]["episodes"] == 1


@pytest.mark.parametrize("model", ["shipped push64", "tiny push model"])
def test_a_model_with_push_actions_is_refused_for_robodesk(tmp_path, capsys, model):
    if model == "shipped push64":
        path, name = pretrained_path(), "push64"
        assert path is not None, "the shipped push64 bundle is part of the repository"
    else:
        path, name = save_tiny_bundle(tmp_path / "tiny"), "tiny-push"
    code = _run(tmp_path, "--model", str(path), "--task", "push_red", "--episodes", "1")
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert f"{name} has 2-D actions; RoboDesk needs 5-D: train one with --preset robodesk64" in err
    assert not (tmp_path / "out").exists()


def test_robodesk_flags_are_refused_for_the_push_world(tmp_path, capsys):
    code = main(["plan", "--env", "push", "--task", "push_red", "--policy", "random",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--task is for --env robodesk" in err and len(err.splitlines()) == 1


def test_a_machine_without_its_gl_library_gets_one_line_and_no_files(tmp_path):
    out = tmp_path / "nogl"
    env = {"MUJOCO_GL": "bogus", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "maskvit.cli", "plan", "--env", "robodesk",
                           "--episodes", "1", "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "MUJOCO_GL" in lines[0] and "osmesa" in lines[0], done.stderr
    assert not out.exists()


def test_a_desk_instance_index_past_the_split_is_one_line(desk):
    from maskvit.errors import UserError

    with pytest.raises(UserError, match="push_red has 10 instances"):
        desk.reset(10)

