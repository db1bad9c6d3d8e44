"""pixel_l2_progress: the RoboDesk task's progress read from frames, added to VP2's pixel cost."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from maskvit.cli import main
from maskvit.errors import UserError
from maskvit.plan.desk_progress_cost import PROGRESS_WEIGHT, ProgressCost, remaining_progress
from maskvit.plan.planner import get_cost, pixel_l2_cost
from maskvit.sim.desk_instances import load_instances


def _goals(task: str, count: int = 6) -> np.ndarray:
    return np.stack([i.goal_image for i in load_instances(None, task=task, split="tuning")[:count]])


@pytest.mark.parametrize("task", ["open_slide", "open_drawer", "push_red", "push_green", "push_blue"])
def test_goal_images_read_as_solved_and_other_tasks_goals_as_not(task):
    """Every shipped goal image of `task` shows it solved (nothing left); the goals of the
    button tasks, which leave slide and drawer closed, leave the way to open them to go."""
    assert np.all(remaining_progress(_goals(task), task) < 0.1)
    others = "push_green" if task != "push_green" else "push_red"
    if task in ("open_slide", "open_drawer"):  # a button task's goal leaves them (nearly) closed
        assert np.all(remaining_progress(_goals(others), task) > 0.5)


def test_the_cost_adds_the_weighted_remaining_way_to_the_pixel_cost_and_prefers_the_open_drawer():
    open_goals, closed = _goals("open_drawer", 2), _goals("push_red", 2)
    goal = open_goals[0]
    # Two sequences of three frames: one ends with the drawer open, one never opens it.
    frames = np.stack([np.stack([closed[1], closed[1], open_goals[1]]), np.stack([closed[1]] * 3)])
    weights = np.array([0.5, 0.5, 1.0])
    cost = ProgressCost("open_drawer")
    expected = pixel_l2_cost(frames, goal, weights) + PROGRESS_WEIGHT * (
        remaining_progress(frames, "open_drawer") @ weights)
    got = cost(frames, goal, weights)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert got[0] < got[1]
    # The progress term alone separates them where the pixel cost's gap is smaller.
    gap = PROGRESS_WEIGHT * (remaining_progress(frames, "open_drawer") @ weights)
    assert gap[1] - gap[0] > 0.5 * PROGRESS_WEIGHT


def test_tasks_without_a_reading_and_other_commands_are_one_line():
    with pytest.raises(UserError, match="no reading for 'flat_block_off_table'"):
        ProgressCost("flat_block_off_table")
    with pytest.raises(UserError, match="only `maskvit plan --env robodesk` can use it"):
        get_cost("pixel_l2_progress")


TINY_PLAN = ["--set", "plan.samples=4", "--set", "plan.horizon=2", "--set", "plan.episode_steps=2",
             "--set", "plan.chunk_size=4", "--set", "plan.cost=pixel_l2_progress"]


def test_plan_scores_the_models_frames_with_the_progress_cost(tmp_path, capsys, count_cost_calls):
    calls = count_cost_calls(ProgressCost)
    code = main(["plan", "--env", "robodesk", "--out", str(tmp_path / "out"), "--no-progress", "--no-gifs",
                 "--policy", "model", "--episodes", "1", "--task", "open_drawer", *TINY_PLAN])
    assert code == 0, capsys.readouterr().err
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["config"]["cost"] == "pixel_l2_progress"
    assert calls and all(task == "open_drawer" and shape[:2] == (4, 2) for task, shape in calls)


@pytest.mark.parametrize("argv, message", [
    (["--env", "robodesk", "--task", "upright_block_off_table"], "no reading for 'upright_block_off_table'"),
    (["--env", "push", "--episodes", "1", "--set", "plan.replan_every=1"], "plan.cost=pixel_l2_progress reads RoboDesk frames"),
])
def test_a_progress_cost_where_it_has_no_reading_is_one_line_and_writes_nothing(tmp_path, capsys, argv, message):
    code = main(["plan", *argv, "--out", str(tmp_path / "out"), "--no-progress", "--no-gifs",
                 "--policy", "model", *TINY_PLAN])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not Path(tmp_path / "out").exists()
