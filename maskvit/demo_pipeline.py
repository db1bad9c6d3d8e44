"""`maskvit demo`: the chain on the built-in push world, at laptop scale.

By default the demo starts from the shipped tokenizer and spends its budget on the
transformer: collect → evaluate-shipped → plan-shipped → tokenize → train → evaluate →
plan. `--from-scratch` trains the tokenizer as well (train-tokenizer before tokenize). The
shipped model's two stages run first, on this demo's own held-out clips and planning tasks,
so the page (OUT/index.html, `maskvit.report.demo_report`) opens with what a trained model
does while the demo's own model trains, and so the demo model is compared with it on the
same clips and tasks. Each stage is one `maskvit` command (printed, so it can be rerun at
full scale). A finished stage leaves a marker in OUT/.stages/ and is skipped by the next
run; an interrupted training stage resumes from its last checkpoint.
"""

from __future__ import annotations

import dataclasses
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
from maskvit.report.demo_report import DemoFolders, closing_numbers, write_demo_page

DEFAULT_MINUTES = 15.0

# A stage's exit status when Ctrl-C (130) or SIGTERM (143) stopped it, and how the demo
# passes that on: as an interruption (resumable), not as a failure to fix.
INTERRUPTED: dict[int, type[KeyboardInterrupt]] = {130: KeyboardInterrupt, 143: Terminated}

# Which tokenizer a demo folder's transformer trains on, recorded in OUT/.stages/CHAIN_FILE
# so a rerun never mixes the two chains.
CHAIN_FILE = "chain"
SHIPPED_TOKENIZER, FROM_SCRATCH = "shipped-tokenizer", "from-scratch"


