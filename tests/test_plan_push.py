"""The MPC loop in the PyBullet push world: a tiny real model, the oracle, random, the CLI."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from maskvit.cli import main
from maskvit.config import (
    Config,
    DataConfig,
    DecodingConfig,
    PlanConfig,
    TokenizerConfig,
    TransformerConfig,
)
from maskvit.errors import UserError
from maskvit.plan.baselines import OraclePolicy, RandomPolicy
from maskvit.plan.mpc import run_episode
from maskvit.plan.planner import ModelPlanner
from maskvit.plan.predictor_fn import clip_actions, predictor_fn
from maskvit.plan.worlds import make_world

PUSH_PLAN = PlanConfig(init_mean=(0.0, 0.0), init_std=(0.05, 0.05), round_gripper=False)


@pytest.fixture(scope="module")
def world():
    world = make_world("push")
    yield world
    world.close()


def test_unknown_environment_is_a_one_line_error():
    with pytest.raises(UserError, match="unknown environment 'moon'; choose one of: push"):
        make_world("moon")


def test_goal_images_show_the_object_at_its_goal_and_leave_the_world_untouched():
    behind = make_world("push", goal_arm="goal")
    start = make_world("push", goal_arm="current")
    for world in (behind, start):
        first = world.reset(1)
        np.testing.assert_array_equal(world.env.render(), first)  # rendering a goal moved nothing
        assert world.goal_distance() > world.task.threshold
    # same scene, different goal images, both different from the start
    np.testing.assert_array_equal(behind.env.render(), start.env.render())
    assert not np.array_equal(behind.goal_image(), start.goal_image())
    assert not np.array_equal(start.goal_image(), start.env.render())
    with pytest.raises(UserError, match="unknown goal arm pose"):
        make_world("push", goal_arm="left")
    behind.close()
    start.close()


def test_clip_actions_follow_the_store_convention():
    past, future = np.ones((3, 1, 2)), np.full((3, 4, 2), 2.0)
    actions = clip_actions(past, future)  # actions[t] is taken after frame t
    assert actions.shape == (3, 6, 2)  # Tc + H for Tc = 2 context frames
    np.testing.assert_array_equal(actions[:, 0], 1.0)
    np.testing.assert_array_equal(actions[:, 1:5], 2.0)
    np.testing.assert_array_equal(actions[:, 5], 0.0)


def _tiny_config() -> Config:
    return Config(
        data=DataConfig(action_dim=2),
        tokenizer=TokenizerConfig(resolution=64, downsample=8, channels=8, num_res_blocks=1,
                                  codebook_size=16, code_dim=8),
        transformer=TransformerConfig(num_frames=6, context_frames=2, tokens_h=8, tokens_w=8,
                                      codebook_size=16, spatial_window=(1, 8, 8),
                                      spatiotemporal_window=(0, 4, 4), depth=1, heads=1, dim=16,
                                      mlp_dim=32, action_dim=2),
        plan=dataclasses.replace(PUSH_PLAN, horizon=4, samples=6, iterations=2, chunk_size=6,
                                 episode_steps=5, replan_every=2,
                                 decoding=DecodingConfig(steps=2, temperature=1.0)),
    )


def test_mpc_loop_runs_end_to_end_with_a_tiny_maskvit(world):
    from maskvit.inference.predictor import Predictor
    from maskvit.model import MaskViT
    from maskvit.tokenizer.vqgan import VQGAN

    torch.manual_seed(0)
    config = _tiny_config()
    predictor = Predictor(VQGAN(config.tokenizer), MaskViT(config.transformer), config)
    predict = predictor_fn(predictor, config.plan.decoding, seed=0)
    cfg = config.plan
    planner = ModelPlanner(predict, cfg, world.action_low, world.action_high)
    for seed in (0, 1):
        result = run_episode(world, planner, seed, cfg, np.random.default_rng(seed))
        assert result.frames.shape == (6, 64, 64, 3) and result.actions.shape == (5, 2)
        assert [p.step for p in result.plans] == [1, 3]
        for record in result.plans:
            assert record.predicted.shape == (4, 64, 64, 3) and record.predicted.dtype == np.uint8
            assert np.isfinite(record.cost)
        np.testing.assert_allclose(result.actions[1:3], result.plans[0].actions[:2])
        assert np.all(np.abs(result.actions) <= 0.05 + 1e-9)
        # success is read from the simulator, consistent with the final distance
        assert result.success == (result.final_distance <= world.task.threshold)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_plan_command_loads_a_saved_model_bundle(tmp_path, precision):
    from maskvit.config import save_config
    from maskvit.model import MaskViT
    from maskvit.run_dir import CONFIG_FILE, save_checkpoint
    from maskvit.tokenizer.vqgan import MODULE, VQGAN

    torch.manual_seed(0)
    config = _tiny_config()
    bundle = tmp_path / "bundle"
    for part, module, weights in (("tokenizer", MODULE, VQGAN(config.tokenizer).state_dict()),
                                  ("transformer", "model", MaskViT(config.transformer).state_dict())):
        (bundle / part).mkdir(parents=True)
        save_config(config, bundle / part / CONFIG_FILE)
        save_checkpoint(bundle / part, 1, {module: weights}, {}, {}, keep=1)
    out = tmp_path / "plan"
    code = main(["plan", "--model", str(bundle), "--policy", "model", "--episodes", "1",
                 "--out", str(out), "--set", "plan.episode_steps=3", "--precision", precision])
    assert code == 0
    summary = json.loads((out / "results.json").read_text())["policies"]["model"]
    assert summary["episodes"] == 1 and (out / summary["per_episode"][0]["gif"]).is_file()


def test_oracle_solves_most_tasks_and_random_rarely_does(world):
    # Cheap oracle settings (the benchmark uses larger ones); 30 steps to reach and push.
    cfg = dataclasses.replace(PUSH_PLAN, samples=16, iterations=2, horizon=5, episode_steps=30,
                              warm_start=True)
    oracle = OraclePolicy(world, cfg)
    solved = [run_episode(world, oracle, s, cfg, np.random.default_rng(s)) for s in range(3)]
    oracle.close()
    assert sum(r.success for r in solved) >= 2
    assert all(r.final_distance < r.start_distance for r in solved)
    assert all(r.success == (r.final_distance <= world.task.threshold) for r in solved)

    random_policy = RandomPolicy(cfg, world.action_low, world.action_high)
    random = [run_episode(world, random_policy, s, cfg, np.random.default_rng(s)) for s in range(6)]
    assert sum(r.success for r in random) <= 1


def test_plan_command_writes_results_gifs_and_html(tmp_path, capsys):
    out = tmp_path / "plan"
    code = main(["plan", "--env", "push", "--episodes", "2", "--policy", "random", "--out", str(out),
                 "--set", "plan.episode_steps=4"])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    summary = results["policies"]["random"]
    assert summary["episodes"] == 2 and 0 <= summary["ci95"][0] <= summary["ci95"][1] <= 1
    assert [e["task_seed"] for e in summary["per_episode"]] == [0, 1]
    for episode in summary["per_episode"]:
        assert (out / episode["gif"]).stat().st_size > 0
        # the row's actions are what ran: replayed from the task's start they end where it ended
        world = make_world("push")
        world.reset(episode["task_seed"])
        assert len(episode["actions"]) == episode["steps"] == 4
        for action in episode["actions"]:
            world.step(np.asarray(action))
        replayed = world.goal_distance()
        world.close()
        assert replayed == pytest.approx(episode["final_distance"], abs=1e-9)
    assert "random" in (out / "index.html").read_text()
    assert "random" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--env", "moon"], "unknown environment 'moon'"),
        (["--model", "no/such/run"], "model run not found"),
        (["--policy", "model"], "--policy model needs --model RUN"),
        (["--set", "plan.init_mean=[0.5,0.0]"], "outside the action bounds"),
        (["--set", "plan.init_std=[0.05]"], "plan.init_std has 1 entries"),
    ],
)
def test_plan_command_bad_input_is_one_line(tmp_path, capsys, monkeypatch, argv, message):
    import maskvit.pretrained

    # as on an install without the shipped model (with it, `--policy model` would use it)
    monkeypatch.setattr(maskvit.pretrained, "PRETRAINED_ROOT", tmp_path / "no_weights")
    code = main(["plan", "--episodes", "1", "--out", str(tmp_path / "o"), "--policy", "random", *argv]
                if "--policy" not in argv else ["plan", "--episodes", "1", "--out", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and "\n" not in err


@pytest.mark.parametrize("device, message", [("banana", "choose auto, cpu, cuda or cuda:N"),
                                             ("cuda:7", "no CUDA GPU is available")])
def test_plan_command_bad_device_is_one_line(tmp_path, capsys, monkeypatch, device, message):
    if device.startswith("cuda"):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code = main(["plan", "--episodes", "1", "--out", str(tmp_path / "o"), "--policy", "model",
                 "--device", device])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and "\n" not in err
    assert not (tmp_path / "o").exists()
