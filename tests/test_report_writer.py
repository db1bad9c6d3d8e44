"""The report folder renders: metrics.json, curve PNGs, GIF grids, a page with working links."""

import json
import re

import numpy as np
from PIL import Image

from maskvit.metrics import (
    MetricNetworks,
    Protocol,
    evaluate_copy_last_baseline,
    evaluate_predictions,
)
from maskvit.report import write_report
from maskvit.report.plots import nice_ticks

PROTOCOL = Protocol("tiny", context_frames=2, predicted_frames=3, trials=2, num_videos=3)


def videos_and_results():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 256, (3, 5, 16, 16, 3), dtype=np.uint8)
    samples = np.stack(
        [truth[:, 2:], rng.integers(0, 256, (3, 3, 16, 16, 3), dtype=np.uint8)], axis=1
    )
    networks = MetricNetworks(
        fvd_features=lambda v: v.astype(np.float64).mean(axis=(2, 3)).reshape(len(v), -1)
    )
    metrics = ("psnr", "ssim", "fvd")
    result = evaluate_predictions(truth, samples, PROTOCOL, metrics=metrics, networks=networks)
    result["skipped"]["lpips"] = "LPIPS (AlexNet) weights missing: alexnet.ckpt not found"
    baseline = evaluate_copy_last_baseline(truth, PROTOCOL, metrics=metrics, networks=networks)
    return truth, samples, result, baseline


def test_report_writes_page_whose_linked_files_all_exist(tmp_path):
    truth, samples, result, baseline = videos_and_results()
    index = write_report(tmp_path / "report", result, baseline, truth, samples, max_videos=2)
    page = index.read_text()
    links = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert (
        "curve_psnr.png" in links and "curve_ssim.png" in links and "videos/video_001.gif" in links
    )
    for link in links:
        assert not link.startswith(("/", "http")), link  # relative: opens from disk
        assert (index.parent / link).is_file(), link
    assert "copy last frame" in page and "alexnet.ckpt not found" in page and "FVD" in page
    assert "<th>MaskViT</th>" in page
    gif = Image.open(index.parent / "videos/video_000.gif")
    assert gif.n_frames == 5  # context + predicted frames
    assert Image.open(index.parent / "curve_psnr.png").size == (640, 400)


def test_metrics_json_is_strict_json_with_infinities_as_null(tmp_path):
    truth, samples, result, baseline = videos_and_results()
    index = write_report(tmp_path, result, baseline)  # no videos given: page without GIFs
    data = json.loads((tmp_path / "metrics.json").read_text(), parse_constant=lambda c: 1 / 0)
    assert data["model"]["per_video"]["psnr"]["best"] == [None, None, None]  # exact sample: +inf dB
    assert data["model"]["per_video"]["psnr"]["best_trial"] == [0, 0, 0]
    assert data["baseline"]["metrics"]["ssim"]["mean"] == baseline["metrics"]["ssim"]["mean"]
    assert not (tmp_path / "videos").exists() and "No videos" in index.read_text()
    assert not list(tmp_path.glob(".*.tmp"))  # no temp files left behind


def test_plot_ticks_cover_the_data_range():
    ticks = nice_ticks(0.23, 0.91)
    assert ticks[0] <= 0.23 and ticks[-1] >= 0.91 and 3 <= len(ticks) <= 8


def test_curves_over_named_points_draw_one_marker_per_label(tmp_path):
    from maskvit.report.plots import Curve, plot_curves

    labels = ["1", "2", "4", "16"]
    path = plot_curves([Curve("cosine", [3.0, 2.0, 1.5, 1.4]), Curve("random", [None, 2.5, 2.0, 1.9])],
                       tmp_path / "sweep.png", "FVD by steps", "FVD", x_labels=labels,
                       xlabel="decoding steps")
    image = np.asarray(Image.open(path).convert("RGB")).astype(int)
    blue = (np.abs(image - np.array([31, 119, 180])).sum(-1) < 30)  # the first curve's colour
    columns = np.flatnonzero(blue[60:355].any(axis=0))
    assert columns.min() < 90 and columns.max() > 590  # spans the first to the last label
