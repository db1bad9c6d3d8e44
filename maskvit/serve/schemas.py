"""The JSON shapes of the API, with a description on every field (the OpenAPI page).

The settings' ranges are not written here: `ranged` generates each field's bounds from
`maskvit.config`'s `DECODING_RANGES` / `PLAN_RANGES` (the config's own checks) and the
request caps of `maskvit.inference.requests`, so the schema and the config cannot drift
(tests/test_request_rules.py). What depends on the model (frame counts against its clip,
action widths and bounds, image sizes) is checked by `maskvit.inference.requests` before
any work. Unknown fields are refused, so a misspelt setting is an error instead of being
silently ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from maskvit.config import DECODING_RANGES, PLAN_RANGES
from maskvit.inference.requests import PLAN_DECODING_FIELDS, REQUEST_CAPS
from maskvit.model.decoding import SCHEDULES
from maskvit.plan.planner import COSTS, LATENT_COSTS

Schedule = Literal[tuple(SCHEDULES)]  # type: ignore[valid-type]
Finite = Annotated[float, Field(allow_inf_nan=False)]
SEED_RANGE = {"ge": 0, "le": 2**63 - 1}  # torch.Generator.manual_seed takes up to 64 bits


def ranged(name: str, description: str, default: object = None) -> Any:
    """A settings field whose bounds come from the config's range of `name` (a request's
    name for a plan's decoding setting maps to its `DecodingConfig` field) and its cap."""
    field = PLAN_DECODING_FIELDS.get(name, name)
    rule = PLAN_RANGES.get(name) or DECODING_RANGES.get(field)
    bounds = dict(rule.schema_bounds()) if rule is not None else {}
    cap = REQUEST_CAPS.get(name, REQUEST_CAPS.get(field))
    if cap is not None:
        bounds["le"] = cap
    if rule is not None and not rule.integer:
        bounds["allow_inf_nan"] = False
    return Field(default, description=description, **bounds)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DecodeSettings(_Strict):
    """Decoding settings of /v1/predict; omitted ones take the model preset's `eval` values."""

    num_frames: int | None = Field(None, ge=1, le=REQUEST_CAPS["num_frames"], description=(
        "frames to predict after the context (default: the preset's predicted frames, "
        "fewer if the clip is shorter); context + num_frames (+1 with a goal) must fit the "
        "model's clip"))
    steps: int | None = ranged("steps", "iterative decoding steps (forward passes); default: "
                                        "the preset's")
    schedule: Schedule | None = Field(None, description="mask schedule; default: the preset's")
    temperature: float | None = ranged("temperature", (
        "Gumbel noise temperature of the confidence ranking; omit for the preset's value, "
        "null or 0 for none"))
    top_p: float | None = ranged("top_p", "nucleus sampling mass; omit for the preset's value, "
                                          "null for none")
    unmask: Literal["confidence", "random"] = Field(
        "confidence", description="which tokens to keep each step: the most confident "
                                  "(MaskGIT) or random ones")
    seed: int | None = Field(0, **SEED_RANGE, description=(
        "sampling seed; the same seed and inputs give the same frames whatever else the "
        "server is doing; null: the server picks one and returns it"))


class PredictRequest(DecodeSettings):
    """POST /v1/predict as JSON: B videos' context frames, their actions and goal frames."""

    context: list[list[str]] = Field(..., min_length=1, description=(
        "B videos × Tc context frames, each a base64 PNG (or data:image/png;base64 URL) "
        "of the model's resolution; the same Tc for every video"))
    actions: list[list[list[float]]] | None = Field(None, description=(
        "B × (Tc + num_frames) × A actions for an action-conditioned model: actions[b][t] "
        "leads from frame t to frame t + 1 (the last one is unused); finite and within "
        "the model's action bounds (GET /v1/info)"))
    goal: list[str] | None = Field(None, description=(
        "optional goal frame per video (B base64 PNGs), placed after the predicted frames"))


class Timing(_Strict):
    latency_ms: float = Field(..., description="time the server spent on the request")
    queue_ms: float = Field(..., description="time queued for the model, batching wait included "
                                             "(summed over a plan's prediction batches)")
    model_ms: float = Field(..., description="time its batch spent on the model (summed over a "
                                             "plan's prediction batches)")
    batch_videos: int = Field(..., description="videos in the model batch this request ran in "
                                               "(its largest batch, for a plan)")
    batch_requests: int = Field(..., description="requests sharing that batch")


class PredictResponse(_Strict):
    """The predicted frames and the settings they were made with."""

    frames: list[list[str]] = Field(..., description="B videos × num_frames predicted frames, "
                                                     "base64 PNG")
    num_frames: int = Field(..., description="frames predicted per video")
    steps: int = Field(..., description="decoding steps used")
    schedule: str = Field(..., description="mask schedule used")
    temperature: float | None = Field(..., description="temperature used (null: none)")
    top_p: float | None = Field(..., description="top-p used (null: none)")
    unmask: str = Field(..., description="unmasking rule used")
    seed: int = Field(..., description="seed used (replay the request with it)")
    timing: Timing = Field(..., description="where the time went")


