"""Sizing `maskvit demo` to a time budget on the machine it runs on.

Machines of one nominal kind differ: the same demo took 12 min 44 s on one 2-core AMD EPYC
and 22 min on another (benchmarks/RESULTS.md, "Demo"). Rather than promising a time that
only the faster machine keeps, the demo times a few training steps of the models it trains
(a probe of ~5-15 s), in the precision their runs will use, estimates every stage from them
and, when the full scale would not fit the budget, shortens the training stages by one
factor. Once the stages before the transformer have run, their real times re-fit the
transformer's steps to what is left: a trained tokenizer's time corrects the probe (which
misjudges a stage by up to a quarter on a shared machine), and the shipped model's evaluate
and plan stages time the demo model's own, which do the same work. The choices are written
to OUT/.stages/sizing.json so a rerun resumes the same runs with the same step counts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maskvit.atomic import atomic_write_text
from maskvit.errors import UserError

# Real step time / the probe's. A real step adds the optimizer, data loading, validation
# and checkpoints, yet in three demo runs on a 2-core AMD EPYC (no AMX) the stages took
# 0.92-1.26x the probe's estimate (RESULTS.md, "Demo"): as often below as above, so no
# correction here; the re-fit before the transformer absorbs the error.
TRAINING_OVERHEAD = 1.0
# Every stage but the trainings, in units of the probe's transformer step: they are model
# forward passes and physics. Measured in CPU seconds on one thread of a 2-core AMD EPYC
# (2026-12-05, the probe's bf16 step 0.955 s): collect 39 s, tokenize 56 s, evaluate (9
# clips x 4 samples with LPIPS and FVD) 60 s, plan 27.8 s per episode and model. Only the
# first sizing uses them: before the transformer trains, the re-fit puts in the real times
# of the stages that ran, and the evaluate and plan stages still to come cost what their
# shipped-model twins took.
FIXED_STAGE_STEPS: dict[str, float] = {
    "collect": 40.0,
    "evaluate-shipped": 63.0,
    "plan-shipped": 58.0,
    "tokenize": 59.0,
    "evaluate": 63.0,
    "plan": 60.0,
}
# The stage whose real time stands in for another's estimate: it does the same work.
TWIN_STAGES = {"evaluate": "evaluate-shipped", "plan": "plan-shipped"}
SAFETY = 0.90  # aim below the budget: a probe on a shared machine is off by up to ~25 %
SMALLEST_FRACTION = 0.25  # below this the demo's models learn too little to show anything
SIZING_FILE = "sizing.json"


@dataclass(frozen=True)
class StepCosts:
    """Seconds per training step of the demo's models on this machine (loss + backward, in
    the precision each run trains in); the tokenizer's are 0 when the demo trains none."""

    tokenizer_plain: float  # before the discriminator starts
    tokenizer_gan: float  # with the discriminator (generator and discriminator phases)
    transformer: float


@dataclass(frozen=True)
class Sizing:
    """The demo's step counts on this machine, and what the estimate behind them was."""

    fraction: float  # of the full scale's training steps
    tokenizer_steps: int  # 0: the demo uses the shipped tokenizer
    transformer_steps: int
    minutes: dict[str, float]  # estimated minutes per stage
    budget_minutes: float
    costs: StepCosts | None  # None: not measured (a run begun before sizing existed)
    probe_seconds: float = 0.0
    # Set once the transformer's steps were re-fitted before it trained: the trained
    # tokenizer's real time over its estimate (the probe alone misjudged it by up to a
    # quarter), 1.0 where no tokenizer was trained (the probe's step time stands).
    tokenizer_ratio: float | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Sizing:
        costs = raw.get("costs")
        return cls(fraction=float(raw["fraction"]), tokenizer_steps=int(raw["tokenizer_steps"]),
                   transformer_steps=int(raw["transformer_steps"]),
                   minutes={k: float(v) for k, v in raw["minutes"].items()},
                   budget_minutes=float(raw["budget_minutes"]),
                   costs=StepCosts(**costs) if costs else None,
                   probe_seconds=float(raw.get("probe_seconds", 0.0)),
                   tokenizer_ratio=(None if raw.get("tokenizer_ratio") is None
                                    else float(raw["tokenizer_ratio"])))


def stage_overrides(argv: list[str]) -> list[str]:
    """The `--set` values of one stage's command line."""
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--set"]


