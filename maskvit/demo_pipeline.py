"""`maskvit demo`: the whole chain on the built-in push world, at laptop scale.

collect → train-tokenizer → tokenize → train → evaluate → plan, each stage one `maskvit`
command (printed, so it can be rerun at full scale). A finished stage leaves a marker in
OUT/.stages/ and is skipped by the next run; an interrupted training stage resumes from
its last checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maskvit.atomic import atomic_write_text
from maskvit.cli import Terminated
from maskvit.demo_budget import (
    Sizing,
    StepCosts,
    describe,
    measure_step_costs,
    read_sizing,
    refit_transformer,
    size_demo,
    write_sizing,
)
from maskvit.errors import UserError

DEFAULT_MINUTES = 15.0

# A stage's exit status when Ctrl-C (130) or SIGTERM (143) stopped it, and how the demo
# passes that on: as an interruption (resumable), not as a failure to fix.
INTERRUPTED: dict[int, type[KeyboardInterrupt]] = {130: KeyboardInterrupt, 143: Terminated}


@dataclass(frozen=True)
class DemoScale:
    """How big each stage is; `FULL` is the most the demo trains, `QUICK` takes ~1 minute."""

    episodes: int
    episode_steps: int
    tokenizer_steps: int
    tokenizer_batch: int
    transformer_steps: int
    transformer_batch: int
    eval_videos: int
    eval_trials: int
    plan_episodes: int
    plan_overrides: tuple[str, ...] = field(default_factory=tuple)
    minutes: dict[str, float] = field(default_factory=dict)  # rough stage estimates

    @property
    def disc_start(self) -> int:
        """The preset's recipe at the demo's scale: the GAN loss starts 40 % of the way in,
        as the reference run's does (step 1000 of 2500)."""
        return self.tokenizer_steps * 2 // 5


FULL = DemoScale(
    # 600 tokenizer steps: LPIPS + the PatchGAN cost ~2x a plain step (800 steps took 3.4 min
    # without them); the whole demo took 12 min 44 s on an idle 2-core AMD EPYC (no AMX),
    # 22 min on a slower one of the same kind: `maskvit demo` shortens the training stages
    # where this scale would not fit its budget (maskvit/demo_budget.py).
    episodes=300, episode_steps=30, tokenizer_steps=600, tokenizer_batch=8,
    transformer_steps=400, transformer_batch=16, eval_videos=8, eval_trials=4,
    plan_episodes=2,
    plan_overrides=("plan.samples=16", "plan.iterations=2", "plan.decoding.steps=4"),
    # Measured on an idle 2-core AMD EPYC without AMX (benchmarks/RESULTS.md, "Demo").
    minutes={"collect": 0.2, "train-tokenizer": 5.6, "tokenize": 0.3, "train": 6.0,
             "evaluate": 0.1, "plan": 0.6},
)

QUICK = DemoScale(
    episodes=16, episode_steps=14, tokenizer_steps=10, tokenizer_batch=4,
    transformer_steps=10, transformer_batch=4, eval_videos=2, eval_trials=1,
    plan_episodes=1,
    plan_overrides=("plan.samples=8", "plan.iterations=1", "plan.decoding.steps=2",
                    "plan.episode_steps=4", "plan.horizon=4"),
    minutes={"collect": 0.2, "train-tokenizer": 0.5, "tokenize": 0.1, "train": 0.5,
             "evaluate": 0.2, "plan": 0.5},
)


@dataclass
class Stage:
    name: str
    argv: list[str]
    resumable_run: Path | None = None  # a training run continued with --resume


