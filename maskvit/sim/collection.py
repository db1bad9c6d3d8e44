"""Collection jobs (workers, resume, the run's settings) and the push world's episodes.

The job machinery here (`run_episodes`, `check_counts`, `check_same_run`, `finished_store`)
runs every simulated world's collection; `desk_collect.py` uses it for RoboDesk.

Push world episodes: random actions, in parallel worker processes.

As in the paper's robot data (§A.2), each action is drawn independently from a diagonal
Gaussian, N(mean, diag(0.035², 0.035²)) metres. To make the arm meet the boxes often,
each episode picks one box (the scene's object, which the pusher starts behind, with
probability `object_bias`) and a pull strength g ~ U(0, `max_pull`); the Gaussian's mean
at each step is g · (box centre − pusher), capped at `max_mean` per axis. g near 0 gives
plain random motion; larger g gives pushes like the planning tasks'. Episode i of a run
with seed s is a pure function of (s, i), so a resumed or parallel run writes the same data.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import functools
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from maskvit.data.store import EpisodeStore, EpisodeStoreWriter, read_writer_settings
from maskvit.errors import UserError
from maskvit.sim.push_config import PushConfig
from maskvit.sim.push_env import PushEnv


@dataclass(frozen=True)
class RandomPushPolicy:
    """Independent diagonal-Gaussian actions, biased towards one box per episode."""

    std: float = 0.035  # metres per step, per axis (the paper's x/y scale)
    max_pull: float = 0.6
    max_mean: float = 0.03
    object_bias: float = 0.75

    def episode_actions(self, env: PushEnv, rng: np.random.Generator, steps: int):
        """Yields one action per step; reads the pusher and box positions from `env`."""
        box = int(rng.integers(env.config.num_boxes))
        if env.layout is not None and rng.uniform() < self.object_bias:
            box = env.layout.object_index
        pull = rng.uniform(0, self.max_pull)
        for _ in range(steps):
            offset = env.world.box_positions()[box] - env.world.pusher_position()[:2]
            mean = np.clip(pull * offset, -self.max_mean, self.max_mean)
            yield (mean + rng.normal(0.0, self.std, size=2)).astype(np.float32)


def episode_seed(run_seed: int, index: int) -> int:
    """The scene seed of episode `index` of a run."""
    return int(np.random.SeedSequence([run_seed, index]).generate_state(1)[0] & 0x7FFFFFFF)


def collect_episode(env: PushEnv, run_seed: int, index: int, steps: int,
                    policy: RandomPushPolicy = RandomPushPolicy()) -> dict[str, np.ndarray]:
    """frames uint8 (T,H,W,3), actions float32 (T,2) (actions[t] leads from frame t to t+1;
    the last row is the policy's next action), states float32 (T, 3 + 3·boxes)."""
    rng = np.random.default_rng([run_seed, index, 1])
    frame, _ = env.reset(seed=episode_seed(run_seed, index))
    frames, actions, states = [frame], [], [env.state_vector()]
    for t, action in enumerate(policy.episode_actions(env, rng, steps)):
        clipped = np.clip(action, -env.config.max_step, env.config.max_step)
        actions.append(clipped)
        if t + 1 < steps:
            frame, *_ = env.step(clipped)
            frames.append(frame)
            states.append(env.state_vector())
    return {"frames": np.stack(frames), "actions": np.stack(actions), "states": np.stack(states)}


# -- worker processes: one world each, built once
_worker_world: Any = None
_worker_episode: Callable[[Any, int], dict[str, Any]] | None = None


def _init_worker(make_world: Callable[[], Any], episode: Callable[[Any, int], dict[str, Any]],
                 parent: int) -> None:
    """Build the worker's world; leave Ctrl-C and SIGTERM to the parent.

    Ctrl-C reaches every process of the terminal's group: workers ignore it and the parent
    ends the pool. SIGTERM (the parent's `pool.terminate()`) ends a worker at once and
    silently, instead of raising in it; a worker also gets SIGTERM when the parent dies
    without ending the pool (kill -9), rather than failing later on a broken pipe.
    """
    global _worker_world, _worker_episode
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent(parent)
    _worker_world, _worker_episode = make_world(), episode


def _die_with_parent(parent: int) -> None:
    """Linux: have the kernel send SIGTERM to this process when its parent exits."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)


def _work(index: int) -> tuple[int, dict[str, Any]]:
    return index, _worker_episode(_worker_world, index)


def run_episodes(indices: list[int], workers: int, make_world: Callable[[], Any],
                 episode: Callable[[Any, int], dict[str, Any]],
                 write: Callable[[int, dict[str, Any]], None], bar: tqdm,
                 start_method: str = "fork") -> None:
    """`write(i, episode(world, i))` for every index, in `workers` processes (or this one).

    `make_world` and `episode` must be picklable (module-level functions, classes or
    `functools.partial`s of them): each worker builds one world and reuses it. Episodes are
    written by this process as they finish. On Ctrl-C / SIGTERM (raised here by the CLI) or
    any error, the pool is terminated before the exception goes on: the workers end
    quietly, the episodes written so far stay, and the next run resumes from them.
    `start_method="spawn"` for worlds that render through a GL library: children forked
    from a process that has made a GL context (llvmpipe's threads hold its locks) hang.
    """
    if workers == 1 or len(indices) <= 1:
        world = make_world()
        try:
            for index in indices:
                write(index, episode(world, index))
                bar.update()
        finally:
            world.close()
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context(start_method if start_method in methods else "spawn")
    pool = context.Pool(workers, initializer=_init_worker, initargs=(make_world, episode, os.getpid()))
    try:
        for index, result in pool.imap_unordered(_work, indices, chunksize=1):
            write(index, result)
            bar.update()
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def episode_id(index: int) -> str:
    return f"push_{index:06d}"


def collect_push_dataset(
    out: str | Path,
    episodes: int,
    steps: int = 30,
    workers: int = 1,
    seed: int = 0,
    config: PushConfig | None = None,
    policy: RandomPushPolicy | None = None,
    progress: bool = True,
) -> EpisodeStore:
    """Write `episodes` random-action episodes of `steps` frames to an episode store at `out`.

    Resumable: rerunning the same command skips finished episodes; the store's manifest is
    written only when every episode is on disk.
    """
    config = config or PushConfig()
    policy = policy or RandomPushPolicy()
    check_counts(episodes, steps, workers)
    extra = {
        "env": "push",
        "seed": seed,
        "steps": steps,
        "fps": 1.0 / (config.time_step * config.substeps),
        "config": plain(dataclasses.asdict(config)),
        "policy": dataclasses.asdict(policy),
        "state_columns": ["pusher_x", "pusher_y", "pusher_z"]
        + [f"box{i}_{k}" for i in range(config.num_boxes) for k in ("x", "y", "yaw")],
    }
    check_same_run(Path(out), extra)
    finished = finished_store(Path(out), [episode_id(i) for i in range(episodes)])
    if finished is not None:
        return finished  # nothing to do: leave the complete store as it is
    writer = EpisodeStoreWriter(out, source="push", action_dim=2, resolution=config.image_size,
                                state_dim=3 + 3 * config.num_boxes, extra=extra)
    todo = [i for i in range(episodes) if episode_id(i) not in writer]
    bar = tqdm(total=episodes, initial=episodes - len(todo), desc="collect", unit="ep", disable=not progress)
    run_episodes(todo, workers, functools.partial(PushEnv, config),
                 functools.partial(_push_episode, run_seed=seed, steps=steps, policy=policy),
                 functools.partial(_write, writer), bar)
    bar.close()
    return writer.close()


def _push_episode(env: PushEnv, index: int, *, run_seed: int, steps: int,
                  policy: RandomPushPolicy) -> dict[str, np.ndarray]:
    return collect_episode(env, run_seed, index, steps, policy)


def _write(writer: EpisodeStoreWriter, index: int, episode: dict[str, np.ndarray]) -> None:
    writer.add(episode_id(index), episode["frames"], episode["actions"], states=episode["states"])


def check_counts(episodes: int, steps: int, workers: int) -> None:
    """One line when a collection's episode, step or worker count cannot work."""
    if episodes < 1 or steps < 2 or workers < 1:
        raise UserError(f"need episodes ≥ 1, steps ≥ 2, workers ≥ 1 (got {episodes}, {steps}, {workers})")


def finished_store(out: Path, ids: list[str]) -> EpisodeStore | None:
    """The store at `out` if it is complete and holds every episode of `ids`, else None.

    Rerunning a finished collect then reads only: reopening the writer would mark the store
    incomplete until it is closed again, which a full disk could prevent.
    """
    if not (out / "manifest.json").is_file():
        return None
    try:
        store = EpisodeStore.open(out)
    except UserError:
        return None
    return store if all(i in store for i in ids) else None


def check_same_run(out: Path, extra: dict[str, Any]) -> None:
    """A one-line error when `out` was collected with other settings than `extra` says."""
    settings_file = out / "writer.json"
    if not settings_file.is_file():
        return
    previous = read_writer_settings(out).get("extra", {})  # damage: one line
    for key, value in extra.items():
        if key in previous and previous[key] != value:
            raise UserError(f"{out} was collected with different {key}; use the same settings to resume, or another --out")


def plain(value: Any) -> Any:
    """Tuples become lists so the settings compare equal after a JSON round trip."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
