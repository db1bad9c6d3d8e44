"""The scripted RoboDesk controllers: without noise they solve their task in few steps
(fixed scenes, simulated without rendering), and they are deterministic. The panel push
(`--panel-slide`) opens the slide several times faster than the bar push."""

import numpy as np
import pytest

from maskvit.sim.desk_policies import PanelSlidePolicy, fingertips, scripted_policy, turn_fingers
from maskvit.sim.desk_world import DeskWorld


@pytest.fixture(scope="module")
def world():
    world = DeskWorld()
    yield world
    world.close()


def steps_to_success(world, task: str, seed: int, limit: int, controllers: int | None = None) -> int | None:
    world.reset(seed)
    policy = scripted_policy(task, controllers=controllers)
    policy.reset(world, np.random.default_rng(seed))
    for step in range(1, limit + 1):
        action = policy.action(world)
        assert action.shape == (5,) and np.all(np.abs(action) <= 1.0)
        world.advance(action)
        if world.progress(task).solved:
            return step
    return None


@pytest.mark.parametrize("task, seed, limit", [
    ("push_red", 1002, 8),  # the red button is the farthest; the old controller never got there
    ("flat_block_off_table", 1001, 12),  # drawn over the front edge
    ("upright_block_off_table", 1000, 18),  # grasped, carried over the right edge, let go
])
def test_a_controller_solves_its_task_without_noise_in_few_steps(world, task, seed, limit):
    assert steps_to_success(world, task, seed, limit) is not None


def test_the_v3_drawer_controller_goes_in_at_the_edge_and_opens_what_v2_could_not(world):
    """v2 kept its fingers 3.5 cm short of the desk's edge and stalled pulling; v3 goes in."""
    assert steps_to_success(world, "open_drawer", 1029, 30, controllers=2) is None  # stalls near −0.11
    assert steps_to_success(world, "open_drawer", 1029, 15) is not None  # here in 8 steps
    with pytest.raises(ValueError, match="not kept"):
        scripted_policy("open_drawer", controllers=1)


def test_a_controller_is_deterministic_given_the_world_and_its_generator(world):
    runs = []
    for _ in range(2):
        world.reset(1003)
        policy = scripted_policy("open_drawer")
        policy.reset(world, np.random.default_rng(7))
        actions = []
        for _ in range(3):
            actions.append(policy.action(world))
            world.advance(actions[-1])
        runs.append(np.stack(actions))
    np.testing.assert_array_equal(runs[0], runs[1])


def test_the_wrist_turns_the_fingers_towards_the_wanted_line(world):
    world.reset(1000)
    data = world.physics.named.data

    def misalignment() -> float:
        hand = data.xmat["panda0_link7"].reshape(3, 3)[:, 2]
        fingers = data.xpos["panda0_leftfinger"] - data.xpos["panda0_rightfinger"]
        wanted = np.array([0.0, 1.0, 0.0]) - hand[1] * hand
        cosine = abs(np.dot(fingers, wanted)) / (np.linalg.norm(fingers) * np.linalg.norm(wanted))
        return float(np.arccos(min(1.0, cosine)))

    before = misalignment()
    for _ in range(3):
        world.advance(np.array([0.0, 0.0, 0.0, turn_fingers(world, [0.0, 1.0, 0.0]), 0.0]))
    assert misalignment() < min(0.15, before)
    assert np.all(np.isfinite(fingertips(world)))


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