def measure_step_costs(tokenizer_argv: list[str] | None, transformer_argv: list[str],
                       repeats: int = 3) -> StepCosts:
    """Time the demo's training steps, configured by the stages' own `--set` values, on
    synthetic batches (best of `repeats` after one warm-up), each in the precision its run
    will train in (`train.precision: auto` is bf16 where that is faster). `tokenizer_argv`
    None: the demo trains no tokenizer, so none is timed."""
    import torch

    from maskvit.config import load_preset
    from maskvit.model.masked_video_task import MaskedVideoTask
    from maskvit.tokenizer.vqgan_task import TokenizerTask

    tr_config = load_preset("push64", stage_overrides(transformer_argv))
    plain = gan = 0.0
    with torch.random.fork_rng():  # the probe must not shift the caller's random stream
        torch.manual_seed(0)
        if tokenizer_argv is not None:
            tok_config = load_preset("push64", stage_overrides(tokenizer_argv))
            tok_task = TokenizerTask(tok_config.tokenizer)
            side = tok_config.tokenizer.resolution
            frames = torch.randint(0, 256, (tok_config.tokenizer_train.batch_size, side, side, 3),
                                   dtype=torch.uint8)
            disc_start = tok_config.tokenizer.disc_start or 0
            precision = tok_config.tokenizer_train.precision
            plain = _best_seconds(tok_task, {"frames": frames}, 0, repeats, precision)
            gan = _best_seconds(tok_task, {"frames": frames}, disc_start, repeats, precision)
        tr = tr_config.transformer
        tr_task = MaskedVideoTask(tr, tr_config.train)
        batch = tr_config.train.batch_size
        tokens = {"tokens": torch.randint(0, tr.codebook_size,
                                          (batch, tr.num_frames, tr.tokens_h, tr.tokens_w)),
                  "actions": torch.randn(batch, tr.num_frames, max(tr.action_dim, 1))}
        transformer = _best_seconds(tr_task, tokens, 0, repeats, tr_config.train.precision)
    return StepCosts(tokenizer_plain=plain, tokenizer_gan=gan, transformer=transformer)


def _best_seconds(task: Any, batch: dict[str, Any], step: int, repeats: int,
                  precision: str) -> float:
    """Fastest of `repeats` timed steps (every phase's loss and backward) after a warm-up,
    under the autocast the trainer uses for `precision` on the CPU."""
    import torch

    from maskvit.devices import choose_precision
    from maskvit.train.task_protocol import StepContext

    cpu = torch.device("cpu")
    bf16 = choose_precision(precision, cpu)[0] == "bf16"
    modules = task.modules()
    best = float("inf")
    for attempt in range(repeats + 1):
        ctx = StepContext(step=step, modules=modules, generator=torch.Generator().manual_seed(0),
                          device=cpu)
        start = time.perf_counter()
        for spec in task.optimizers():
            for name in spec.modules:
                modules[name].zero_grad(set_to_none=True)
            autocast = (torch.autocast(device_type="cpu", dtype=torch.bfloat16) if bf16
                        else contextlib.nullcontext())
            with autocast:
                out = task.loss(spec.name, batch, ctx)
            if out is not None:
                out[0].backward()
        if attempt > 0:
            best = min(best, time.perf_counter() - start)
    return best


def size_demo(costs: StepCosts, tokenizer_steps: int, disc_start: int, transformer_steps: int,
              budget_minutes: float, probe_seconds: float = 0.0,
              fixed_stages: Iterable[str] = ("collect", "tokenize", "evaluate", "plan")) -> Sizing:
    """Largest fraction (≤ 1) of the full scale's training steps whose estimate fits the budget.

    `tokenizer_steps` 0: no tokenizer is trained. `fixed_stages`: the other stages the demo
    runs (names in FIXED_STAGE_STEPS).
    """
    gan_steps = max(tokenizer_steps - disc_start, 0)
    plain_steps = min(disc_start, tokenizer_steps)
    tokenizer_s = TRAINING_OVERHEAD * (plain_steps * costs.tokenizer_plain
                                       + gan_steps * costs.tokenizer_gan)
    transformer_s = TRAINING_OVERHEAD * transformer_steps * costs.transformer
    fixed = {name: FIXED_STAGE_STEPS[name] * costs.transformer for name in fixed_stages}
    room = budget_minutes * 60 * SAFETY - sum(fixed.values()) - probe_seconds
    fraction = min(1.0, max(SMALLEST_FRACTION, room / (tokenizer_s + transformer_s)))
    tok_steps = scaled_steps(tokenizer_steps, fraction) if tokenizer_steps else 0
    tr_steps = scaled_steps(transformer_steps, fraction)
    minutes = {name: seconds / 60 for name, seconds in fixed.items()}
    if tokenizer_steps:
        minutes["train-tokenizer"] = tokenizer_s * tok_steps / tokenizer_steps / 60
    minutes["train"] = transformer_s * tr_steps / transformer_steps / 60
    return Sizing(fraction=fraction, tokenizer_steps=tok_steps, transformer_steps=tr_steps,
                  minutes=minutes, budget_minutes=budget_minutes, costs=costs,
                  probe_seconds=probe_seconds)