class PlanSettings(_Strict):
    """CEM settings of /v1/plan (paper Table 5); omitted ones take the model preset's `plan`."""

    samples: int | None = ranged("samples", "action sequences per CEM iteration (M)")
    iterations: int | None = ranged("iterations", "CEM iterations (K)")
    horizon: int | None = ranged("horizon", "planned actions (H); context + H must fit the "
                                            "model's clip")
    elite_fraction: float | None = ranged("elite_fraction", "fraction of samples refit as elites")
    noise_correlation: float | None = ranged("noise_correlation",
                                             "β of the time-correlated sampling noise")
    last_step_weight: float | None = ranged("last_step_weight",
                                            "cost weight of the last step (others 1)")
    decoding_steps: int | None = ranged("decoding_steps", "decoding steps per prediction")
    schedule: Schedule | None = Field(None, description="mask schedule of the predictions")
    temperature: float | None = ranged("temperature", (
        "Gumbel temperature of the predictions; omit for the preset's eval value, null for none"))
    # The server's batcher returns frames, so the latent costs are not offered here.
    cost: Literal[tuple(c for c in COSTS if c not in LATENT_COSTS)] | None = Field(None, description=(  # type: ignore[valid-type]
        "pixel_l2: Σ_i c_i‖frame_i − goal‖² (paper); final_pixel_l2: last frame only"))
    init_mean: list[Finite] | None = Field(None, description="initial sampling mean per action "
                                                            "dimension (A numbers)")
    init_std: list[Finite] | None = Field(None, description="initial sampling std per action "
                                                           "dimension (A positive numbers)")
    seed: int | None = Field(0, **SEED_RANGE, description=(
        "seed of the CEM sampling and of the predictions; null: the server picks one"))


class PlanRequest(PlanSettings):
    """POST /v1/plan as JSON: the latest observations, the actions between them, a goal."""

    context: list[str] = Field(..., min_length=1, description=(
        "the latest observations, oldest first, base64 PNGs (1 to Tc frames; fewer than "
        "Tc repeat the first, as if the robot had stood still)"))
    context_actions: list[list[float]] | None = Field(None, description=(
        "the len(context) − 1 actions taken between those observations (default zeros)"))
    goal: str = Field(..., description="goal image, base64 PNG of the model's resolution")


class PlanResponse(_Strict):
    """The chosen action sequence, the frames the model predicts for it, and its cost."""

    actions: list[list[float]] = Field(..., description="H × A chosen actions; actions[0] is "
                                                        "the one to execute now")
    frames: list[str] = Field(..., description="H frames predicted for the chosen actions "
                                               "(base64 PNG)")
    cost: float = Field(..., description="cost of the chosen sequence (lower is better)")
    best_costs: list[float] = Field(..., description="lowest cost of each CEM iteration")
    elite_costs: list[float] = Field(..., description="mean elite cost of each CEM iteration")
    samples: int = Field(..., description="M used")
    iterations: int = Field(..., description="K used")
    horizon: int = Field(..., description="H used")
    seed: int = Field(..., description="seed used")
    model_calls: int = Field(..., description="prediction batches the plan sent to the model")
    timing: Timing = Field(..., description="where the time went")


class Health(_Strict):
    status: Literal["ok", "stopping"] = Field(..., description="ok while serving")
    queued: int = Field(..., description="prediction jobs waiting for the model")
    in_flight: int = Field(..., description="requests admitted and not yet answered")
    batches: int = Field(..., description="model batches run since start")
    uptime_s: float = Field(..., description="seconds since start")


class Info(_Strict):
    model: str = Field(..., description="the model's bundle or run directory")
    preset: str = Field(..., description="the config preset's name")
    resolution: int = Field(..., description="frame height and width in pixels")
    clip_frames: int = Field(..., description="frames per clip the transformer was built for")
    context_frames: int = Field(..., description="context frames of the preset's protocol")
    tokens: list[int] = Field(..., description="token grid per frame, [h, w]")
    codebook_size: int = Field(..., description="tokenizer codebook entries")
    action_dim: int = Field(..., description="action width A (0: not action-conditioned)")
    goal_conditioned: bool = Field(
        False, description="whether /v1/predict takes a goal frame (it fills the clip's last slot)")
    action_low: list[float] = Field(..., description="lowest accepted action per dimension")
    action_high: list[float] = Field(..., description="highest accepted action per dimension")
    device: str = Field(..., description="where the model runs")
    precision: str = Field(..., description="fp32 or bf16")
    predict_defaults: dict = Field(..., description="decoding settings used when omitted")
    plan_defaults: dict = Field(..., description="CEM settings used when omitted")
    limits: dict = Field(..., description="request limits of this server")
    auth: bool = Field(..., description="whether /v1 endpoints need a bearer token")
    playground: bool = Field(..., description="whether the playground and simulator endpoints are on")


class ErrorBody(BaseModel):
    detail: str = Field(..., description="one line saying what was wrong")


class StartSession(_Strict):
    """A playground simulator session to start (/v1/sim/sessions)."""

    kind: str = Field("task", description="task: a push task with a goal image rendered by the "
                                          "simulator, or a held-out RoboDesk benchmark instance; "
                                          "episode: a held-out recorded push episode")
    seed: int = Field(0, ge=0, description="push task seed, held-out episode index, or RoboDesk "
                                           "instance index")
    task: str | None = Field(None, description="RoboDesk only: the task, e.g. push_red (GET /v1/sim "
                                               "lists them)")


class StepSession(_Strict):
    """One action for a playground simulator session to execute."""

    action: list[float] = Field(..., description="the action to execute, e.g. [dx, dy] in metres")
