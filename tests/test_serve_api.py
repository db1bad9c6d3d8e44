"""`maskvit serve` over real HTTP: a uvicorn server on a random loopback port per module.

Every endpoint, both transports (JSON with base64 PNG, .npy bodies), every 4xx path, the
token rule, dynamic batching that changes no result (each request equals
`Predictor.predict` alone with its seed), the queue limit (503) and timeouts (504).
A tiny untrained push model keeps it fast; `test_serve_cli.py` runs the real command.
"""

import dataclasses
import json
import threading

import httpx
import numpy as np
import pytest
from stand_ins import tiny_predictor

from maskvit.plan.planner import ModelPlanner
from maskvit.plan.predictor_fn import predictor_fn
from maskvit.serve import ServeSettings, create_app
from maskvit.serve.frames import decode_png, dump_npy, encode_png, load_npy
from maskvit.serve.runner import ThreadedServer

TOKEN = "test-token-0123456789abcdef"
NPY = "application/x-npy"


@pytest.fixture(scope="module")
def predictor():
    return tiny_predictor()


def _serve(predictor, host="127.0.0.1", model="tiny", **settings):
    settings.setdefault("max_wait_ms", 1.0)
    app = create_app(predictor, ServeSettings(host=host, port=0, **settings), model)
    return ThreadedServer(app, host=host).start()


@pytest.fixture(scope="module")
def server(predictor):
    srv = _serve(predictor, max_batch=8, max_wait_ms=5.0, max_videos=4,
                 max_body_bytes=300_000, max_plan_samples=16)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def goal_predictor():
    return tiny_predictor(goal=True)


@pytest.fixture(scope="module")
def goal_client(goal_predictor):
    server = _serve(goal_predictor, max_batch=8, max_wait_ms=5.0)
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c
    server.stop()


def _clip(b=1, tc=2, n=3, seed=0):
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (b, tc, 64, 64, 3), dtype=np.uint8)
    actions = rng.uniform(-0.05, 0.05, (b, tc + n, 2)).astype(np.float32)
    return frames, actions


def _predict_body(frames, actions, **settings):
    return {"context": [[encode_png(f) for f in video] for video in frames],
            "actions": actions.tolist(), **settings}


def _frames_of(answer):
    return np.stack([np.stack([decode_png(f, 64, "answer") for f in video]) for video in answer["frames"]])


# ------------------------------------------------------------------ endpoints


