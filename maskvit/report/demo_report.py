"""The demo's page, OUT/index.html: the shipped model first, then what the demo trained.

It opens with the shipped reference model predicting this demo's held-out clips and one of
its planning episodes (a solved one where it solved any), then shows the model the demo
trained (how, its predictions, its planning episode), and closes with one table: the demo's
model, copying the last frame and the shipped model, scored on the same clips and planning
tasks. The demo rewrites it after every stage, so it fills in while the demo runs; a stage
not run yet shows as such. Everything is linked by relative paths, so the page opens from
disk.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maskvit.atomic import atomic_write_text

PAGE = "index.html"


@dataclass(frozen=True)
class DemoFolders:
    """Where the demo's stages write inside OUT (the page reads them)."""

    out: Path

    @property
    def page(self) -> Path:
        return self.out / PAGE

    @property
    def data(self) -> Path:
        return self.out / "data"

    @property
    def tokenizer(self) -> Path:  # --from-scratch only
        return self.out / "tokenizer"

    @property
    def tokens(self) -> Path:
        return self.out / "tokens"

    @property
    def transformer(self) -> Path:
        return self.out / "transformer"

    @property
    def report(self) -> Path:  # the demo model's `maskvit evaluate`
        return self.out / "report"

    @property
    def plan(self) -> Path:  # the demo model's `maskvit plan` (with the random policy)
        return self.out / "plan"

    @property
    def shipped_report(self) -> Path:
        return self.out / "shipped" / "report"

    @property
    def shipped_plan(self) -> Path:
        return self.out / "shipped" / "plan"


# The closing table: (label, key in closing_numbers, digits, what it measures).
METRIC_ROWS = (
    ("PSNR", "psnr", 2, "dB, best of the samples; higher is better"),
    ("SSIM", "ssim", 3, "best of the samples; higher is better"),
    ("LPIPS", "lpips", 3, "best of the samples; lower is better"),
    ("FVD", "fvd", 0, "all samples; lower is better (from few clips: compare the columns, "
                      "not with published values)"),
    ("box IoU", "box_iou", 3, "the boxes' masks, true vs predicted; higher is better"),
)
COLUMNS = (("model", "this demo's model"), ("baseline", "copy last frame"),
           ("shipped", "shipped model"))


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def closing_numbers(folders: DemoFolders) -> dict[str, Any]:
    """The closing table's numbers, from the stages that have run: `{column}_{metric}` for
    the demo model ("model"), copy-last ("baseline") and the shipped model ("shipped"), and
    `plan_{model,random,shipped}_success` ("solved/tasks")."""
    from maskvit.metrics.protocol import headline_numbers

    numbers: dict[str, Any] = {}
    # Copy-last is scored by both evaluations, on the same clips: the demo model's, else
    # the shipped model's (which runs first).
    sides = ((folders.shipped_report, (("model", "shipped"), ("baseline", "baseline"))),
             (folders.report, (("model", "model"), ("baseline", "baseline"))))
    for report, names in sides:
        metrics = _read_json(report / "metrics.json") or {}
        for side, column in names:
            for metric, value in headline_numbers(metrics.get(side) or {}).items():
                numbers[f"{column}_{metric}"] = value
    plans = ((folders.plan, (("model", "model"), ("random", "random"))),
             (folders.shipped_plan, (("model", "shipped"),)))
    for plan, names in plans:
        policies = (_read_json(plan / "results.json") or {}).get("policies", {})
        for policy, column in names:
            result = policies.get(policy)
            if isinstance(result, dict) and "successes" in result and "episodes" in result:
                numbers[f"plan_{column}_success"] = f"{result['successes']}/{result['episodes']}"
    return numbers


