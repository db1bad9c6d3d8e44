"""Write an evaluation report: metrics.json, curve PNGs, GIF grids and index.html.

Everything lands in one folder and the page links to its files by relative paths, so it
opens from disk. The folder is written beside the old report and swapped in whole
(`maskvit.report.staging`), so a failure midway leaves the old report as it was. In
metrics.json, values that are not finite (the +inf PSNR of a perfect prediction, the
standard error of a single video) are written as null.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import numpy as np

from maskvit.atomic import atomic_write_json, atomic_write_text
from maskvit.report.gifs import write_video_grid_gif
from maskvit.report.plots import Curve, plot_curves
from maskvit.report.staging import staged_report

METRIC_LABELS = {
    "psnr": ("PSNR", "dB, higher is better"),
    "ssim": ("SSIM", "higher is better; the paper's Table 1 prints ×100"),
    "lpips": ("LPIPS", "lower is better"),
    "fvd": ("FVD", "lower is better"),
}
# Object fidelity (`maskvit.metrics.objects`), on worlds whose objects are known by colour.
OBJECT_LABELS = {
    "iou": ("box IoU", "mask IoU of each box, true vs predicted frames; higher is better"),
    "centroid_error_px": ("box centroid error (px)", "distance between true and predicted "
                          "box centres; lower is better"),
}
# RoboDesk's objects (`maskvit.metrics.desk_objects`): task state read from the frames.
DESK_LABELS = {
    "light_agreement": ("light agreement", "share of (frame, button light) pairs lit or unlit "
                        "as in the true frame; higher is better"),
    "light_agreement_when_changed": ("light agreement where a light changed", "the same, only "
                                     "where the true light differs from the last context frame "
                                     "(copy-last gets none right); higher is better"),
    "light_agreement_when_on": ("light agreement where a light is lit", "the same, only where "
                                "the true light is lit (a small detail blurring erases); higher "
                                "is better"),
    "slide_error": ("slide position error", "|true − predicted| slide joint position read from "
                    "the frames (0 closed, 0.6 open); lower is better"),
    "drawer_error": ("drawer position error", "|true − predicted| drawer joint position read "
                     "from the frames (0 closed, −0.28 where it leaves the view); lower is better"),
    "block_centroid_error_px": ("block position error (px)", "distance between true and "
                                "predicted block centres; lower is better"),
    "slide_error_when_moved": ("slide error where it moved", "slide position error, only "
                               "where the true slide moved since the last context frame "
                               "(copy-last is wrong on each); lower is better"),
    "drawer_error_when_moved": ("drawer error where it moved", "drawer position error, only "
                                "where the true drawer moved since the last context frame; "
                                "lower is better"),
    "block_centroid_error_px_when_moved": ("block error where it moved (px)", "block position "
                                           "error, only where the true block moved more than "
                                           "2 px since the last context frame; lower is better"),
    "block_missing": ("blocks lost", "share of the blocks on the desk in the true frame that "
                      "the prediction lost; lower is better"),
}

# Where each kind of object fidelity sits in a result, and how its entries are labelled.
OBJECT_PARTS = {"objects": OBJECT_LABELS, "desk_objects": DESK_LABELS}


def write_metrics_json(
    path: str | os.PathLike, result: dict[str, Any], baseline: dict[str, Any] | None = None
) -> Path:
    """metrics.json: {"model": result, "baseline": copy-last-frame result or null}."""
    return atomic_write_json(path, {"model": result, "baseline": baseline})


def write_report(
    out_dir: str | os.PathLike,
    result: dict[str, Any],
    baseline: dict[str, Any] | None = None,
    ground_truth: np.ndarray | None = None,
    predictions: np.ndarray | None = None,
    *,
    title: str = "MaskViT evaluation",
    model_label: str = "MaskViT",
    max_videos: int = 8,
    max_samples: int = 4,
) -> Path:
    """Write the report folder (replacing an older report whole) and return its index.html.

    result / baseline: dicts from `maskvit.metrics.protocol` (`evaluate_predictions`,
    `evaluate_copy_last_baseline`). ground_truth (V, T, H, W, 3) and predictions
    (V, N, Tp, H, W, 3), both uint8, give the GIF grids of the first `max_videos` videos
    with up to `max_samples` samples each; leave them out for a page without videos.
    """
    with staged_report(out_dir, "evaluate") as stage:
        _write_files(stage, result, baseline, ground_truth, predictions, title=title,
                     model_label=model_label, max_videos=max_videos, max_samples=max_samples)
    return Path(out_dir) / "index.html"


def _write_files(
    out: Path,
    result: dict[str, Any],
    baseline: dict[str, Any] | None,
    ground_truth: np.ndarray | None,
    predictions: np.ndarray | None,
    *,
    title: str,
    model_label: str,
    max_videos: int,
    max_samples: int,
) -> None:
    write_metrics_json(out / "metrics.json", result, baseline)
    context_frames = int(result["protocol"]["context_frames"])

    plots = []
    for metric, summary in result["metrics"].items():
        if "per_frame" not in summary:
            continue
        curves = [Curve(model_label, summary["per_frame"], summary.get("per_frame_stderr"))]
        base = (baseline or {}).get("metrics", {}).get(metric)
        if base and "per_frame" in base:
            curves.append(Curve("copy last frame", base["per_frame"], base.get("per_frame_stderr")))
        name = f"curve_{metric}.png"
        label, note = METRIC_LABELS[metric]
        plot_curves(
            curves,
            out / name,
            f"{label} per predicted frame (best of {result['trials']})",
            label,
            context_frames + 1,
        )
        plots.append((name, f"{label} ({note})"))

    for part, labels in OBJECT_PARTS.items():
        objects, base_objects = result.get(part), (baseline or {}).get(part)
        for key, (label, _) in labels.items() if objects else ():
            if "per_frame" not in objects.get(key, {}):
                continue
            curves = [Curve(model_label, objects[key]["per_frame"])]
            if base_objects:
                curves.append(Curve("copy last frame", base_objects[key]["per_frame"]))
            name = f"curve_{part}_{key}.png"
            plot_curves(curves, out / name, f"{label} per predicted frame (mean of samples)",
                        label, context_frames + 1)
            plots.append((name, label))

    videos = []
    if ground_truth is not None and predictions is not None:
        (out / "videos").mkdir(exist_ok=True)
        os.chmod(out / "videos", 0o755)  # shared like the rest of the report, whatever the umask
        total = context_frames + int(result["protocol"]["predicted_frames"])
        for v in range(min(max_videos, len(ground_truth))):
            name = f"videos/video_{v:03d}.gif"
            samples = predictions[v, :max_samples, -(total - context_frames) :]
            write_video_grid_gif(out / name, ground_truth[v, :total], samples, context_frames)
            videos.append(name)

    page = _render_page(title, model_label, result, baseline, plots, videos)
    atomic_write_text(out / "index.html", page)


def _format(summary: dict[str, Any] | None, metric: str) -> str:
    if not summary:
        return "–"
    if "value" in summary:
        return f"{summary['value']:.1f}"
    digits = {"psnr": 2, "ssim": 4, "lpips": 4}[metric]
    mean, stderr = summary["mean"], summary.get("stderr")
    text = f"{mean:.{digits}f}" if mean is not None else "–"
    if stderr is not None and np.isfinite(stderr) and np.isfinite(mean):
        text += f" ± {stderr:.{digits}f}"
    return text


def _format_object(summary: dict[str, Any] | None) -> str:
    if not summary or summary.get("mean") is None:
        return "–"
    text = f"{summary['mean']:.3f}"
    text += f" ± {summary['se']:.3f}" if summary.get("se") is not None else ""
    return text + (f" ({summary['events']} events)" if "events" in summary else "")


def _render_page(
    title: str,
    model_label: str,
    result: dict[str, Any],
    baseline: dict[str, Any] | None,
    plots: list[tuple[str, str]],
    videos: list[str],
) -> str:
    esc = html.escape
    p = result["protocol"]
    header = (
        f"<tr><th>metric</th><th>{esc(model_label)}</th>"
        + ("<th>copy last frame</th>" if baseline is not None else "")
        + "<th></th></tr>"
    )
    skipped = "".join(
        f"<li><b>{esc(metric.upper())} not computed:</b> {esc(reason)}</li>"
        for metric, reason in result.get("skipped", {}).items()
    )
    plots_html = "".join(
        f'<figure><img src="{esc(name)}" alt="{esc(caption)}"><figcaption>{esc(caption)}</figcaption></figure>'
        for name, caption in plots
    )
    videos_html = "".join(
        f'<figure><img src="{esc(name)}" alt="video {i}"><figcaption>video {i}</figcaption></figure>'
        for i, name in enumerate(videos)
    )
    action = ", with actions" if p.get("action_conditioned") else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 4px 10px; text-align: right; }}
td.note {{ color: #666; text-align: left; }}
figure {{ display: inline-block; margin: 0.5em; }}
figcaption {{ font-size: 0.9em; color: #555; }}
</style></head><body>
<h1>{esc(title)}</h1>
<p>Protocol <b>{esc(str(p["name"]))}</b>: {p["context_frames"]} context frame(s) → {p["predicted_frames"]} predicted{esc(action)};
{result["num_videos"]} video(s) (the protocol: {p["num_videos"]}), {result["trials"]} sample(s) each (the protocol: {p["trials"]}). PSNR, SSIM and LPIPS: best of the samples per video,
mean ± standard error over videos. FVD: all samples against the ground truth (context + predicted frames).</p>
<table>{header}{"".join(_metric_rows(result, baseline))}</table>
{f"<ul>{skipped}</ul>" if skipped else ""}
<h2>Per-frame metrics</h2>
{plots_html or "<p>No per-frame metrics.</p>"}
<h2>Samples</h2>
<p>Columns: context | ground truth | samples. Green border: given frame; red border: predicted frame.</p>
{videos_html or "<p>No videos in this report.</p>"}
<p><a href="metrics.json">metrics.json</a></p>
</body></html>
"""


def _metric_rows(result: dict[str, Any], baseline: dict[str, Any] | None) -> list[str]:
    """The metrics table's rows: the model's value, the baseline's, and what it measures."""
    esc = html.escape
    rows = []
    for metric, (label, note) in METRIC_LABELS.items():
        ours = result["metrics"].get(metric)
        base = (baseline or {}).get("metrics", {}).get(metric)
        if ours is None and base is None and metric not in result.get("skipped", {}):
            continue
        cells = [_format(ours, metric)]
        if baseline is not None:
            cells.append(_format(base, metric))
        rows.append(
            f"<tr><th>{esc(label)}</th>"
            + "".join(f"<td>{esc(c)}</td>" for c in cells)
            + f"<td class=note>{esc(note)}</td></tr>"
        )
    for part, labels in OBJECT_PARTS.items():
        for key, (label, note) in labels.items() if result.get(part) else ():
            cells = [_format_object(result[part].get(key))]
            if baseline is not None:
                cells.append(_format_object((baseline.get(part) or {}).get(key)))
            rows.append(f"<tr><th>{esc(label)}</th>" + "".join(f"<td>{esc(c)}</td>" for c in cells)
                        + f"<td class=note>{esc(note)} (mean over samples)</td></tr>")
    return rows
