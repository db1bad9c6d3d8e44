"""RoboDesk in `maskvit evaluate` and `maskvit reconstruct`: the desk-object metric (lights,
slide, drawer, blocks read from frames) for the model and for copy-last, in metrics.json, the
printed numbers and the HTML report; every video's samples seeded from the video; bad input
in one line. The store holds real rendered desk frames whose events are known: a light
that comes on during the predicted frames, a slide that opens."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from fault_pipeline import files, one_line_error
from stand_ins import save_bundle, save_tiny_bundle, tiny_config

from maskvit.cli import main
from maskvit.data import EpisodeStore, EpisodeStoreWriter
from maskvit.inference.predictor import Predictor
from maskvit.metrics import MetricNetworks, Protocol
from maskvit.metrics.desk_objects import (
    desk_fidelity_against_copy_last,
    desk_object_scores,
    summarize_desk_scores,
)
from maskvit.metrics.protocol import headline_numbers
from maskvit.model import MaskViT
from maskvit.prediction_eval import evaluate_predictor
from maskvit.sim.desk_world import DeskWorld
from maskvit.tokenizer.vqgan import VQGAN

FRAMES = 6  # the tiny model's clip: 2 context + 4 predicted frames
PRESSED = -0.005  # a light joint this low is lit (maskvit.sim.desk_world.BUTTON_PRESSED)

# Per test episode: which lights are lit from which frame on, and the slide per frame.
EPISODES = [
    {"lights": {"red_light": 3}, "slide": [0.0] * FRAMES},  # red comes on at frame 3
    {"lights": {}, "slide": [0.1 * t for t in range(FRAMES)]},  # the slide opens
    {"lights": {"green_light": 2, "blue_light": 2}, "slide": [0.3] * FRAMES},  # two at once
]
# (frame, light) pairs of the predicted frames (2..5) whose light differs from frame 1:
# red 3, 4, 5 in episode 0 and green and blue 2..5 in episode 2.
LIGHT_EVENTS = 3 + 2 * 4
LIT_IN_TEST_FRAMES = 3 + 2 * 4  # every lit (frame, light) of the test episodes' frames


def render_episode(world: DeskWorld, seed: int, lights: dict[str, int], slide: list[float]) -> np.ndarray:
    world.reset(seed)
    data = world.physics.named.data
    frames = []
    for t in range(FRAMES):
        for joint, first in lights.items():
            data.qpos[joint] = PRESSED if t >= first else 0.0
        data.qpos["slide_joint"] = slide[t]
        world.physics.forward()
        frames.append(world.render())
    return np.stack(frames)


@pytest.fixture(scope="module")
def desk_store(tmp_path_factory) -> EpisodeStore:
    """Three rendered test episodes (`EPISODES`) with 5-D actions."""
    path = tmp_path_factory.mktemp("desk") / "data"
    rng = np.random.default_rng(0)
    world = DeskWorld()
    try:
        with EpisodeStoreWriter(path, source="robodesk", action_dim=5, resolution=64) as writer:
            for i, episode in enumerate(EPISODES):
                writer.add(f"ep{i}", render_episode(world, 3100 + i, **episode),
                           rng.uniform(-1, 1, (FRAMES, 5)).astype(np.float32), split="test")
    finally:
        world.close()
    return EpisodeStore.open(path)


def desk_predictor(seed: int = 0) -> Predictor:
    """The tiny stand-in model with RoboDesk's 5-D actions."""
    config = tiny_config()
    config = dataclasses.replace(
        config, name="tiny-desk",
        data=dataclasses.replace(config.data, dataset="robodesk", action_dim=5),
        transformer=dataclasses.replace(config.transformer, action_dim=5),
        plan=dataclasses.replace(config.plan, init_mean=(0.0,) * 5, init_std=(0.05,) * 5))
    torch.manual_seed(seed)
    return Predictor(VQGAN(config.tokenizer), MaskViT(config.transformer), config)


def save_desk_bundle(out: Path) -> Path:
    """`desk_predictor()` as a bundle directory (transformer/ and tokenizer/ runs)."""
    return save_bundle(desk_predictor(), out)


def evaluate(store: EpisodeStore, batch_size: int = 16, trials: int = 2):
    predictor = desk_predictor()
    protocol = dataclasses.replace(Protocol.from_config(predictor.config), trials=trials, num_videos=3)
    return evaluate_predictor(predictor, store, protocol, networks=MetricNetworks(),
                              metrics=("psnr", "ssim"), batch_size=batch_size, show_videos=3,
                              show_samples=trials, progress=False)


