"""Sharded `maskvit plan`: 2 local workers (gloo) and torchrun on loopback write the results
one process writes, episode by episode, for the model, random and oracle policies, in the
push world and in RoboDesk; and an episode plays the same whatever ran before it."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from stand_ins import save_tiny_bundle, tiny_config

from maskvit.cli import main
from maskvit.config import DataConfig, PlanConfig, save_config
from maskvit.inference.predictor import Predictor
from maskvit.model import MaskViT
from maskvit.plan.plan_report import TIMING_FIELDS
from maskvit.run_dir import CONFIG_FILE, save_checkpoint
from maskvit.tokenizer.vqgan import MODULE, VQGAN

PUSH = ["--env", "push", "--episodes", "3", "--first-task", "4",
        "--set", "plan.samples=4", "--set", "plan.iterations=1", "--set", "plan.horizon=3",
        "--set", "plan.episode_steps=4", "--set", "plan.chunk_size=2"]
DESK = ["--env", "robodesk", "--task", "open_slide", "--split", "tuning", "--episodes", "2",
        "--set", "plan.samples=4", "--set", "plan.horizon=2", "--set", "plan.episode_steps=2",
        "--set", "plan.chunk_size=2"]
ALL_POLICIES = ["--policy", "model", "--policy", "random", "--policy", "oracle"]


def save_tiny_desk_bundle(out: Path) -> Path:
    """The tiny stand-in model with RoboDesk's 5-D actions and robodesk64's plan section."""
    base = tiny_config()
    config = dataclasses.replace(
        base, name="tiny-desk", data=DataConfig(dataset="robodesk", resolution=64, action_dim=5),
        transformer=dataclasses.replace(base.transformer, action_dim=5),
        plan=PlanConfig(optimizer="mppi", samples=4, horizon=2, replan_every=1, episode_steps=3,
                        noise_correlation=0.5, mppi_gamma=0.025, last_step_weight=1.0,
                        init_mean=(0.0,) * 5, init_std=(0.5, 0.5, 0.5, 0.1, 0.1),
                        round_gripper=False, chunk_size=2, decoding=base.plan.decoding))
    torch.manual_seed(0)
    predictor = Predictor(VQGAN(config.tokenizer), MaskViT(config.transformer), config)
    for part, module, net in (("tokenizer", MODULE, predictor.tokenizer),
                              ("transformer", "model", predictor.transformer)):
        (out / part).mkdir(parents=True, exist_ok=True)
        save_config(config, out / part / CONFIG_FILE)
        save_checkpoint(out / part, 1, {module: net.state_dict()}, {}, {}, keep=1)
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {"push": save_tiny_bundle(root / "push"), "robodesk": save_tiny_desk_bundle(root / "desk")}


def without_timings(results):
    """results.json with every timing removed (they differ between any two runs)."""
    if isinstance(results, dict):
        return {k: without_timings(v) for k, v in results.items()
                if k not in TIMING_FIELDS and k not in ("seconds_per_episode", "cpu_seconds_per_episode")}
    if isinstance(results, list):
        return [without_timings(v) for v in results]
    return results


def report(out: Path) -> dict[str, object]:
    """Every results.json (timings removed) and every GIF's bytes under `out`."""
    files = {}
    for path in sorted(out.rglob("*")):
        name = path.relative_to(out).as_posix()
        if path.name == "results.json":
            files[name] = without_timings(json.loads(path.read_text()))
        elif path.suffix == ".gif":
            files[name] = path.read_bytes()
    return files


def plan(out: Path, env_args: list[str], model: Path, *extra: str) -> dict[str, object]:
    code = main(["plan", *env_args, "--model", str(model), *ALL_POLICIES, "--precision", "fp32",
                 "--no-progress", "--out", str(out), *extra])
    assert code == 0
    return report(out)


