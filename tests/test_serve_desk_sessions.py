"""The playground's RoboDesk sessions: a server running a RoboDesk model offers RoboDesk's
held-out benchmark instances (start frames, goal image, success), 5-D key actions that move
the gripper the way the key points in the image, one-line refusals for bad input, and,
on a machine without headless GL, a server that still starts and answers a session with
one line naming what to install.

A tiny untrained model whose config says RoboDesk with 5-D actions keeps it fast; the push
playground's own tests (test_serve_api.py) run unchanged.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import subprocess
import sys
import textwrap
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from stand_ins import tiny_config, tiny_predictor  # noqa: E402

from maskvit.inference.predictor import Predictor  # noqa: E402
from maskvit.model import MaskViT  # noqa: E402
from maskvit.plan.worlds import DeskPlanningWorld  # noqa: E402
from maskvit.serve import ServeSettings, create_app  # noqa: E402
from maskvit.serve.frames import decode_png, encode_png  # noqa: E402
from maskvit.serve.runner import ThreadedServer  # noqa: E402
from maskvit.serve.sessions import DeskScenes, SimSessions, playground_world  # noqa: E402
from maskvit.sim import desk_world  # noqa: E402
from maskvit.sim.desk_instances import load_instances  # noqa: E402
from maskvit.sim.desk_policies import scripted_policy  # noqa: E402
from maskvit.tokenizer.vqgan import VQGAN  # noqa: E402

TESTS = Path(__file__).parent


def tiny_desk_config():
    """The tiny model's config, trained (as far as the server knows) on RoboDesk: 5-D actions."""
    config = tiny_config()
    return dataclasses.replace(
        config, name="tiny-robodesk",
        data=dataclasses.replace(config.data, dataset="robodesk", action_dim=5),
        transformer=dataclasses.replace(config.transformer, action_dim=5),
        plan=dataclasses.replace(config.plan, init_mean=(0.0,) * 5, init_std=(0.5,) * 5))


def tiny_desk_predictor(seed: int = 0) -> Predictor:
    config = tiny_desk_config()
    torch.manual_seed(seed)
    return Predictor(VQGAN(config.tokenizer), MaskViT(config.transformer), config)


def _serve(predictor):
    app = create_app(predictor, ServeSettings(port=0, max_wait_ms=1.0, max_sim_sessions=2), "tiny")
    return ThreadedServer(app).start()


@pytest.fixture(scope="module")
def desk_server():
    server = _serve(tiny_desk_predictor())
    yield server
    server.stop()