def test_evaluate_scores_the_desk_objects_of_the_samples_and_of_copy_last(desk_store):
    out = evaluate(desk_store)
    truth = out.ground_truth  # every video and every sample is shown: the scored arrays
    assert truth.shape == (3, FRAMES, 64, 64, 3) and out.predictions.shape[:3] == (3, 2, 4)
    direct = desk_fidelity_against_copy_last(truth, out.predictions, context_frames=2)
    assert out.result["desk_objects"] == direct["model"]
    assert out.baseline["desk_objects"] == direct["copy_last"]
    # Copy-last misses every light that changes after the context, and only those.
    copy_last = out.baseline["desk_objects"]
    assert copy_last["light_agreement_when_changed"] == {"mean": 0.0, "events": LIGHT_EVENTS}
    per_video = [1 - 3 / 12, 1.0, 1 - 8 / 12]  # of 4 frames × 3 lights each
    headline = headline_numbers(out.baseline)
    assert headline["light_agreement"] == pytest.approx(np.mean(per_video))
    assert headline["light_agreement_when_changed"] == 0.0
    # The slide opens 0.1 a frame in video 1: copy-last is 0.1, 0.2, 0.3, 0.4 behind.
    slide_curve = copy_last["slide_error"]["per_frame"]
    np.testing.assert_allclose(slide_curve, np.array([0.1, 0.2, 0.3, 0.4]) / 3, atol=0.02)
    for name in ("slide_position_error", "drawer_position_error", "block_position_error_px"):
        assert name in headline_numbers(out.result) and name in headline


def test_every_video_draws_the_same_samples_whatever_batch_it_is_in(desk_store):
    alone, together = evaluate(desk_store, batch_size=1), evaluate(desk_store, batch_size=3)
    np.testing.assert_array_equal(alone.predictions, together.predictions)
    assert alone.result["per_video"] == together.result["per_video"]


