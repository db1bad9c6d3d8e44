"""Configuration: one dataclass per component, YAML presets, dotted overrides.

A preset is a YAML file in `maskvit/presets/` whose sections mirror `Config`'s fields.
`load_preset("bair64", overrides=["transformer.depth=4"])` returns a validated `Config`;
unknown keys, wrong types and values out of range raise a one-line `UserError` naming the
key and the valid choices or range. All range checks live in `validate` (one section
each) and `check_protocol` (eval / plan frame counts against the transformer).

Facts are written once: the transformer's codebook size and token grid, the data
section's frame size and action size, the eval frame counts and planning's temperature /
top-p are derived when a `Config` is built, and checked there when given anyway
(`maskvit.config_derive`). Decoding settings are one `DecodingConfig` per use
(`eval.decoding`, `plan.decoding`); their old flat spellings (`eval.decoding_steps`, ...)
are still read (`maskvit.config_derive.upgrade`).
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from maskvit.atomic import atomic_write_text
from maskvit.config_derive import current_key, derive, strip_derived, upgrade
from maskvit.errors import UserError

Schedule = Literal["cosine", "square", "cubic", "exponential", "linear", "sqrt"]
Unmask = Literal["confidence", "random"]


@dataclass(frozen=True)
class DecodingConfig:
    """How iterative decoding fills masked tokens (paper §3.4): one object, passed whole.

    Built once (the `eval` or `plan` section, or a request's settings) and handed down to
    `maskvit.model.decoding.iterative_decode`, so a new setting is added here and nowhere
    else. Frozen: it is hashable (the server batches requests by it) and never changes
    under a decoder that holds it.
    """

    steps: int = 12  # T forward passes
    schedule: Schedule = "cosine"  # γ, the fraction still masked after each step
    temperature: float | None = 4.5  # Gumbel noise on the confidences; None = none ("-")
    top_p: float | None = None  # nucleus sampling; None = off
    unmask: Unmask = "confidence"  # which samples to keep: most confident, or random


@dataclass
class TokenizerConfig:
    """Per-frame VQ-GAN (paper §3.1, Table 4 'VQ-GAN' rows)."""

    resolution: int = 64  # frames are resolution × resolution × 3
    downsample: int = 4  # frame side / token-grid side (4: 64→16, 16: 256→16)
    channels: int = 128  # base channel width of encoder and decoder
    num_res_blocks: int = 2  # residual blocks per resolution level
    codebook_size: int = 1024  # K
    code_dim: int = 256  # n_z
    quantizer: Literal["cosine", "ema"] = "cosine"  # l2-normalised codes or EMA updates
    commitment_weight: float = 0.25
    dead_code_threshold: float = 1.0  # codes used fewer times than this get restarted
    usage_decay: float = 0.99  # moving average of code use per step (restart bookkeeping)
    l1_weight: float = 1.0
    l2_weight: float = 0.0
    perceptual_weight: float = 1.0  # > 0 needs the LPIPS (VGG16) weights: refused without
    disc_weight: float = 0.8
    disc_start: int | None = None  # step at which the GAN loss starts; None = off ("-")
    disc_channels: int = 64
    disc_layers: int = 3
    # Augmentation of the tokenizer's training frames (§4.2, KITTI); never of validation
    # frames nor of the transformer stage. Random resized crop: side fraction in
    # augment_crop; brightness/contrast/saturation factors in [1 - j, 1 + j].
    augment: bool = False
    augment_crop: tuple[float, float] = (0.8, 1.0)
    augment_jitter: float = 0.2
    # Training frames that show a rare task event appear this many times per epoch (1: as
    # often as the data has them). Events: RoboDesk's lit button lights (a 36-pixel light on
    # ~7 % of frames, which an 8×8 tokenizer erased while it learned the rest; RESULTS.md).
    event_frame_repeat: int = 1
    # Pixel losses weighted per pixel by 1 + salience_weight × |frame − the training data's
    # median frame| (each frame's weights scaled to mean 1): what moves or lights up (the
    # arm, objects, a lit light) counts more than the static scene. 0: plain losses.
    salience_weight: float = 0.0

    @property
    def token_grid(self) -> int:
        return self.resolution // self.downsample


@dataclass
class TransformerConfig:
    """Bidirectional window transformer (paper §3.3, Table 4 'Transformer' rows)."""

    num_frames: int = 16  # T: context + predicted frames in one clip
    context_frames: int = 1  # T_c (default protocol; any frames may be given as context)
    # Derived from the tokenizer section (maskvit.config_derive); a value given must agree.
    tokens_h: int = 16  # h = tokenizer.resolution // tokenizer.downsample
    tokens_w: int = 16  # w, the same
    codebook_size: int = 1024  # K = tokenizer.codebook_size; the [MASK] token has id K
    spatial_window: tuple[int, int, int] = (1, 16, 16)  # 1 × h × w
    # T_w × h' × w'. T_w = 0 means "all frames of the clip" (paper §3.3: T × h' × w').
    spatiotemporal_window: tuple[int, int, int] = (16, 8, 8)
    depth: int = 6  # L blocks; each block = spatial layer + spatiotemporal layer
    heads: int = 4
    dim: int = 768
    mlp_dim: int = 3072
    dropout: float = 0.0
    action_dim: int = 0  # 0 = no action conditioning
    goal_conditioned: bool = False  # the clip's last frame may be given as the goal
    # With goal_conditioned: the fraction of training clips given their goal (paper: 1);
    # between 0 and 1, one model predicts with a goal and without one.
    goal_prob: float = 1.0

    @property
    def mask_token_id(self) -> int:
        return self.codebook_size

    @property
    def tokens_per_frame(self) -> int:
        return self.tokens_h * self.tokens_w

    @property
    def predicted_frames(self) -> int:
        return self.num_frames - self.context_frames


@dataclass
class TrainConfig:
    """Optimisation of one stage (tokenizer or transformer)."""

    batch_size: int = 64  # global batch, whatever the number of processes
    lr: float = 3e-4
    steps: int = 100_000
    warmup_steps: int = 1000
    min_lr_ratio: float = 0.0  # cosine decays to lr * min_lr_ratio
    optimizer: Literal["adam", "adamw"] = "adamw"
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    grad_accum: int = 1
    # Masking for the transformer stage: "variable" = r ~ U[0.5, 1) per video (paper);
    # a number in (0, 1) = fixed ratio (paper's Table 2c ablation).
    mask_ratio: str | float = "variable"
    # Weight of a masked token that differs from the token at its place in the frame before
    # (transformer stage, training loss only; 1 = the paper's plain mean). Small moving objects
    # (RoboDesk's drawer) change few tokens, which a plain mean lets the model copy.
    changed_token_weight: float = 1.0
    # How many times each pooled --data cache's training clips enter the pool, in --data's order
    # (one whole number per cache; empty = each once). A small cache of rare motions (RoboDesk's
    # fast slide pushes) is otherwise a sliver of every batch. Validation clips are never repeated.
    data_repeats: tuple[int, ...] = ()
    # auto: bf16 where it trains faster (a CPU with AMX, an AMD CPU with avx512_bf16, a GPU
    # with bf16), else fp32 (maskvit.devices.cpu_fast_bf16). A run records what auto chose in its checkpoints
    # and keeps that choice when resumed elsewhere.
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    ema_decay: float | None = None
    compile: bool = False  # torch.compile: on a CPU it no longer beats the eager step (RESULTS.md)
    seed: int = 0
    log_every: int = 10
    val_every: int = 500
    val_batches: int = 20  # validation uses at most this many global batches
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    num_workers: int = 0


@dataclass
class EvalConfig:
    """Decoding and evaluation protocol (paper §4.1, Table 4 'Evaluation' rows)."""

    # Frame counts default to the transformer's (maskvit.config_derive); fewer may be set.
    context_frames: int = 1
    predicted_frames: int = 15
    decoding: DecodingConfig = field(default_factory=lambda: DecodingConfig(steps=18))
    trials: int = 100  # best-of-N trials per video for PSNR / SSIM / LPIPS
    num_videos: int = 256


OPTIMIZERS = ("cem", "mppi")
DRAW_COSTS = ("max", "mean")  # plan.draw_cost: how a sequence's several draws' costs combine


@dataclass
class PlanConfig:
    """Visual MPC with CEM (paper §A.2, Table 5)."""

    horizon: int = 10
    samples: int = 256  # M
    iterations: int = 3  # K
    elite_fraction: float = 0.05
    noise_correlation: float = 0.3  # β
    last_step_weight: float = 10.0  # c_i = 1 except the last step
    replan_every: int = 3
    episode_steps: int = 15
    # Temperature and top-p default to eval.decoding's (maskvit.config_derive).
    decoding: DecodingConfig = field(default_factory=lambda: DecodingConfig(steps=5))
    init_mean: tuple[float, ...] = (0.0, 0.0, -0.5, 0.0, 0.0)
    init_std: tuple[float, ...] = (0.05, 0.05, 0.08, 0.17453292519943295, 2.0)
    round_gripper: bool = True
    # The cost's name in maskvit.plan.planner.COSTS; the action executed
    # before planning starts so two context frames exist (paper: [0, 0, -0.08, 0.1, 0];
    # empty = zeros of the environment's action size); sequences per predictor call (0: all
    # of them, the predictor splitting them as its device wants, maskvit.devices.inference_batch).
    cost: str = "pixel_l2"
    initial_action: tuple[float, ...] = ()
    chunk_size: int = 0
    # Start each replan from the previous plan's refit mean, shifted by the executed steps
    # (common MPC practice, not in the paper, whose Table 5 mean is used every time).
    warm_start: bool = False
    # "cem" (the paper's) or "mppi" (VP2's default: one update per replan, always warm-started;
    # `samples`, `noise_correlation` and `init_std` are its M, β and σ; maskvit.plan.mppi).
    optimizer: str = "cem"
    mppi_gamma: float = 0.05  # MPPI's inverse temperature on the cost
    # The state terms of the RoboDesk costs read from predicted frames, in pixel-cost units
    # (squared error of [0, 1] pixels summed over a 64×64 frame): `pixel_l2_progress` and
    # `pixel_l2_reach` add progress_weight × the way left to the task's success (the median
    # start-to-goal squared error of an open_drawer tuning instance is 228: at 250 the task's
    # joint weighs about as much as the rest of the goal image), `pixel_l2_reach` also
    # reach_weight × the hand's distance in metres to what the task moves (closing 0.2 m
    # weighs about that median). Other costs ignore them.
    progress_weight: float = 250.0
    reach_weight: float = 1000.0
    # `pixel_l2_reach` only, 0 = off: the progress term counts only at replans where the reach
    # reader reads the hand in the *observed* frame within this many metres of its target, so
    # the planner reaches first and pulls after. A pull the model draws opening the drawer with
    # the hand truly elsewhere (a phantom) then earns nothing: the gate reads the world's frame,
    # which no sampled action sequence can change.
    progress_gate: float = 0.0
    # Model draws per scored sequence (1: one, as the paper and VP2). With more, each sequence
    # is predicted `draws` times with independent samples and scored by `draw_cost` of the
    # draws' costs: "max" (pessimistic: a future only some draws show, such as a drawer drawn
    # opening that the hand does not pull, earns nothing) or "mean". A replan costs `draws`
    # times the model calls of one; the simulator oracle is deterministic and ignores both.
    draws: int = 1
    draw_cost: str = "max"


@dataclass
class DataConfig:
    """What a clip is for this preset's dataset."""

    dataset: str = "bair"
    resolution: int = 64  # derived: tokenizer.resolution
    action_dim: int = 0  # derived: transformer.action_dim


@dataclass
class Config:
    """Everything a run needs; saved (resolved) in every run directory."""

    name: str = "custom"
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    tokenizer_train: TrainConfig = field(default_factory=TrainConfig)
    transformer: TransformerConfig = field(default_factory=TransformerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    plan: PlanConfig = field(default_factory=PlanConfig)


# --------------------------------------------------------------------------- presets


def preset_names() -> list[str]:
    """Names of the presets shipped with the package."""
    folder = resources.files("maskvit") / "presets"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_preset(name: str, overrides: list[str] | None = None) -> Config:
    """Load a shipped preset (or a YAML file path) and apply `key.sub=value` overrides."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise UserError(f"config file not found: {path}")
        text = path.read_text()
    else:
        if name not in preset_names():
            raise UserError(f"unknown preset {name!r}; choose one of: {', '.join(preset_names())}")
        text = (resources.files("maskvit") / "presets" / f"{name}.yaml").read_text()
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{name}: not valid YAML ({str(err).splitlines()[0]})") from None
    config = config_from_dict(raw)
    return apply_overrides(config, overrides or [])


def config_from_dict(raw: dict[str, Any], *, protocol: bool = True) -> Config:
    """Build a validated `Config` from nested plain data (as read from YAML).

    Old key spellings are moved to their place, derived fields filled in or checked
    (both `maskvit.config_derive`), then every range is checked.
    `protocol=False` skips the eval / plan frame-count checks against the transformer:
    a saved run was checked when it was made, and its decoding defaults must never stop
    its weights from loading.
    """
    raw = upgrade(raw)
    config = _build(Config, raw, prefix="")
    _check_tokenizer(config.tokenizer)  # the source of the derived token grid
    config = derive(config, set(flatten(raw)))
    validate(config)
    if protocol:
        check_protocol(config)
    return config


def config_to_dict(config: Config) -> dict[str, Any]:
    """Plain nested data (tuples as lists) for YAML / JSON."""

    def plain(value: Any) -> Any:
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(config))


def save_config(config: Config, path: str | Path) -> None:
    """Write `config` as YAML (0644) so readers never see half of it."""
    atomic_write_text(path, yaml.safe_dump(config_to_dict(config), sort_keys=False))


def load_config(path: str | Path) -> Config:
    """The config saved in a run directory (range checks, no eval/plan cross checks)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        reason = str(err).splitlines()[0]
        raise UserError(f"{path} is damaged: not valid YAML ({reason})") from None
    return config_from_dict(raw, protocol=False)


def apply_overrides(config: Config, overrides: list[str]) -> Config:
    """Apply `section.key=value` strings (values parsed as YAML scalars / lists).

    Old key spellings (`eval.decoding_steps`) name their new place (`eval.decoding.steps`).
    Derived fields follow an overridden source unless overridden themselves. The eval /
    plan frame counts are checked against the transformer when an override touches one of
    those sections (a saved run's own settings are not re-judged).
    """
    full = config_to_dict(config)
    data = strip_derived(config, config_to_dict(config))
    touched: set[str] = set()
    for item in overrides:
        if "=" not in item:
            raise UserError(f"override {item!r} must look like section.key=value")
        dotted, text = item.split("=", 1)
        keys = current_key(dotted.strip()).split(".")
        node, target = full, data
        for depth, key in enumerate(keys[:-1]):
            if not isinstance(node, dict) or key not in node:
                where = ".".join(keys[:depth]) or "config"
                valid = ", ".join(node) if isinstance(node, dict) else "(none)"
                raise UserError(f"unknown key {key!r} in {where}; valid keys: {valid}")
            node, target = node[key], target.setdefault(key, {})
        if not isinstance(node, dict) or keys[-1] not in node:
            where = ".".join(keys[:-1]) or "config"
            valid = ", ".join(node) if isinstance(node, dict) else "(none)"
            raise UserError(f"unknown key {keys[-1]!r} in {where}; valid keys: {valid}")
        try:
            target[keys[-1]] = yaml.safe_load(text)
        except yaml.YAMLError:
            target[keys[-1]] = text
        touched.add(keys[0])
    result = config_from_dict(data, protocol=False)
    check_protocol(result, touched)
    return result


def diff_configs(a: Config, b: Config) -> list[str]:
    """Dotted names of the fields whose values differ between two configs."""
    flat_a, flat_b = flatten(config_to_dict(a)), flatten(config_to_dict(b))
    return sorted(k for k in flat_a.keys() | flat_b.keys() if flat_a.get(k) != flat_b.get(k))


# ----------------------------------------------------------------------- range checks

Number = int | float


def _fail(key: str, rule: str, value: Any, hint: str = "") -> None:
    raise UserError(f"{key} must be {rule}; got {_show(value)}" + (f" ({hint})" if hint else ""))


def _show(value: Any) -> str:
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return repr(value)


def _at_least(key: str, value: int, low: int, hint: str = "") -> None:
    if value < low:
        _fail(key, f"an integer >= {low}", value, hint)


def _in_range(key: str, value: Number, low: Number | None = None, high: Number | None = None,
              *, low_open: bool = False, high_open: bool = False, hint: str = "") -> None:
    """A finite number within [low, high] (either end optional, either end open)."""
    ok = math.isfinite(value)
    if low is not None:
        ok = ok and (value > low if low_open else value >= low)
    if high is not None:
        ok = ok and (value < high if high_open else value <= high)
    if ok:
        return
    if low is not None and high is not None:
        rule = f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    elif low is not None:
        rule = f"a finite number {'>' if low_open else '>='} {low}"
    elif high is not None:
        rule = f"a finite number {'<' if high_open else '<='} {high}"
    else:
        rule = "a finite number"
    _fail(key, rule, value, hint)


def validate(config: Config) -> None:
    """Raise a one-line `UserError` for the first field outside its valid range.

    Checked when a config is built (preset, YAML file, override, saved run), so a bad
    value is named before any work starts instead of failing deep inside training (a
    negative batch allocating until the OOM killer, a zero one dividing by zero, ...).
    """
    _check_data(config.data)
    _check_tokenizer(config.tokenizer)
    _check_transformer(config.transformer)
    _check_train(config.tokenizer_train, "tokenizer_train")
    _check_train(config.train, "train")
    _check_eval(config.eval)
    check_plan(config.plan)


def check_protocol(config: Config, sections: set[str] | None = None) -> None:
    """Eval and plan frame counts must fit the transformer's clips.

    `sections`: only check what these sections affect (None: everything).
    """
    t = config.transformer
    every = sections is None or "transformer" in sections
    if every or "eval" in sections:
        ev = config.eval
        room = t.num_frames - (1 if t.goal_conditioned else 0)
        if ev.context_frames + ev.predicted_frames > room:
            raise UserError(
                f"eval.context_frames + eval.predicted_frames = {ev.context_frames} + "
                f"{ev.predicted_frames} frames exceed the transformer's clips "
                f"(transformer.num_frames = {t.num_frames}"
                f"{', one of them the goal' if t.goal_conditioned else ''}); set "
                f"eval.predicted_frames to at most {max(room - ev.context_frames, 0)}")
    if every or "plan" in sections:
        check_plan_horizon(config.plan.horizon, t.num_frames, t.context_frames)


def check_plan_horizon(horizon: int, clip_frames: int, context_frames: int) -> None:
    """A plan's context and horizon fit the model's clip (the one statement of that rule:
    configs, `--set` flags and server requests)."""
    room = clip_frames - context_frames
    if horizon > room:
        raise UserError(f"plan.horizon {horizon} too long: {context_frames} context + {horizon} "
                        f"frames exceed the model's {clip_frames}-frame clips (set plan.horizon "
                        f"to at most {room})")


def _check_data(d: DataConfig) -> None:
    _at_least("data.resolution", d.resolution, 1)
    _at_least("data.action_dim", d.action_dim, 0)


def _check_tokenizer(c: TokenizerConfig) -> None:
    for name in ("resolution", "downsample", "channels", "num_res_blocks", "code_dim",
                 "disc_channels", "disc_layers"):
        _at_least(f"tokenizer.{name}", getattr(c, name), 1)
    _at_least("tokenizer.event_frame_repeat", c.event_frame_repeat, 1, "1 shows every frame once")
    if c.downsample & (c.downsample - 1):
        _fail("tokenizer.downsample", "a power of two", c.downsample)
    if c.resolution % c.downsample:
        raise UserError(f"tokenizer.resolution {c.resolution} must be divisible by "
                        f"tokenizer.downsample {c.downsample}")
    _codebook("tokenizer.codebook_size", c.codebook_size)
    for name in ("commitment_weight", "dead_code_threshold", "l1_weight", "l2_weight",
                 "perceptual_weight", "disc_weight", "salience_weight"):
        _in_range(f"tokenizer.{name}", getattr(c, name), 0.0)
    _in_range("tokenizer.usage_decay", c.usage_decay, 0.0, 1.0, high_open=True)
    if c.disc_start is not None:
        _at_least("tokenizer.disc_start", c.disc_start, 0, "null turns the GAN loss off")
    lo, hi = c.augment_crop
    if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 < lo <= hi <= 1.0):
        _fail("tokenizer.augment_crop", "[low, high] with 0 < low <= high <= 1", c.augment_crop)
    _in_range("tokenizer.augment_jitter", c.augment_jitter, 0.0, 1.0)
    if c.salience_weight and c.augment:
        raise UserError("tokenizer.salience_weight needs tokenizer.augment false: its reference "
                        "(the median frame) is of unaugmented frames")


def _codebook(key: str, size: int) -> None:
    if not 2 <= size <= 65536:  # token caches store codes as uint16
        _fail(key, "an integer in [2, 65536]", size)


def _check_transformer(t: TransformerConfig) -> None:
    for name in ("num_frames", "tokens_h", "tokens_w", "depth", "heads", "dim", "mlp_dim"):
        _at_least(f"transformer.{name}", getattr(t, name), 1)
    _at_least("transformer.context_frames", t.context_frames, 0)
    _at_least("transformer.action_dim", t.action_dim, 0)
    predicted = 2 if t.goal_conditioned else 1  # a goal frame takes one more slot
    if t.context_frames > t.num_frames - predicted:
        _fail("transformer.context_frames", f"at most transformer.num_frames - {predicted} = "
              f"{t.num_frames - predicted}", t.context_frames, "a clip needs frames to predict")
    _codebook("transformer.codebook_size", t.codebook_size)
    if t.dim % t.heads:
        raise UserError(f"transformer.dim {t.dim} must be divisible by transformer.heads "
                        f"{t.heads} (e.g. dim {t.dim - t.dim % t.heads or t.heads})")
    _in_range("transformer.dropout", t.dropout, 0.0, 1.0, high_open=True)
    _in_range("transformer.goal_prob", t.goal_prob, 0.0, 1.0)
    grid = (t.num_frames, t.tokens_h, t.tokens_w)
    for name in ("spatial_window", "spatiotemporal_window"):
        _check_window(f"transformer.{name}", getattr(t, name), grid)


def _check_window(key: str, window: tuple[int, int, int], grid: tuple[int, int, int]) -> None:
    """Same rule as the attention layers: 0 = the whole axis, sizes must tile the grid."""
    if any(w < 0 for w in window):
        _fail(key, "3 sizes >= 0 (0 = the whole axis)", window)
    for axis, (w, g) in enumerate(zip(window, grid, strict=True)):
        size = g if w == 0 else min(w, g)
        if g % size:
            raise UserError(f"{key} {_show(window)} does not tile the token grid "
                            f"{grid[0]}×{grid[1]}×{grid[2]} (frames × tokens_h × tokens_w; "
                            f"axis {axis}: {g} is not a multiple of {size}); use sizes that "
                            f"divide the grid, 0 = the whole axis")


def _check_train(c: TrainConfig, section: str) -> None:
    for name in ("batch_size", "steps", "grad_accum", "val_batches"):
        _at_least(f"{section}.{name}", getattr(c, name), 1)
    for name in ("warmup_steps", "num_workers"):
        _at_least(f"{section}.{name}", getattr(c, name), 0)
    for name in ("log_every", "val_every", "checkpoint_every"):
        _at_least(f"{section}.{name}", getattr(c, name), 0, "0 = only at the end / never")
    _at_least(f"{section}.keep_checkpoints", c.keep_checkpoints, 0, "0 keeps every one")
    if c.batch_size % c.grad_accum:
        raise UserError(f"{section}.batch_size {c.batch_size} must be divisible by "
                        f"{section}.grad_accum {c.grad_accum}")
    _in_range(f"{section}.lr", c.lr, 0.0, low_open=True)
    _in_range(f"{section}.min_lr_ratio", c.min_lr_ratio, 0.0, 1.0)
    for beta in c.betas:
        _in_range(f"{section}.betas", beta, 0.0, 1.0, high_open=True)
    _in_range(f"{section}.weight_decay", c.weight_decay, 0.0)
    _in_range(f"{section}.grad_clip", c.grad_clip, 0.0, hint="0 = no clipping")
    if c.mask_ratio != "variable" and (
            isinstance(c.mask_ratio, str) or not 0.0 < c.mask_ratio < 1.0):
        _fail(f"{section}.mask_ratio", "'variable' or a number in (0, 1)", c.mask_ratio)
    _in_range(f"{section}.changed_token_weight", c.changed_token_weight, 1.0, hint="1 = the paper's plain loss")
    if section == "tokenizer_train" and c.changed_token_weight != 1.0:
        _fail(f"{section}.changed_token_weight", "1 (it weighs the transformer's loss: set train.changed_token_weight)",
              c.changed_token_weight)
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in c.data_repeats):
        _fail(f"{section}.data_repeats", "whole numbers >= 1, one per --data cache, like [1, 1, 4]", list(c.data_repeats))
    if section == "tokenizer_train" and c.data_repeats:
        _fail(f"{section}.data_repeats", "[] (it pools the transformer's token caches: set train.data_repeats)",
              list(c.data_repeats))
    if c.ema_decay is not None:
        _in_range(f"{section}.ema_decay", c.ema_decay, 0.0, 1.0, low_open=True,
                  high_open=True, hint="null = no EMA")
    if not 0 <= c.seed < 2**32:
        _fail(f"{section}.seed", "an integer in [0, 2**32)", c.seed)


