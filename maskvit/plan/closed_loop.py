"""Closed-loop evaluation of several policies on the same tasks, with everything written out.

`evaluate_policies` is what `maskvit plan` calls: for each policy (model, random, oracle)
it runs one episode per task seed through `mpc.run_episode` and saves each episode's GIF
and results.json into the report folder that `maskvit plan` stages: the report appears
whole when the run ends, and an interrupted run leaves the previous report untouched.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from maskvit.config import PlanConfig
from maskvit.errors import UserError
from maskvit.plan.baselines import OraclePolicy, RandomPolicy
from maskvit.plan.mpc import Policy, World, run_episode
from maskvit.plan.plan_report import summarise, write_episode_gif, write_html, write_results
from maskvit.plan.planner import ModelPlanner, PredictFn
from maskvit.plan.worlds import make_world

POLICIES = ("model", "random", "oracle")


def build_policy(
    name: str,
    world,
    config: PlanConfig,
    predict_fn: PredictFn | None = None,
    context: int = 2,
    oracle_cost: str = "state",
):
    """The policy called `name` for `world`; the model needs `predict_fn`."""
    if name == "model":
        if predict_fn is None:
            raise UserError("the model policy needs --model RUN")
        return ModelPlanner(predict_fn, config, world.action_low, world.action_high, context=context)
    if name == "random":
        return RandomPolicy(config, world.action_low, world.action_high)
    if name == "oracle":
        return OraclePolicy(world, config, cost=oracle_cost)
    raise UserError(f"unknown policy {name!r}; choose one of: {', '.join(POLICIES)}")


def _run_policy(world: World, policy: Policy, name: str, task_seeds: list[int], config: PlanConfig,
                seed: int, gif_dir: Path | None, progress: bool) -> dict[str, Any]:
    """One policy on every task: its summary with one row per episode (and a GIF each)."""
    episodes, rows = [], []
    bar = tqdm(task_seeds, desc=f"plan {name}", unit="episode", disable=not progress)
    start = time.perf_counter()
    for task_seed in bar:
        rng = np.random.default_rng([seed, task_seed])
        episode = run_episode(world, policy, task_seed, config, rng)
        episodes.append(episode)
        rows.append({
            "task_seed": task_seed,
            "success": episode.success,
            "start_distance": episode.start_distance,
            "final_distance": episode.final_distance,
            "gif": write_episode_gif(gif_dir, name, episode) if gif_dir is not None else None,
        })
        bar.set_postfix(solved=f"{sum(e.success for e in episodes)}/{len(episodes)}")
    if hasattr(policy, "close"):
        policy.close()
    summary = summarise(episodes)
    summary["seconds_per_episode"] = (time.perf_counter() - start) / len(task_seeds)
    summary["per_episode"] = rows
    return summary


def evaluate_policies(
    env: str,
    policies: list[str],
    task_seeds: list[int],
    config: PlanConfig,
    out: Path,
    predict_fn: PredictFn | None = None,
    context: int = 2,
    oracle_cost: str = "state",
    seed: int = 0,
    goal_arm: str = "goal",
    gifs: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Run every policy on every task; returns (and writes) the results dictionary."""
    if not task_seeds:
        raise UserError("no tasks to run; give --episodes 1 or more")
    for name in policies:
        if name not in POLICIES:
            raise UserError(f"unknown policy {name!r}; choose one of: {', '.join(POLICIES)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    world = make_world(env, goal_arm=goal_arm)
    results: dict[str, Any] = {
        "env": env,
        "task_seeds": list(task_seeds),
        "config": dataclasses.asdict(config),
        "oracle_cost": oracle_cost,
        "goal_arm": goal_arm,
        "seed": seed,
        "policies": {},
    }
    try:
        for name in policies:
            policy = build_policy(name, world, config, predict_fn, context, oracle_cost)
            results["policies"][name] = _run_policy(world, policy, name, task_seeds, config, seed,
                                                    out if gifs else None, progress)
            write_results(out, results)
        write_html(out, results)
    finally:
        world.close()
    return results