def demo_stages(out: Path, scale: DemoScale) -> list[Stage]:
    data, tok, tokens, model = out / "data", out / "tokenizer", out / "tokens", out / "transformer"
    return [
        Stage("collect", ["collect", "--env", "push", "--episodes", str(scale.episodes),
                          "--steps", str(scale.episode_steps), "--out", str(data)]),
        Stage("train-tokenizer", [
            "train-tokenizer", "--preset", "push64", "--data", str(data), "--out", str(tok),
            "--set", f"tokenizer_train.steps={scale.tokenizer_steps}",
            "--set", f"tokenizer_train.batch_size={scale.tokenizer_batch}",
            "--set", f"tokenizer_train.warmup_steps={max(1, scale.tokenizer_steps // 20)}",
            "--set", f"tokenizer.disc_start={scale.disc_start}",
            "--device", "cpu"], tok),
        Stage("tokenize", ["tokenize", "--tokenizer", str(tok), "--data", str(data),
                           "--out", str(tokens), "--device", "cpu"]),
        Stage("train", [
            "train", "--preset", "push64", "--data", str(tokens), "--out", str(model),
            "--set", f"train.steps={scale.transformer_steps}",
            "--set", f"train.batch_size={scale.transformer_batch}",
            "--set", f"train.warmup_steps={max(1, scale.transformer_steps // 20)}",
            "--device", "cpu"], model),
        Stage("evaluate", ["evaluate", "--model", str(model), "--data", str(data),
                           "--out", str(out / "report"), "--num-videos", str(scale.eval_videos),
                           "--trials", str(scale.eval_trials), "--metrics", "psnr,ssim,lpips"]),
        Stage("plan", ["plan", "--model", str(model), "--env", "push",
                       "--episodes", str(scale.plan_episodes), "--policy", "model",
                       "--policy", "random", "--out", str(out / "plan")]
              + [arg for o in scale.plan_overrides for arg in ("--set", o)]),
    ]


def run_demo(out: str | Path = "maskvit-demo", quick: bool = False,
             run_command: Callable[[list[str]], int] | None = None,
             minutes: float = DEFAULT_MINUTES,
             measure: Callable[[list[str], list[str]], StepCosts] | None = None) -> dict[str, Any]:
    """Run every unfinished stage; return the headline numbers.

    The full demo is sized to `minutes` on this machine (`measure` times its training
    steps; see maskvit/demo_budget.py); `quick` has a fixed, tiny size.
    """
    from maskvit.cli import main as cli_main
    from maskvit.locking import output_lock

    if not minutes > 0:
        raise UserError(f"--minutes must be a positive number of minutes, got {minutes:g}")
    run_command = run_command or cli_main
    out = Path(out)
    with output_lock(out, "demo folder"):  # two demos in one folder would mix their stages
        markers = out / ".stages"
        markers.mkdir(parents=True, exist_ok=True)
        scale = QUICK if quick else sized_scale(out, minutes, measure or measure_step_costs)
        return _run_stages(out, scale, quick, run_command)


def sized_scale(out: Path, minutes: float,
                measure: Callable[[list[str], list[str]], StepCosts]) -> DemoScale:
    """FULL with its training steps fitted to `minutes` here, chosen once per demo folder."""
    markers = out / ".stages"
    sizing = read_sizing(markers)
    if sizing is None:
        stages = {stage.name: stage for stage in demo_stages(out, FULL)}
        begun = any((markers / name).exists() or (stages[name].resumable_run / "config.yaml").exists()
                    for name in ("train-tokenizer", "train"))
        if begun:  # a folder from before sizing existed: keep the scale its runs began with
            sizing = Sizing(fraction=1.0, tokenizer_steps=FULL.tokenizer_steps,
                            transformer_steps=FULL.transformer_steps, minutes=dict(FULL.minutes),
                            budget_minutes=minutes, costs=None)
        else:
            print("timing the demo's training steps on this machine (about 15 s) ...", flush=True)
            start = time.monotonic()
            costs = measure(stages["train-tokenizer"].argv, stages["train"].argv)
            sizing = size_demo(costs, FULL.tokenizer_steps, FULL.disc_start,
                               FULL.transformer_steps, minutes, time.monotonic() - start)
        write_sizing(markers, sizing)
    elif sizing.budget_minutes != minutes:
        print(f"this demo folder was sized for {sizing.budget_minutes:g} min when it began; its "
              f"runs keep those step counts (a new --out sizes a new demo for {minutes:g} min)")
    print(describe(sizing, FULL.tokenizer_steps, FULL.transformer_steps))
    return dataclasses.replace(FULL, tokenizer_steps=sizing.tokenizer_steps,
                               transformer_steps=sizing.transformer_steps,
                               minutes=sizing.minutes)


