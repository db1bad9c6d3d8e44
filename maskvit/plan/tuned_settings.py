"""The model's planning settings per task, as the tuning instances chose them.

A preset's plan section is one setting for every task (robodesk64's is VP2's protocol: MPPI,
200 samples, the pixel cost), but the tuning instances chose a different one per task
(`benchmarks/RESULTS.md`, "push_red at 128 samples" and "VP2's classifier cost"): the reach
cost with 128 samples for the red and blue buttons, the pixel cost with 64 for the green one.
`maskvit plan --tuned` plays the model policy with these, so the held-out table's model rows
come from one command. The baselines keep the preset's setting (the oracle's own is
chosen with `--set`), and a task with no tuned setting keeps it too.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from maskvit.config import Config, PlanConfig
from maskvit.errors import UserError
from maskvit.inference.requests import config_with_flags

# preset name -> task -> `--set` overrides, chosen on the tuning instances (never the test ones).
TUNED_PLAN: dict[str, dict[str, tuple[str, ...]]] = {
    "robodesk64": {
        "push_red": ("plan.samples=128", "plan.cost=pixel_l2_reach"),
        "push_blue": ("plan.samples=128", "plan.cost=pixel_l2_reach"),
        "push_green": ("plan.samples=64", "plan.cost=pixel_l2"),
    },
}

# preset -> task -> the reach reader its tuning chose, a folder name under the shipped
# classifiers (`maskvit.pretrained.CLASSIFIERS_ROOT`); tasks not named read the preset's own.
TUNED_READERS: dict[str, dict[str, str]] = {}


def tuned_reader(preset: str, task: str, kind: str) -> Path | None:
    """The shipped reader of `kind` that `task`'s tuned setting reads, or None where it reads
    the preset's own (or it is not shipped in this install)."""
    from maskvit.pretrained import CLASSIFIERS_ROOT

    name = TUNED_READERS.get(preset, {}).get(task)
    if name is None or kind != "reach":
        return None
    folder = CLASSIFIERS_ROOT / name
    return folder if (folder / "classifier.json").is_file() else None


def tuned_overrides(preset: str, task: str) -> tuple[str, ...]:
    """The `--set` overrides the tuning instances chose for `task` with a model of `preset`
    (none where that task kept the preset's setting); one line for a preset with none."""
    if preset not in TUNED_PLAN:
        raise UserError(f"--tuned: no tuned planning settings for {preset} models (there are for: "
                        f"{', '.join(TUNED_PLAN)}); leave --tuned out or choose settings with --set")
    return TUNED_PLAN[preset].get(task, ())


def task_plan_configs(config: Config, tasks: list[str], overrides: list[str]) -> dict[str, PlanConfig]:
    """Each task's plan for the model policy: the tuned setting, then the user's own `--set`
    flags on top (so they still win), checked as every override is."""
    return {task: config_with_flags(config, [*tuned_overrides(config.name, task), *overrides]).plan
            for task in tasks}


def settings_record(base: PlanConfig, per_task: dict[str, PlanConfig]) -> dict[str, dict]:
    """What each task's model plan changes from `base`, for the report (empty where nothing)."""
    before = dataclasses.asdict(base)
    return {task: {key: value for key, value in dataclasses.asdict(plan).items() if before[key] != value}
            for task, plan in per_task.items()}


__all__ = ["TUNED_PLAN", "TUNED_READERS", "settings_record", "task_plan_configs", "tuned_overrides", "tuned_reader"]
