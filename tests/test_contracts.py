"""One test per protocol over every implementation of it: each training `Task`, each
planning `Policy` and each planning `World` must keep the contract the code that drives
it relies on (the engine, the MPC loop). A new implementation joins by adding one line."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from stand_ins import PointWorld, point_predictor
from torch import nn
from torch.utils.data import Dataset

from maskvit.config import PlanConfig, TokenizerConfig, TrainConfig, TransformerConfig
from maskvit.model.masked_video_task import MaskedVideoTask
from maskvit.plan.baselines import OraclePolicy, RandomPolicy
from maskvit.plan.planner import Plan
from maskvit.plan.worlds import make_world
from maskvit.run_dir import latest_checkpoint, load_checkpoint
from maskvit.tokenizer.vqgan_task import TokenizerTask
from maskvit.train import StepContext, Task, Trainer

# ---------------------------------------------------------------- tasks


def train_config() -> TrainConfig:
    return TrainConfig(batch_size=4, lr=1e-3, steps=2, warmup_steps=0, optimizer="adam",
                       weight_decay=0.0, grad_clip=1.0, precision="fp32", log_every=1,
                       val_every=0, checkpoint_every=2, seed=0)


class TokenClips(Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        gen = torch.Generator().manual_seed(i)
        return {"tokens": torch.randint(0, 8, (4, 4, 4), generator=gen),
                "actions": torch.randn(4, 1, generator=gen)}


class Frames(Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        gen = torch.Generator().manual_seed(i)
        return {"frames": torch.randint(0, 256, (16, 16, 3), generator=gen, dtype=torch.uint8)}


def masked_video() -> tuple[Task, Dataset]:
    cfg = TransformerConfig(num_frames=4, context_frames=1, tokens_h=4, tokens_w=4,
                            codebook_size=8, spatial_window=(1, 4, 4),
                            spatiotemporal_window=(0, 2, 2), depth=1, heads=2, dim=16,
                            mlp_dim=32, dropout=0.0, action_dim=1)
    return MaskedVideoTask(cfg, train_config()), TokenClips()


def tokenizer_with_gan() -> tuple[Task, Dataset]:
    cfg = TokenizerConfig(resolution=16, downsample=4, channels=8, num_res_blocks=1,
                          codebook_size=16, code_dim=8, disc_channels=8, disc_layers=2,
                          perceptual_weight=0.0, disc_start=1)
    return TokenizerTask(cfg), Frames()


TASKS = {"masked video": masked_video, "tokenizer + GAN": tokenizer_with_gan}


@pytest.mark.parametrize("name", list(TASKS))
def test_every_task_keeps_the_engine_contract(name, tmp_path):
    task, data = TASKS[name]()
    modules = task.modules()
    assert modules and all(isinstance(m, nn.Module) for m in modules.values())
    specs = task.optimizers()
    assert specs and all(set(spec.modules) <= set(modules) for spec in specs)

    # One micro-batch by hand: each phase gives a finite scalar with a gradient, or None.
    batch = {k: torch.stack([data[i][k] for i in range(4)]) for k in data[0]}
    ctx = StepContext(step=5, modules=modules, generator=torch.Generator().manual_seed(0),
                      device=torch.device("cpu"))
    ran = 0
    for spec in specs:
        out = task.loss(spec.name, batch, ctx)
        if out is None:
            continue
        loss, logs = out
        assert loss.dim() == 0 and loss.requires_grad and math.isfinite(loss.item())
        assert all(math.isfinite(float(v)) for v in logs.values())
        ran += 1
    assert ran == len(specs)  # at step 5 every phase (the discriminator too) is on
    with torch.no_grad():
        logs = task.validation_step(batch, StepContext(step=5, modules=modules, training=False,
                                                generator=torch.Generator().manual_seed(0),
                                                device=torch.device("cpu")))
    assert logs and all(math.isfinite(float(v)) for v in logs.values())
    assert task.count_tokens(batch) > 0

    # The engine trains it and the run directory holds every module under its name.
    result = Trainer(task, train_config(), data, out=tmp_path / "run", progress=False,
                     tensorboard=False).fit()
    assert result.step == 2 and all(math.isfinite(v) for v in result.last_train.values())
    checkpoint = load_checkpoint(latest_checkpoint(tmp_path / "run"), with_state=False)
    assert checkpoint.step == 2
    for module_name, module in task.modules().items():
        assert checkpoint.weights[module_name].keys() == module.state_dict().keys()


# ---------------------------------------------------------------- worlds


def push_world():
    return make_world("push")


def robodesk_world():
    """RoboDesk with five instances made here (start: a seeded scene; goal: that scene after
    a few steps), so the contract does not depend on the shipped instance file."""
    from maskvit.plan.worlds import DeskPlanningWorld
    from maskvit.sim.desk_instances import Instance
    from maskvit.sim.desk_world import DeskWorld

    maker = DeskWorld()
    instances = []
    for seed in range(5):
        maker.reset(seed)
        start = maker.get_state()
        for _ in range(2):
            maker.advance(np.full(5, 0.5 if seed % 2 else -0.5))
        instances.append(Instance("push_red", "test", seed, start, maker.get_state(), maker.render(), 2))
    maker.close()
    return DeskPlanningWorld("push_red", instances=instances)


WORLDS = {"push": push_world, "point": PointWorld, "robodesk": robodesk_world}


@pytest.mark.parametrize("name", list(WORLDS))
def test_every_world_keeps_the_mpc_contract(name):
    world = WORLDS[name]()
    try:
        first = world.reset(3)
        assert first.dtype == np.uint8 and first.ndim == 3 and first.shape[-1] == 3
        assert world.action_low.shape == world.action_high.shape
        assert np.all(world.action_low < world.action_high)
        goal = world.goal_image()
        assert goal.shape == first.shape and goal.dtype == np.uint8
        moved = world.step((world.action_low + world.action_high) / 2 + 0.5 * world.action_high)
        assert moved.shape == first.shape and moved.dtype == np.uint8
        assert isinstance(world.success(), bool)
        assert world.goal_distance() >= 0.0
        np.testing.assert_array_equal(world.reset(3), first)  # a task is a pure function of its seed
        assert not np.array_equal(world.reset(4), first) or not np.array_equal(world.goal_image(), goal)
    finally:
        if hasattr(world, "close"):
            world.close()


# ---------------------------------------------------------------- policies


def plan_config(**changes) -> PlanConfig:
    base = dict(samples=8, iterations=2, horizon=3, init_mean=(0.0, 0.0), init_std=(0.05, 0.05),
                round_gripper=False, elite_fraction=0.25, chunk_size=8)
    base.update(changes)
    return PlanConfig(**base)


def model_policy(world):
    from maskvit.plan.planner import ModelPlanner

    return ModelPlanner(point_predictor, plan_config(), world.action_low, world.action_high,
                        context=2)


def maskvit_policy(world):
    """The product's path: CEM through a (tiny, untrained) MaskViT `Predictor`."""
    from stand_ins import tiny_config, tiny_predictor

    from maskvit.plan.planner import ModelPlanner
    from maskvit.plan.predictor_fn import predictor_fn

    predict = predictor_fn(tiny_predictor(), tiny_config().plan.decoding, seed=0)
    return ModelPlanner(predict, plan_config(), world.action_low, world.action_high, context=2)