def refit_transformer(sizing: Sizing, spent_seconds: dict[str, float],
                      full_transformer_steps: int) -> Sizing:
    """Re-fit the transformer's steps to what is left of the budget, just before it trains.

    `spent_seconds`: the real times of the stages that ran before it. A trained tokenizer's
    time over its estimate corrects the probe's step time (one stage's surprise, so held to
    0.5-2x); the evaluate and plan stages still to come are priced by their shipped-model
    twins' real times where those ran, else by their estimates times that correction.
    """
    assert sizing.costs is not None
    tokenizer_estimate = sizing.minutes.get("train-tokenizer", 0.0) * 60
    ratio = 1.0
    if "train-tokenizer" in spent_seconds and tokenizer_estimate > 0:
        ratio = min(max(spent_seconds["train-tokenizer"] / tokenizer_estimate, 0.5), 2.0)
    still_to_run = {name: spent_seconds.get(TWIN_STAGES[name], ratio * 60 * sizing.minutes[name])
                    for name in ("evaluate", "plan") if name in sizing.minutes}
    room = (sizing.budget_minutes * 60 * SAFETY - sizing.probe_seconds
            - sum(spent_seconds.values()) - sum(still_to_run.values()))
    step_s = ratio * TRAINING_OVERHEAD * sizing.costs.transformer
    fraction = min(1.0, max(SMALLEST_FRACTION, room / (step_s * full_transformer_steps)))
    steps = scaled_steps(full_transformer_steps, fraction)
    minutes = {**sizing.minutes, "train": step_s * steps / 60}
    minutes.update({name: seconds / 60 for name, seconds in still_to_run.items()})
    minutes.update({name: seconds / 60 for name, seconds in spent_seconds.items()})
    return dataclasses.replace(sizing, transformer_steps=steps, minutes=minutes,
                               tokenizer_ratio=ratio)


def scaled_steps(steps: int, fraction: float) -> int:
    """`steps × fraction`, rounded to tens (at least 10)."""
    return max(10, int(round(steps * fraction / 10)) * 10)


def read_sizing(markers: Path) -> Sizing | None:
    """The sizing a previous run of this demo chose, or None."""
    path = markers / SIZING_FILE
    if not path.is_file():
        return None
    try:
        return Sizing.from_json(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise UserError(f"{path} is damaged ({err}); delete it only if neither training stage "
                        f"has started, or use a new --out") from None


def write_sizing(markers: Path, sizing: Sizing) -> None:
    atomic_write_text(markers / SIZING_FILE, json.dumps(sizing.to_json(), indent=2) + "\n")


def describe(sizing: Sizing, full_tokenizer_steps: int, full_transformer_steps: int) -> str:
    """One line for the user: what was measured and what was chosen."""
    total = sum(sizing.minutes.values())
    if sizing.costs is None:
        return "training at the full demo scale (these runs were begun before sizing existed)"
    costs = sizing.costs
    if not sizing.tokenizer_steps:  # the shipped tokenizer: only the transformer trains
        measured = f"this machine: {costs.transformer:.2f} s per transformer step"
        if sizing.fraction >= 1.0:
            return (f"{measured}; the transformer trains its full {sizing.transformer_steps} "
                    f"steps within {sizing.budget_minutes:g} min (~{total:.0f} min)")
        return (f"{measured}; the transformer trains {sizing.transformer_steps} steps (of at "
                f"most {full_transformer_steps}) to fit {sizing.budget_minutes:g} min "
                f"(~{total:.0f} min; --minutes gives it more time)")
    measured = (f"this machine: {costs.tokenizer_gan:.2f} s per tokenizer step (with the GAN), "
                f"{costs.transformer:.2f} s per transformer step")
    if sizing.fraction >= 1.0:
        return f"{measured}; the full demo scale fits {sizing.budget_minutes:g} min (~{total:.0f} min)"
    return (f"{measured}; to fit {sizing.budget_minutes:g} min the training stages run "
            f"{sizing.fraction:.0%} of the full scale (tokenizer {sizing.tokenizer_steps} of "
            f"{full_tokenizer_steps} steps, transformer {sizing.transformer_steps} of "
            f"{full_transformer_steps}; ~{total:.0f} min; --minutes gives it more time)")
