"""Closed-loop evaluation of several policies on the same tasks, with everything written out.

`play_policies` is what `maskvit plan` calls. The work is a list of episodes
(`EpisodeJob`: task, policy, task seed), ordered task by task; each process of a sharded
run (`maskvit.sharding`: `--workers`, torchrun) plays its round-robin share of them through
`mpc.run_episode`, and after each round every process sends its episode (a results.json
row and the GIF's bytes, as JSON) to rank 0, which alone writes the report folder that
`maskvit plan` stages: the report appears whole when the run ends, and an interrupted run
leaves the previous report untouched.

Every episode's randomness comes from its own identity: the policy's generator from (seed,
task, task seed) and the model's decoding seeds from the same identity and the call's
number within the episode (`predictor_fn.SeededPredictFn.start_episode`). So an episode
plays the same whichever process runs it and whatever ran there before, and a sharded
run's results equal a single process's, episode by episode.
"""

from __future__ import annotations

import base64
import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from maskvit.atomic import atomic_write_bytes
from maskvit.config import PlanConfig
from maskvit.errors import UserError
from maskvit.plan.baselines import OraclePolicy, RandomPolicy
from maskvit.plan.desk_progress_cost import ProgressCost
from maskvit.plan.mpc import run_episode
from maskvit.plan.plan_report import (
    episode_frames,
    episode_gif_name,
    gif_bytes,
    summarise_rows,
    write_html,
    write_overview_html,
    write_results,
)
from maskvit.plan.planner import (
    CLASSIFIER_COSTS,
    PROGRESS_COSTS,
    REACH_COSTS,
    ModelPlanner,
    PredictFn,
)
from maskvit.plan.reach_reader import ReachCost
from maskvit.plan.success_classifier import ClassifierCost
from maskvit.plan.tuned_settings import settings_record
from maskvit.plan.worlds import make_world
from maskvit.sharding import Shard, gather_json

POLICIES = ("model", "random", "oracle")
PUSH_TASK = "push"  # the push world's one task family: its tasks are seeds
_DECODING_STREAM = 0xDEC0DE  # keeps the decoding seeds apart from the policy's generator


@dataclasses.dataclass(frozen=True)
class EpisodeJob:
    """One episode: a policy on one task instance."""

    task: str  # a RoboDesk task, or PUSH_TASK
    policy: str
    task_seed: int  # push: the task's seed; RoboDesk: the instance's index in its split


def make_jobs(tasks: list[str], policies: list[str], task_seeds: list[int]) -> list[EpisodeJob]:
    """Every policy on every task seed, task by task (so a process switches worlds rarely)."""
    return [EpisodeJob(task, policy, s) for task in tasks for policy in policies for s in task_seeds]


def episode_identity(env: str, seed: int, job: EpisodeJob) -> list[int]:
    """What an episode's randomness is seeded from: the run's seed and the task instance
    (not the policy, so every policy meets the same draws; the push world's is
    [seed, task seed], as before RoboDesk joined)."""
    if env == PUSH_TASK:
        return [seed, job.task_seed]
    from maskvit.sim.desk_world import TASKS

    return [seed, TASKS.index(job.task), job.task_seed]


def decoding_seed(identity: list[int]) -> int:
    """The base of an episode's decoding seeds (62 bits, so base + calls stays a seed)."""
    state = np.random.SeedSequence([*identity, _DECODING_STREAM]).generate_state(1, np.uint64)
    return int(state[0] >> np.uint64(2))


def build_policy(
    name: str,
    world,
    config: PlanConfig,
    predict_fn: PredictFn | None = None,
    context: int = 2,
    oracle_cost: str = "state",
    classifier=None,
    task: str | None = None,
):
    """The policy called `name` for `world`; the model needs `predict_fn`, a classifier cost
    (`plan.cost=pixel_l2_classifier`) the `classifier`, and costs built per task the episode's
    `task`. The pixel oracle (`oracle_cost="pixel"`) scores the true frames with the model's
    cost, task costs included: a perfect video model read by the same cost."""
    if name == "model":
        if predict_fn is None:
            raise UserError("the model policy needs --model RUN")
        return ModelPlanner(predict_fn, config, world.action_low, world.action_high,
                            cost=task_frame_cost(config, classifier, task), context=context)
    if name == "random":
        return RandomPolicy(config, world.action_low, world.action_high)
    if name == "oracle":
        frame_cost = task_frame_cost(config, classifier, task) if oracle_cost == "pixel" else None
        return OraclePolicy(world, config, cost=oracle_cost, frame_cost=frame_cost)
    raise UserError(f"unknown policy {name!r}; choose one of: {', '.join(POLICIES)}")


def task_frame_cost(config: PlanConfig, classifier=None, task: str | None = None):
    """The frame cost built for one task (`plan.cost` reads a classifier, a reach reader or the
    task's progress), or None where `plan.cost` is a plain one looked up by name."""
    if config.cost in REACH_COSTS and classifier is not None:
        return ReachCost(classifier, task or "", progress_weight=config.progress_weight,
                         reach_weight=config.reach_weight, progress_gate=config.progress_gate)
    if config.cost in CLASSIFIER_COSTS and classifier is not None:
        return ClassifierCost(classifier, task or "")
    if config.cost in PROGRESS_COSTS:
        return ProgressCost(task or "", weight=config.progress_weight)
    return None


