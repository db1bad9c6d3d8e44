"""Play at the handles (`maskvit collect --env robodesk --play SHARE`): episodes that also
push the slide and the drawer shut; and panel pushes (`--panel-slide SHARE`) that open the
slide fast. The closers close, the mix without play or panel pushes draws exactly as before
they existed (old stores resume unchanged), and a bad share of either is one line."""

from __future__ import annotations

import numpy as np
import pytest
from fault_pipeline import one_line_error

from maskvit.cli import main
from maskvit.errors import UserError
from maskvit.sim.desk_collect import collect_desk_episode, mix_record
from maskvit.sim.desk_play import (
    PLAY_VERSION,
    DrawerClosePolicy,
    DrawerRockPolicy,
    HandlePlay,
    drawer_joint,
    slide_closer,
)
from maskvit.sim.desk_policies import NoisyMix, RandomPolicy, SlidePolicy, scripted_policy
from maskvit.sim.desk_world import DeskWorld

TASKS = ("push_red", "open_slide", "open_drawer")


@pytest.fixture(scope="module")
def world():
    world = DeskWorld()
    yield world
    world.close()


def _joint(world: DeskWorld, name: str) -> float:
    return float(world.physics.named.data.qpos[name][0])


def _run(world: DeskWorld, policy, steps: int, seed: int) -> None:
    policy.reset(world, np.random.default_rng(seed))
    for _ in range(steps):
        world.advance(np.clip(policy.action(world), -1.0, 1.0).astype(np.float32))


def test_the_slide_closer_shuts_a_slide_the_controller_opened(world):
    world.reset(1000)
    _run(world, scripted_policy("open_slide"), 12, seed=0)
    opened = _joint(world, "slide_joint")
    _run(world, slide_closer(), 14, seed=0)
    assert opened > 0.1 and _joint(world, "slide_joint") < opened - 0.1


def test_the_drawer_closer_pushes_an_open_drawer_in(world):
    world.reset(1001)
    start = _joint(world, "drawer_joint")  # RoboDesk starts it a little open (< 0)
    _run(world, DrawerClosePolicy(), 10, seed=0)
    assert start < -0.01 and _joint(world, "drawer_joint") > start + 0.01


def test_the_drawer_rocker_pushes_the_drawer_in_and_pulls_it_out_again(world):
    world.reset(3002)
    policy = DrawerRockPolicy()
    policy.reset(world, np.random.default_rng(6))
    joints = [drawer_joint(world)]
    for _ in range(24):
        world.advance(np.clip(policy.action(world), -1.0, 1.0).astype(np.float32))
        joints.append(drawer_joint(world))
    moves = np.diff(joints)
    assert (moves > 0.005).sum() >= 2 and (moves < -0.005).sum() >= 2  # both ways, more than once


def test_play_turns_from_the_controller_to_a_closer_or_a_random_walk(world):
    kinds = set()
    for seed in range(12):
        play = HandlePlay("open_slide")
        play.reset(world, np.random.default_rng(seed))
        assert 0 <= play.turn <= 15
        kinds.add((type(play.then), getattr(play.then, "direction", None)))
    assert kinds == {(SlidePolicy, -1.0), (RandomPolicy, None)}
    play = HandlePlay("open_drawer")
    play.reset(world, np.random.default_rng(0))  # seed 0 draws the drawer's play, not a walk
    assert isinstance(play.then, DrawerRockPolicy)
    play = HandlePlay("push_red")  # no closer: always a random walk
    play.reset(world, np.random.default_rng(0))
    assert isinstance(play.then, RandomPolicy)


def test_the_mix_without_play_draws_as_before_play_existed():
    """VP2's mix (no play) must give every episode of an old store the same task and kind."""
    mix, played = NoisyMix(), NoisyMix(play_fraction=0.5)
    kinds = []
    for seed in range(200):
        rng = np.random.default_rng(seed)
        old_task = TASKS[int(rng.integers(len(TASKS)))]
        old_kind = "random" if rng.uniform() < mix.random_fraction else "scripted"
        assert mix.choose(TASKS, np.random.default_rng(seed)) == (old_task, old_kind)
        task, kind = played.choose(TASKS, np.random.default_rng(seed))
        assert task == old_task and (kind == "random") == (old_kind == "random")
        kinds.append(kind)
    assert 60 < kinds.count("play") < 110  # about half of the ~170 non-random episodes
    assert "play_fraction" not in mix_record(mix)  # recorded as old stores recorded it
    assert mix_record(played)["play_fraction"] == 0.5
    assert mix_record(played)["play"] == PLAY_VERSION  # a store of older play is not resumed


SHARES = [("--play", "play_fraction"), ("--panel-slide", "panel_slide_fraction"),
          ("--drawer-pullback", "drawer_pullback_fraction")]  # flag, NoisyMix field


@pytest.mark.parametrize("field", [field for _, field in SHARES])
@pytest.mark.parametrize("share", [1.5, -0.1, float("nan")])
def test_a_share_outside_0_1_is_refused(field, share):
    with pytest.raises(UserError, match=field):
        NoisyMix(**{field: share})


