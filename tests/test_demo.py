"""`maskvit demo --quick` end to end (on the shipped tokenizer, and --from-scratch), its page,
and the commands that use its trained model."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from maskvit.cli import main
from maskvit.data import EpisodeStore, TokenCache
from maskvit.pretrained import pretrained_path

STAGES = ["collect", "evaluate-shipped", "plan-shipped", "tokenize", "train", "evaluate", "plan"]
STAGES_FROM_SCRATCH = [*STAGES[:3], "train-tokenizer", *STAGES[3:]]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    """The whole chain: the demo trains its own tokenizer too."""
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--quick", "--from-scratch", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def shipped_demo_dir(tmp_path_factory):
    """The default chain: tokens from the shipped tokenizer, the shipped model shown first."""
    out = tmp_path_factory.mktemp("shipped_demo")
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    return out


def test_every_stage_leaves_valid_outputs(demo_dir):
    store = EpisodeStore.open(demo_dir / "data")
    assert len(store) == 16 and store.action_dim == 2
    cache = TokenCache.open(demo_dir / "tokens")
    assert cache.token_shape == (8, 8)
    assert sorted(cache.episode_ids()) == sorted(store.episode_ids())
    for run in ("tokenizer", "transformer"):
        assert (demo_dir / run / "config.yaml").is_file()
        assert list((demo_dir / run / "checkpoints").glob("step_*/*.safetensors"))
    sources = json.loads((demo_dir / "transformer" / "sources.json").read_text())
    assert sources["tokenizer"] == str((demo_dir / "tokenizer").resolve())
    metrics = json.loads((demo_dir / "report" / "metrics.json").read_text())
    for who in ("model", "baseline"):
        assert np.isfinite(metrics[who]["metrics"]["ssim"]["mean"])
        # Push-world data: the boxes' fidelity is scored for the model and for copy-last.
        objects = metrics[who]["objects"]
        assert 0.0 <= objects["iou"]["mean"] <= 1.0
        assert len(objects["iou"]["per_frame"]) == metrics["model"]["protocol"]["predicted_frames"]
        assert set(objects["objects"]) == {"red box", "green box"}
    html = (demo_dir / "report" / "index.html").read_text()
    assert "box IoU" in html and "curve_objects_iou.png" in html
    for gif in (demo_dir / "report" / "videos").glob("*.gif"):
        assert gif.name in html and Image.open(gif).n_frames > 1
    plan = json.loads((demo_dir / "plan" / "results.json").read_text())
    assert {"model", "random"} <= set(json.dumps(plan).replace('"', " ").split())
    assert (demo_dir / "plan" / "index.html").is_file()
    markers = sorted(p.name for p in (demo_dir / ".stages").iterdir())
    assert markers == sorted(["chain", *STAGES_FROM_SCRATCH])


def test_second_run_skips_finished_stages(demo_dir, capsys):
    assert main(["demo", "--quick", "--from-scratch", "--out", str(demo_dir)]) == 0
    out = capsys.readouterr().out
    assert out.count("done earlier, skipped") == len(STAGES_FROM_SCRATCH)
    # The closing table: this demo's model, copy-last and the shipped model, measured here.
    header = next(line for line in out.splitlines() if "copy last frame" in line)
    assert header.split() == "this demo's model copy last frame shipped model".split()
    for label in ("PSNR", "SSIM", "LPIPS", "box IoU"):
        row = next(line for line in out.splitlines() if line.startswith(label + " "))
        assert len(re.findall(r"\d+\.\d+", row)) == 3, row
    assert any(line.startswith("planning ") for line in out.splitlines())
    # --quick scores no FVD (2 clips): its row says so rather than showing a number.
    fvd = next(line for line in out.splitlines() if line.startswith("FVD "))
    assert fvd.split()[1:4] == ["-", "-", "-"]


def test_the_default_chain_trains_on_the_shipped_tokenizer(shipped_demo_dir):
    shipped = pretrained_path()
    assert not (shipped_demo_dir / "tokenizer").exists()
    sources = json.loads((shipped_demo_dir / "transformer" / "sources.json").read_text())
    assert sources["tokenizer"] == str((shipped / "tokenizer").resolve())
    markers = sorted(p.name for p in (shipped_demo_dir / ".stages").iterdir())
    assert markers == sorted(["chain", *STAGES])
    # Both models were scored on the same clips: copy-last's numbers agree exactly.
    demo, other = (json.loads((shipped_demo_dir / where / "metrics.json").read_text())
                   for where in ("report", "shipped/report"))
    assert demo["baseline"]["metrics"]["psnr"] == other["baseline"]["metrics"]["psnr"]
    assert demo["model"]["metrics"]["psnr"] != other["model"]["metrics"]["psnr"]


def test_the_page_opens_with_the_shipped_model(shipped_demo_dir):
    page = (shipped_demo_dir / "index.html").read_text()
    shipped_at, demo_at, table_at = (page.index(heading) for heading in (
        "<h2>The shipped model</h2>", "<h2>What this demo trained</h2>", "<h2>Side by side</h2>"))
    assert shipped_at < demo_at < table_at
    shipped_part, demo_part = page[shipped_at:demo_at], page[demo_at:table_at]
    assert 'src="shipped/report/videos/video_000.gif"' in shipped_part
    plan = json.loads((shipped_demo_dir / "shipped" / "plan" / "results.json").read_text())
    episode = plan["policies"]["model"]["per_episode"][0]
    assert f'src="shipped/plan/{episode["gif"]}"' in shipped_part
    assert ("solved" if episode["success"] else "not solved") in shipped_part
    assert 'src="report/videos/video_000.gif"' in demo_part
    assert "the shipped tokenizer" in demo_part and "10 steps of 4 clips" in demo_part
    for src in re.findall(r'src="([^"]+)"', page):
        assert (shipped_demo_dir / src).is_file(), src
    # The closing table's PSNR row: the demo model, copy-last and the shipped model.
    metrics = {where: json.loads((shipped_demo_dir / where / "metrics.json").read_text())
               for where in ("report", "shipped/report")}
    expected = [metrics["report"]["model"], metrics["report"]["baseline"],
                metrics["shipped/report"]["model"]]
    row = re.search(r"<tr><th>PSNR</th>(.*?)</tr>", page[table_at:]).group(1)
    cells = re.findall(r"<td>([^<]*)</td>", row)
    assert cells == [f"{side['metrics']['psnr']['mean']:.2f}" for side in expected]


def test_predict_writes_a_gif_of_context_and_samples(demo_dir, tmp_path):
    gif = tmp_path / "prediction.gif"
    assert main(["predict", "--model", str(demo_dir / "transformer"), "--input",
                 str(demo_dir / "data"), "--samples", "2", "--out", str(gif)]) == 0
    samples = np.load(gif.with_suffix(".npy"))
    assert samples.shape == (2, 10, 64, 64, 3) and samples.dtype == np.uint8
    assert Image.open(gif).n_frames == 12


def test_predict_without_actions_for_an_action_model_is_one_line_error(demo_dir, tmp_path):
    frames = np.zeros((3, 64, 64, 3), np.uint8)
    np.save(tmp_path / "frames.npy", frames)
    proc = subprocess.run(
        [sys.executable, "-m", "maskvit", "predict", "--model", str(demo_dir / "transformer"),
         "--input", str(tmp_path / "frames.npy"), "--out", str(tmp_path / "p.gif")],
        capture_output=True, text=True)
    assert proc.returncode == 2 and "needs 12 actions" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "p.gif").exists()


def test_bench_decode_counts_passes(capsys):
    assert main(["bench", "decode", "--presets", "push64", "--ar-passes", "2",
                 "--precision", "fp32"]) == 0
    out = capsys.readouterr().out
    assert "| push64 | 640 | 8 |" in out  # 10 frames × 8×8 tokens vs 8 decoding steps


def test_exported_bundle_predicts_like_the_runs_it_came_from(demo_dir, tmp_path):
    bundle = tmp_path / "bundle"
    assert main(["export", "--model", str(demo_dir / "transformer"), "--out", str(bundle)]) == 0
    assert not list(bundle.rglob("state.pt"))  # weights only, no optimizer state
    outputs = []
    for model in (demo_dir / "transformer", bundle):
        gif = tmp_path / f"{model.name}.gif"
        assert main(["predict", "--model", str(model), "--input", str(demo_dir / "data"),
                     "--seed", "3", "--out", str(gif)]) == 0
        outputs.append(np.load(gif.with_suffix(".npy")))
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_default_model_is_the_shipped_bundle_or_a_one_line_error(demo_dir, tmp_path, monkeypatch):
    import maskvit.pretrained as pretrained

    monkeypatch.setattr(pretrained, "PRETRAINED_ROOT", tmp_path / "nothing")
    with pytest.raises(Exception, match="no --model given and no shipped weights"):
        pretrained.default_model()
    assert main(["export", "--model", str(demo_dir / "transformer"),
                 "--out", str(tmp_path / "shipped" / "push64")]) == 0
    monkeypatch.setattr(pretrained, "PRETRAINED_ROOT", tmp_path / "shipped")
    gif = tmp_path / "default.gif"
    assert main(["predict", "--input", str(demo_dir / "data"), "--out", str(gif)]) == 0
    assert np.load(gif.with_suffix(".npy")).shape == (1, 10, 64, 64, 3)


def test_reconstruct_scores_the_boxes_of_push_world_data(demo_dir, tmp_path, capsys):
    out = tmp_path / "recon"
    assert main(["reconstruct", "--tokenizer", str(demo_dir / "tokenizer"), "--data",
                 str(demo_dir / "data"), "--out", str(out), "--episodes", "1", "--frames", "2",
                 "--no-progress"]) == 0
    assert "box IoU" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["objects"]["iou"]["mean"] <= 1.0
    assert metrics["objects"]["centroid_error_px"]["mean"] >= 0.0