def closing_table(numbers: dict[str, Any]) -> list[tuple[str, list[str], str]]:
    """Rows of (label, one cell per COLUMNS entry, note); "-" where not measured (yet)."""
    rows = []
    for label, key, digits, note in METRIC_ROWS:
        cells = []
        for column, _ in COLUMNS:
            value = numbers.get(f"{column}_{key}")
            cells.append("-" if value is None else f"{value:.{digits}f}")
        rows.append((label, cells, note))
    random = numbers.get("plan_random_success")
    rows.append(("planning", [numbers.get("plan_model_success", "-"),
                              f"random actions: {random}" if random else "-",
                              numbers.get("plan_shipped_success", "-")],
                 "tasks solved, same tasks and planner settings for every column"))
    return rows


def write_demo_page(folders: DemoFolders) -> Path:
    """Write (replace) OUT/index.html from what the demo's stages have written so far."""
    atomic_write_text(folders.page, render_page(folders))
    return folders.page


def render_page(folders: DemoFolders) -> str:
    numbers = closing_numbers(folders)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>maskvit demo</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; max-width: 70em; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 4px 10px; text-align: right; }}
td.note {{ color: #666; text-align: left; }}
figure {{ display: inline-block; margin: 0.5em; vertical-align: top; }}
figcaption {{ font-size: 0.9em; color: #555; max-width: 30em; }}
</style></head><body>
<h1>maskvit demo</h1>
{_shipped_section(folders)}
{_demo_section(folders)}
{_closing_section(folders, numbers)}
</body></html>
"""


def _link(folders: DemoFolders, path: Path) -> str:
    return html.escape(path.relative_to(folders.out).as_posix())


def _prediction_figures(folders: DemoFolders, report: Path, count: int = 3) -> str:
    """The first `count` video grids of an evaluation report."""
    videos = sorted((report / "videos").glob("video_*.gif"))[:count]
    return "".join(f'<figure><img src="{_link(folders, gif)}" alt="held-out clip {i}">'
                   f"<figcaption>held-out clip {i}</figcaption></figure>"
                   for i, gif in enumerate(videos))


def _planning_figure(folders: DemoFolders, plan: Path, policy: str, who: str) -> str:
    """One planning episode of `policy`: the first it solved, else the first it ran."""
    results = _read_json(plan / "results.json")
    episodes = ((results or {}).get("policies", {}).get(policy) or {}).get("per_episode") or []
    episodes = [e for e in episodes if e.get("gif") and (plan / e["gif"]).is_file()]
    if not episodes:
        return ""
    episode = next((e for e in episodes if e.get("success")), episodes[0])
    outcome = "solved" if episode.get("success") else "not solved"
    caption = (f"{who} planning task {episode['task_seed']}: {outcome} (distance to the goal "
               f"{episode['start_distance']:.3f} m → {episode['final_distance']:.3f} m). Panels: "
               f"what the camera sees, the goal image, what the chosen plan predicted.")
    return (f'<figure><img src="{_link(folders, plan / episode["gif"])}" alt="planning episode">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _not_yet(stage: str) -> str:
    return f"<p><i>Not run yet (stage {html.escape(stage)}).</i></p>"


def _shipped_section(folders: DemoFolders) -> str:
    from maskvit.pretrained import pretrained_path

    if pretrained_path() is None and not folders.shipped_report.exists():
        return ("<h2>The shipped model</h2><p>This install has no shipped model "
                "(maskvit/pretrained/push64).</p>")
    predictions = _prediction_figures(folders, folders.shipped_report)
    planning = _planning_figure(folders, folders.shipped_plan, "model", "The shipped model")
    return f"""<h2>The shipped model</h2>
<p>The reference model that ships with maskvit (VQ-GAN tokenizer and a 1.35 M-parameter
transformer, trained for ~3 hours on 2 CPU cores; benchmarks/RESULTS.md, "Reference run")
predicting held-out clips of this demo's data (episodes it never trained on) from 2 context
frames and the robot's actions. Columns: context | ground truth | sampled futures; green
border: given frame, red: predicted.</p>
{predictions or _not_yet("evaluate-shipped")}
<p>Planning with it: CEM chooses the pusher's actions by predicting their outcome and
comparing it with a goal image.</p>
{planning or _not_yet("plan-shipped")}"""


def _training_summary(folders: DemoFolders) -> str:
    """How the demo's model was trained: its tokenizer, steps, recipe and time."""
    from maskvit.devices import choose_precision
    from maskvit.run_dir import read_run_config

    if not (folders.transformer / "config.yaml").is_file():
        return ""
    train = read_run_config(folders.transformer).train
    precision = train.precision
    if precision == "auto":
        import torch

        chosen, why = choose_precision("auto", torch.device("cpu"))
        precision = f"auto: {chosen} on this machine ({why})"
    tokenizer = ("its own tokenizer, trained first (--from-scratch)"
                 if (folders.tokenizer / "config.yaml").is_file() else "the shipped tokenizer")
    marker = folders.out / ".stages" / "train"
    took = f", in {marker.read_text().split()[0]} s" if marker.is_file() else " (training)"
    return (f"<p>The demo's transformer learned from this demo's training episodes, tokenized "
            f"with {html.escape(tokenizer)}: {train.steps} steps of {train.batch_size} clips"
            f"{html.escape(took)}, learning rate {train.lr:g} with "
            f"{_count(train.warmup_steps, 'warm-up step')} and a cosine decay to its last step, "
            f"precision {html.escape(precision)}.</p>")


def _demo_section(folders: DemoFolders) -> str:
    predictions = _prediction_figures(folders, folders.report)
    planning = _planning_figure(folders, folders.plan, "model", "The demo's model")
    return f"""<h2>What this demo trained</h2>
{_training_summary(folders) or _not_yet("train")}
<p>Its predictions of the same held-out clips:</p>
{predictions or _not_yet("evaluate")}
<p>Its planning on the same task:</p>
{planning or _not_yet("plan")}"""


def _closing_section(folders: DemoFolders, numbers: dict[str, Any]) -> str:
    esc = html.escape
    header = "".join(f"<th>{esc(name)}</th>" for _, name in COLUMNS)
    rows = "".join(f"<tr><th>{esc(label)}</th>" + "".join(f"<td>{esc(str(c))}</td>" for c in cells)
                   + f"<td class=note>{esc(note)}</td></tr>"
                   for label, cells, note in closing_table(numbers))
    reports = [(folders.report, "the demo model's evaluation"),
               (folders.plan, "the demo model's planning"),
               (folders.shipped_report, "the shipped model's evaluation"),
               (folders.shipped_plan, "the shipped model's planning")]
    links = ", ".join(f'<a href="{_link(folders, folder / PAGE)}">{esc(what)}</a>'
                      for folder, what in reports if (folder / PAGE).is_file())
    return f"""<h2>Side by side</h2>
<p>{esc(_what_was_compared(folders))}</p>
<table><tr><th></th>{header}<th></th></tr>{rows}</table>
{f"<p>Full reports: {links}.</p>" if links else ""}"""


def _what_was_compared(folders: DemoFolders) -> str:
    """The clips and planning tasks behind the closing table, as the reports record them."""
    parts = []
    for report in (folders.report, folders.shipped_report):
        result = ((_read_json(report / "metrics.json") or {}).get("model")) or {}
        if result.get("num_videos"):
            parts.append(f"{_count(result['num_videos'], 'held-out clip')}, "
                         f"{_count(result['trials'], 'sampled future')} each")
            break
    for plan in (folders.plan, folders.shipped_plan):
        results = _read_json(plan / "results.json") or {}
        seeds, config = results.get("task_seeds"), results.get("config") or {}
        if seeds:
            cem = (f"CEM: {_count(config.get('samples'), 'sample')}, "
                   f"{_count(config.get('iterations'), 'iteration')}, "
                   f"horizon {config.get('horizon')}")
            parts.append(f"planning task{'s' if len(seeds) > 1 else ''} "
                         f"{', '.join(map(str, seeds))} ({cem})")
            break
    scored = "; ".join(parts) if parts else "nothing scored yet"
    return f"Every column on the same material: {scored}."


def _count(number: Any, noun: str) -> str:
    """'1 sample', '4 samples'."""
    return f"{number} {noun}{'' if number == 1 else 's'}"