def _check_eval(e: EvalConfig) -> None:
    for name in ("context_frames", "predicted_frames", "trials", "num_videos"):
        _at_least(f"eval.{name}", getattr(e, name), 1)
    check_decoding(e.decoding, "eval.decoding")


@dataclass(frozen=True)
class Range:
    """The valid values of one numeric setting, written once.

    The config checks below read it, and so do the request rules and the server's
    request schemas (`maskvit.inference.requests`, `maskvit.serve.schemas`), so a bound
    changed here changes everywhere.
    """

    low: Number | None = None
    high: Number | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    hint: str = ""

    def check(self, key: str, value: Number) -> None:
        """A one-line `UserError` naming `key` when `value` is outside the range."""
        if self.integer and self.high is None and not self.low_open:
            _at_least(key, value, int(self.low or 0), self.hint)
        else:
            _in_range(key, value, self.low, self.high, low_open=self.low_open,
                      high_open=self.high_open, hint=self.hint)

    def schema_bounds(self) -> dict[str, Number]:
        """The range as pydantic `Field` keywords (ge / gt / le / lt)."""
        out: dict[str, Number] = {}
        if self.low is not None:
            out["gt" if self.low_open else "ge"] = self.low
        if self.high is not None:
            out["lt" if self.high_open else "le"] = self.high
        return out