def test_health_and_info(client):
    health = client.get("/v1/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    info = client.get("/v1/info").json()
    assert (info["resolution"], info["clip_frames"], info["context_frames"], info["action_dim"]) == (64, 6, 2, 2)
    assert info["action_low"] == [-0.05, -0.05] and info["action_high"] == [0.05, 0.05]
    assert info["preset"] == "tiny-push" and info["tokens"] == [8, 8] and info["auth"] is False
    assert info["predict_defaults"]["num_frames"] == 4 and info["plan_defaults"]["samples"] == 4
    assert info["limits"]["max_batch"] == 8 and info["limits"]["max_videos"] == 4


def test_info_names_the_model_without_its_path(predictor, tmp_path):
    srv = _serve(predictor, model=tmp_path / "models" / "push64")
    try:
        answer = httpx.get(srv.url + "/v1/info", timeout=30)
        assert answer.json()["model"] == "push64"
        assert str(tmp_path) not in answer.text
    finally:
        srv.stop()


def test_predict_json_equals_predictor_predict(client, predictor):
    frames, actions = _clip(b=2, n=3, seed=1)
    answer = client.post("/v1/predict", json=_predict_body(frames, actions, num_frames=3, seed=11))
    assert answer.status_code == 200, answer.text
    data = answer.json()
    expected = predictor.predict(frames, actions=actions, num_frames=3, seed=11)
    np.testing.assert_array_equal(_frames_of(data), expected)
    assert (data["num_frames"], data["steps"], data["schedule"], data["seed"]) == (3, 3, "cosine", 11)
    assert data["temperature"] == 4.5 and data["top_p"] is None
    assert set(data["timing"]) == {"latency_ms", "queue_ms", "model_ms", "batch_videos", "batch_requests"}


def test_predict_with_goal_and_settings_equals_predictor_predict(goal_client, goal_predictor,
                                                                client):
    frames, actions = _clip(b=1, n=3, seed=2)
    goal = frames[:, 0]
    body = _predict_body(frames, actions, goal=[encode_png(goal[0])], num_frames=3, steps=4,
                         schedule="square", temperature=None, unmask="random", seed=5)
    data = goal_client.post("/v1/predict", json=body).json()
    decoding = dataclasses.replace(goal_predictor.config.eval.decoding, steps=4, schedule="square",
                                   temperature=None, unmask="random")
    expected = goal_predictor.predict(frames, actions=actions, goal_frame=goal, num_frames=3,
                                      decoding=decoding, seed=5)
    np.testing.assert_array_equal(_frames_of(data), expected)
    assert data["temperature"] is None and data["unmask"] == "random"
    # The goal takes the clip's last slot: a shorter prediction, or a model trained without
    # goals, is a one-line 422.
    short = goal_client.post("/v1/predict", json={**body, "num_frames": 2, "actions": actions[:, :4].tolist()})
    assert short.status_code == 422 and "num_frames must be 3" in short.json()["detail"]
    plain = client.post("/v1/predict", json=body)
    assert plain.status_code == 422 and "without goal frames" in plain.json()["detail"]


def test_a_seedless_request_reports_the_seed_that_replays_it(client):
    frames, actions = _clip(n=2, seed=3)
    first = client.post("/v1/predict", json=_predict_body(frames, actions, num_frames=2, seed=None)).json()
    again = client.post("/v1/predict", json=_predict_body(frames, actions, num_frames=2, seed=first["seed"])).json()
    assert first["frames"] == again["frames"]


def test_concurrent_requests_share_a_batch_and_each_equals_its_solo_prediction(predictor):
    requests = [(_clip(b=b, n=3, seed=10 + i), seed) for i, (b, seed) in
                enumerate([(1, 1), (2, 2), (1, 1), (1, 9)])]
    requests[2] = (requests[0][0], 1)  # the same inputs and seed twice in one batch
    answers = [None] * len(requests)
    # The four requests hold 5 videos: the batch waits (an hour if need be) until all are in.
    srv = _serve(predictor, max_batch=5, max_wait_ms=3_600_000.0)

    def send(i):
        (frames, actions), seed = requests[i]
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            answers[i] = c.post("/v1/predict", json=_predict_body(frames, actions, num_frames=3, seed=seed))

    try:
        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        srv.stop()
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    data = [a.json() for a in answers]
    assert all((d["timing"]["batch_requests"], d["timing"]["batch_videos"]) == (4, 5) for d in data)
    for ((frames, actions), seed), d in zip(requests, data, strict=True):
        solo = predictor.predict(frames, actions=actions, num_frames=3, seed=seed)
        # Same codes sampled; another CPU's kernels may round the decoder's floats
        # differently at another batch size, hence one grey level of slack (a different
        # code would change whole 8×8 patches by far more). Bit-equal on the AMD EPYC here.
        got = _frames_of(d).astype(int)
        assert np.abs(got - solo).max() <= 1 and (got != solo).mean() < 0.01
    assert data[0]["frames"] == data[2]["frames"]


def test_predict_npy_body_and_npy_answer(goal_client, goal_predictor):
    frames, actions = _clip(b=2, n=3, seed=4)
    goal = frames[:, :1]
    answer = goal_client.post(
        "/v1/predict", content=dump_npy(np.concatenate([frames, goal], axis=1)),
        params={"actions": json.dumps(actions.tolist()), "goal": "true", "num_frames": 3,
                "seed": 6, "temperature": "null"},
        headers={"Content-Type": NPY, "Accept": NPY})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == NPY
    expected = goal_predictor.predict(frames, actions=actions, goal_frame=goal[:, 0],
                                      num_frames=3, seed=6,
                                      decoding=dataclasses.replace(goal_predictor.config.eval.decoding, temperature=None))
    np.testing.assert_array_equal(load_npy(answer.content), expected)
    assert json.loads(answer.headers["x-maskvit-seed"]) == 6
    assert json.loads(answer.headers["x-maskvit-num-frames"]) == 3


def _plan_inputs(seed=0):
    frames, _ = _clip(b=1, n=1, seed=seed)
    past = np.array([[0.01, -0.02]])
    return frames[0], past, frames[0, 0]


def _expected_plan(predictor, context, past, goal, seed, samples, iterations, horizon, chunk):
    cfg = dataclasses.replace(predictor.config.plan, samples=samples, iterations=iterations,
                              horizon=horizon, chunk_size=chunk, replan_every=min(3, horizon))
    fn = predictor_fn(predictor, cfg.decoding, seed=seed)
    planner = ModelPlanner(fn, cfg, np.full(2, -0.05), np.full(2, 0.05), context=2)
    return planner.plan(context, past, goal, np.random.default_rng(seed))


def test_plan_json_equals_the_model_planner(client, predictor):
    context, past, goal = _plan_inputs(seed=5)
    body = {"context": [encode_png(f) for f in context], "context_actions": past.tolist(),
            "goal": encode_png(goal), "samples": 12, "iterations": 2, "horizon": 3, "seed": 4}
    answer = client.post("/v1/plan", json=body)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    expected = _expected_plan(predictor, context, past, goal, 4, 12, 2, 3, chunk=8)
    np.testing.assert_allclose(data["actions"], expected.actions)
    assert data["cost"] == pytest.approx(expected.cost)
    np.testing.assert_array_equal(np.stack([decode_png(f, 64, "f") for f in data["frames"]]),
                                  expected.predicted)
    assert (data["samples"], data["iterations"], data["horizon"], data["seed"]) == (12, 2, 3, 4)
    assert data["model_calls"] == 4 and len(data["best_costs"]) == 2  # 2 chunks (12 > 8) × 2


def test_plan_from_one_observation_and_npy(client, predictor):
    context, _, goal = _plan_inputs(seed=6)
    answer = client.post("/v1/plan", content=dump_npy(np.stack([context[1], goal])),
                         params={"samples": 4, "iterations": 1, "horizon": 2, "seed": 1},
                         headers={"Content-Type": NPY, "Accept": NPY})
    assert answer.status_code == 200, answer.text
    # one observation: the model's second context frame repeats it, with a zero action
    expected = _expected_plan(predictor, np.stack([context[1], context[1]]), np.zeros((1, 2)),
                              goal, 1, 4, 1, 2, chunk=4)
    np.testing.assert_array_equal(load_npy(answer.content), expected.predicted)
    np.testing.assert_allclose(json.loads(answer.headers["x-maskvit-actions"]), expected.actions)


def test_simulator_sessions(client):
    start = client.post("/v1/sim/sessions", json={"kind": "episode", "seed": 2})
    assert start.status_code == 200, start.text
    data = start.json()
    assert len(data["frames"]) == 2 and len(data["recorded_actions"]) == 30 and data["goal"]
    step = client.post(f"/v1/sim/sessions/{data['session']}/step", json={"action": data["recorded_actions"][1]})
    assert step.status_code == 200 and step.json()["step"] == 2
    decode_png(step.json()["frame"], 64, "frame")
    task = client.post("/v1/sim/sessions", json={"kind": "task", "seed": 3}).json()
    assert task["success"] is False and task["goal_distance"] > 0.1
    assert client.delete(f"/v1/sim/sessions/{task['session']}").status_code == 200
    assert client.post(f"/v1/sim/sessions/{task['session']}/step", json={"action": [0, 0]}).status_code == 404
    keys = client.get("/v1/sim").json()["keys"]
    assert keys["ArrowRight"] == [0.0, 0.05] and keys["ArrowUp"] == [-0.05, 0.0]


# ------------------------------------------------------------------ 4xx


def _good_predict():
    frames, actions = _clip(b=1, n=2, seed=7)
    return _predict_body(frames, actions, num_frames=2)


def _bad(change):
    body = _good_predict()
    change(body)
    return body


PNG_OF_32 = encode_png(np.zeros((32, 32, 3), np.uint8))


def _png_bomb(side: int = 100_000) -> str:
    """A tiny PNG declaring a side × side RGB image (its pixels would be 30 GB)."""
    import base64
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(1000)))
           + chunk(b"IEND", b""))
    return base64.b64encode(png).decode()