@dataclass(frozen=True)
class DemoScale:
    """How big each stage is; `FULL` is the most the demo trains, `QUICK` takes ~1 minute."""

    episodes: int
    episode_steps: int
    tokenizer_steps: int  # with --from-scratch
    tokenizer_batch: int
    transformer_steps: int  # the most; the budget may give fewer
    transformer_batch: int
    transformer_lr: float
    eval_videos: int
    eval_trials: int
    plan_first_task: int
    plan_episodes: int
    plan_overrides: tuple[str, ...] = field(default_factory=tuple)
    eval_metrics: str = "psnr,ssim,lpips,fvd"
    minutes: dict[str, float] = field(default_factory=dict)  # rough stage estimates

    @property
    def disc_start(self) -> int:
        """The preset's recipe at the demo's scale: the GAN loss starts 40 % of the way in,
        as the reference run's does (step 1000 of 2500)."""
        return self.tokenizer_steps * 2 // 5

    @property
    def transformer_warmup(self) -> int:
        """Warm-up: 5 % of the run; the cosine decay ends at the run's last step."""
        return max(1, self.transformer_steps // 20)


FULL = DemoScale(
    # 600 tokenizer steps (--from-scratch): LPIPS + the PatchGAN cost ~2x a plain step (800
    # steps took 3.4 min without them); that demo took 12 min 44 s on an idle 2-core AMD EPYC
    # (no AMX), 22 min on a slower one of the same kind: `maskvit demo` shortens the training
    # where this scale would not fit its budget (maskvit/demo_budget.py).
    # The transformer: as many steps as the budget gives, up to 2000, with a short-run recipe
    # chosen by measurement at the ~800 steps an AMD EPYC's budget gives (batch 16, 5 %
    # warm-up, cosine to the last step; the 9 test clips below, 2026-12-05): lr 1e-3 (the
    # preset's), 2e-3 and 3e-3 gave PSNR 21.02 / 21.45 / 21.75, LPIPS 0.128 / 0.114 / 0.113,
    # FVD 949 / 738 / 606, box IoU 0.496 / 0.574 / 0.588, where copying the last frame scores
    # 21.95, 0.122, 616 and 0.726 (benchmarks/RESULTS.md, "Demo").
    # Evaluation: all 9 test episodes of the 300 (the split is a hash of the episode id),
    # 4 samples each. Planning: tasks 4 and 5, which the shipped model solved with these CEM
    # settings (bf16, 2026-12-05; tasks 0-5: 0, 2, 4, 5 solved), so the page can open with a
    # solved episode; each model plans both.
    episodes=300, episode_steps=30, tokenizer_steps=600, tokenizer_batch=8,
    transformer_steps=2000, transformer_batch=16, transformer_lr=3e-3,
    eval_videos=9, eval_trials=4, plan_first_task=4, plan_episodes=2,
    plan_overrides=("plan.samples=32", "plan.iterations=2", "plan.horizon=5",
                    "plan.warm_start=true"),
    # Rough; the sizing replaces them with estimates from this machine's probe.
    minutes={"collect": 0.2, "evaluate-shipped": 0.5, "plan-shipped": 0.6,
             "train-tokenizer": 5.6, "tokenize": 0.3, "train": 10.0, "evaluate": 0.5,
             "plan": 0.6},
)

QUICK = DemoScale(
    episodes=16, episode_steps=14, tokenizer_steps=10, tokenizer_batch=4,
    transformer_steps=10, transformer_batch=4, transformer_lr=3e-3, eval_videos=2,
    eval_trials=1, plan_first_task=2, plan_episodes=1,
    plan_overrides=("plan.samples=8", "plan.iterations=1", "plan.decoding.steps=2",
                    "plan.episode_steps=4", "plan.horizon=4"),
    # No FVD: from 2 clips it means nothing, and its I3D pass was a quarter of a quick demo's
    # time (2-core AMD EPYC, cProfile). The table shows "-" for it; the full demo scores it.
    eval_metrics="psnr,ssim,lpips",
    minutes={"collect": 0.2, "evaluate-shipped": 0.2, "plan-shipped": 0.2,
             "train-tokenizer": 0.5, "tokenize": 0.1, "train": 0.5, "evaluate": 0.2,
             "plan": 0.3},
)


# --from-scratch: the tokenizer's 600 steps and the transformer's 400 share the budget (both
# shortened by one factor where they would not fit; RESULTS.md, "Demo").
FULL_FROM_SCRATCH = dataclasses.replace(FULL, transformer_steps=400)


@dataclass(frozen=True)
class Chain:
    """What the demo trains, and the shipped model it shows beside it."""

    from_scratch: bool  # train the tokenizer too (else tokenize with the shipped one)
    shipped: Path | None  # the shipped bundle; None where this install has none

    @property
    def name(self) -> str:
        return FROM_SCRATCH if self.from_scratch else SHIPPED_TOKENIZER


@dataclass
class Stage:
    name: str
    argv: list[str]
    resumable_run: Path | None = None  # a training run continued with --resume


def demo_stages(out: Path, scale: DemoScale, chain: Chain) -> list[Stage]:
    """The demo's stages in order (the shipped model's two only where this install has it)."""
    folders, shipped, from_scratch = DemoFolders(out), chain.shipped, chain.from_scratch
    tokenizer = folders.tokenizer if from_scratch else _shipped_tokenizer(shipped)
    stages = [Stage("collect", ["collect", "--env", "push", "--episodes", str(scale.episodes),
                                "--steps", str(scale.episode_steps), "--out", str(folders.data)])]
    if shipped is not None:
        stages += [
            Stage("evaluate-shipped",
                  _evaluate_argv(shipped, folders.data, folders.shipped_report, scale)),
            Stage("plan-shipped", _plan_argv(shipped, folders.shipped_plan, ["model"], scale))]
    if from_scratch:
        stages.append(Stage("train-tokenizer", [
            "train-tokenizer", "--preset", "push64", "--data", str(folders.data),
            "--out", str(tokenizer),
            "--set", f"tokenizer_train.steps={scale.tokenizer_steps}",
            "--set", f"tokenizer_train.batch_size={scale.tokenizer_batch}",
            "--set", f"tokenizer_train.warmup_steps={max(1, scale.tokenizer_steps // 20)}",
            "--set", f"tokenizer.disc_start={scale.disc_start}",
            "--device", "cpu"], tokenizer))
    stages += [
        Stage("tokenize", ["tokenize", "--tokenizer", str(tokenizer), "--data", str(folders.data),
                           "--out", str(folders.tokens), "--device", "cpu"]),
        Stage("train", [
            "train", "--preset", "push64", "--data", str(folders.tokens),
            "--out", str(folders.transformer),
            "--set", f"train.steps={scale.transformer_steps}",
            "--set", f"train.batch_size={scale.transformer_batch}",
            "--set", f"train.lr={scale.transformer_lr:g}",
            "--set", f"train.warmup_steps={scale.transformer_warmup}",
            "--set", "train.precision=auto",
            "--device", "cpu"], folders.transformer),
        Stage("evaluate", _evaluate_argv(folders.transformer, folders.data, folders.report, scale)),
        Stage("plan", _plan_argv(folders.transformer, folders.plan, ["model", "random"], scale)),
    ]
    return stages


def _shipped_tokenizer(shipped: Path | None) -> Path:
    if shipped is None:
        raise UserError("maskvit demo starts from the shipped tokenizer, and this install has no "
                        "shipped model (maskvit/pretrained/push64): run `maskvit demo "
                        "--from-scratch` to train one too, or regenerate it with "
                        "`bash benchmarks/reference_push64.sh`")
    return shipped / "tokenizer"


def _evaluate_argv(model: Path, data: Path, report: Path, scale: DemoScale) -> list[str]:
    """Both models are scored on the same held-out clips, samples and seed."""
    return ["evaluate", "--model", str(model), "--data", str(data),
            "--out", str(report), "--num-videos", str(scale.eval_videos),
            "--trials", str(scale.eval_trials), "--metrics", scale.eval_metrics]


def _plan_argv(model: Path, report: Path, policies: list[str], scale: DemoScale) -> list[str]:
    """Both models plan the same tasks with the same settings."""
    return (["plan", "--model", str(model), "--env", "push", "--first-task",
             str(scale.plan_first_task), "--episodes", str(scale.plan_episodes)]
            + [arg for policy in policies for arg in ("--policy", policy)]
            + ["--out", str(report)]
            + [arg for o in scale.plan_overrides for arg in ("--set", o)])


def full_scale(chain: Chain) -> DemoScale:
    return FULL_FROM_SCRATCH if chain.from_scratch else FULL


def run_demo(out: str | Path = "maskvit-demo", quick: bool = False,
             run_command: Callable[[list[str]], int] | None = None,
             minutes: float = DEFAULT_MINUTES,
             measure: Callable[[list[str] | None, list[str]], StepCosts] | None = None,
             from_scratch: bool = False) -> dict[str, Any]:
    """Run every unfinished stage; return the headline numbers.

    The full demo is sized to `minutes` on this machine (`measure` times its training
    steps; see maskvit/demo_budget.py); `quick` has a fixed, tiny size.
    """
    from maskvit.cli import main as cli_main
    from maskvit.locking import output_lock
    from maskvit.pretrained import pretrained_path

    if not minutes > 0:
        raise UserError(f"--minutes must be a positive number of minutes, got {minutes:g}")
    chain = Chain(from_scratch=from_scratch, shipped=pretrained_path())
    if not from_scratch:
        _shipped_tokenizer(chain.shipped)  # no shipped model: one line, before anything is written
    run_command = run_command or cli_main
    out = Path(out)
    with output_lock(out, "demo folder"):  # two demos in one folder would mix their stages
        markers = out / ".stages"
        markers.mkdir(parents=True, exist_ok=True)
        keep_chain(out, chain, quick)
        scale = QUICK if quick else sized_scale(out, minutes, measure or measure_step_costs, chain)
        return _run_stages(out, scale, quick, chain, run_command)


def keep_chain(out: Path, chain: Chain, quick: bool) -> None:
    """Record which chain this folder runs, or refuse the other: a rerun must not train on
    one tokenizer's tokens what was begun on the other's."""
    markers = out / ".stages"
    path = markers / CHAIN_FILE
    if path.is_file():
        recorded = path.read_text().strip()
        if recorded not in (SHIPPED_TOKENIZER, FROM_SCRATCH):
            raise UserError(f"{path} is damaged; write {SHIPPED_TOKENIZER} or {FROM_SCRATCH} "
                            f"into it (whichever this demo was begun with), or use a new --out")
    elif any(markers.iterdir()):
        recorded = FROM_SCRATCH  # begun by an older maskvit demo, which always trained both
    else:
        atomic_write_text(path, chain.name + "\n")
        return
    if recorded != chain.name:
        begun = ("with --from-scratch (it trains its own tokenizer)" if recorded == FROM_SCRATCH
                 else "without --from-scratch (on the shipped tokenizer)")
        again = demo_command(out, quick, recorded == FROM_SCRATCH)
        raise UserError(f"{out} was begun {begun}; continue it with `{again}`, or use a new "
                        f"--out for the other chain")


def sized_scale(out: Path, minutes: float,
                measure: Callable[[list[str] | None, list[str]], StepCosts],
                chain: Chain) -> DemoScale:
    """The full scale with its training steps fitted to `minutes` here, chosen once per
    demo folder."""
    full = full_scale(chain)
    markers = out / ".stages"
    sizing = read_sizing(markers)
    stages = {stage.name: stage for stage in demo_stages(out, full, chain)}
    if sizing is None:
        trainings = [name for name in ("train-tokenizer", "train") if name in stages]
        begun = any((markers / name).exists() or (stages[name].resumable_run / "config.yaml").exists()
                    for name in trainings)
        if begun:  # a folder from before sizing existed: keep the scale its runs began with
            sizing = Sizing(fraction=1.0,
                            tokenizer_steps=full.tokenizer_steps if chain.from_scratch else 0,
                            transformer_steps=full.transformer_steps, minutes=dict(full.minutes),
                            budget_minutes=minutes, costs=None)
        else:
            print(f"timing the demo's training steps on this machine (about "
                  f"{15 if chain.from_scratch else 5} s) ...", flush=True)
            start = time.monotonic()
            tokenizer = stages["train-tokenizer"].argv if chain.from_scratch else None
            costs = measure(tokenizer, stages["train"].argv)
            sizing = size_demo(costs, full.tokenizer_steps if chain.from_scratch else 0,
                               full.disc_start, full.transformer_steps, minutes,
                               time.monotonic() - start,
                               fixed_stages=[name for name in stages if name not in trainings])
        write_sizing(markers, sizing)
    elif sizing.budget_minutes != minutes:
        print(f"this demo folder was sized for {sizing.budget_minutes:g} min when it began; its "
              f"runs keep those step counts (a new --out sizes a new demo for {minutes:g} min)")
    print(describe(sizing, full.tokenizer_steps, full.transformer_steps))
    return dataclasses.replace(full, tokenizer_steps=sizing.tokenizer_steps,
                               transformer_steps=sizing.transformer_steps,
                               minutes={**full.minutes, **sizing.minutes})


def refitted_scale(out: Path, scale: DemoScale, chain: Chain) -> DemoScale:
    """Before the transformer trains: its steps re-fitted to the budget left (demo_budget)."""
    markers = out / ".stages"
    sizing = read_sizing(markers)
    stages = demo_stages(out, scale, chain)
    names = [stage.name for stage in stages]
    run = stages[names.index("train")].resumable_run
    if (sizing is None or sizing.costs is None or sizing.tokenizer_ratio is not None
            or (run / "config.yaml").exists()):
        return scale  # not sized, re-fitted already, or its run has begun: keep its steps
    spent = {name: stage_seconds(markers / name) for name in names[:names.index("train")]}
    refit = refit_transformer(sizing, spent, full_scale(chain).transformer_steps)
    write_sizing(markers, refit)
    if chain.from_scratch:
        print(f"the tokenizer took {spent['train-tokenizer']:.0f} s, {refit.tokenizer_ratio:.2f}x "
              f"the estimate: ", end="")
    print(f"the transformer trains {refit.transformer_steps} steps (sized "
          f"{sizing.transformer_steps}) to fit {sizing.budget_minutes:g} min, "
          f"{sum(spent.values()):.0f} s of which have passed")
    return dataclasses.replace(scale, transformer_steps=refit.transformer_steps,
                               minutes={**scale.minutes, **refit.minutes})


def stage_seconds(marker: Path) -> float:
    """A finished stage's time, as its marker records it ("123.4 s")."""
    try:
        return float(marker.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        raise UserError(f"{marker} is damaged; delete it to rerun that stage") from None


def _run_stages(out: Path, scale: DemoScale, quick: bool, chain: Chain,
                run_command: Callable[[list[str]], int]) -> dict[str, Any]:
    markers = out / ".stages"
    names = [stage.name for stage in demo_stages(out, scale, chain)]
    remaining = sum(scale.minutes.get(name, 0) for name in names
                    if not (markers / name).exists())
    print(f"maskvit demo ({'quick' if quick else 'full'}, "
          f"{'from scratch' if chain.from_scratch else 'on the shipped tokenizer'}) in "
          f"{out.resolve()}: about {remaining:.0f} min of work left; the page "
          f"{DemoFolders(out).page.resolve()} fills in as the stages finish")
    write_demo_page(DemoFolders(out))
    for index, name in enumerate(names, start=1):
        marker = markers / name
        if marker.exists():
            print(f"[{index}/{len(names)}] {name}: done earlier, skipped")
            continue
        if name == "train" and not quick:
            scale = refitted_scale(out, scale, chain)
            remaining = sum(scale.minutes.get(n, 0) for n in names[index - 1:])
        stage = next(stage for stage in demo_stages(out, scale, chain) if stage.name == name)
        argv = list(stage.argv)
        if stage.resumable_run is not None and (stage.resumable_run / "config.yaml").exists():
            argv.append("--resume")
        print(f"\n[{index}/{len(names)}] {name} (~{scale.minutes.get(name, 0):.1f} "
              f"min, {remaining:.1f} min left): maskvit {shlex.join(argv)}", flush=True)
        start = time.monotonic()
        code = run_command(argv)
        again = demo_command(out, quick, chain.from_scratch)
        if code in INTERRUPTED:
            raise INTERRUPTED[code](f"stage {name} was stopped; rerun `{again}` to resume from "
                                    f"this stage")
        if code != 0:
            raise UserError(f"stage {name} failed (exit {code}); fix the cause and rerun "
                            f"`{again}` to continue from this stage")
        atomic_write_text(marker, f"{time.monotonic() - start:.1f} s\n")
        write_demo_page(DemoFolders(out))
        remaining -= scale.minutes.get(name, 0)
    return summarise(out)


def demo_command(out: Path, quick: bool, from_scratch: bool) -> str:
    """The command that continues this demo (its scale is kept in OUT/.stages)."""
    return shlex.join(["maskvit", "demo", "--out", str(out)] + (["--quick"] if quick else [])
                      + (["--from-scratch"] if from_scratch else []))


def summarise(out: Path) -> dict[str, Any]:
    """The page, the two models' reports and the closing table's numbers."""
    folders = DemoFolders(out)
    summary: dict[str, Any] = {"page": str(folders.page.resolve()),
                               "report": str((folders.report / "index.html").resolve()),
                               "plan_report": str((folders.plan / "index.html").resolve())}
    summary.update(closing_numbers(folders))
    return summary