def test_the_evaluate_command_prints_and_reports_the_desk_objects(desk_store, tmp_path, capsys):
    bundle = save_desk_bundle(tmp_path / "bundle")
    report = tmp_path / "report"
    assert main(["evaluate", "--model", str(bundle), "--data", str(desk_store.path), "--out",
                 str(report), "--metrics", "psnr", "--trials", "1", "--no-progress",
                 "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads(printed[printed.index("{"):printed.rindex("}") + 1])
    assert summary["copy-last"]["light_agreement_when_changed"] == 0.0
    assert set(summary["model"]) >= {"psnr", "light_agreement", "slide_position_error"}
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["baseline"]["desk_objects"]["light_agreement_when_changed"]["events"] == LIGHT_EVENTS
    assert "desk_objects" in metrics["model"]
    page = (report / "index.html").read_text()
    assert "light agreement where a light changed" in page and f"({LIGHT_EVENTS} events)" in page
    assert (report / "curve_desk_objects_slide_error.png").is_file()


def test_a_push_model_on_a_robodesk_store_is_refused_in_one_line(desk_store, tmp_path, capsys):
    bundle = save_tiny_bundle(tmp_path / "push-model")  # 2-D push actions
    assert main(["evaluate", "--model", str(bundle), "--data", str(desk_store.path), "--out",
                 str(tmp_path / "report"), "--metrics", "psnr", "--no-progress"]) == 2
    one_line_error(capsys, "evaluate", "robodesk episodes with 5-D actions", "takes 2-D actions")
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("workers", ["0", "-1"])
def test_workers_below_one_are_refused_in_one_line(desk_store, tmp_path, capsys, workers):
    assert main(["evaluate", "--model", "unused", "--data", str(desk_store.path), "--out",
                 str(tmp_path / "report"), "--workers", workers]) == 2
    one_line_error(capsys, "evaluate", f"--workers must be 1 or more, got {workers}")
    assert not (tmp_path / "report").exists()


def test_reconstruct_scores_the_desk_objects_of_the_reconstructions(desk_store, tmp_path, capsys):
    tokenizer = save_desk_bundle(tmp_path / "bundle") / "tokenizer"
    out = tmp_path / "recon"
    before = files(desk_store.path)
    assert main(["reconstruct", "--tokenizer", str(tokenizer), "--data", str(desk_store.path),
                 "--out", str(out), "--episodes", "1", "--no-progress", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "desk objects: light agreement" in printed and f"of {LIT_IN_TEST_FRAMES})" in printed
    desk = json.loads((out / "metrics.json").read_text())["desk_objects"]
    assert desk["light_agreement_when_on"]["events"] == LIT_IN_TEST_FRAMES
    # The same numbers as scoring the tokenizer's reconstructions directly, frame by frame.
    vqgan = desk_predictor().tokenizer
    frames = np.concatenate([desk_store.load(f"ep{i}")["frames"] for i in range(3)])
    with torch.no_grad():
        recon = vqgan.reconstruct(torch.from_numpy(frames)).numpy()
    direct = summarize_desk_scores(desk_object_scores(frames[:, None], recon[:, None]))
    assert json.loads(json.dumps(direct)) == desk
    assert files(desk_store.path) == before  # the store is read, never written


# ------------------------------------------------------------------ sharded evaluation


def evaluate_every_metric(store: EpisodeStore, shard=None):
    """All four metrics (tiny stand-ins for LPIPS's and I3D's networks), 2 trials, batches of 2."""
    from maskvit.metrics.lpips import LPIPS

    torch.manual_seed(0)
    networks = MetricNetworks(lpips_model=LPIPS("alex").eval(),
                              fvd_features=lambda v: v.astype(np.float64).mean(axis=(2, 3)).reshape(len(v), -1))
    predictor = desk_predictor()
    protocol = dataclasses.replace(Protocol.from_config(predictor.config), trials=2, num_videos=3)
    return evaluate_predictor(predictor, store, protocol, networks=networks, batch_size=2,
                              show_videos=3, show_samples=2, progress=False, shard=shard)


def _evaluate_shard(shard, store_path: str, out: str) -> None:
    torch.set_num_threads(1)
    output = evaluate_every_metric(EpisodeStore.open(store_path), shard)
    if shard.is_main:
        Path(out, "results.json").write_text(json.dumps([output.result, output.baseline]))
        np.save(Path(out, "predictions.npy"), output.predictions)
    else:
        assert output is None


def test_two_workers_score_every_video_as_one_process_does(desk_store, tmp_path):
    from maskvit.sharding import run_local_workers

    run_local_workers(_evaluate_shard, 2, str(desk_store.path), str(tmp_path))
    result, baseline = json.loads((tmp_path / "results.json").read_text())
    one = evaluate_every_metric(desk_store)
    assert set(one.result["metrics"]) == {"psnr", "ssim", "lpips", "fvd"}
    np.testing.assert_array_equal(np.load(tmp_path / "predictions.npy"), one.predictions)
    for sharded, single in ((result, one.result), (baseline, one.baseline)):
        fvd, fvd_single = sharded["metrics"].pop("fvd"), single["metrics"].pop("fvd")
        assert fvd == fvd_single  # from features merged from two processes
        assert json.dumps(sharded, sort_keys=True) == json.dumps(single, sort_keys=True)
    assert result["num_videos"] == 3 and result["per_video"]["lpips"]["best"]


def test_evaluate_with_two_workers_writes_the_report_of_one_process(desk_store, tmp_path):
    bundle = save_desk_bundle(tmp_path / "bundle")
    reports = {}
    for workers in ("1", "2"):
        out = tmp_path / f"report{workers}"
        assert main(["evaluate", "--model", str(bundle), "--data", str(desk_store.path), "--out",
                     str(out), "--metrics", "psnr,ssim", "--trials", "2", "--batch-size", "2",
                     "--workers", workers, "--no-progress", "--device", "cpu"]) == 0
        reports[workers] = json.loads((out / "metrics.json").read_text())
        assert reports[workers]["model"].pop("processes") == int(workers)
        assert sorted(p.name for p in (out / "videos").iterdir()) == [
            f"video_{v:03d}.gif" for v in range(3)]
    assert reports["2"] == reports["1"]


def test_torchrun_on_loopback_writes_the_report_of_one_process(desk_store, tmp_path):
    """`python -m torch.distributed.run --standalone --nproc-per-node 2 -m maskvit evaluate`:
    each rank scores its share, rank 0 writes the report (a subprocess: ~10-20 s)."""
    bundle = save_desk_bundle(tmp_path / "bundle")
    args = ["evaluate", "--model", str(bundle), "--data", str(desk_store.path), "--metrics",
            "psnr,ssim", "--trials", "2", "--batch-size", "2", "--no-progress", "--device", "cpu"]
    assert main([*args, "--out", str(tmp_path / "single")]) == 0
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node", "2", "-m", "maskvit", *args, "--out",
                           str(tmp_path / "torchrun")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr  # whole: a rank's error precedes the summary
    assert done.stdout.count("report: ") == 1  # rank 0 alone reports
    single, sharded = (json.loads((tmp_path / name / "metrics.json").read_text())
                       for name in ("single", "torchrun"))
    assert (single["model"].pop("processes"), sharded["model"].pop("processes")) == (1, 2)
    assert sharded == single


def test_workers_refuse_an_out_another_job_writes_before_starting(desk_store, tmp_path, capsys):
    out = tmp_path / "report"
    holder = subprocess.Popen(  # another job: holds the lock until its stdin closes
        [sys.executable, "-c", "import sys; from maskvit.locking import output_lock\n"
         f"with output_lock({str(out)!r}):\n    print('locked', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["evaluate", "--model", "unused", "--data", str(desk_store.path), "--out",
                     str(out), "--workers", "2"]) == 2
    finally:
        holder.communicate("")
    one_line_error(capsys, "evaluate", "is being written by", str(out))
    assert not out.exists()