BAD_PREDICT_JSON = {
    "bad base64": (_bad(lambda b: b["context"][0].__setitem__(0, "not base64!!")), 422, "not valid base64"),
    "not a png": (_bad(lambda b: b["context"][0].__setitem__(0, "aGVsbG8=")), 422, "not a PNG"),
    "wrong image size": (_bad(lambda b: b["context"][0].__setitem__(0, PNG_OF_32)), 422, "32×32"),
    "png bomb": (_bad(lambda b: b["context"][0].__setitem__(1, _png_bomb())), 422,
                 "context[0][1]: image is 100000×100000, too large; this model takes 64×64"),
    "wrong action shape": (_bad(lambda b: b.update(actions=[[[0.0, 0.0]] * 3])), 422, "shape (1, 4, 2)"),
    "ragged actions": (_bad(lambda b: b.update(actions=[[[0.0, 0.0], [0.0]]])), 422, "rectangular"),
    "NaN action": (_bad(lambda b: b["actions"][0][1].__setitem__(0, float("nan"))), 422, "finite"),
    "infinite action": (_bad(lambda b: b["actions"][0][1].__setitem__(1, float("inf"))), 422, "finite"),
    "action out of bounds": (_bad(lambda b: b["actions"][0][0].__setitem__(0, 0.3)), 422, "outside the action bounds"),
    "missing actions": (_bad(lambda b: b.pop("actions")), 422, "action-conditioned"),
    "too many predicted frames": (_bad(lambda b: b.update(num_frames=5)), 422, "exceed the model's 6-frame clips"),
    "too many context frames": (_bad(lambda b: b["context"][0].extend(b["context"][0] * 2)), 422, "at most 5 can be context"),
    "too many videos": (_bad(lambda b: b.update(context=b["context"] * 5)), 422, "at most 4"),
    "uneven videos": (_bad(lambda b: b.update(context=[b["context"][0], b["context"][0][:1]])), 422, "same number"),
    "goal count": (_bad(lambda b: b.update(goal=[PNG_OF_32, PNG_OF_32])), 422, "one goal frame per video"),
    "unknown field": (_bad(lambda b: b.update(stpes=3)), 422, "stpes: unknown field"),
    "bad schedule": (_bad(lambda b: b.update(schedule="zigzag")), 422, "schedule"),
    "negative seed": (_bad(lambda b: b.update(seed=-1)), 422, "seed"),
    "steps over limit": (_bad(lambda b: b.update(steps=1000)), 422, "steps"),
    "no context": (_bad(lambda b: b.pop("context")), 422, "context: Field required"),
}


