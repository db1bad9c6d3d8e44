"""The RoboDesk reach reader: labels from saved states, training, the reach cost, files, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from maskvit.cli import main
from maskvit.data import EpisodeStoreWriter
from maskvit.errors import UserError
from maskvit.plan.classifier_training import reach_scores, train_reach_reader
from maskvit.plan.desk_progress_cost import PROGRESS_WEIGHT, remaining_progress
from maskvit.plan.planner import pixel_l2_cost
from maskvit.plan.reach_reader import REACH_WEIGHT, ReachCost, ReachNet, reach_labels
from maskvit.plan.success_classifier import (
    ClassifierCost,
    SuccessNet,
    load_classifier,
    save_classifier,
)
from maskvit.sim.desk_world import STATE_COLUMNS

TWO_TASKS = ("push_red", "open_slide")


def _scene(distance: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 (N, 64, 64, 3) noisy grey frames with a white square whose column says
    `distance` (0–0.5 m): what the hand's place in a frame stands for."""
    frames = rng.integers(60, 120, size=(len(distance), 64, 64, 3)).astype(np.uint8)
    for frame, d in zip(frames, distance, strict=True):
        column = 4 + int(d * 100)
        frame[28:36, column:column + 8] = 250
    return frames


def _synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    distance = rng.uniform(0.0, 0.5, n).astype(np.float32)
    return _scene(distance, rng), np.stack([distance, 0.5 - distance], axis=1)


@pytest.fixture(scope="module")
def trained() -> ReachNet:
    frames, distances = _synthetic(600, seed=0)
    return train_reach_reader(frames, distances, TWO_TASKS, steps=200, batch=32, lr=2e-3, seed=0,
                              progress=False)


def test_the_reader_learns_the_distance_a_frame_shows(trained):
    frames, distances = _synthetic(200, seed=1)
    scores = reach_scores(trained, frames, distances)
    for task in TWO_TASKS:
        assert scores[task]["correlation"] > 0.9, scores
        assert scores[task]["mean_absolute_error"] < 0.06, scores  # the spread is ±0.14 m
        near = distances[:, TWO_TASKS.index(task)] < 0.10  # the near score reads those frames only
        read = trained.distances(frames[near], task)
        assert scores[task]["near_frames"] == near.sum() > 0
        assert scores[task]["near_mean_absolute_error"] == pytest.approx(
            np.abs(read - distances[near, TWO_TASKS.index(task)]).mean(), rel=1e-5)
    assert (trained.distances(frames[:3], "push_red") >= 0).all()


def test_the_near_loss_weighs_errors_near_the_target_more():
    """`--reach-loss near`: the same error costs 10x more (squared: 100x) at the target than
    0.45 m from it; the squared loss weighs both alike."""
    import torch

    from maskvit.plan.classifier_training import NEAR_SCALE, NearWeightedLoss

    truth = torch.tensor([[0.0], [0.45]])
    near_off, far_off = truth + torch.tensor([[0.04], [0.0]]), truth + torch.tensor([[0.0], [0.04]])
    loss = NearWeightedLoss()
    assert loss(near_off, truth).item() == pytest.approx(loss(far_off, truth).item() * ((0.45 + NEAR_SCALE) / NEAR_SCALE) ** 2)
    with pytest.raises(UserError, match="unknown reach loss 'cubic'"):
        train_reach_reader(*_synthetic(8, seed=0), TWO_TASKS, steps=1, batch=4, lr=1e-3, seed=0,
                           progress=False, loss="cubic")


def test_the_reach_cost_adds_progress_and_reach_to_the_pixel_cost(trained):
    rng = np.random.default_rng(2)
    frames = _scene(np.array([0.05, 0.45, 0.25, 0.3]), rng).reshape(2, 2, 64, 64, 3)
    goal = frames[0, 0]
    weights = np.array([0.5, 1.0], np.float32)
    cost = ReachCost(trained, "open_slide")(frames, goal, weights)
    reach = trained.distances(frames, "open_slide")
    expected = (pixel_l2_cost(frames, goal, weights)
                + (PROGRESS_WEIGHT * remaining_progress(frames, "open_slide") + REACH_WEIGHT * reach) @ weights)
    np.testing.assert_allclose(cost, expected, rtol=1e-5)
    # doubling the reach weight adds the reach reading once more, and nothing else
    near = ReachCost(trained, "open_slide", reach_weight=2 * REACH_WEIGHT)(frames, goal, weights)
    np.testing.assert_allclose(near - cost, REACH_WEIGHT * (reach @ weights), rtol=1e-4)


