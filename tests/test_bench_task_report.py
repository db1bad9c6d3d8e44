"""The replaying RoboDesk benchmarks read a task's plan report, and refuse others in one line."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "robodesk_task_report.py"
_SPEC = importlib.util.spec_from_file_location("robodesk_task_report", _PATH)
task_report = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(task_report)

ROW = {"task_seed": 3, "instance_seed": 103, "success": False, "actions": [[0.0] * 5]}


def _write(path: Path, data) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return str(path)


def test_a_task_report_gives_its_rows(tmp_path):
    path = _write(tmp_path / "open_drawer" / "results.json",
                  {"task": "open_drawer", "split": "tuning", "policies": {"model": {"per_episode": [ROW]}}})
    report, rows = task_report.load_task_report(path, "model")
    assert report["task"] == "open_drawer" and rows == [ROW]


def test_a_run_level_report_names_the_task_reports_to_give(tmp_path):
    path = _write(tmp_path / "results.json", {"tasks": ["open_drawer"], "split": "tuning",
                                              "policies": {"model": {"episodes": 1}}})
    with pytest.raises(SystemExit) as stop:
        task_report.load_task_report(path, "model")
    message = str(stop.value)
    assert "summary over tasks" in message and str(tmp_path / "open_drawer" / "results.json") in message
    assert "\n" not in message


@pytest.mark.parametrize("content, expected", [
    (None, "no such file"),
    ("{not json", "not a readable results.json"),
    ({"task": "open_drawer", "policies": {"oracle": {"per_episode": [ROW]}}}, "no 'model' policy"),
    ({"task": "open_drawer", "policies": {"model": {"per_episode": [{"task_seed": 0}]}}}, "no executed actions"),
])
def test_other_files_are_refused_in_one_line(tmp_path, content, expected):
    path = tmp_path / "results.json"
    if isinstance(content, str):
        path.write_text(content)
    elif content is not None:
        _write(path, content)
    with pytest.raises(SystemExit) as stop:
        task_report.load_task_report(str(path), "model")
    assert expected in str(stop.value) and "\n" not in str(stop.value)