@pytest.mark.parametrize("name", list(BAD_PREDICT_JSON))
def test_bad_predict_requests_get_a_one_line_4xx(client, name):
    body, status, message = BAD_PREDICT_JSON[name]
    answer = client.post("/v1/predict", content=json.dumps(body), headers={"Content-Type": "application/json"})
    _assert_one_line(answer, status, message)


def _assert_one_line(answer, status, message):
    assert answer.status_code == status, answer.text
    detail = answer.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and "Traceback" not in detail
    assert message in detail, detail


def _pickled_npy() -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return buffer.getvalue()


def _npy_with(array, **params):
    return {"content": dump_npy(array) if isinstance(array, np.ndarray) else array,
            "params": params, "headers": {"Content-Type": NPY}}


def _npy_declaring(shape, data_bytes=100) -> bytes:
    """A .npy header declaring uint8 `shape`, followed by only `data_bytes` bytes."""
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "|u1", "fortran_order": False,
                                                   "shape": shape})
    return buffer.getvalue() + bytes(data_bytes)


FRAMES = np.zeros((1, 2, 64, 64, 3), np.uint8)
ACTIONS = json.dumps(np.zeros((1, 4, 2)).tolist())
DEEP = "[" * 3000 + "]" * 3000  # a parser that recurses per level runs out of stack
PLAN_NPY = dump_npy(np.zeros((2, 64, 64, 3), np.uint8))
BAD_OTHER = {
    "invalid JSON": ("/v1/predict", {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
                     422, "JSON"),
    "unsupported type": ("/v1/predict", {"content": b"x", "headers": {"Content-Type": "text/plain"}}, 415, "text/plain"),
    "body too large": ("/v1/predict", {"content": b"0" * 400_000, "headers": {"Content-Type": "application/json"}},
                       413, "over the limit"),
    "npy garbage": ("/v1/predict", _npy_with(b"garbage"), 422, "not a readable .npy"),
    "npy pickle": ("/v1/predict", _npy_with(_pickled_npy()), 422, "not a readable .npy"),
    "npy float frames": ("/v1/predict", _npy_with(FRAMES.astype(np.float32), actions=ACTIONS), 422, "uint8"),
    "npy wrong shape": ("/v1/predict", _npy_with(FRAMES[0], actions=ACTIONS), 422, "(B, T, 64, 64, 3)"),
    "npy bad actions JSON": ("/v1/predict", _npy_with(FRAMES, actions="[[1,"), 422, "not valid JSON"),
    "npy NaN actions": ("/v1/predict", _npy_with(FRAMES, actions="[[[NaN, 0]]]", num_frames=2), 422, "shape"),
    "npy unknown setting": ("/v1/predict", _npy_with(FRAMES, actions=ACTIONS, colour="red"), 422, "unknown field"),
    "npy deeply nested actions": ("/v1/predict", _npy_with(FRAMES, actions=DEEP), 422,
                                  "actions: nested 3000 levels deep"),
    "json deeply nested actions": ("/v1/predict", {"content": '{"context": [], "actions": ' + DEEP + "}",
                                                   "headers": {"Content-Type": "application/json"}},
                                   422, "recursion limit"),
    "npy declaring 2.4 TB": ("/v1/predict", _npy_with(_npy_declaring((200_000, 1000, 64, 64, 3))), 422,
                             "header declares shape (200000, 1000, 64, 64, 3) of uint8 "
                             "(2,457,600,000,000 bytes) but 100 bytes follow it"),
    "npy declaring fewer bytes": ("/v1/predict", _npy_with(_npy_declaring((1, 2, 64, 64, 3), 10**5)), 422,
                                  "(24,576 bytes) but 100,000 bytes follow it"),
    "plan npy deeply nested context_actions": ("/v1/plan", _npy_with(PLAN_NPY, context_actions=DEEP), 422,
                                               "context_actions: nested 3000 levels deep"),
    "plan npy deeply nested init_std": ("/v1/plan", _npy_with(PLAN_NPY, init_std=DEEP), 422,
                                        "init_std: nested 3000 levels deep"),
    "plan horizon too long": ("/v1/plan", {"json": {"context": [PNG_OF_32], "goal": PNG_OF_32}}, 422, "32×32"),
    "plan too many samples": ("/v1/plan", {"json": {"context": [encode_png(FRAMES[0, 0])], "goal": encode_png(FRAMES[0, 0]),
                                                     "samples": 17}}, 422, "at most 16"),
    "plan long horizon": ("/v1/plan", {"json": {"context": [encode_png(FRAMES[0, 0])], "goal": encode_png(FRAMES[0, 0]),
                                                 "horizon": 5}}, 422, "horizon 5 too long"),
    "plan NaN context action": ("/v1/plan", {"content": json.dumps(
        {"context": [encode_png(FRAMES[0, 0])] * 2, "goal": encode_png(FRAMES[0, 0]),
         "context_actions": [[float("nan"), 0.0]]}), "headers": {"Content-Type": "application/json"}}, 422, "finite"),
    "plan bad init_std": ("/v1/plan", {"json": {"context": [encode_png(FRAMES[0, 0])], "goal": encode_png(FRAMES[0, 0]),
                                                 "init_std": [0.05]}}, 422, "init_std"),
    "plan NaN init_mean": ("/v1/plan", {"content": json.dumps(
        {"context": [encode_png(FRAMES[0, 0])], "goal": encode_png(FRAMES[0, 0]), "init_mean": [float("nan"), 0.0]}),
        "headers": {"Content-Type": "application/json"}}, 422, "init_mean.0: Input should be a finite number"),
    "plan without goal": ("/v1/plan", {"json": {"context": [encode_png(FRAMES[0, 0])]}}, 422, "goal: Field required"),
    "sim action out of bounds": ("/v1/sim/sessions/none/step", {"json": {"action": [0.5, 0.0]}}, 422, "outside the bounds"),
    "sim NaN action": ("/v1/sim/sessions/none/step", {"content": '{"action": [NaN, 0]}',
                                                      "headers": {"Content-Type": "application/json"}}, 422, "finite"),
    "sim unknown session": ("/v1/sim/sessions/none/step", {"json": {"action": [0.0, 0.0]}}, 404, "no such"),
    "sim bad kind": ("/v1/sim/sessions", {"json": {"kind": "mars"}}, 422, "kind"),
    "unknown path": ("/v1/nothing", {"json": {}}, 404, "Not Found"),
}


@pytest.mark.parametrize("name", list(BAD_OTHER))
def test_other_bad_requests_get_a_one_line_4xx(client, name):
    path, kwargs, status, message = BAD_OTHER[name]
    _assert_one_line(client.post(path, **kwargs), status, message)


def _non_finite_requests(text: str) -> dict:
    """Requests carrying the JSON number `text` (NaN, Infinity, 1e400) where actions enter."""
    png = encode_png(FRAMES[0, 0])
    json_type = {"Content-Type": "application/json"}
    actions = f"[[[{text}, 0], [0, 0], [0, 0], [0, 0]]]"
    return {
        "predict JSON actions": ("/v1/predict", {"headers": json_type, "content":
            f'{{"context": [["{png}", "{png}"]], "actions": {actions}, "num_frames": 2}}'},
            "actions[0, 0, 0] is", "actions must be finite"),
        "predict .npy actions": ("/v1/predict", _npy_with(FRAMES, actions=actions, num_frames=2),
                                 "actions[0, 0, 0] is", "actions must be finite"),
        "plan JSON context_actions": ("/v1/plan", {"headers": json_type, "content":
            f'{{"context": ["{png}", "{png}"], "goal": "{png}", "context_actions": [[{text}, 0]]}}'},
            "context_actions[0, 0] is", "actions must be finite"),
        "plan .npy context_actions": ("/v1/plan", _npy_with(dump_npy(np.zeros((3, 64, 64, 3), np.uint8)),
                                                            context_actions=f"[[{text}, 0]]"),
                                      "context_actions[0, 0] is", "actions must be finite"),
        "plan .npy init_mean": ("/v1/plan", _npy_with(PLAN_NPY, init_mean=f"[{text}, 0]"),
                                "init_mean.0:", "finite number"),
        "sim step action": ("/v1/sim/sessions/none/step", {"headers": json_type,
                                                           "content": f'{{"action": [{text}, 0]}}'},
                            "action: must be 2 finite numbers", ""),
    }


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "1e400"])
@pytest.mark.parametrize("where", list(_non_finite_requests("NaN")))
def test_non_finite_actions_are_refused_in_one_line(client, where, text):
    path, kwargs, start, end = _non_finite_requests(text)[where]
    answer = client.post(path, **kwargs)
    _assert_one_line(answer, 422, start)
    assert end in answer.json()["detail"]