def test_a_progress_gate_counts_progress_only_once_the_observed_hand_is_near(trained):
    """`plan.progress_gate`: the progress term is off at a replan whose observed frame the reader
    reads far from the target, on where it reads near; the sequences' own frames cannot open it."""
    from maskvit.plan.planner import ModelPlanner

    rng = np.random.default_rng(3)
    frames = _scene(np.array([0.05, 0.45, 0.25, 0.3]), rng).reshape(2, 2, 64, 64, 3)
    goal, weights = frames[0, 0], np.array([0.5, 1.0], np.float32)
    far, near = _scene(np.array([0.05, 0.48]), rng)  # open_slide reads 0.5 - the column
    plain = ReachCost(trained, "open_slide")
    gated = ReachCost(trained, "open_slide", progress_gate=0.1)
    reach_only = pixel_l2_cost(frames, goal, weights) + REACH_WEIGHT * (trained.distances(frames, "open_slide") @ weights)
    assert not gated.gate_open  # shut until a frame is observed
    np.testing.assert_allclose(gated(frames, goal, weights), reach_only, rtol=1e-5)
    gated.observe(far)
    assert trained.distances(far[None], "open_slide")[0] > 0.1 and not gated.gate_open
    np.testing.assert_allclose(gated(frames, goal, weights), reach_only, rtol=1e-5)
    gated.observe(near)
    assert gated.gate_open
    np.testing.assert_allclose(gated(frames, goal, weights), plain(frames, goal, weights), rtol=1e-5)
    plain.observe(far)  # without a gate progress always counts
    np.testing.assert_allclose(plain(frames, goal, weights) - reach_only,
                               PROGRESS_WEIGHT * (remaining_progress(frames, "open_slide") @ weights), rtol=1e-4)

    # the model's planner shows the cost the last context frame before it scores anything
    seen = []
    gated.observe = lambda frame: seen.append(frame.copy())
    planner = ModelPlanner(lambda f, p, a, **k: np.repeat(f[:, -1:], a.shape[1], axis=1),
                           _plan_config(), -np.ones(5, np.float32), np.ones(5, np.float32), cost=gated)
    context = np.stack([far, near])
    planner.plan(context, np.zeros((1, 5), np.float32), goal, np.random.default_rng(0))
    assert len(seen) == 1 and np.array_equal(seen[0], near)


def _plan_config():
    from maskvit.config import PlanConfig

    return PlanConfig(optimizer="mppi", samples=4, horizon=2, replan_every=1, cost="pixel_l2_reach", progress_gate=0.1)


def test_the_reach_cost_refuses_a_success_classifier_and_unknown_tasks(trained):
    with pytest.raises(UserError, match="needs a reach reader"):
        ReachCost(SuccessNet(TWO_TASKS), "push_red")
    with pytest.raises(UserError, match="needs a success classifier, not a reach reader"):
        ClassifierCost(trained, "push_red")
    with pytest.raises(UserError, match="knows push_red, open_slide, not 'open_drawer'"):
        ReachCost(trained, "open_drawer")


