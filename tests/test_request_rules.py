"""The request rules of `maskvit.inference.requests`, once for every door that uses them.

The same bad request is refused in one line, for the same reason, by `Predictor.predict`,
the server (/v1/predict and /v1/plan) and the VP2 adapter; and the server's schemas carry
exactly the config's ranges (`DECODING_RANGES`, `PLAN_RANGES`), so the two cannot drift.
"""

import numpy as np
import pytest
from fastapi.testclient import TestClient
from stand_ins import tiny_predictor

from maskvit.config import DECODING_RANGES, PLAN_RANGES, Range
from maskvit.errors import UserError
from maskvit.inference import requests
from maskvit.integrations.vp2 import MaskViTVP2Model
from maskvit.serve import ServeSettings, create_app
from maskvit.serve.frames import encode_png
from maskvit.serve.schemas import DecodeSettings, PlanSettings


@pytest.fixture(scope="module")
def predictor():
    return tiny_predictor(0)  # 6-frame clips, 2 context frames, 2-D actions within ±0.05


@pytest.fixture(scope="module")
def client(predictor):
    with TestClient(create_app(predictor, ServeSettings(max_plan_samples=16))) as c:
        yield c


def _bounds(field) -> dict:
    """The numeric bounds pydantic enforces on a schema field."""
    out = {}
    for meta in field.metadata:
        for name in ("ge", "gt", "le", "lt"):
            value = getattr(meta, name, None)
            if value is not None:
                out[name] = value
    return out


@pytest.mark.parametrize("schema, name, rule", [
    (DecodeSettings, "steps", DECODING_RANGES["steps"]),
    (DecodeSettings, "temperature", DECODING_RANGES["temperature"]),
    (DecodeSettings, "top_p", DECODING_RANGES["top_p"]),
    (PlanSettings, "decoding_steps", DECODING_RANGES["steps"]),
    (PlanSettings, "temperature", DECODING_RANGES["temperature"]),
    *[(PlanSettings, name, PLAN_RANGES[name]) for name in
      ("samples", "iterations", "horizon", "elite_fraction", "noise_correlation", "last_step_weight")],
])
def test_the_server_schemas_carry_the_configs_ranges(schema, name, rule: Range):
    bounds = _bounds(schema.model_fields[name])
    field = requests.PLAN_DECODING_FIELDS.get(name, name)
    cap = requests.REQUEST_CAPS.get(name, requests.REQUEST_CAPS.get(field))
    expected = rule.schema_bounds()
    if cap is not None:
        expected["le"] = cap
    assert bounds == expected


def test_every_plan_request_setting_is_a_plan_config_field():
    from maskvit.config import PlanConfig

    fields = set(PlanConfig.__dataclass_fields__)
    assert set(requests.PLAN_FIELDS) <= fields
    assert set(PlanSettings.model_fields) - {"seed"} == set(requests.PLAN_FIELDS) | set(
        requests.PLAN_DECODING_FIELDS)


def _frames(b: int, t: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (b, t, 64, 64, 3), dtype=np.uint8)


# Each case: (context frames, num_frames, message the rule gives) for a 6-frame clip.
CLIP_CASES = {
    "too many predicted frames": (2, 5, "exceed the model's 6-frame clips"),
    "no room for context": (6, 1, "at most 5 can be context"),
}


@pytest.mark.parametrize("case", list(CLIP_CASES))
def test_the_predictor_and_the_server_refuse_the_same_clip(predictor, client, case):
    n_context, num, message = CLIP_CASES[case]
    frames = _frames(1, n_context)
    actions = np.zeros((1, n_context + num, 2), np.float32)
    with pytest.raises(UserError, match=message):
        predictor.predict(frames, actions=actions, num_frames=num)
    answer = client.post("/v1/predict", json={
        "context": [[encode_png(f) for f in frames[0]]], "actions": actions.tolist(),
        "num_frames": num})
    assert answer.status_code == 422 and message in answer.json()["detail"]


def test_out_of_bound_actions_are_refused_by_the_server_and_the_vp2_adapter(predictor, client):
    frames = _frames(1, 2)
    actions = np.full((1, 4, 2), 0.5)  # ten times the push world's ±0.05
    answer = client.post("/v1/predict", json={
        "context": [[encode_png(f) for f in frames[0]]], "actions": actions.tolist(),
        "num_frames": 2})
    assert answer.status_code == 422 and "outside the action bounds" in answer.json()["detail"]
    adapter = MaskViTVP2Model(predictor=predictor, action_scale=0.5)
    with pytest.raises(UserError, match="outside the action bounds"):
        adapter({"video": frames / 255.0, "actions": np.ones((1, 3, 2))})


def test_a_plan_request_over_the_servers_cap_or_the_configs_range_is_refused(predictor, client):
    spec = predictor.spec
    with pytest.raises(UserError, match="at most 16"):
        requests.plan_with(spec, {"samples": 17}, requests.Limits(max_plan_samples=16))
    with pytest.raises(UserError, match="samples must be an integer >= 2"):
        requests.plan_with(spec, {"samples": 1})
    png = encode_png(_frames(1, 1)[0, 0])
    answer = client.post("/v1/plan", json={"context": [png], "goal": png, "samples": 1})
    assert answer.status_code == 422 and "samples" in answer.json()["detail"]


def test_a_plan_config_built_from_a_request_keeps_the_models_defaults(predictor):
    config = requests.plan_with(predictor.spec, {"decoding_steps": 3, "temperature": None},
                                requests.Limits(max_batch=4))
    assert config.decoding.steps == 3 and config.decoding.temperature is None
    assert config.samples == predictor.config.plan.samples
    assert config.chunk_size == min(config.samples, 4)


# Each case: a command's --set flag, the same setting in a server request, the reason both give.
FLAG_CASES = {
    "horizon past the clip": ("plan.horizon=5", {"horizon": 5}, "horizon 5 too long"),
    "one sample": ("plan.samples=1", {"samples": 1}, "samples must be an integer >= 2"),
    "mean outside the bounds": ("plan.init_mean=[0.5, 0.0]", {"init_mean": [0.5, 0.0]},
                                "outside the action bounds"),
    "no decoding steps": ("plan.decoding.steps=0", {"decoding_steps": 0}, "steps must be"),
}


@pytest.mark.parametrize("case", list(FLAG_CASES))
def test_the_cli_flags_and_the_server_refuse_the_same_plan_settings(predictor, case):
    flag, asked, message = FLAG_CASES[case]
    with pytest.raises(UserError, match=message):
        requests.config_with_flags(predictor.config, [flag])
    with pytest.raises(UserError, match=message):
        requests.plan_with(predictor.spec, asked)


def test_cli_flags_reach_the_plan_and_the_decoding_through_the_request_rules(predictor):
    config = requests.config_with_flags(predictor.config, ["plan.samples=8", "eval.decoding.steps=3"])
    assert config.plan.samples == 8 and config.eval.decoding.steps == 3
    with pytest.raises(UserError, match="eval.decoding.steps must be"):
        requests.config_with_flags(predictor.config, ["eval.decoding.steps=0"])
