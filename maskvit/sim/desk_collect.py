"""RoboDesk data collection: noisy scripted policies for every task, and random exploration.

As VP2's RoboDesk data: 30-step episodes, action repeat 50, each episode one task's
scripted controller with Gaussian noise (std 0.4, or a std drawn per episode from several
levels: `maskvit collect --noise 0.1,0.2,0.4`) on every action, tasks mixed; a fraction of the
episodes explore at random instead, and with `--play` some play at the task's handle (`NoisyMix`). Beside each frame the store keeps
the task-relevant state (`states`, float32: see `desk_world.STATE_COLUMNS`) and the whole
simulator state (`sim_states`, float64), from which `DeskWorld.set_state` restores that
frame exactly. Episode i of a run with seed s is a pure function of (s, i, the task list, the mix),
so a resumed or parallel run writes the same data.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from maskvit.data.store import EpisodeStore, EpisodeStoreWriter
from maskvit.errors import UserError
from maskvit.sim.collection import check_counts, check_same_run, finished_store, plain, run_episodes
from maskvit.sim.desk_play import PLAY_VERSION, HandlePlay
from maskvit.sim.desk_policies import (
    CONTROLLERS_VERSION,
    DrawerPullbackPolicy,
    NoisyMix,
    PanelSlidePolicy,
    RandomPolicy,
    scripted_policy,
)
from maskvit.sim.desk_world import (
    ACTION_DIM,
    ACTION_REPEAT,
    IMAGE_SIZE,
    SHADOW_SIZE,
    STATE_COLUMNS,
    TASKS,
    DeskWorld,
    check_rendering,
    check_task,
)

# Training episodes draw their scenes from this stream; benchmark instances from another
# (`desk_instances.INSTANCE_STREAM`), so no training scene is ever a test scene.
TRAINING_STREAM = 0x7E5C


def desk_episode_seed(run_seed: int, index: int) -> int:
    """The scene seed of training episode `index` of a run."""
    return int(np.random.SeedSequence([TRAINING_STREAM, run_seed, index]).generate_state(1)[0])


def desk_episode_id(index: int) -> str:
    return f"robodesk_{index:06d}"


def collect_desk_episode(world: DeskWorld, index: int, *, run_seed: int, steps: int,
                         tasks: tuple[str, ...], mix: NoisyMix) -> dict[str, Any]:
    """frames uint8 (T,64,64,3), actions float32 (T,5) (actions[t] leads from frame t to t+1;
    the last row is the policy's next action), states float32 (T,19), sim_states float64,
    and the episode's task and policy kind."""
    rng = np.random.default_rng([TRAINING_STREAM, run_seed, index, 1])
    task, kind = mix.choose(tasks, rng)
    frame = world.reset(desk_episode_seed(run_seed, index))
    policy = {"random": RandomPolicy, "play": lambda: HandlePlay(task), "panel": PanelSlidePolicy,
              "pullback": DrawerPullbackPolicy,
              "scripted": lambda: scripted_policy(task)}[kind]()
    info: dict[str, Any] = {"task": task, "policy": kind}
    noisy = kind != "random"  # scripted and play episodes carry the scripted policies' noise
    noise = mix.episode_noise(rng) if noisy else 0.0
    if noisy and isinstance(mix.noise_std, tuple):  # which level this one drew
        info["noise_std"] = noise
    policy.reset(world, rng)
    frames, actions, states, sim_states = [], [], [], []
    for t in range(steps):
        frames.append(frame)
        states.append(world.state_vector())
        sim_states.append(world.get_state())
        action = policy.action(world)
        if noisy:
            action = action + rng.normal(0.0, noise, ACTION_DIM)
        # Stored as float32 and stepped as stored: replaying the file repeats the episode exactly.
        actions.append(np.clip(action, -1.0, 1.0).astype(np.float32))
        if t + 1 < steps:
            frame = world.step(actions[-1])
    return {"frames": np.stack(frames), "actions": np.stack(actions),
            "states": np.stack(states), "sim_states": np.stack(sim_states),
            "info": info}


def collect_desk_dataset(out: str | Path, episodes: int, tasks: tuple[str, ...] = TASKS,
                         steps: int = 30, workers: int = 1, seed: int = 0,
                         mix: NoisyMix | None = None, progress: bool = True) -> EpisodeStore:
    """Write `episodes` RoboDesk episodes of `steps` frames to an episode store at `out`.

    Resumable: rerunning the same command skips finished episodes; another task list,
    seed, step count or policy mix is refused (the data would mix two recipes).
    """
    mix = mix or NoisyMix()
    tasks = tuple(check_task(t) for t in tasks)
    if not tasks or len(set(tasks)) != len(tasks):
        raise UserError("--tasks needs one or more distinct RoboDesk tasks")
    check_counts(episodes, steps, workers)
    extra = {
        "env": "robodesk",
        "seed": seed,
        "steps": steps,
        "tasks": list(tasks),
        "policy": {**mix_record(mix), "controllers": CONTROLLERS_VERSION},
        "config": {"image_size": IMAGE_SIZE, "shadow_size": SHADOW_SIZE, "action_repeat": ACTION_REPEAT},
        "state_columns": list(STATE_COLUMNS),
    }
    out = Path(out)
    check_same_run(out, extra)
    check_rendering()  # no GL library: one line, before anything is written
    ids = [desk_episode_id(i) for i in range(episodes)]
    finished = finished_store(out, ids)
    if finished is not None:
        return finished
    writer = EpisodeStoreWriter(out, source="robodesk", action_dim=ACTION_DIM, resolution=IMAGE_SIZE,
                                state_dim=len(STATE_COLUMNS), extra=extra)
    todo = [i for i in range(episodes) if ids[i] not in writer]
    bar = tqdm(total=episodes, initial=episodes - len(todo), desc="collect robodesk", unit="ep",
               disable=not progress)
    episode = functools.partial(collect_desk_episode, run_seed=seed, steps=steps, tasks=tasks, mix=mix)
    # spawn: this process has rendered (check_rendering), and a forked child of a GL process hangs
    run_episodes(todo, workers, DeskWorld, episode, functools.partial(_write, writer), bar,
                 start_method="spawn")
    bar.close()
    return writer.close()


def mix_record(mix: NoisyMix) -> dict[str, Any]:
    """The mix as a store's manifest records it. Without play, panel pushes or pullbacks it is recorded as
    before they existed, so a store collected then resumes (and is compared) unchanged."""
    record = plain(dataclasses.asdict(mix))
    if not mix.play_fraction:
        record.pop("play_fraction")
    else:
        record["play"] = PLAY_VERSION  # a play store resumes only with the play it was made with
    for share in ("panel_slide_fraction", "drawer_pullback_fraction"):
        if not getattr(mix, share):
            record.pop(share)
    return record


def _write(writer: EpisodeStoreWriter, index: int, episode: dict[str, Any]) -> None:
    writer.add(desk_episode_id(index), episode["frames"], episode["actions"], states=episode["states"],
               arrays={"sim_states": episode["sim_states"]}, info=episode["info"])
