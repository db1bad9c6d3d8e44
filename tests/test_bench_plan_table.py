"""The RoboDesk planning table sums chunks honestly and states the model against the oracle."""

import json
import math

import pytest

from maskvit.bench.plan_table import merge, oracle_ratios, partial_comparisons


def write_chunk(out, policy, task, seeds, solved, config=None, seconds=10.0):
    folder = out / policy / f"{task}_{seeds[0]:03d}"
    folder.mkdir(parents=True)
    summary = {"episodes": len(seeds), "successes": solved, "seconds_per_episode": seconds,
               "cpu_seconds_per_episode": seconds}
    data = {"config": config or {"samples": 64}, "oracle_cost": None, "seed": 0, "split": "test",
            "task_seeds": list(seeds), "per_task": {task: {policy: summary}}}
    (folder / "results.json").write_text(json.dumps(data))


def test_chunks_add_up_per_task_and_policy(tmp_path):
    write_chunk(tmp_path, "model", "push_red", [0, 1, 2], 1, seconds=30.0)
    write_chunk(tmp_path, "model", "push_red", [3, 4, 5], 2, seconds=60.0)
    write_chunk(tmp_path, "model", "push_blue", [0, 1, 2], 3)
    table = merge(tmp_path)
    assert table["model"]["push_red"]["successes"] == 3
    assert table["model"]["push_red"]["episodes"] == 6
    assert table["model"]["push_red"]["seconds_per_episode"] == pytest.approx(45.0)
    assert list(table["model"]) == ["push_red", "push_blue"]  # VP2's task order, not the folders'


def test_an_instance_in_two_chunks_is_refused(tmp_path):
    write_chunk(tmp_path, "model", "push_red", [0, 1, 2], 1)
    write_chunk(tmp_path, "model", "push_red", [2, 3], 1)
    with pytest.raises(SystemExit, match="in two chunks"):
        merge(tmp_path)


def test_chunks_of_one_policy_with_other_settings_are_refused(tmp_path):
    write_chunk(tmp_path, "model", "push_red", [0, 1], 1)
    write_chunk(tmp_path, "model", "push_red", [2, 3], 1, config={"samples": 32})
    with pytest.raises(SystemExit, match="different settings"):
        merge(tmp_path)


def test_a_setting_newer_than_a_chunk_counts_at_its_default(tmp_path):
    """A chunk recorded before plan.progress_weight existed merges with one that records the
    default, and is refused beside one played with another value."""
    from maskvit.config import PlanConfig

    write_chunk(tmp_path, "model", "push_red", [0, 1], 1)
    write_chunk(tmp_path, "model", "push_red", [2, 3], 1,
                config={"samples": 64, "progress_weight": PlanConfig.progress_weight})
    assert merge(tmp_path)["model"]["push_red"]["episodes"] == 4
    write_chunk(tmp_path, "model", "push_red", [4, 5], 1, config={"samples": 64, "progress_weight": 4000.0})
    with pytest.raises(SystemExit, match="different settings"):
        merge(tmp_path)


def test_ratios_pool_the_buttons_and_average_the_tasks(tmp_path):
    for task, model, oracle in [("push_red", 2, 4), ("push_green", 4, 4), ("open_slide", 1, 2)]:
        write_chunk(tmp_path, "model", task, [0, 1, 2, 3], model)
        write_chunk(tmp_path, "oracle", task, [0, 1, 2, 3], oracle)
    ratios = oracle_ratios(merge(tmp_path))["model"]
    assert ratios["push_red"] == pytest.approx(0.5)
    assert ratios["buttons"] == pytest.approx(6 / 8)  # pooled episodes, not the mean of 0.5 and 1
    assert ratios["average"] == pytest.approx((0.5 + 1.0 + 0.5) / 3)


def test_a_task_played_on_other_instances_or_never_solved_by_the_oracle_has_no_ratio(tmp_path):
    write_chunk(tmp_path, "model", "push_red", [0, 1, 2, 3], 2)
    write_chunk(tmp_path, "oracle", "push_red", [0, 1], 2)  # fewer instances: not compared
    write_chunk(tmp_path, "model", "open_drawer", [0, 1], 0)
    write_chunk(tmp_path, "oracle", "open_drawer", [0, 1], 0)
    ratios = oracle_ratios(merge(tmp_path))["model"]
    assert "push_red" not in ratios and "buttons" not in ratios
    assert math.isnan(ratios["open_drawer"]) and math.isnan(ratios["average"])


def test_without_an_oracle_or_shared_instances_there_are_no_ratios(tmp_path):
    write_chunk(tmp_path, "model", "push_red", [0, 1], 1)
    assert oracle_ratios(merge(tmp_path)) == {}
    write_chunk(tmp_path, "oracle", "push_red", [0], 1)  # the oracle's row is not finished
    assert oracle_ratios(merge(tmp_path)) == {}


def test_success_by_goal_distance_buckets_each_episode_by_its_instances_goal_step(tmp_path):
    from maskvit.bench.plan_table import by_goal_steps
    from maskvit.sim.desk_instances import load_instances

    steps = [instance.goal_step for instance in load_instances(task="push_red", split="test")]
    folder = tmp_path / "model" / "push_red_000" / "push_red"
    folder.mkdir(parents=True)
    rows = [{"task_seed": seed, "success": seed % 2 == 0} for seed in range(6)]
    (folder / "results.json").write_text(json.dumps(
        {"task": "push_red", "split": "test", "policies": {"model": {"per_episode": rows}}}))
    cells = by_goal_steps(tmp_path)["model"]["push_red"]
    for bucket, (low, high) in zip(cells, [(1, 7), (8, 14), (15, 30)], strict=True):
        inside = [seed for seed in range(6) if low <= steps[seed] <= high]
        assert cells[bucket] == [sum(seed % 2 == 0 for seed in inside), len(inside)]
    assert sum(total for _, total in cells.values()) == 6


def test_a_row_still_being_played_is_compared_on_the_chunks_both_played(tmp_path):
    write_chunk(tmp_path, "model", "open_slide", [0, 1, 2], 0)
    write_chunk(tmp_path, "model", "open_slide", [3, 4, 5], 1)
    for first, solved in ((0, 2), (3, 2), (6, 3)):
        write_chunk(tmp_path, "oracle", "open_slide", [first, first + 1, first + 2], solved)
    table = merge(tmp_path)
    assert oracle_ratios(table)["model"]["open_slide"] == pytest.approx(1 / 4)  # not 1 / 7
    assert partial_comparisons(table) == ["model open_slide: on the 6 instances both played (of 9)"]