def random_policy(world):
    return RandomPolicy(plan_config(), world.action_low, world.action_high)


def mppi_policy(world):
    from maskvit.plan.planner import ModelPlanner

    return ModelPlanner(point_predictor, plan_config(optimizer="mppi"), world.action_low,
                        world.action_high, context=2)


POLICIES = {"model (exact point predictor)": (model_policy, PointWorld),
            "model (MPPI)": (mppi_policy, PointWorld),
            "model (MaskViT)": (maskvit_policy, push_world),
            "random": (random_policy, PointWorld)}


@pytest.mark.parametrize("name", list(POLICIES))
def test_every_policy_keeps_the_mpc_contract(name):
    make_policy, make = POLICIES[name]
    world = make()
    try:
        plans = [check_policy(make_policy(world), world) for _ in range(2)]
        # A fresh policy given the same rng plans the same (the MPC loop's seeds rely on it).
        np.testing.assert_array_equal(plans[0].actions, plans[1].actions)
    finally:
        if hasattr(world, "close"):
            world.close()


def check_policy(policy, world) -> Plan:
    assert policy.context >= 1
    first = world.reset(1)
    second = world.step(np.zeros_like(world.action_low))
    frames = np.stack([first, second])[-policy.context:]
    actions = np.zeros((policy.context - 1, len(world.action_low)))
    plan = policy.plan(frames, actions, world.goal_image(), np.random.default_rng(7))
    assert isinstance(plan, Plan)
    assert plan.actions.shape == (3, len(world.action_low))
    assert np.all(plan.actions >= world.action_low - 1e-12)
    assert np.all(plan.actions <= world.action_high + 1e-12)
    if plan.predicted is not None:
        assert plan.predicted.shape == (3, *first.shape) and plan.predicted.dtype == np.uint8
        assert math.isfinite(plan.cost)
    return plan


def test_the_oracle_keeps_the_policy_contract_in_the_push_world():
    world = make_world("push")
    try:
        config = plan_config(init_mean=tuple(0.0 for _ in world.action_low),
                             init_std=tuple(0.01 for _ in world.action_low), samples=4,
                             iterations=1, horizon=2, replan_every=1)
        policy = OraclePolicy(world, config)
        first = world.reset(2)
        plan = policy.plan(first[None], np.zeros((0, len(world.action_low))), world.goal_image(),
                           np.random.default_rng(0))
        assert plan.actions.shape == (2, len(world.action_low)) and math.isfinite(plan.cost)
        assert np.all(plan.actions >= world.action_low) and np.all(plan.actions <= world.action_high)
        if hasattr(policy, "close"):
            policy.close()
    finally:
        world.close()
