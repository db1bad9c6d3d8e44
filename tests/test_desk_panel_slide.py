"""Fast slide openings in the data (`maskvit collect --env robodesk --panel-slide SHARE`): the
panel push opens the slide several times faster than the bar push, the mix without it draws
exactly as before (old stores resume unchanged), and a bad share is one line."""

from __future__ import annotations

import numpy as np
import pytest
from fault_pipeline import one_line_error

from maskvit.cli import main
from maskvit.errors import UserError
from maskvit.sim.desk_collect import collect_desk_episode, mix_record
from maskvit.sim.desk_policies import NoisyMix, PanelSlidePolicy, scripted_policy
from maskvit.sim.desk_world import DeskWorld

TASKS = ("push_red", "open_slide", "open_drawer")


@pytest.fixture(scope="module")
def world():
    world = DeskWorld()
    yield world
    world.close()


def _slide_after(world: DeskWorld, policy, scene: int, steps: int) -> tuple[float, float]:
    world.reset(scene)
    start = float(world.physics.named.data.qpos["slide_joint"][0])
    policy.reset(world, np.random.default_rng(0))
    for _ in range(steps):
        world.advance(np.clip(policy.action(world), -1.0, 1.0).astype(np.float32))
    return start, float(world.physics.named.data.qpos["slide_joint"][0])


@pytest.mark.parametrize("scene", [1002, 1003])
def test_the_panel_push_opens_the_slide_faster_than_the_bar_push(world, scene):
    start, panel = _slide_after(world, PanelSlidePolicy(), scene, steps=8)
    _, bar = _slide_after(world, scripted_policy("open_slide"), scene, steps=8)
    assert panel - start > 0.3  # most of the way to open (0.55) in 8 steps
    assert panel - start > 1.8 * (bar - start)


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


@pytest.mark.parametrize("share", [1.5, -0.1, float("nan")])
def test_a_panel_share_outside_0_1_is_refused(share):
    with pytest.raises(UserError, match="panel_slide_fraction"):
        NoisyMix(panel_slide_fraction=share)


def test_a_bad_panel_share_is_one_line_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "store"
    assert main(["collect", "--env", "robodesk", "--episodes", "1", "--panel-slide", "-1", "--out", str(out)]) == 2
    one_line_error(capsys, "collect", "--panel-slide", "[0, 1]")
    assert main(["collect", "--env", "push", "--episodes", "1", "--panel-slide", "0.5", "--out", str(out)]) == 2
    one_line_error(capsys, "collect", "--panel-slide", "robodesk")
    assert not out.exists()