@pytest.mark.parametrize("env", ["push", "robodesk"])
def test_two_local_workers_write_what_one_process_writes(tmp_path, models, env):
    env_args = PUSH if env == "push" else DESK
    single = plan(tmp_path / "single", env_args, models[env])
    sharded = plan(tmp_path / "sharded", env_args, models[env], "--workers", "2")
    assert single.keys() == sharded.keys()
    results = single["results.json"] if env == "push" else single["open_slide/results.json"]
    episodes = {name: [row["task_seed"] for row in data["per_episode"]]
                for name, data in results["policies"].items()}
    expected = [4, 5, 6] if env == "push" else [0, 1]
    assert episodes == {"model": expected, "random": expected, "oracle": expected}
    for name in single:
        assert single[name] == sharded[name], name


def test_an_episode_plays_the_same_whatever_ran_before_it(tmp_path, models):
    """Task 5 alone equals task 5 after task 4 in one process: the model's decoding seeds and
    the policies' generators come from the episode, not from a process-wide count."""
    both = plan(tmp_path / "both", PUSH, models["push"])
    alone_args = [a if a != "3" else "1" for a in PUSH]  # --episodes 1
    alone_args[alone_args.index("--first-task") + 1] = "5"
    alone = plan(tmp_path / "alone", alone_args, models["push"])
    for name in ("model", "random", "oracle"):
        row_both = both["results.json"]["policies"][name]["per_episode"][1]
        row_alone = alone["results.json"]["policies"][name]["per_episode"][0]
        assert row_both == row_alone, name
        assert both[f"gifs/{name}_task5.gif"] == alone[f"gifs/{name}_task5.gif"]


def test_torchrun_on_loopback_writes_what_one_process_writes(tmp_path, models):
    """`python -m torch.distributed.run --standalone --nproc-per-node 2 -m maskvit plan ...`:
    each rank plays its share, rank 0 writes the report."""
    single = plan(tmp_path / "single", PUSH, models["push"])
    out = tmp_path / "torchrun"
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "maskvit", "plan", *PUSH, "--model", str(models["push"]), *ALL_POLICIES,
         "--precision", "fp32", "--no-progress", "--out", str(out)],
        capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("wrote ") == 1  # rank 0 alone reports
    assert report(out) == single


def test_workers_and_torchrun_do_not_mix_and_workers_must_be_positive(tmp_path, capsys, monkeypatch):
    code = main(["plan", "--policy", "random", "--workers", "0", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--workers must be 1 or more" in err and len(err.splitlines()) == 1
    monkeypatch.setenv("WORLD_SIZE", "2")
    code = main(["plan", "--policy", "random", "--workers", "2", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "do not mix" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_a_sharded_run_stops_with_rank_0s_one_line_error_when_out_is_not_a_report(tmp_path, capsys):
    out = tmp_path / "data"
    out.mkdir()
    (out / "precious.txt").write_text("not a report")
    code = main(["plan", "--policy", "random", "--episodes", "2", "--workers", "2",
                 "--no-progress", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "is not a maskvit plan report" in err and len(err.splitlines()) == 1, err
    assert (out / "precious.txt").read_text() == "not a report" and len(list(out.iterdir())) == 1


def test_decoding_seeds_restart_per_episode():
    from maskvit.plan.closed_loop import EpisodeJob, decoding_seed, episode_identity
    from maskvit.plan.predictor_fn import predictor_fn

    seen = []

    class Recorder:
        def predict(self, context_frames, actions, num_frames, decoding, seed):
            seen.append(seed)
            return np.zeros((len(context_frames), num_frames, 8, 8, 3), np.uint8)

    fn = predictor_fn(Recorder(), tiny_config().plan.decoding, seed=3)
    call = (np.zeros((1, 2, 8, 8, 3), np.uint8), np.zeros((1, 1, 2)), np.zeros((1, 2, 2)))
    fn(*call)
    first = decoding_seed(episode_identity("robodesk", 0, EpisodeJob("push_red", "model", 1)))
    other = decoding_seed(episode_identity("robodesk", 0, EpisodeJob("push_green", "model", 1)))
    for _ in range(2):
        fn.start_episode(first)
        fn(*call)
        fn(*call)
    assert seen == [3, first, first + 1, first, first + 1]
    assert other != first and 0 <= first < 2**62
