"""What `maskvit plan` writes: results.json, one GIF per episode, an HTML summary.

Success rates come with 95 % Wilson score intervals (sound for small N and for rates of
0 or 1, unlike the normal approximation). Every file is written to a temporary name in
the same folder and renamed, so a reader never sees half a file; `maskvit plan` writes the
whole folder beside --out and swaps it in at the end (`maskvit.report.staging`).

Layout: the push world writes results.json, index.html and gifs/ into --out. RoboDesk
writes one such folder per task (TASK/results.json, TASK/index.html, TASK/gifs/) and, in
--out itself, results.json and index.html over all tasks (per task and pooled).
"""

from __future__ import annotations

import html
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from maskvit.atomic import atomic_write_bytes
from maskvit.plan.mpc import EpisodeResult

# What each world's `goal_distance` measures, for captions and table headings.
DISTANCE_UNITS = {"push": "m", "robodesk": "task units"}
# Row fields that time an episode: they differ between runs, everything else must not.
TIMING_FIELDS = ("seconds", "cpu_seconds")


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % (by default) Wilson score interval for a binomial success rate."""
    if trials == 0:
        return (0.0, 1.0)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def summarise(episodes: list[EpisodeResult]) -> dict[str, Any]:
    """Success rate, its interval and distances for one policy's episodes."""
    return summarise_rows([{"success": e.success, "start_distance": e.start_distance,
                            "final_distance": e.final_distance} for e in episodes])


def summarise_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """`summarise` from results.json rows (success, start and final distance, and the
    episode's timings where the rows have them)."""
    wins = sum(bool(r["success"]) for r in rows)
    low, high = wilson_interval(wins, len(rows))
    summary = {
        "episodes": len(rows),
        "successes": wins,
        "success_rate": wins / len(rows) if rows else 0.0,
        "ci95": [low, high],
        "mean_start_distance": float(np.mean([r["start_distance"] for r in rows])) if rows else None,
        "mean_final_distance": float(np.mean([r["final_distance"] for r in rows])) if rows else None,
    }
    if rows and all("seconds" in r for r in rows):
        summary["seconds_per_episode"] = float(np.mean([r["seconds"] for r in rows]))
        summary["cpu_seconds_per_episode"] = float(np.mean([r["cpu_seconds"] for r in rows]))
    return summary


def episode_frames(episode: EpisodeResult, scale: int = 2) -> list[np.ndarray]:
    """GIF frames: observation | goal | what the current plan predicted for this step.

    The third panel is black where no prediction exists (the first frames, the random policy).
    """
    observations = episode.frames
    size = observations.shape[1:3]
    predicted = np.zeros_like(observations)
    for record in episode.plans:
        if record.predicted is None:
            continue
        # record.predicted[i] is the frame expected after step record.step + i
        for i, frame in enumerate(record.predicted):
            t = record.step + 1 + i
            if t < len(observations) and (i < _executed(episode, record)):
                predicted[t] = frame
    gap = np.full((size[0], 2, 3), 255, np.uint8)
    goal = episode.goal
    rows = [np.concatenate([obs, gap, goal, gap, pred], axis=1) for obs, pred in zip(observations, predicted, strict=True)]
    return [np.kron(r, np.ones((scale, scale, 1), np.uint8)) for r in rows]


def _executed(episode: EpisodeResult, record) -> int:
    """How many of a plan's actions ran before the next plan (or the end)."""
    later = [p.step for p in episode.plans if p.step > record.step]
    end = later[0] if later else len(episode.actions)
    return end - record.step


def gif_bytes(frames: list[np.ndarray], frame_ms: int = 250) -> bytes:
    images = [Image.fromarray(f) for f in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:],
                   duration=frame_ms, loop=0)
    return buffer.getvalue()


def episode_gif_name(policy: str, task_seed: int) -> str:
    """Where an episode's GIF goes, relative to its report folder."""
    return f"gifs/{policy}_task{task_seed}.gif"