DECODING_RANGES = {
    "steps": Range(1, integer=True),
    "temperature": Range(0.0, hint="null = no Gumbel noise"),
    "top_p": Range(0.0, 1.0, low_open=True, hint="null = no nucleus"),
}
PLAN_RANGES = {
    "horizon": Range(1, integer=True),
    "samples": Range(2, integer=True),  # M: elites need at least two
    "iterations": Range(1, integer=True),
    "chunk_size": Range(0, integer=True),
    "episode_steps": Range(2, integer=True),
    "elite_fraction": Range(0.0, 1.0, low_open=True),
    "noise_correlation": Range(0.0, 1.0, high_open=True),
    "last_step_weight": Range(0.0),
    "mppi_gamma": Range(0.0, low_open=True),
    "progress_weight": Range(0.0),
    "reach_weight": Range(0.0),
    "progress_gate": Range(0.0),
    "draws": Range(1, integer=True),
}


def check_decoding(d: DecodingConfig, section: str) -> None:
    """Ranges of one `DecodingConfig` (schedule and unmask are checked by their type)."""
    for name, rule in DECODING_RANGES.items():
        value = getattr(d, name)
        if value is not None:  # temperature / top_p None: none
            rule.check(f"{section}.{name}", value)


def check_plan(p: PlanConfig, low: Sequence[float] | None = None,
               high: Sequence[float] | None = None) -> None:
    """Every rule of a valid `PlanConfig`: the one definition, read by the config loader, the
    planners and the request rules. With an action space [low, high], also that the
    sampling distribution fits it."""
    for name, rule in PLAN_RANGES.items():
        rule.check(f"plan.{name}", getattr(p, name))
    check_decoding(p.decoding, "plan.decoding")
    if not 1 <= p.replan_every <= p.horizon:
        _fail("plan.replan_every", f"in [1, plan.horizon = {p.horizon}]", p.replan_every)
    if len(p.init_std) != len(p.init_mean):
        raise UserError(f"plan.init_std has {len(p.init_std)} entries but plan.init_mean has "
                        f"{len(p.init_mean)}; give one per action dimension")
    if p.initial_action and len(p.initial_action) != len(p.init_mean):
        raise UserError(f"plan.initial_action must have {len(p.init_mean)} entries (one per "
                        f"action dimension) or be empty for zeros")
    for value in (*p.init_mean, *p.initial_action):
        if not math.isfinite(value):
            _fail("plan.init_mean / plan.initial_action", "finite numbers", value)
    for value in p.init_std:
        _in_range("plan.init_std", value, 0.0, low_open=True)
    if p.optimizer not in OPTIMIZERS:
        _fail("plan.optimizer", f"one of {', '.join(OPTIMIZERS)}", p.optimizer)
    if p.draw_cost not in DRAW_COSTS:
        _fail("plan.draw_cost", f"one of {', '.join(DRAW_COSTS)}", p.draw_cost)
    if low is not None and high is not None:
        _check_plan_fits(p, list(low), list(high))


