"""One `maskvit plan` run, a reader per task: `--classifier DIR` for every task, `--classifier
TASK=DIR` for one, the shipped model's per-task readers under `--tuned`, and bad flags one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maskvit.cli import main
from maskvit.errors import UserError
from maskvit.plan.reach_reader import ReachCost, ReachNet
from maskvit.plan.success_classifier import SuccessNet, save_classifier
from maskvit.plan.task_readers import ClassifierFlags, load_task_readers, parse_classifier_flags

TASKS = ("push_red", "open_slide")
TINY_PLAN = ["--set", "plan.samples=4", "--set", "plan.horizon=2", "--set", "plan.episode_steps=2",
             "--set", "plan.chunk_size=4"]


def _reader(folder: Path, targets: str) -> Path:
    net = ReachNet(TASKS)
    net.targets = targets
    save_classifier(net, folder, {})
    return folder


def test_flags_give_one_folder_for_every_task_and_one_per_task():
    flags = parse_classifier_flags(["all", "open_slide=panel"], TASKS)
    assert flags == ClassifierFlags("all", {"open_slide": "panel"})
    assert not parse_classifier_flags(None, TASKS).given
    with pytest.raises(UserError, match="given twice"):
        parse_classifier_flags(["a", "b"], TASKS)
    with pytest.raises(UserError, match="open_slide=... is given twice"):
        parse_classifier_flags(["open_slide=a", "open_slide=b"], TASKS)
    with pytest.raises(UserError, match="'open_slid' is not a task of this run"):
        parse_classifier_flags(["open_slid=a"], TASKS)


def test_each_task_reads_its_own_folder_and_a_shared_one_loads_once(tmp_path):
    every, panel = _reader(tmp_path / "every", "approach"), _reader(tmp_path / "panel", "panel")
    costs = {"push_red": "pixel_l2_reach", "open_slide": "pixel_l2_reach", "push_green": "pixel_l2"}
    nets, sources = load_task_readers(costs, ClassifierFlags(str(every), {"open_slide": str(panel)}),
                                      lambda task, kind: None)
    assert set(nets) == {"push_red", "open_slide"}  # push_green's pixel cost reads none
    assert (nets["push_red"].targets, nets["open_slide"].targets) == ("approach", "panel")
    assert sources["open_slide"] == str(panel.resolve())
    both = load_task_readers({"push_red": "pixel_l2_reach", "open_slide": "pixel_l2_reach"},
                             ClassifierFlags(str(every)), lambda task, kind: None)[0]
    assert both["push_red"] is both["open_slide"]
    # no flag: the caller's default, asked with the task and the kind its cost reads
    asked = []
    load_task_readers({"open_slide": "pixel_l2_reach"}, ClassifierFlags(),
                      lambda task, kind: asked.append((task, kind)) or panel)
    assert asked == [("open_slide", "reach")]


def test_a_wrong_kind_or_a_task_that_reads_nothing_is_one_line(tmp_path):
    save_classifier(SuccessNet(TASKS), tmp_path / "success", {})
    reach = _reader(tmp_path / "reach", "object")
    with pytest.raises(UserError, match="holds a success classifier; plan.cost=pixel_l2_reach reads a reach one"):
        load_task_readers({"open_slide": "pixel_l2_reach"},
                          ClassifierFlags(None, {"open_slide": str(tmp_path / "success")}), lambda t, k: None)
    with pytest.raises(UserError, match="push_red=...: that task's cost \\(pixel_l2\\) reads no classifier"):
        load_task_readers({"push_red": "pixel_l2", "open_slide": "pixel_l2_reach"},
                          ClassifierFlags(str(reach), {"push_red": str(reach)}), lambda t, k: None)
    with pytest.raises(UserError, match="needs a reach classifier: pass --classifier DIR"):
        load_task_readers({"open_slide": "pixel_l2_reach"}, ClassifierFlags(), lambda t, k: None)


def _plan(tmp_path: Path, *argv: str) -> int:
    return main(["plan", "--env", "robodesk", "--out", str(tmp_path / "out"), "--no-progress", "--no-gifs",
                 "--policy", "model", "--episodes", "1", *TINY_PLAN, "--task", "push_red", "--task",
                 "open_slide", "--set", "plan.cost=pixel_l2_reach", *argv])


def test_one_plan_run_scores_each_task_with_its_own_reader(tmp_path, capsys, monkeypatch):
    every, panel = _reader(tmp_path / "every", "approach"), _reader(tmp_path / "panel", "panel")
    read: set[tuple[str, str]] = set()
    original = ReachCost.__call__

    def recorded(self, frames, goal, weights):
        read.add((self.task, self.net.targets))
        return original(self, frames, goal, weights)

    monkeypatch.setattr(ReachCost, "__call__", recorded)
    code = _plan(tmp_path, "--classifier", str(every), "--classifier", f"open_slide={panel}")
    assert code == 0, capsys.readouterr().err
    assert read == {("push_red", "approach"), ("open_slide", "panel")}
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["classifier"] == {"push_red": str(every.resolve()), "open_slide": str(panel.resolve())}


def test_tuned_reads_the_reader_its_tuning_chose_for_the_shipped_model(tmp_path, capsys, monkeypatch):
    shipped_root = tmp_path / "classifiers"
    _reader(shipped_root / "robodesk64_reach_panel", "panel")
    monkeypatch.setattr("maskvit.pretrained.CLASSIFIERS_ROOT", shipped_root)
    monkeypatch.setattr("maskvit.plan.tuned_settings.TUNED_READERS",
                        {"robodesk64": {"open_slide": "robodesk64_reach_panel"}})
    _reader(shipped_root / "robodesk64_reach", "object")  # the preset's own, for the other tasks
    code = _plan(tmp_path, "--tuned")
    assert code == 0, capsys.readouterr().err
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["classifier"] == {"push_red": str((shipped_root / "robodesk64_reach").resolve()),
                                     "open_slide": str((shipped_root / "robodesk64_reach_panel").resolve())}


@pytest.mark.parametrize("argv, message", [
    (["--classifier", "open_slid=X"], "'open_slid' is not a task of this run"),
    (["--classifier", "push_green=X"], "'push_green' is not a task of this run"),
])
def test_bad_per_task_flags_are_one_line_and_write_nothing(tmp_path, capsys, argv, message):
    code = _plan(tmp_path, *argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()