@pytest.mark.parametrize("flag", [flag for flag, _ in SHARES])
def test_a_bad_share_is_one_line_and_writes_nothing(flag, tmp_path, capsys):
    out = tmp_path / "store"
    assert main(["collect", "--env", "robodesk", "--episodes", "1", flag, "2", "--out", str(out)]) == 2
    one_line_error(capsys, "collect", flag, "[0, 1]")
    assert main(["collect", "--env", "push", "--episodes", "1", flag, "0.5", "--out", str(out)]) == 2
    one_line_error(capsys, "collect", flag, "robodesk")
    assert not out.exists()


def test_a_play_episode_is_collected_as_play_with_its_noise(world):
    mix = NoisyMix(noise_std=(0.1, 0.2), random_fraction=0.0, play_fraction=1.0)
    episode = collect_desk_episode(world, 0, run_seed=5, steps=3, tasks=("open_slide",), mix=mix)
    assert episode["info"]["policy"] == "play" and episode["info"]["noise_std"] in (0.1, 0.2)
    assert episode["frames"].shape == (3, 64, 64, 3) and episode["actions"].shape == (3, 5)
    again = collect_desk_episode(world, 0, run_seed=5, steps=3, tasks=("open_slide",), mix=mix)
    np.testing.assert_array_equal(episode["actions"], again["actions"])  # a function of (seed, index)


def test_the_mix_without_panel_pushes_draws_as_before():
    """Without the share every episode of an old store keeps its task and kind; with it only
    scripted open_slide episodes turn into panel pushes, about as often as the share says."""
    old, panel = NoisyMix(play_fraction=0.3), NoisyMix(play_fraction=0.3, panel_slide_fraction=0.5)
    kinds = []
    for seed in range(300):
        before = old.choose(TASKS, np.random.default_rng(seed))
        after = panel.choose(TASKS, np.random.default_rng(seed))
        assert after[0] == before[0]
        if after[1] == "panel":
            assert before == ("open_slide", "scripted")
        else:
            assert after == before
        kinds.append((before, after[1]))
    scripted_slides = sum(b == ("open_slide", "scripted") for b, _ in kinds)
    panels = sum(k == "panel" for _, k in kinds)
    assert 0.3 * scripted_slides < panels < 0.7 * scripted_slides
    assert "panel_slide_fraction" not in mix_record(old)  # recorded as old stores recorded it
    assert mix_record(panel)["panel_slide_fraction"] == 0.5  # so a resume with another share is refused


def test_a_panel_episode_is_collected_as_panel(world):
    mix = NoisyMix(noise_std=0.1, random_fraction=0.0, panel_slide_fraction=1.0)
    episode = collect_desk_episode(world, 0, run_seed=5, steps=3, tasks=("open_slide",), mix=mix)
    assert episode["info"] == {"task": "open_slide", "policy": "panel"}
    assert episode["actions"].shape == (3, 5)


def test_the_mix_without_pullbacks_draws_as_before():
    """Without the share every episode keeps its task and kind; with it only scripted
    open_drawer episodes turn into pullbacks, about as often as the share says."""
    old = NoisyMix(play_fraction=0.3, panel_slide_fraction=0.5)
    new = NoisyMix(play_fraction=0.3, panel_slide_fraction=0.5, drawer_pullback_fraction=0.5)
    scripted_drawers = pullbacks = 0
    for seed in range(300):
        before = old.choose(TASKS, np.random.default_rng(seed))
        after = new.choose(TASKS, np.random.default_rng(seed))
        if after[1] == "pullback":
            assert before == ("open_drawer", "scripted")
            pullbacks += 1
        else:
            assert after == before
        scripted_drawers += before == ("open_drawer", "scripted")
    assert 0.3 * scripted_drawers < pullbacks < 0.7 * scripted_drawers
    assert "drawer_pullback_fraction" not in mix_record(old)
    assert mix_record(new)["drawer_pullback_fraction"] == 0.5


def test_a_pullback_goes_near_the_drawer_then_pulls_the_hand_towards_the_arm(world):
    """Collected as kind "pullback"; driven alone, the hand comes near the drawer's inside
    point, then every action pulls towards the arm (y at −0.5 or less) and the hand goes that
    way, whether the drawer comes along or not."""
    from maskvit.sim.desk_policies import DrawerPullbackPolicy, drawer_inside_point, fingertips

    mix = NoisyMix(noise_std=0.1, random_fraction=0.0, drawer_pullback_fraction=1.0)
    episode = collect_desk_episode(world, 3, run_seed=7, steps=3, tasks=("open_drawer",), mix=mix)
    assert episode["info"] == {"task": "open_drawer", "policy": "pullback"}
    for seed in (1, 2):
        world.reset(seed)
        policy = DrawerPullbackPolicy()
        policy.reset(world, np.random.default_rng(seed))
        gaps, pulls, tips = [], [], []
        for _ in range(18):
            tips.append(fingertips(world))
            gaps.append(np.linalg.norm(drawer_inside_point(world) - tips[-1]))
            action = policy.action(world)
            pulls.append(policy.pulling)
            if policy.pulling:
                assert action[1] <= -0.5
            world.advance(action)
        first = pulls.index(True)
        assert first <= DrawerPullbackPolicy.APPROACH_STEPS and all(pulls[first:])
        assert min(gaps[: first + 1]) < 0.2  # came near before pulling
        assert fingertips(world)[1] < tips[first][1] - 0.03  # then went towards the arm