def test_frames_cannot_carry_non_finite_values(client):
    """Frames enter as PNG or uint8 .npy only; float frames (where NaN could hide) are refused."""
    frames = FRAMES.astype(np.float32)
    frames[0, 0, 0, 0, 0] = np.nan
    answer = client.post("/v1/predict", **_npy_with(frames, actions=ACTIONS))
    _assert_one_line(answer, 422, "body: frames must be uint8; got float32")


def test_the_server_is_healthy_after_bad_input(client):
    assert client.get("/v1/health").json()["status"] == "ok"


# ------------------------------------------------------------------ auth, limits, CORS


def test_token_is_required_when_configured(predictor):
    srv = _serve(predictor, token=TOKEN)
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            assert c.get("/v1/health").status_code == 200  # liveness stays open
            _assert_one_line(c.get("/v1/info"), 401, "missing bearer token")
            _assert_one_line(c.get("/v1/info", headers={"Authorization": "Bearer " + TOKEN[:-1] + "X"}),
                             401, "wrong bearer token")
            _assert_one_line(c.get("/v1/info", headers={"Authorization": "Basic abc"}), 401, "malformed")
            _assert_one_line(c.post("/v1/predict", json=_good_predict()), 401, "missing bearer token")
            assert c.get("/v1/info").headers["www-authenticate"] == "Bearer"
            good = {"Authorization": "Bearer " + TOKEN}
            assert c.get("/v1/info", headers=good).json()["auth"] is True
            assert c.post("/v1/predict", json=_good_predict(), headers=good).status_code == 200
    finally:
        srv.stop()