@dataclasses.dataclass
class PlanSetup:
    """What every process needs to play episodes (the same in every process)."""

    env: str
    config: PlanConfig
    predict_fn: PredictFn | None = None
    context: int = 2
    oracle_cost: str = "state"
    seed: int = 0
    goal_arm: str = "goal"  # push only
    split: str = "test"  # RoboDesk only
    instances_path: str | None = None  # RoboDesk only; None: the shipped file
    gifs: bool = True
    classifiers: dict[str, Any] | None = None  # task -> the SuccessNet its classifier/reach cost reads
    model_plans: dict[str, PlanConfig] | None = None  # the model's plan per task (plan --tuned)

    def plan_for(self, job: EpisodeJob) -> PlanConfig:
        """The plan `job` plays: the model's per-task one where there is one, else `config`."""
        if job.policy == "model" and self.model_plans and job.task in self.model_plans:
            return self.model_plans[job.task]
        return self.config


class EpisodePlayer:
    """Plays jobs one by one, keeping the world of the current task and the policy of the
    current (task, policy) until a job needs others."""

    def __init__(self, setup: PlanSetup):
        self.setup = setup
        self._world, self._world_task = None, None
        self._policy, self._policy_key = None, None

    def play(self, job: EpisodeJob) -> dict[str, Any]:
        """One episode: its results.json row and its GIF (base64, or None) as JSON."""
        s = self.setup
        world, policy = self._world_for(job.task), self._policy_for(job)
        identity = episode_identity(s.env, s.seed, job)
        if job.policy == "model" and hasattr(s.predict_fn, "start_episode"):
            s.predict_fn.start_episode(decoding_seed(identity))
        wall, cpu = time.perf_counter(), time.process_time()
        episode = run_episode(world, policy, job.task_seed, s.plan_for(job), np.random.default_rng(identity))
        row: dict[str, Any] = {"task_seed": job.task_seed}
        if s.env != PUSH_TASK:
            row["instance_seed"] = world.instance.seed
        row.update(success=episode.success, start_distance=episode.start_distance,
                   final_distance=episode.final_distance,
                   steps=len(episode.actions),  # fewer than the episode's where a solve ends it
                   # what was executed, the first (zero) action included, at full precision (JSON
                   # keeps a float64 exactly): any episode replays in the world, or through a model
                   actions=episode.actions.astype(float).tolist(),
                   gif=None,
                   seconds=time.perf_counter() - wall, cpu_seconds=time.process_time() - cpu)
        gif = None
        if s.gifs:
            row["gif"] = episode_gif_name(job.policy, job.task_seed)
            gif = base64.b64encode(gif_bytes(episode_frames(episode))).decode("ascii")
        return {"task": job.task, "policy": job.policy, "task_seed": job.task_seed, "row": row, "gif": gif}

    def prepare(self, job: EpisodeJob) -> None:
        """Build the world and policy `job` needs (their checks run here)."""
        self._world_for(job.task)
        self._policy_for(job)

    def _world_for(self, task: str):
        if self._world_task != task:
            self.close()
            s = self.setup
            if s.env == PUSH_TASK:
                self._world = make_world(s.env, goal_arm=s.goal_arm)
            else:
                self._world = make_world(s.env, task=task, split=s.split, instances_path=s.instances_path)
            self._world_task = task
        return self._world

    def _policy_for(self, job: EpisodeJob):
        if self._policy_key != (job.task, job.policy):
            self._close_policy()
            s = self.setup
            self._policy = build_policy(job.policy, self._world, s.plan_for(job), s.predict_fn, s.context,
                                        s.oracle_cost, (s.classifiers or {}).get(job.task), job.task)
            self._policy_key = (job.task, job.policy)
        return self._policy

    def _close_policy(self) -> None:
        if self._policy is not None and hasattr(self._policy, "close"):
            self._policy.close()
        self._policy, self._policy_key = None, None

    def close(self) -> None:
        self._close_policy()
        if self._world is not None:
            self._world.close()
        self._world, self._world_task = None, None