def _check_plan_fits(p: PlanConfig, low: list[float], high: list[float]) -> None:
    """The plan's per-dimension settings against an action space [low, high]."""
    dim = len(low)
    for name in ("init_mean", "init_std"):
        if len(getattr(p, name)) != dim:
            raise UserError(f"plan.{name} has {len(getattr(p, name))} entries but the "
                            f"environment's actions have {dim}; set plan.{name} to {dim} numbers")
    if p.initial_action and len(p.initial_action) != dim:
        raise UserError(f"plan.initial_action must have {dim} entries (or be empty for zeros)")
    if any(not lo <= m <= hi for m, lo, hi in zip(p.init_mean, low, high, strict=True)):
        raise UserError(f"plan.init_mean {list(p.init_mean)} is outside the action bounds "
                        f"[{[round(v, 4) for v in low]}, {[round(v, 4) for v in high]}]")


# ----------------------------------------------------------------------- validation


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one dict of dotted keys ({"eval": {"trials": 1}} -> {"eval.trials": 1})."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _build(cls: type, raw: Any, prefix: str) -> Any:
    where = prefix.rstrip(".") or "config"
    if not isinstance(raw, dict):
        raise UserError(f"{where} must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in raw if k not in fields]
    if unknown:
        raise UserError(
            f"unknown key {unknown[0]!r} in {where}; valid keys: {', '.join(fields)}"
        )
    values = {}
    for name, value in raw.items():
        values[name] = _coerce(hints[name], value, f"{prefix}{name}")
    return cls(**values)


def _coerce(tp: Any, value: Any, name: str) -> Any:
    """Check `value` against type `tp`, converting where it is lossless (int → float, list → tuple)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, f"{name}.")
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(option, value, name)
            except UserError as err:
                errors.append(str(err))
        raise UserError(f"{name} must be {_describe(tp)}, got {value!r}")
    if origin is Literal:
        if value not in args:
            raise UserError(f"{name} must be one of {', '.join(map(str, args))}; got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise UserError(f"{name} must be a list ({_describe(tp)}), got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, name) for v in value)
        if len(value) != len(args):
            raise UserError(f"{name} must have {len(args)} entries, got {len(value)}")
        return tuple(_coerce(a, v, name) for a, v in zip(args, value, strict=True))
    if tp is bool:
        if not isinstance(value, bool):
            raise UserError(f"{name} must be true or false, got {value!r}")
        return value
    value = number_from_text(value) if tp in (int, float) else value
    if tp is int:
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not math.isfinite(value) or value != int(value)):
            raise UserError(f"{name} must be an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UserError(f"{name} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise UserError(f"{name} must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {tp!r} for {name}")  # our own bug


# What a user writes as a number but YAML 1.1 reads as a string: `3e-3` (no dot), `1e4`.
_NUMBER_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def number_from_text(value: Any) -> Any:
    """`value` as a float when it is a string spelling a finite number, else unchanged."""
    if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value.strip()):
        return float(value)
    return value


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if origin is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(tp)))
    if origin is tuple:
        return "a list"
    return {int: "an integer", float: "a number", str: "a string", bool: "true/false",
            type(None): "null"}.get(tp, str(tp))