def write_episode_gif(out: Path, policy: str, episode: EpisodeResult) -> str:
    """Save one episode's GIF; returns its path relative to `out`."""
    name = episode_gif_name(policy, episode.task_seed)
    atomic_write_bytes(out / name, gif_bytes(episode_frames(episode)))
    return name


def write_results(out: Path, results: dict[str, Any]) -> None:
    atomic_write_bytes(out / "results.json", json.dumps(results, indent=1))


_STYLE = """<style>body{font-family:sans-serif;margin:2em} table{border-collapse:collapse}
td,th{border:1px solid #999;padding:4px 10px} .grid{display:flex;flex-wrap:wrap;gap:8px}
figure{margin:0} img{image-rendering:pixelated}</style>"""


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"{_STYLE}</head><body>\n{body}</body></html>")


def _summary_cells(data: dict[str, Any]) -> str:
    lo, hi = data["ci95"]
    return (f"<td>{data['successes']}/{data['episodes']}</td><td>{data['success_rate']:.1%}</td>"
            f"<td>[{lo:.1%}, {hi:.1%}]</td>")


def write_html(out: Path, results: dict[str, Any]) -> None:
    """One folder's page: a table of success rates, then every episode's GIF."""
    units = DISTANCE_UNITS.get(results["env"], "")
    world = results["env"] + (f", task {results['task']}" if "task" in results else "")
    rows, sections = [], []
    for name, data in results["policies"].items():
        rows.append(
            f"<tr><td>{html.escape(name)}</td>{_summary_cells(data)}"
            f"<td>{data['mean_start_distance']:.3f} → {data['mean_final_distance']:.3f}</td></tr>"
        )
        cells = "".join(
            f"<figure>{_img(e['gif'])}<figcaption>task {e['task_seed']}: "
            f"{'success' if e['success'] else 'fail'}, {e['final_distance']:.3f} {units}</figcaption></figure>"
            for e in data["per_episode"]
        )
        sections.append(f"<h2>{html.escape(name)}</h2><div class='grid'>{cells}</div>")
    success = ("the task's success predicate held after some step (VP2's protocol)"
               if results["env"] == "robodesk" else "object centre within the task threshold of its goal")
    body = f"""<h1>Visual MPC in the {html.escape(world)} world</h1>
<p>Each GIF: observation | goal | the current plan's predicted frame.
Success: {success}, within {results['config']['episode_steps']} steps.</p>
<table><tr><th>policy</th><th>solved</th><th>rate</th><th>95% CI (Wilson)</th>
<th>mean distance to goal ({units}), start → end</th></tr>{''.join(rows)}</table>
{''.join(sections)}"""
    atomic_write_bytes(out / "index.html", _page("maskvit plan", body))


def write_overview_html(out: Path, results: dict[str, Any]) -> None:
    """The RoboDesk overview: success per task and policy (each task linking to its page),
    then every policy pooled over the tasks."""
    rows = []
    for task, policies in results["per_task"].items():
        for name, data in policies.items():
            link = f"<a href='{html.escape(task)}/index.html'>{html.escape(task)}</a>"
            rows.append(f"<tr><td>{link}</td><td>{html.escape(name)}</td>{_summary_cells(data)}</tr>")
    for name, data in results["policies"].items():
        rows.append(f"<tr><th>all tasks</th><td>{html.escape(name)}</td>{_summary_cells(data)}</tr>")
    body = f"""<h1>Visual MPC in RoboDesk ({html.escape(results['split'])} instances)</h1>
<p>Success: the task's success predicate held after some step of a
{results['config']['episode_steps']}-step episode (VP2's protocol). Each task's page shows
every episode.</p>
<table><tr><th>task</th><th>policy</th><th>solved</th><th>rate</th><th>95% CI (Wilson)</th></tr>
{''.join(rows)}</table>"""
    atomic_write_bytes(out / "index.html", _page("maskvit plan: RoboDesk", body))


def _img(path: str | None) -> str:
    return f"<img src='{html.escape(path)}'>" if path else ""
