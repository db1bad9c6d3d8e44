"""RoboDesk task-success classifiers: labels from saved states, training, VP2's cost, files, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from maskvit.cli import main
from maskvit.data import EpisodeStoreWriter
from maskvit.errors import UserError
from maskvit.plan.classifier_training import classifier_scores, train_classifier
from maskvit.plan.planner import pixel_l2_cost
from maskvit.plan.success_classifier import (
    VP2_LOGIT_WEIGHT,
    WEIGHTS_FILE,
    ClassifierCost,
    SuccessNet,
    load_classifier,
    save_classifier,
)
from maskvit.sim.desk_world import STATE_COLUMNS, TASKS, solved_in_states

TWO_TASKS = ("push_red", "open_slide")


def _scene(red: np.ndarray, slide: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 (N, 64, 64, 3) noisy grey frames; a red square top-left where `red`, a bright
    bar bottom-right where `slide` (what a pressed button's light and an open slide stand for)."""
    frames = rng.integers(60, 120, size=(len(red), 64, 64, 3)).astype(np.uint8)
    frames[red, 8:16, 8:16] = (230, 20, 20)
    frames[slide, 48:52, 30:60] = 240
    return frames


def _synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.random((n, 2)) < 0.2  # rare successes, as in collected data
    return _scene(labels[:, 0], labels[:, 1], rng), labels


@pytest.fixture(scope="module")
def trained() -> SuccessNet:
    frames, labels = _synthetic(600, seed=0)
    return train_classifier(frames, labels, TWO_TASKS, steps=150, batch=32, lr=2e-3, seed=0, progress=False)


def test_the_classifier_learns_what_a_frame_shows(trained):
    frames, labels = _synthetic(200, seed=1)  # frames it never saw
    scores = classifier_scores(trained, frames, labels)
    for task in TWO_TASKS:
        assert scores[task]["positives"] > 10
        assert scores[task]["recall"] >= 0.9 and scores[task]["precision"] >= 0.9, scores