def refitted_scale(out: Path, scale: DemoScale) -> DemoScale:
    """Before the transformer trains: its steps re-fitted to the budget left (demo_budget)."""
    markers = out / ".stages"
    sizing = read_sizing(markers)
    run = next(stage.resumable_run for stage in demo_stages(out, scale) if stage.name == "train")
    if (sizing is None or sizing.costs is None or sizing.tokenizer_ratio is not None
            or (run / "config.yaml").exists()):
        return scale  # not sized, re-fitted already, or its run has begun: keep its steps
    spent = {name: stage_seconds(markers / name)
             for name in ("collect", "train-tokenizer", "tokenize")}
    refit = refit_transformer(sizing, spent, FULL.transformer_steps)
    write_sizing(markers, refit)
    print(f"the tokenizer took {spent['train-tokenizer']:.0f} s, {refit.tokenizer_ratio:.2f}x "
          f"the estimate: the transformer trains {refit.transformer_steps} steps (sized "
          f"{sizing.transformer_steps}) to fit {sizing.budget_minutes:g} min")
    return dataclasses.replace(scale, transformer_steps=refit.transformer_steps,
                               minutes=refit.minutes)


def stage_seconds(marker: Path) -> float:
    """A finished stage's time, as its marker records it ("123.4 s")."""
    try:
        return float(marker.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        raise UserError(f"{marker} is damaged; delete it to rerun that stage") from None


def _run_stages(out: Path, scale: DemoScale, quick: bool,
                run_command: Callable[[list[str]], int]) -> dict[str, Any]:
    markers = out / ".stages"
    names = [stage.name for stage in demo_stages(out, scale)]
    remaining = sum(scale.minutes.get(name, 0) for name in names
                    if not (markers / name).exists())
    print(f"maskvit demo ({'quick' if quick else 'full'}) in {out.resolve()}: "
          f"about {remaining:.0f} min of work left")
    for index, name in enumerate(names, start=1):
        marker = markers / name
        if marker.exists():
            print(f"[{index}/{len(names)}] {name}: done earlier, skipped")
            continue
        if name == "train" and not quick:
            scale = refitted_scale(out, scale)
            remaining = sum(scale.minutes.get(n, 0) for n in names[index - 1:])
        stage = next(stage for stage in demo_stages(out, scale) if stage.name == name)
        argv = list(stage.argv)
        if stage.resumable_run is not None and (stage.resumable_run / "config.yaml").exists():
            argv.append("--resume")
        print(f"\n[{index}/{len(names)}] {name} (~{scale.minutes.get(name, 0):.1f} "
              f"min, {remaining:.1f} min left): maskvit {shlex.join(argv)}", flush=True)
        start = time.monotonic()
        code = run_command(argv)
        if code in INTERRUPTED:
            raise INTERRUPTED[code](f"stage {name} was stopped; rerun `{demo_command(out, quick)}` "
                                    f"to resume from this stage")
        if code != 0:
            raise UserError(f"stage {name} failed (exit {code}); fix the cause and rerun "
                            f"`{demo_command(out, quick)}` to continue from this stage")
        atomic_write_text(marker, f"{time.monotonic() - start:.1f} s\n")
        remaining -= scale.minutes.get(name, 0)
    return summarise(out)


def demo_command(out: Path, quick: bool) -> str:
    """The command that continues this demo (its scale is kept in OUT/.stages)."""
    return shlex.join(["maskvit", "demo", "--out", str(out)] + (["--quick"] if quick else []))


def summarise(out: Path) -> dict[str, Any]:
    """Headline numbers from the evaluate and plan outputs."""
    from maskvit.prediction_eval import headline_numbers

    summary: dict[str, Any] = {"report": str((out / "report" / "index.html").resolve()),
                               "plan_report": str((out / "plan" / "index.html").resolve())}
    metrics_file = out / "report" / "metrics.json"
    if metrics_file.is_file():
        metrics = json.loads(metrics_file.read_text())
        for who in ("model", "baseline"):
            for name, value in headline_numbers(metrics.get(who) or {}).items():
                summary[f"{who}_{name}"] = value
    plan_file = out / "plan" / "results.json"
    if plan_file.is_file():
        plan = json.loads(plan_file.read_text())
        for policy, result in plan.get("policies", plan).items():
            if isinstance(result, dict) and "successes" in result and "episodes" in result:
                summary[f"plan_{policy}_success"] = f"{result['successes']}/{result['episodes']}"
    return summary
