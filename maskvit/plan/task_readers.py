"""Which classifier or reach reader each task's cost reads, in one `maskvit plan` run.

A reach reader is trained for a target per task (the slide's panel, a button's top...), and
the tuning instances chose different readers for different tasks; a run that plays several
tasks therefore loads one net per task, not one for all. `--classifier DIR` gives every task
a net, `--classifier TASK=DIR` one task (it wins over the plain one); the shipped model
falls back on the readers shipped beside it (per task where `--tuned` names one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maskvit.errors import UserError


@dataclass(frozen=True)
class ClassifierFlags:
    """`--classifier` as given: a folder for every task, and folders for single tasks."""

    every: str | None = None
    per_task: dict[str, str] = field(default_factory=dict)

    @property
    def given(self) -> bool:
        return self.every is not None or bool(self.per_task)


def parse_classifier_flags(values: list[str] | None, tasks: list[str] | tuple[str, ...]) -> ClassifierFlags:
    """`--classifier` values, each DIR or TASK=DIR (TASK one of this run's `tasks`); one line
    for another task, a task given twice or two plain folders."""
    every, per_task = None, {}
    for value in values or []:
        task, sep, folder = value.partition("=")
        if sep and task in tasks:
            if task in per_task:
                raise UserError(f"--classifier {task}=... is given twice; give each task one folder")
            per_task[task] = folder
            continue
        if sep and "/" not in task and not Path(value).exists():
            raise UserError(f"--classifier {value!r}: {task!r} is not a task of this run (its tasks: "
                            f"{', '.join(tasks) or 'none'}); give DIR or TASK=DIR")
        if every is not None:
            raise UserError("--classifier DIR is given twice; give one folder for every task and "
                            "TASK=DIR for the tasks that read another")
        every = value
    return ClassifierFlags(every, per_task)


def load_task_readers(
    task_costs: dict[str, str],
    flags: ClassifierFlags,
    default_folder,
) -> tuple[dict[str, Any], dict[str, str]]:
    """(task -> net, task -> its folder, resolved) for the tasks whose cost reads one.

    `task_costs` maps each task to its model cost; `default_folder(task, kind)` is the folder
    to use where no flag names one (None: there is none, which is one line). A folder read by
    several tasks is loaded once. Every net is checked against its cost's kind and its task
    before any episode runs."""
    from maskvit.plan.planner import CLASSIFIER_COSTS, CLASSIFIER_KINDS
    from maskvit.plan.success_classifier import load_classifier

    reading = {task: cost for task, cost in task_costs.items() if cost in CLASSIFIER_COSTS}
    unread = sorted(set(flags.per_task) - set(reading))
    if unread:
        raise UserError(f"--classifier {unread[0]}=...: that task's cost ({task_costs.get(unread[0], 'not played')}) "
                        f"reads no classifier; its cost must be {' or '.join(CLASSIFIER_COSTS)}")
    loaded: dict[str, Any] = {}
    nets, sources = {}, {}
    for task, cost in reading.items():
        kind = CLASSIFIER_KINDS[cost]
        folder = flags.per_task.get(task, flags.every)
        if folder is None:
            folder = default_folder(task, kind)
        if folder is None:
            raise UserError(f"plan.cost={cost} needs a {kind} classifier: pass --classifier DIR (train one "
                            f"on the model's store with maskvit train-classifier --kind {kind})")
        source = str(Path(folder).resolve())
        if source not in loaded:
            loaded[source] = load_classifier(folder)
        net = loaded[source]
        if net.kind != kind:
            raise UserError(f"{folder} holds a {net.kind} classifier; plan.cost={cost} reads a {kind} one "
                            f"(maskvit train-classifier --kind {kind})")
        net.task_index(task)  # a task the net does not know: one line, before any episode
        nets[task], sources[task] = net, source
    return nets, sources


__all__ = ["ClassifierFlags", "load_task_readers", "parse_classifier_flags"]