def test_the_token_is_compared_in_constant_time(monkeypatch):
    import hmac

    from maskvit.serve import refusals

    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(refusals.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    with pytest.raises(refusals.Unauthorized):
        refusals.check_bearer("Bearer nope", TOKEN)
    refusals.check_bearer("Bearer " + TOKEN, TOKEN)
    assert calls == [(b"nope", TOKEN.encode()), (TOKEN.encode(), TOKEN.encode())]


def test_binding_all_interfaces_needs_a_token(predictor, tmp_path, capsys):
    from maskvit.cli import main
    from maskvit.errors import UserError

    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "--token-file" in capsys.readouterr().err
    with pytest.raises(UserError, match="token"):
        create_app(predictor, ServeSettings(host="0.0.0.0"))
    (tmp_path / "short").write_text("abc\n")
    assert main(["serve", "--host", "0.0.0.0", "--token-file", str(tmp_path / "short")]) == 2
    assert "at least 16" in capsys.readouterr().err
    srv = _serve(predictor, host="0.0.0.0", token=TOKEN)  # reached here through loopback
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            _assert_one_line(c.post("/v1/predict", json=_good_predict()), 401, "missing bearer token")
            assert c.get("/v1/info", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    finally:
        srv.stop()


class ModelGate:
    """Holds a predictor's model at the first decoding step of every batch of `videos`
    videos until `release` is set, and counts the steps such batches complete: a model
    that is slow exactly when the test says, without sleeping."""

    def __init__(self, predictor, videos: int) -> None:
        self.videos = videos
        self.entered, self.release = threading.Event(), threading.Event()
        self.steps = 0
        predictor.transformer.register_forward_pre_hook(self._hold)
        predictor.transformer.register_forward_hook(self._count)

    def _hold(self, module, args):
        if args[0].shape[0] == self.videos and not self.release.is_set():
            self.entered.set()
            assert self.release.wait(60), "the test never released the model"

    def _count(self, module, args, output):
        if args[0].shape[0] == self.videos:
            self.steps += 1


def test_a_full_queue_answers_503_with_retry_after():
    predictor = tiny_predictor()
    gate = ModelGate(predictor, videos=1)
    srv = _serve(predictor, queue_limit=1, timeout_s=60.0)
    try:
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            first = {}
            waiting = threading.Thread(target=lambda: first.update(r=c.post("/v1/predict", json=_good_predict())))
            waiting.start()
            assert gate.entered.wait(60)  # the first request is on the model
            busy = c.post("/v1/predict", json=_good_predict())
            _assert_one_line(busy, 503, "server busy")
            assert busy.headers["retry-after"] == "1"
            gate.release.set()
            waiting.join()
            assert first["r"].status_code == 200  # the admitted one still finishes
    finally:
        gate.release.set()
        srv.stop()


STEPS = 12


@pytest.mark.parametrize("endpoint", ["predict", "plan"])
def test_a_timed_out_request_frees_the_model_for_the_next_one(endpoint):
    """504, then the abandoned batch stops at its next decoding step instead of running all
    its steps, and a small request behind it is answered."""
    predictor = tiny_predictor()
    if endpoint == "predict":
        frames, actions = _clip(b=2, n=2, seed=8)
        slow = ("/v1/predict", _predict_body(frames, actions, num_frames=2, steps=STEPS), 2)
    else:
        context, past, goal = _plan_inputs(seed=8)
        slow = ("/v1/plan", {"context": [encode_png(f) for f in context], "context_actions": past.tolist(),
                             "goal": encode_png(goal), "samples": 3, "iterations": 1, "horizon": 2,
                             "decoding_steps": STEPS}, 3)
    path, body, videos = slow
    gate = ModelGate(predictor, videos=videos)
    srv = _serve(predictor, timeout_s=2.0)
    try:
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            _assert_one_line(c.post(path, json=body), 504, "did not finish within 2 s")
            assert gate.entered.is_set()  # it timed out on the model, not in the queue
            gate.release.set()
            small, small_actions = _clip(b=1, n=2, seed=9)
            answer = c.post("/v1/predict", json=_predict_body(small, small_actions, num_frames=2, seed=3))
            assert answer.status_code == 200, answer.text  # its batch ran after the abandoned one
        expected = predictor.predict(small, actions=small_actions, num_frames=2, seed=3)
        np.testing.assert_array_equal(_frames_of(answer.json()), expected)
        assert gate.steps == 0  # stopped at the step it was held in, not after all 12
    finally:
        gate.release.set()
        srv.stop()


def test_a_body_that_stops_arriving_answers_408(predictor):
    import socket

    srv = _serve(predictor, read_timeout_s=0.3)
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as conn:
            conn.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 1000\r\n\r\n{\"context\": ")
            chunks = []
            while chunk := conn.recv(4096):  # the answer, then the server closes
                chunks.append(chunk)
            answer = b"".join(chunks).decode()
        assert answer.startswith("HTTP/1.1 408") and "not received within 0.3 s" in answer
    finally:
        srv.stop()


@pytest.mark.parametrize("transfer", ["chunked", "content-length"])
def test_an_oversized_upload_reads_its_413_not_a_reset(server, client, transfer):
    """A client sending 16 MB against a 300 kB limit finishes sending, then reads the
    413: the server answers once the limit is passed and discards the rest before it
    closes, where closing at once made the client's sending fail with a reset."""
    import socket

    total, piece = 16 * 2**20, b"0" * 2**16
    head = b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += (b"Transfer-Encoding: chunked\r\n\r\n" if transfer == "chunked"
             else b"Content-Length: %d\r\n\r\n" % total)
    framed = b"%x\r\n%s\r\n" % (len(piece), piece) if transfer == "chunked" else piece
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as conn:
        conn.sendall(head)
        for _ in range(total // len(piece)):
            conn.sendall(framed)  # an OSError here (reset, broken pipe) fails the test
        if transfer == "chunked":
            conn.sendall(b"0\r\n\r\n")
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    answer = b"".join(chunks).decode()
    assert answer.startswith("HTTP/1.1 413"), answer
    assert "request body over the limit of 300000 bytes" in answer
    assert client.get("/v1/health").status_code == 200


def test_no_cors_unless_asked_for(client, predictor):
    preflight = {"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"}
    assert "access-control-allow-origin" not in client.options("/v1/predict", headers=preflight).headers
    assert "access-control-allow-origin" not in client.get("/v1/health", headers=preflight).headers
    srv = _serve(predictor, cors_origins=("https://elsewhere.example",))
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            answer = c.options("/v1/predict", headers=preflight)
            assert answer.headers["access-control-allow-origin"] == "https://elsewhere.example"
    finally:
        srv.stop()


# ------------------------------------------------------------------ documents and pages


def test_openapi_lists_every_field_with_a_description(client):
    spec = client.get("/openapi.json").json()
    for path in ("/v1/predict", "/v1/plan", "/v1/health", "/v1/info", "/v1/sim/sessions"):
        assert path in spec["paths"], path
    schemas = spec["components"]["schemas"]
    for name in ("PredictRequest", "PredictResponse", "PlanRequest", "PlanResponse", "Info", "Health", "Timing"):
        for field, prop in schemas[name]["properties"].items():
            assert prop.get("description"), f"{name}.{field} has no description"
    predict = spec["paths"]["/v1/predict"]["post"]
    assert set(predict["requestBody"]["content"]) == {"application/json", NPY}
    assert {"actions", "goal", "seed", "num_frames"} <= {p["name"] for p in predict["parameters"]}
    page = client.get("/docs")
    assert page.status_code == 200 and "cdn" not in page.text.lower()
    for name in ("PredictRequest", "PlanRequest"):
        for field in schemas[name]["properties"]:
            assert f"<code>{field}</code>" in page.text, field


def test_the_playground_is_served_from_the_package(client):
    from importlib import resources

    page = client.get("/")
    assert page.status_code == 200 and "MaskViT playground" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/playground.js", "/playground.css", "/docs.css"):
        answer = client.get(asset)
        assert answer.status_code == 200 and len(answer.text) > 100
        assert "http://" not in answer.text and "https://" not in answer.text  # nothing fetched elsewhere
    static = resources.files("maskvit.serve") / "static"
    assert {"index.html", "playground.js", "playground.css", "docs.css"} <= {p.name for p in static.iterdir()}