def test_labels_are_the_hands_distance_to_what_the_task_moves():
    """The end effector put on the slide's handle reads 0 for open_slide; 0.1 m beside it, 0.1;
    and the handle travels with the slide's joint."""
    from maskvit.plan.worlds import desk_task_target
    from maskvit.sim.desk_world import DeskWorld

    world = DeskWorld()
    try:
        world.reset(0)
        world.physics.named.data.qpos["slide_joint"] = 0.0  # the rows' slide and drawer: closed
        world.physics.named.data.qpos["drawer_joint"] = 0.0
        world.physics.forward()
        handle = desk_task_target(world, "open_slide")
        world.physics.named.data.qpos["slide_joint"] = 0.4
        world.physics.forward()
        opened = desk_task_target(world, "open_slide")
    finally:
        world.close()
    rows = np.zeros((3, len(STATE_COLUMNS)), np.float32)
    ee = STATE_COLUMNS.index("ee_x")
    rows[0, ee:ee + 3] = handle
    rows[1, ee:ee + 3] = handle + np.array([0.1, 0.0, 0.0])
    rows[2, ee:ee + 3] = handle
    rows[2, STATE_COLUMNS.index("slide")] = 0.4
    labels = reach_labels(rows, ("open_slide", "push_red"))
    assert labels[0, 0] == pytest.approx(0.0, abs=1e-5)
    assert labels[1, 0] == pytest.approx(0.1, abs=1e-5)
    assert labels[2, 0] == pytest.approx(np.linalg.norm(opened - handle), abs=1e-5) and labels[2, 0] > 0.05
    assert labels[0, 1] == pytest.approx(labels[2, 1])  # the buttons do not move with the slide
    with pytest.raises(UserError, match="not 'flat_block_off_table'"):
        reach_labels(rows, ("flat_block_off_table",))


def test_approach_labels_measure_the_fingertips_way_to_where_the_task_is_begun():
    """A saved simulator state reads the length of the scripted controller's way: for the
    slide, by a point in front of and left of its handle to its pushing side (longer than the
    straight line to the handle: the way around it); for a button, straight to its top; the
    scripted slide controller, run from that state, shortens it."""
    from maskvit.plan.reach_reader import approach_labels
    from maskvit.plan.worlds import desk_approach_length, desk_task_target
    from maskvit.sim.desk_policies import SlidePolicy, fingertips, slide_push_point, slide_route
    from maskvit.sim.desk_world import DeskWorld

    world = DeskWorld()
    try:
        world.reset(3)
        start = world.get_state()
        tip = fingertips(world)
        push, handle = slide_push_point(world), desk_task_target(world, "open_slide")
        route = slide_route(world, tip)
        expected = [desk_approach_length(world, t, tip) for t in ("open_slide", "open_drawer", "push_red")]
        button = np.linalg.norm(desk_task_target(world, "push_red") - tip)
        policy = SlidePolicy()
        policy.reset(world, np.random.default_rng(0))
        policy.height = 0.0  # the route's own height
        for _ in range(4):
            world.advance(policy.action(world))
        later = world.get_state()
    finally:
        world.close()
    assert push[0] < handle[0] - 0.04  # the side it is pushed open from, left of the handle
    assert len(route) == 2 and route[0][1] < push[1] - 0.05  # not lined up yet: in front of the bar first
    assert expected[0] == pytest.approx(np.linalg.norm(route[0] - tip) + np.linalg.norm(push - route[0]))
    assert expected[0] > np.linalg.norm(handle - tip) and expected[2] == pytest.approx(button)
    labels = approach_labels(np.stack([start, later]), ("open_slide", "open_drawer", "push_red"))
    np.testing.assert_allclose(labels[0], expected, atol=1e-5)
    assert labels[1, 0] < labels[0, 0] - 0.05  # the controller goes the way the label measures
    with pytest.raises(UserError, match="not 'flat_block_off_table'"):
        approach_labels(start[None], ("flat_block_off_table",))


def test_panel_labels_measure_the_way_to_where_the_panel_is_pushed():
    """`slide="panel"` ends the slide's way at the fast panel push's place (right of and behind
    the handle, far from the bar's side the "bar" way ends at); the panel push, run from the
    start, shortens it to nearly nothing while the bar's way does not end there."""
    from maskvit.plan.reach_reader import approach_labels
    from maskvit.plan.worlds import desk_approach_length
    from maskvit.sim.desk_policies import (
        PanelSlidePolicy,
        fingertips,
        panel_push_point,
        panel_route,
    )
    from maskvit.sim.desk_world import DeskWorld

    world = DeskWorld()
    try:
        world.reset(3)
        start = world.get_state()
        tip = fingertips(world)
        route, panel = panel_route(world, tip), panel_push_point(world)
        expected = desk_approach_length(world, "open_slide", tip, slide="panel")
        policy = PanelSlidePolicy()
        policy.reset(world, np.random.default_rng(0))
        for _ in range(5):  # up to the push, before the slide reaches its end
            world.advance(policy.action(world))
        later = world.get_state()
    finally:
        world.close()
    points = [tip, *route]
    assert route[-1] == pytest.approx(panel)
    assert expected == pytest.approx(sum(np.linalg.norm(b - a) for a, b in zip(points[:-1], points[1:], strict=True)))
    labels = approach_labels(np.stack([start, later]), ("open_slide", "push_red"), slide="panel")
    bar = approach_labels(np.stack([start, later]), ("open_slide", "push_red"))
    assert labels[0, 0] == pytest.approx(expected, abs=1e-5)
    assert labels[1, 0] < 0.3 * labels[0, 0]  # the panel push goes its way
    assert abs(labels[1, 0] - bar[1, 0]) > 0.1  # another place than the bar's side
    np.testing.assert_allclose(labels[:, 1], bar[:, 1])  # the buttons' ways are the same