def play_policies(
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
    tasks: list[str] | None = None,
    split: str = "test",
    instances_path: str | None = None,
    shard: Shard | None = None,
    classifiers: dict[str, Any] | None = None,
    classifier_sources: dict[str, str] | None = None,
    model_plans: dict[str, PlanConfig] | None = None,
) -> dict[str, Any] | None:
    """Run every policy on every task seed (of every RoboDesk task in `tasks`); rank 0
    writes the report into `out` and returns the results dictionary, other ranks None.
    `classifiers` (task -> SuccessNet; recorded in the report from `classifier_sources`, task ->
    folder) score the model's frames where the task's cost is a classifier or reach cost.
    `model_plans` (task -> plan) is what the model policy plays instead of `config` on those
    tasks (`plan --tuned`)."""
    shard = shard or Shard()  # one process unless a sharded run says otherwise
    if not task_seeds:
        raise UserError("no tasks to run; give --episodes 1 or more")
    for name in policies:
        if name not in POLICIES:
            raise UserError(f"unknown policy {name!r}; choose one of: {', '.join(POLICIES)}")
    tasks = [PUSH_TASK] if env == PUSH_TASK else list(tasks or [])
    if not tasks:
        raise UserError("no RoboDesk tasks to run; give --task TASK")
    setup = PlanSetup(env, config, predict_fn, context, oracle_cost, seed, goal_arm, split,
                      instances_path, gifs, classifiers, model_plans)
    jobs = make_jobs(tasks, list(policies), list(task_seeds))
    played = _play_sharded(jobs, setup, Path(out), shard, progress)
    if not shard.is_main:
        return None
    header = {"env": env, "config": dataclasses.asdict(config), "oracle_cost": oracle_cost, "seed": seed}
    if classifier_sources:  # one folder for every task: that folder; several: task -> folder
        folders = set(classifier_sources.values())
        header["classifier"] = folders.pop() if len(folders) == 1 else dict(classifier_sources)
    if model_plans:
        header["model_settings"] = settings_record(config, model_plans)  # what each task's differs in
    if env == PUSH_TASK:
        header["goal_arm"] = goal_arm
        return _write_folder(Path(out), {**header, "task_seeds": list(task_seeds)}, policies, played[PUSH_TASK])
    return _write_desk_report(Path(out), header, tasks, policies, list(task_seeds), split, played)


def _play_sharded(jobs: list[EpisodeJob], setup: PlanSetup, out: Path, shard: Shard,
                  progress: bool) -> dict[str, dict[str, list[dict]]]:
    """Play this process's share of `jobs`; at rank 0, every job's row by task and policy
    (in job order), each GIF written under `out` (in the task's folder for RoboDesk)."""
    mine = shard.take(jobs)
    rounds = math.ceil(len(jobs) / shard.world_size)
    rows: dict[str, dict[str, list[dict]]] = {}
    player = EpisodePlayer(setup)
    try:
        if mine:  # a config that does not fit the world fails here, before the progress bar
            player.prepare(mine[0])
        with tqdm(total=len(jobs), desc=f"plan {setup.env}", unit="episode",
                  disable=not (progress and shard.is_main)) as bar:
            for index in range(rounds):  # every process takes part in every round's gather
                played = player.play(mine[index]) if index < len(mine) else None
                gathered = gather_json(played, shard)
                for rank, item in enumerate(gathered or []):  # None except at rank 0
                    if item is not None:
                        job = jobs[index * shard.world_size + rank]
                        done = _keep(item, job, setup.env, out, rows)
                        bar.update(1)
                        bar.set_postfix(task=job.task, policy=job.policy,
                                        solved=f"{sum(r['success'] for r in done)}/{len(done)}")
    finally:
        player.close()
    return rows


def _keep(item: dict[str, Any], job: EpisodeJob, env: str, out: Path,
          rows: dict[str, dict[str, list[dict]]]) -> list[dict]:
    """Rank 0: write a played episode's GIF and file its row; returns its policy's rows so far."""
    assert (item["task"], item["policy"], item["task_seed"]) == (job.task, job.policy, job.task_seed)
    if item["gif"] is not None:
        folder = out if env == PUSH_TASK else out / job.task
        atomic_write_bytes(folder / item["row"]["gif"], base64.b64decode(item["gif"]))
    done = rows.setdefault(job.task, {}).setdefault(job.policy, [])
    done.append(item["row"])
    return done


def _write_folder(folder: Path, header: dict[str, Any], policies: list[str],
                  rows: dict[str, list[dict]]) -> dict[str, Any]:
    """results.json and index.html of one folder: each policy's summary and rows."""
    folder.mkdir(parents=True, exist_ok=True)
    results = {**header, "policies": {}}
    for name in policies:
        results["policies"][name] = {**summarise_rows(rows[name]), "per_episode": rows[name]}
    write_results(folder, results)
    write_html(folder, results)
    return results


def _write_desk_report(out: Path, header: dict[str, Any], tasks: list[str], policies: list[str],
                       task_seeds: list[int], split: str, played: dict[str, dict[str, list[dict]]]) -> dict[str, Any]:
    """One folder per RoboDesk task, and over them all results.json and index.html with
    every task's summaries and each policy pooled over the tasks."""
    per_task = {}
    for task in tasks:
        folder = _write_folder(out / task, {**header, "task": task, "split": split, "task_seeds": task_seeds},
                               policies, played[task])
        per_task[task] = {name: {k: v for k, v in data.items() if k != "per_episode"}
                          for name, data in folder["policies"].items()}
    pooled = {name: summarise_rows([row for task in tasks for row in played[task][name]]) for name in policies}
    results = {**header, "split": split, "tasks": tasks, "task_seeds": task_seeds,
               "per_task": per_task, "policies": pooled}
    write_results(out, results)
    write_overview_html(out, results)
    return results