@pytest.fixture(scope="module")
def desk_client(desk_server):
    with httpx.Client(base_url=desk_server.url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def test_instances():
    return load_instances(task="push_red", split="test")


def _project(world: DeskPlanningWorld, point: np.ndarray) -> np.ndarray:
    """(x, y) pixel of a world point in the 64×64 frame: the render camera's projection,
    then the crop and resize `DeskWorld.render` applies (x right, y down)."""
    u, v, s = world.world._camera.matrix @ np.append(point, 1.0)
    left, top, right, bottom = desk_world._CROP_BOX
    size = world.world.image_size
    return np.array([(u / s - left) * size / (right - left), (v / s - top) * size / (bottom - top)])


# ------------------------------------------------------------------ the world follows the model


def test_the_playground_world_is_the_served_models_dataset():
    assert playground_world(tiny_config()) == "push"
    assert playground_world(tiny_desk_config()) == "robodesk"


def test_a_robodesk_server_describes_robodesk(desk_client):
    sim = desk_client.get("/v1/sim")
    assert sim.status_code == 200, sim.text
    sim = sim.json()
    info = desk_client.get("/v1/info").json()
    assert sim["world"] == "robodesk" and sim["kinds"] == ["task"] and sim["split"] == "test"
    assert sim["tasks"] == {task: 30 for task in desk_world.TASKS}  # the shipped test split
    assert sim["action_low"] == info["action_low"] == [-1.0] * 5
    assert sim["action_high"] == info["action_high"] == [1.0] * 5
    assert sim["resolution"] == info["resolution"] == 64
    assert set(sim["keys"]) == {"ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "PageUp", "PageDown"}
    assert all(len(a) == 5 and a[3] == a[4] == 0.0 for a in sim["keys"].values())  # wrist, gripper still


# ------------------------------------------------------------------ keys


@pytest.fixture(scope="module")
def desk():
    world = DeskPlanningWorld("push_red", split="test")
    yield world
    DeskScenes.close(world)  # its GL context freed here, on the thread that made it


def test_the_projection_lands_on_the_gripper(desk):
    """The test's own projection is right: the pixels around the projected end effector are
    the ones that change when the gripper moves away."""
    before = desk.reset(0)
    spot = np.round(_project(desk, desk.world.end_effector())).astype(int)
    after = desk.step(np.array([1.0, 0.0, 1.0, 0.0, 0.0]))
    changed = np.abs(after.astype(int) - before.astype(int)).sum(-1) > 30
    x, y = spot
    assert changed[y - 2 : y + 3, x - 2 : x + 3].any()
    far = changed.copy()
    far[max(y - 12, 0) : y + 13, max(x - 12, 0) : x + 13] = False
    assert changed[y - 2 : y + 3, x - 2 : x + 3].mean() > far.mean()


@pytest.mark.parametrize("key, image_direction", [
    ("ArrowRight", (1, 0)), ("ArrowLeft", (-1, 0)), ("ArrowUp", (0, -1)), ("ArrowDown", (0, 1))])
def test_arrow_keys_move_the_gripper_that_way_in_the_image(desk, key, image_direction):
    action = np.asarray(DeskScenes().key_actions()[key])
    for instance in (0, 5):
        desk.reset(instance)
        start = _project(desk, desk.world.end_effector())
        desk.step(action)
        moved = _project(desk, desk.world.end_effector()) - start
        along = moved @ np.asarray(image_direction)
        across = abs(moved @ np.asarray(image_direction[::-1]))
        assert along > 1.0 and across < 0.5 * along, (key, instance, moved)


@pytest.mark.parametrize("key, sign", [("PageUp", 1), ("PageDown", -1)])
def test_page_keys_raise_and_lower_the_gripper(desk, key, sign):
    action = np.asarray(DeskScenes().key_actions()[key])
    desk.reset(0)
    start = desk.world.end_effector()
    desk.step(action)
    moved = desk.world.end_effector() - start
    assert sign * moved[2] > 0.02 and np.abs(moved[:2]).max() < 0.3 * abs(moved[2]), moved


# ------------------------------------------------------------------ sessions


def test_a_task_session_shows_the_instance_and_steps_with_5d_actions(desk_client, test_instances):
    start = desk_client.post("/v1/sim/sessions", json={"kind": "task", "task": "push_red", "seed": 3})
    assert start.status_code == 200, start.text
    data = start.json()
    assert data["task"] == "push_red" and data["seed"] == 3 and data["step"] == 1
    assert data["actions"] == [[0.0] * 5] and data["recorded_actions"] is None
    assert data["success"] is False and data["goal_distance"] > 0
    goal = decode_png(data["goal"], 64, "goal")
    np.testing.assert_array_equal(goal, test_instances[3].goal_image)
    first, second = (decode_png(f, 64, "frame") for f in data["frames"])
    world = DeskPlanningWorld("push_red", split="test", instances=test_instances)
    try:
        np.testing.assert_array_equal(first, world.reset(3))  # the instance's start frame
        right = desk_client.get("/v1/sim").json()["keys"]["ArrowRight"]
        step = desk_client.post(f"/v1/sim/sessions/{data['session']}/step", json={"action": right})
        assert step.status_code == 200, step.text
        assert step.json()["step"] == 2 and step.json()["success"] is False
        world.step(np.zeros(5))
        np.testing.assert_array_equal(decode_png(step.json()["frame"], 64, "frame"),
                                      world.step(np.asarray(right)))  # the same world, stepped alike
    finally:
        DeskScenes.close(world)
    # The page's dream: the model predicts from the session's frames with 5-D actions.
    predict = desk_client.post("/v1/predict", json={
        "context": [[encode_png(first), encode_png(second)]],
        "actions": [[[0.0] * 5, right, [0.0] * 5]], "num_frames": 1, "seed": 0})
    assert predict.status_code == 200, predict.text
    assert desk_client.delete(f"/v1/sim/sessions/{data['session']}").status_code == 200


def test_driving_an_instance_to_its_goal_reports_success(test_instances):
    """The scripted controller's actions, sent through the session, press the button: the
    session reports success (and stays solved, the benchmark's any-step verdict)."""
    sessions = SimSessions(world="robodesk")
    try:
        out = sessions.start("task", 7, task="push_red")
        world = sessions._sessions[out["session"]].env.world  # read the state to compute actions
        policy = scripted_policy("push_red")
        policy.reset(world, np.random.default_rng(0))
        statuses = [out]
        for _ in range(12):
            action = np.clip(policy.action(world), -1, 1)
            statuses.append(sessions.step(out["session"], action))
            if statuses[-1]["success"]:
                break
        assert not statuses[0]["success"] and statuses[-1]["success"]
        assert statuses[-1]["goal_distance"] == 0.0
        assert sessions.step(out["session"], np.array([0.0, 0.0, 1.0, 0.0, 0.0]))["success"]
    finally:
        sessions.close_all()


def test_closed_sessions_leave_no_gl_context_for_another_thread(monkeypatch):
    """Every way a session ends (closed, evicted to make room, the server stopping) frees
    its GL context on the sim thread; one left to the garbage collector on another thread
    makes EGL refuse (EGL_BAD_ACCESS, an ignored exception in __del__) and leaks."""
    ignored = []
    monkeypatch.setattr(sys, "unraisablehook", ignored.append)
    sessions = SimSessions(max_sessions=1, world="robodesk")
    try:
        first = sessions.start("task", 0, task="push_green")["session"]
        second = sessions.start("task", 1, task="push_green")["session"]  # evicts the first
        sessions.close(second)
        sessions.start("task", 2, task="push_green")
    finally:
        sessions.close_all()
    gc.collect()
    assert first != second and len(sessions) == 0
    assert not ignored, [str(u.exc_value)[:200] for u in ignored]


BAD_STARTS = {
    "task typo": ({"kind": "task", "task": "push_rde", "seed": 0}, "push_red"),
    "no task": ({"kind": "task", "seed": 0}, "name a RoboDesk task"),
    "instance past the split": ({"kind": "task", "task": "open_slide", "seed": 30}, "0 to 29"),
    "push episodes": ({"kind": "episode", "task": "push_red", "seed": 0}, "kind must be one of task"),
}


@pytest.mark.parametrize("name", BAD_STARTS)
def test_bad_session_requests_get_one_line(desk_client, name):
    body, expected = BAD_STARTS[name]
    answer = desk_client.post("/v1/sim/sessions", json=body)
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert expected in detail and "\n" not in detail


def test_a_5d_session_refuses_actions_of_another_width_or_range(desk_client):
    session = desk_client.post("/v1/sim/sessions", json={"kind": "task", "task": "push_blue",
                                                         "seed": 0}).json()["session"]
    for action, expected in (([0.5, 0.0], "5 finite numbers"), ([0.0, 0.0, 1.5, 0.0, 0.0], "outside")):
        answer = desk_client.post(f"/v1/sim/sessions/{session}/step", json={"action": action})
        assert answer.status_code == 422 and expected in answer.json()["detail"], answer.text


def test_a_push_server_keeps_the_push_world_and_refuses_a_task_name():
    server = _serve(tiny_predictor())
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            sim = client.get("/v1/sim").json()
            assert sim["world"] == "push" and sim["kinds"] == ["task", "episode"]
            assert len(sim["action_low"]) == 2 and "tasks" not in sim
            answer = client.post("/v1/sim/sessions", json={"kind": "task", "task": "push_red", "seed": 0})
            assert answer.status_code == 422 and "only RoboDesk" in answer.json()["detail"]
    finally:
        server.stop()


# ------------------------------------------------------------------ no GL


NO_GL_SERVER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    import httpx
    from test_serve_desk_sessions import _serve, tiny_desk_predictor

    server = _serve(tiny_desk_predictor())
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            print(client.get("/v1/health").status_code)
            print(client.get("/v1/sim").status_code)
            answer = client.post("/v1/sim/sessions", json={{"kind": "task", "task": "push_red"}})
            print(answer.status_code)
            print(answer.json()["detail"])
    finally:
        server.stop()
""")


def test_without_headless_gl_the_server_starts_and_a_session_gets_one_line():
    """MUJOCO_GL names a backend this machine cannot load: the server still serves, and a
    RoboDesk session answers 503 with one line saying what to install."""
    env = {**os.environ, "MUJOCO_GL": "bogus"}
    done = subprocess.run([sys.executable, "-c", NO_GL_SERVER.format(tests=str(TESTS))],
                          capture_output=True, text=True, env=env, cwd=TESTS)
    assert done.returncode == 0, done.stderr[-2000:]
    health, sim, status, detail = done.stdout.strip().splitlines()[-4:]
    assert (health, sim, status) == ("200", "200", "503")
    assert "MUJOCO_GL" in detail and "osmesa" in detail and "\n" not in detail
    assert "Traceback" not in done.stderr


# ------------------------------------------------------------------ the page


def test_the_page_offers_robodesk_tasks_and_drives_in_three_dimensions(desk_server):
    """In a real browser: a task picker instead of held-out episodes, the up/down buttons,
    an instance started, arrow and PageUp keys stepping the world, the model dreaming along."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select
    from test_playground_browser import _browser, _wait

    driver = _browser()
    try:
        driver.get(desk_server.url + "/")
        find = driver.find_element
        _wait(lambda: driver.execute_script("return document.body.dataset.ready === '1'"), "the page to start")
        assert "tiny-robodesk" in find(By.ID, "model-info").text
        picker = Select(find(By.ID, "desk-task"))
        assert [o.get_attribute("value") for o in picker.options] == list(desk_world.TASKS)
        assert not find(By.CSS_SELECTOR, "input[name=kind][value=episode]").is_displayed()
        assert find(By.CSS_SELECTOR, "#pad .raise").is_displayed()
        assert "not solved yet" in find(By.ID, "task-status").text

        picker.select_by_value("open_slide")
        seed = find(By.ID, "seed")
        assert seed.get_attribute("max") == "29"
        seed.clear()
        seed.send_keys("2")
        find(By.ID, "start").click()
        _wait(lambda: "open slide" in find(By.ID, "task-status").text, "the open_slide instance")
        body = find(By.TAG_NAME, "body")
        for steps, key in enumerate((Keys.ARROW_RIGHT, Keys.PAGE_UP), start=2):
            body.send_keys(key)
            _wait(lambda n=steps: find(By.ID, "step-count").text == str(n), f"step {steps}")
        find(By.CSS_SELECTOR, "#pad .lower").click()
        _wait(lambda: find(By.ID, "step-count").text == "4", "a button step down")
        _wait(lambda: len(find(By.ID, "dream-strip").find_elements(By.TAG_NAME, "img")) == 3,
              "the dream of three steps")
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        driver.quit()