def test_inside_labels_measure_the_way_to_where_the_drawer_is_pulled_from_inside():
    """`drawer="inside"` ends the drawer's way behind its front wall (where the oracle pulls it
    open): the scripted drawer controller, on a drawer open enough to go in, goes over the wall
    and in, shortening that way to nearly nothing while the hook way stays long; on a shut
    drawer, no room inside, the way is the hook way."""
    from maskvit.plan.reach_reader import approach_labels
    from maskvit.plan.worlds import desk_approach_length
    from maskvit.sim.desk_policies import DrawerPolicy, fingertips
    from maskvit.sim.desk_world import DeskWorld

    world = DeskWorld()
    try:
        world.reset(3)
        world.physics.named.data.qpos["drawer_joint"] = -0.09
        world.physics.forward()
        start = world.get_state()
        policy = DrawerPolicy()
        policy.reset(world, np.random.default_rng(0))
        states = [start]
        while len(states) < 12:  # over the wall and down inside, until it would push
            action = policy.action(world)
            if policy.stage == "push":
                break
            world.advance(action)
            states.append(world.get_state())
        world.physics.named.data.qpos["drawer_joint"] = 0.0
        world.physics.forward()
        shut = desk_approach_length(world, "open_drawer", fingertips(world), drawer="inside")
        shut_hook = desk_approach_length(world, "open_drawer", fingertips(world))
    finally:
        world.close()
    assert policy.stage == "push", "the controller went inside the open drawer"
    inside = approach_labels(np.stack(states), ("open_drawer", "push_red"), drawer="inside")
    hook = approach_labels(np.stack(states), ("open_drawer", "push_red"))
    assert inside[0, 0] > 0.2 and inside[-1, 0] < 0.03  # the way walked to its end
    assert hook[-1, 0] > 0.2  # the hook gap is elsewhere
    np.testing.assert_allclose(inside[:, 1], hook[:, 1])  # the buttons' ways are the same
    assert shut == pytest.approx(shut_hook)  # shut: the fingers cannot go in, so hook it first
    with pytest.raises(ValueError, match="drawer is 'hook', 'inside' or 'inside_clear'"):
        desk_approach_length(None, "open_drawer", np.zeros(3), drawer="handle")


def test_the_clear_inside_way_goes_out_over_the_gap_from_the_desk_top():
    """`drawer="inside_clear"`: fingertips resting on the desk top behind its front edge cannot go
    straight down to the drawer's inside (it lies under the desk top); their way first goes out
    over the gap, then down, so moving towards the edge shortens it by as much as it moves, where
    the straight way shortens by less. Elsewhere (in front of the wall, or over the gap already) it is the inside way."""
    from maskvit.plan.worlds import desk_approach_length
    from maskvit.sim.desk_policies import _DESK_FRONT, _DESK_TOP, drawer_inside_point
    from maskvit.sim.desk_world import DeskWorld

    world = DeskWorld()
    try:
        world.reset(3)
        world.physics.named.data.qpos["drawer_joint"] = -0.09
        world.physics.forward()
        inside = drawer_inside_point(world)
        on_desk = np.array([inside[0], 0.64, _DESK_TOP + 0.015])
        nearer_edge = on_desk - [0.0, 0.04, 0.0]
        over_gap = np.array([inside[0], inside[1], _DESK_TOP + 0.015])
        in_front = np.array([inside[0], inside[1] - 0.15, inside[2] + 0.1])

        def way(tip, drawer):
            return desk_approach_length(world, "open_drawer", tip, drawer=drawer)

        clear, straight = way(on_desk, "inside_clear"), way(on_desk, "inside")
        clear_nearer, straight_nearer = way(nearer_edge, "inside_clear"), way(nearer_edge, "inside")
        elsewhere = [(way(tip, "inside_clear"), way(tip, "inside")) for tip in (over_gap, in_front)]
    finally:
        world.close()
    assert inside[1] < _DESK_FRONT < on_desk[1], "the drawer leaves room, the hand is behind the edge"
    assert clear == pytest.approx((on_desk[1] - inside[1]) + (on_desk[2] - inside[2]))
    assert clear > straight + 0.03  # the straight way runs through the desk top
    assert clear - clear_nearer == pytest.approx(0.04)  # each cm towards the edge counts whole
    assert straight - straight_nearer < 0.03
    for with_clearing, without in elsewhere:
        assert with_clearing == pytest.approx(without)