def test_the_cost_is_vp2s_objective_and_prefers_frames_the_classifier_calls_solved(trained):
    rng = np.random.default_rng(2)
    goal = _scene(np.array([False]), np.array([False]), rng)[0]
    solved = _scene(np.ones(3, bool), np.zeros(3, bool), rng)  # red pressed in every frame
    unsolved = _scene(np.zeros(3, bool), np.zeros(3, bool), rng)
    frames = np.stack([solved, unsolved])  # (M=2, H=3, ...)
    weights = np.ones(3, np.float32)
    cost = ClassifierCost(trained, "push_red")
    got = cost(frames, goal, weights)
    logits = trained.logits(frames, "push_red")
    expected = pixel_l2_cost(frames, goal, weights) - VP2_LOGIT_WEIGHT * logits.sum(axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert got[0] < got[1]  # the pixel error alone prefers the plain frames (nearer the goal)
    assert pixel_l2_cost(frames, goal, weights)[0] > pixel_l2_cost(frames, goal, weights)[1]
    with pytest.raises(UserError, match="knows push_red, open_slide, not 'open_drawer'"):
        ClassifierCost(trained, "open_drawer")


def test_a_saved_classifier_gives_the_same_logits_and_bad_files_are_one_line(trained, tmp_path):
    frames, _ = _synthetic(20, seed=3)
    save_classifier(trained, tmp_path / "c", {"note": "test"})
    loaded = load_classifier(tmp_path / "c")
    assert loaded.tasks == TWO_TASKS
    np.testing.assert_allclose(loaded.logits(frames, "open_slide"), trained.logits(frames, "open_slide"), atol=1e-6)
    with pytest.raises(UserError, match="no success classifier in"):
        load_classifier(tmp_path / "missing")
    weights = (tmp_path / "c" / WEIGHTS_FILE).read_bytes()
    (tmp_path / "c" / WEIGHTS_FILE).write_bytes(weights[: len(weights) // 2])
    with pytest.raises(UserError, match="cannot be read") as err:
        load_classifier(tmp_path / "c")
    assert len(str(err.value).splitlines()) == 1
    (tmp_path / "c" / "classifier.json").write_text("{not json")
    with pytest.raises(UserError, match="damaged or not a success classifier"):
        load_classifier(tmp_path / "c")


def _state_rows(red: np.ndarray, slide: np.ndarray) -> np.ndarray:
    rows = np.zeros((len(red), len(STATE_COLUMNS)), np.float32)
    rows[:, STATE_COLUMNS.index("red_light")] = np.where(red, -0.01, 0.0)
    rows[:, STATE_COLUMNS.index("slide")] = np.where(slide, 0.6, 0.1)
    rows[:, STATE_COLUMNS.index("drawer")] = 0.0
    for name in ("upright_block_z", "flat_block_z"):
        rows[:, STATE_COLUMNS.index(name)] = 0.76
    return rows


def test_labels_follow_the_task_predicates_on_saved_states():
    rows = _state_rows(np.array([True, False]), np.array([False, True]))
    assert solved_in_states(rows, "push_red").tolist() == [True, False]
    assert solved_in_states(rows, "open_slide").tolist() == [False, True]
    for task in ("push_green", "push_blue", "open_drawer", "upright_block_off_table", "flat_block_off_table"):
        assert not solved_in_states(rows, task).any()
    with pytest.raises(UserError, match="unknown RoboDesk task"):
        solved_in_states(rows, "push_rd")


def test_labels_agree_with_the_worlds_own_predicates():
    """The states a collection saves, read by `solved_in_states`, say what `progress` says."""
    from maskvit.sim.desk_world import DeskWorld

    world = DeskWorld()
    try:
        world.place(3)
        data = world.physics.named.data
        for change in (None, ("slide_joint", 0.6), ("drawer_joint", -0.25), ("red_light", -0.01)):
            if change is not None:
                data.qpos[change[0]] = change[1]
                world.physics.forward()
            row = world.state_vector()[None]
            for task in TASKS:
                assert bool(solved_in_states(row, task)[0]) == world.progress(task).solved, (change, task)
    finally:
        world.close()


def _desk_store(path: Path) -> Path:
    rng = np.random.default_rng(4)
    with EpisodeStoreWriter(path, source="robodesk", action_dim=5, resolution=64) as writer:
        for index in range(6):
            red, slide = rng.random(30) < 0.3, rng.random(30) < 0.3
            writer.add(f"robodesk_{index:06d}", _scene(red, slide, rng), np.zeros((30, 5), np.float32),
                       states=_state_rows(red, slide), split="val" if index == 5 else "train")
    return path


def test_train_classifier_command_writes_a_classifier_and_its_val_scores(tmp_path, capsys):
    store = _desk_store(tmp_path / "store")
    out = tmp_path / "classifier"
    code = main(["train-classifier", "--data", str(store), "--out", str(out), "--tasks", *TWO_TASKS,
                 "--steps", "120", "--batch", "32", "--lr", "2e-3", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    meta = json.loads((out / "classifier.json").read_text())
    assert meta["tasks"] == list(TWO_TASKS) and meta["train_frames"] == 150
    assert meta["val_scores"]["push_red"]["recall"] >= 0.9, meta["val_scores"]
    assert "push_red" in capsys.readouterr().out
    # nothing is overwritten: the same --out again is refused in one line
    code = main(["train-classifier", "--data", str(store), "--out", str(out), "--steps", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "not a new or empty folder" in err and len(err.splitlines()) == 1
    # a store without RoboDesk states
    bare = tmp_path / "bare"
    with EpisodeStoreWriter(bare, source="robodesk", action_dim=5, resolution=64) as writer:
        writer.add("robodesk_000000", np.zeros((4, 64, 64, 3), np.uint8), np.zeros((4, 5), np.float32),
                   split="train")
    code = main(["train-classifier", "--data", str(bare), "--out", str(tmp_path / "c2"), "--steps", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "holds no RoboDesk states" in err and not (tmp_path / "c2").exists()


TINY_PLAN = ["--set", "plan.samples=4", "--set", "plan.horizon=2", "--set", "plan.episode_steps=2",
             "--set", "plan.chunk_size=4"]


def _plan(tmp_path: Path, *argv: str) -> int:
    return main(["plan", "--env", "robodesk", "--out", str(tmp_path / "out"), "--no-progress", "--no-gifs",
                 "--policy", "model", "--episodes", "1", *TINY_PLAN, *argv])


def test_plan_scores_the_models_frames_with_the_classifier_cost(tmp_path, capsys, count_cost_calls):
    save_classifier(SuccessNet(TASKS), tmp_path / "c", {})
    calls = count_cost_calls(ClassifierCost)
    code = _plan(tmp_path, "--task", "open_slide", "--set", "plan.cost=pixel_l2_classifier",
                 "--classifier", str(tmp_path / "c"))
    assert code == 0, capsys.readouterr().err
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["config"]["cost"] == "pixel_l2_classifier"
    assert results["classifier"] == str((tmp_path / "c").resolve())
    assert calls and all(task == "open_slide" and shape[:2] == (4, 2) for task, shape in calls)


@pytest.mark.parametrize("argv, message", [
    (["--classifier", "CLASSIFIER"], "--classifier is read by plan.cost=pixel_l2_classifier or pixel_l2_reach only"),
    (["--set", "plan.cost=pixel_l2_classifier", "--classifier", "MISSING"], "no success classifier in"),
    (["--set", "plan.cost=pixel_l2_classifier", "--classifier", "CLASSIFIER", "--task", "open_drawer"],
     "this success classifier knows push_red, open_slide, not 'open_drawer'"),
    (["--set", "plan.cost=pixel_l2_clasifier"], "unknown planning cost 'pixel_l2_clasifier'"),
])
def test_bad_classifier_flags_are_one_line_and_write_nothing(tmp_path, capsys, trained, argv, message):
    save_classifier(trained, tmp_path / "c", {})
    argv = [{"CLASSIFIER": str(tmp_path / "c"), "MISSING": str(tmp_path / "none")}.get(a, a) for a in argv]
    if "--task" not in argv:
        argv += ["--task", "push_red"]
    code = _plan(tmp_path, *argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_the_shipped_model_plans_with_its_shipped_classifier_by_default(tmp_path, capsys):
    from maskvit.pretrained import shipped_classifier

    folder = shipped_classifier("robodesk64")
    assert folder is not None, "the robodesk64 classifier ships beside the robodesk64 bundle"
    assert load_classifier(folder).tasks == TASKS
    code = _plan(tmp_path, "--task", "push_blue", "--set", "plan.cost=pixel_l2_classifier")
    assert code == 0, capsys.readouterr().err
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["classifier"] == str(folder.resolve())


def test_a_classifier_cost_without_a_classifier_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("maskvit.pretrained.shipped_classifier", lambda name, kind="success": None)
    code = _plan(tmp_path, "--task", "push_red", "--set", "plan.cost=pixel_l2_classifier")
    err = capsys.readouterr().err.strip()
    assert code == 2 and "needs a success classifier: pass --classifier DIR" in err, err
    assert len(err.splitlines()) == 1 and not (tmp_path / "out").exists()


def test_an_interrupted_save_leaves_no_half_classifier(tmp_path, capsys, monkeypatch):
    """The weights are written, then the save fails: --out stays absent, no staging folder stays,
    and the same --out then trains as new."""
    store = _desk_store(tmp_path / "store")
    out = tmp_path / "classifier"
    real_save = save_classifier

    def failing(net, folder, info):
        real_save(net, folder, info)
        raise OSError(28, "No space left on device", str(folder))

    monkeypatch.setattr("maskvit.plan.success_classifier.save_classifier", failing)
    argv = ["train-classifier", "--data", str(store), "--out", str(out), "--tasks", *TWO_TASKS,
            "--steps", "2", "--batch", "8", "--no-progress"]
    assert main(argv) != 0
    assert "No space left on device" in capsys.readouterr().err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if "maskvit-lock" not in p.name) == ["store"]
    monkeypatch.setattr("maskvit.plan.success_classifier.save_classifier", real_save)
    assert main(argv) == 0 and load_classifier(out).tasks == TWO_TASKS