def test_a_saved_reader_keeps_what_its_distances_are_to(trained, tmp_path):
    """`reach_targets` is written and read back; a reader from before the choice reads object;
    an unknown value is a one-line damaged-file error."""
    import copy

    approach = copy.deepcopy(trained)
    approach.targets = "approach"
    save_classifier(approach, tmp_path / "a", {})
    assert load_classifier(tmp_path / "a").targets == "approach"
    meta = json.loads((tmp_path / "a" / "classifier.json").read_text())
    del meta["reach_targets"]
    (tmp_path / "a" / "classifier.json").write_text(json.dumps(meta))
    assert load_classifier(tmp_path / "a").targets == "object"
    meta["reach_targets"] = "elbow"
    (tmp_path / "a" / "classifier.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="reach targets 'elbow'"):
        load_classifier(tmp_path / "a")


def test_a_saved_reader_keeps_its_kind_and_readings(trained, tmp_path):
    save_classifier(trained, tmp_path / "r", {})
    assert json.loads((tmp_path / "r" / "classifier.json").read_text())["kind"] == "reach"
    loaded = load_classifier(tmp_path / "r")
    assert isinstance(loaded, ReachNet)
    frames, _ = _synthetic(5, seed=3)
    np.testing.assert_array_equal(loaded.distances(frames, "open_slide"), trained.distances(frames, "open_slide"))
    meta = json.loads((tmp_path / "r" / "classifier.json").read_text())
    meta["kind"] = "sharpness"
    (tmp_path / "r" / "classifier.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="damaged or not a success classifier .*kind 'sharpness'"):
        load_classifier(tmp_path / "r")


def _state_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    rows = np.zeros((n, len(STATE_COLUMNS)), np.float32)
    ee = STATE_COLUMNS.index("ee_x")
    rows[:, ee:ee + 3] = rng.uniform([-0.4, 0.4, 0.7], [0.4, 0.9, 1.1], (n, 3))
    for name in ("upright_block_z", "flat_block_z"):
        rows[:, STATE_COLUMNS.index(name)] = 0.76
    return rows


def test_train_classifier_kind_reach_writes_a_reader_and_its_val_scores(tmp_path, capsys):
    rng = np.random.default_rng(4)
    store = tmp_path / "store"
    with EpisodeStoreWriter(store, source="robodesk", action_dim=5, resolution=64) as writer:
        for index in range(3):
            writer.add(f"robodesk_{index:06d}", rng.integers(0, 255, (10, 64, 64, 3), dtype=np.uint8),
                       np.zeros((10, 5), np.float32), states=_state_rows(rng, 10),
                       split="val" if index == 2 else "train")
    out = tmp_path / "reach"
    code = main(["train-classifier", "--kind", "reach", "--data", str(store), "--out", str(out),
                 "--tasks", "open_drawer", "--steps", "3", "--batch", "4", "--no-progress", "--reach-loss", "near"])
    assert code == 0, capsys.readouterr().err
    meta = json.loads((out / "classifier.json").read_text())
    assert meta["kind"] == "reach" and meta["tasks"] == ["open_drawer"] and meta["train_frames"] == 20
    assert meta["reach_loss"] == "near"
    assert meta["val_scores"]["open_drawer"]["mean_distance"] > 0.05
    assert "mean absolute error" in capsys.readouterr().out
    code = main(["train-classifier", "--kind", "reach", "--data", str(store), "--out", str(tmp_path / "r2"),
                 "--tasks", "flat_block_off_table", "--steps", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "a reach reader reads" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r2").exists()
    code = main(["train-classifier", "--kind", "reach", "--reach-targets", "approach", "--data", str(store),
                 "--out", str(tmp_path / "r3"), "--tasks", "open_drawer", "--steps", "1"])
    err = capsys.readouterr().err.strip()  # approach labels come from simulator states this store lacks
    assert code == 2 and "no 'sim_states' array" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r3").exists()
    for flag, value in (("--reach-targets", "approach"), ("--reach-loss", "near")):
        code = main(["train-classifier", flag, value, "--data", str(store),
                     "--out", str(tmp_path / "r4"), "--steps", "1"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and "--kind reach only" in err and not (tmp_path / "r4").exists()


def test_train_classifier_pools_the_frames_of_several_stores_and_records_each(tmp_path, capsys):
    rng = np.random.default_rng(5)
    stores = []
    for name, episodes in (("a", 3), ("b", 4)):
        store = tmp_path / name
        with EpisodeStoreWriter(store, source="robodesk", action_dim=5, resolution=64) as writer:
            for index in range(episodes):
                writer.add(f"robodesk_{index:06d}", rng.integers(0, 255, (10, 64, 64, 3), dtype=np.uint8),
                           np.zeros((10, 5), np.float32), states=_state_rows(rng, 10),
                           split="val" if index == 0 else "train")
        stores.append(store)
    out = tmp_path / "reach"
    code = main(["train-classifier", "--kind", "reach", "--data", str(stores[0]), "--data", str(stores[1]),
                 "--out", str(out), "--tasks", "open_drawer", "--steps", "2", "--batch", "4", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    meta = json.loads((out / "classifier.json").read_text())
    assert meta["train_frames"] == (2 + 3) * 10  # both stores' train episodes
    assert meta["stores"] == [str(s.resolve()) for s in stores] and len(set(meta["store_fingerprints"])) == 2
    assert "store" not in meta
    capsys.readouterr()
    code = main(["train-classifier", "--kind", "reach", "--data", str(stores[0]), "--data", str(stores[0]),
                 "--out", str(tmp_path / "twice"), "--tasks", "open_drawer", "--steps", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "named twice" in err and not (tmp_path / "twice").exists()


TINY_PLAN = ["--set", "plan.samples=4", "--set", "plan.horizon=2", "--set", "plan.episode_steps=2",
             "--set", "plan.chunk_size=4"]


def _plan(tmp_path: Path, *argv: str) -> int:
    return main(["plan", "--env", "robodesk", "--out", str(tmp_path / "out"), "--no-progress", "--no-gifs",
                 "--policy", "model", "--episodes", "1", *TINY_PLAN, *argv])


def test_plan_scores_the_models_frames_with_the_reach_cost(tmp_path, capsys, count_cost_calls, trained):
    save_classifier(trained, tmp_path / "r", {})
    calls = count_cost_calls(ReachCost)
    code = _plan(tmp_path, "--task", "open_slide", "--set", "plan.cost=pixel_l2_reach",
                 "--classifier", str(tmp_path / "r"))
    assert code == 0, capsys.readouterr().err
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["config"]["cost"] == "pixel_l2_reach"
    assert calls and all(task == "open_slide" and shape[:2] == (4, 2) for task, shape in calls)


def test_pixel_oracle_scores_the_true_frames_with_the_models_reach_cost(tmp_path, capsys, count_cost_calls,
                                                                       trained):
    """`--oracle-cost pixel` is a perfect video model read by the model's cost, reach reader
    included, not silently by the plain pixel cost."""
    save_classifier(trained, tmp_path / "r", {})
    calls = count_cost_calls(ReachCost)
    oracle = ["plan", "--env", "robodesk", "--out", str(tmp_path / "out"), "--no-progress", "--no-gifs",
              "--policy", "oracle", "--oracle-cost", "pixel", "--episodes", "1", *TINY_PLAN,
              "--task", "open_slide", "--set", "plan.cost=pixel_l2_reach"]
    code = main(oracle)
    err = capsys.readouterr().err.strip()
    assert code == 2 and "needs a reach classifier: pass --classifier DIR" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()
    code = main([*oracle, "--classifier", str(tmp_path / "r")])
    assert code == 0, capsys.readouterr().err
    assert calls and all(task == "open_slide" and shape[:2] == (4, 2) for task, shape in calls)
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["oracle_cost"] == "pixel" and results["per_task"]["open_slide"]["oracle"]["episodes"] == 1


def test_set_plan_weights_reach_the_reach_and_progress_costs(trained):
    """`--set plan.progress_weight/reach_weight` are what the per-task costs weigh with."""
    from types import SimpleNamespace

    from maskvit.config import PlanConfig, check_plan
    from maskvit.plan.closed_loop import build_policy
    from maskvit.plan.desk_progress_cost import ProgressCost

    world = SimpleNamespace(action_low=-np.ones(5, np.float32), action_high=np.ones(5, np.float32))
    config = PlanConfig(cost="pixel_l2_reach", progress_weight=4000.0, reach_weight=10.0)
    cost = build_policy("model", world, config, predict_fn=lambda *a: None, classifier=trained,
                        task="open_slide").cost
    assert isinstance(cost, ReachCost) and (cost.progress_weight, cost.reach_weight) == (4000.0, 10.0)
    config = PlanConfig(cost="pixel_l2_progress", progress_weight=4000.0)
    cost = build_policy("model", world, config, predict_fn=lambda *a: None, task="open_slide").cost
    assert isinstance(cost, ProgressCost) and cost.weight == 4000.0
    assert PlanConfig().progress_weight == PROGRESS_WEIGHT and PlanConfig().reach_weight == REACH_WEIGHT
    with pytest.raises(UserError, match="plan.reach_weight"):
        check_plan(PlanConfig(reach_weight=-1.0))
    with pytest.raises(UserError, match="plan.progress_gate"):
        check_plan(PlanConfig(progress_gate=-0.05))
    config = PlanConfig(cost="pixel_l2_reach", progress_gate=0.06)
    cost = build_policy("model", world, config, predict_fn=lambda *a: None, classifier=trained,
                        task="open_slide").cost
    assert cost.progress_gate == 0.06 and not cost.gate_open


@pytest.mark.parametrize("argv, message", [
    (["--set", "plan.cost=pixel_l2_reach"], "needs a reach classifier: pass --classifier DIR"),
    (["--set", "plan.cost=pixel_l2_reach", "--classifier", "SUCCESS"],
     "holds a success classifier; plan.cost=pixel_l2_reach reads a reach one"),
    (["--set", "plan.cost=pixel_l2_classifier", "--classifier", "REACH"],
     "holds a reach classifier; plan.cost=pixel_l2_classifier reads a success one"),
])
def test_a_reach_cost_with_the_wrong_net_is_one_line(tmp_path, capsys, monkeypatch, trained, argv, message):
    monkeypatch.setattr("maskvit.pretrained.shipped_classifier", lambda name, kind="success": None)
    save_classifier(trained, tmp_path / "reach", {})
    save_classifier(SuccessNet(TWO_TASKS), tmp_path / "success", {})
    argv = [{"SUCCESS": str(tmp_path / "success"), "REACH": str(tmp_path / "reach")}.get(a, a) for a in argv]
    code = _plan(tmp_path, "--task", "push_red", *argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_the_shipped_model_plans_with_its_shipped_reach_reader_by_default(tmp_path, capsys):
    from maskvit.plan.reach_reader import REACH_TASKS
    from maskvit.pretrained import shipped_classifier

    folder = shipped_classifier("robodesk64", "reach")
    assert folder is not None and folder != shipped_classifier("robodesk64")
    reader = load_classifier(folder)
    assert isinstance(reader, ReachNet) and reader.tasks == REACH_TASKS
    code = _plan(tmp_path, "--task", "push_red", "--set", "plan.cost=pixel_l2_reach")
    assert code == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "out" / "results.json").read_text())["classifier"] == str(folder.resolve())
