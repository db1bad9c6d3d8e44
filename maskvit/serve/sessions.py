"""Simulator sessions for the playground: live worlds a browser can step.

The world follows the served model, decided in one place (`playground_world`): RoboDesk
for a model trained on RoboDesk, the push world otherwise.

- Push (`PushScenes`): one `PushEnv`, either on a push task (a scene with a goal image
  rendered by the simulator) or on a held-out episode: a scene and random-action episode
  of a collection run seed the shipped model never saw, whose recorded actions the page
  can replay or deviate from.
- RoboDesk (`DeskScenes`): one `DeskPlanningWorld` on a held-out benchmark instance (the
  "test" split of the shipped instance file): its start state, its goal image, and success
  as the benchmark scores it (the task's predicate held after some step so far).

Sessions are few (`max_sessions`, the least recently used is closed when a new one needs
room) and bounded in length. Every simulator call runs on one thread of its own: MuJoCo's
EGL context works only on the thread that made it, and one thread also serialises the
calls, which are short (milliseconds for PyBullet, a fraction of a second for a RoboDesk
step) beside the model, the expensive part.
"""

from __future__ import annotations

import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from maskvit.errors import UserError
from maskvit.serve.refusals import ApiError, BadInput

HELD_OUT_RUN_SEED = 777  # the reference data was collected with run seed 0
HELD_OUT_EPISODES = 64
EPISODE_STEPS = 30  # the reference data's episode length
MAX_SESSION_STEPS = 1000
DESK_SPLIT = "test"  # the instances results are reported on; "tuning" chose the settings
# A RoboDesk key press: half the largest action, which moves the gripper about 4 cm
# (measured), near the push world's 5 cm key step and fine enough to line up with a button.
DESK_KEY_STEP = 0.5


def playground_world(config) -> str:
    """The simulator the playground runs beside a model with `config` ("push" or "robodesk")."""
    return "robodesk" if config.data.dataset == "robodesk" else "push"


class NoSession(ApiError):
    status = 404


class SimUnavailable(ApiError):
    """This machine cannot run the simulator (a missing package or GL library)."""

    status = 503


@dataclass
class Session:
    id: str
    kind: str
    seed: int
    env: Any
    steps: int = 0
    recorded_actions: np.ndarray | None = None
    task: str | None = None
    last_used: float = field(default_factory=time.monotonic)


@dataclass
class Opened:
    """A scene just made: its simulator, first frame, goal image, and the action that leads
    to the second frame (the recorded one for episodes, else zeros)."""

    env: Any
    first: np.ndarray
    goal: np.ndarray
    first_action: np.ndarray
    recorded: np.ndarray | None = None


class PushScenes:
    """Push tasks and held-out push episodes (`PushEnv`)."""

    world = "push"
    kinds = ("task", "episode")

    def __init__(self) -> None:
        from maskvit.sim import PushConfig

        config = PushConfig()
        self.action_low = [-config.max_step, -config.max_step]
        self.action_high = [config.max_step, config.max_step]
        self.resolution = config.image_size

    def describe(self) -> dict[str, Any]:
        return {"held_out_episodes": HELD_OUT_EPISODES, "held_out_run_seed": HELD_OUT_RUN_SEED,
                "episode_steps": EPISODE_STEPS,
                "key_hint": f"arrow keys or buttons move the pusher one step "
                            f"({100 * self.action_high[0]:g} cm)"}

    def key_actions(self) -> dict[str, list[float]]:
        """Arrow key -> action: the camera looks down with the arm's base at the top of
        the image, so image up is world −x and image right is world +y."""
        step = self.action_high[0]
        return {"ArrowUp": [-step, 0.0], "ArrowDown": [step, 0.0],
                "ArrowLeft": [0.0, -step], "ArrowRight": [0.0, step]}

    def check(self, kind: str, seed: int, task: str | None) -> None:
        if kind == "episode" and not 0 <= seed < HELD_OUT_EPISODES:
            raise BadInput(f"episode must be in [0, {HELD_OUT_EPISODES}); got {seed}")
        if not 0 <= seed < 2**31:
            raise BadInput(f"seed must be in [0, 2^31); got {seed}")
        if task is not None:
            raise BadInput(f"task {task!r}: only RoboDesk sessions take a task; this playground "
                           "runs the push world (kind and seed choose the scene)")

    def open(self, kind: str, seed: int, task: str | None) -> Opened:
        from maskvit.sim import PushEnv, make_push_task
        from maskvit.sim.collection import collect_episode, episode_seed

        env = PushEnv()
        try:
            if kind == "task":
                first, _ = env.reset(options={"task": make_push_task(seed, env.config)})
                return Opened(env, first, env.goal_image(arm="goal"), np.zeros(2, dtype=np.float32))
            episode = collect_episode(env, HELD_OUT_RUN_SEED, seed, EPISODE_STEPS)
            recorded = episode["actions"].astype(np.float32)
            first, _ = env.reset(seed=episode_seed(HELD_OUT_RUN_SEED, seed))
            return Opened(env, first, episode["frames"][-1], recorded[0], recorded)
        except BaseException:
            env.close()
            raise

    @staticmethod
    def step(env, action: np.ndarray) -> np.ndarray:
        frame, *_ = env.step(np.asarray(action, dtype=np.float32))
        return frame

    @staticmethod
    def close(env) -> None:
        env.close()

    @staticmethod
    def status(env) -> dict[str, Any]:
        if env.task is None:  # a held-out episode has no goal to reach
            return {}
        return {"goal_distance": float(env.goal_distance()), "success": bool(env.success())}


class DeskScenes:
    """RoboDesk's held-out benchmark instances (`DeskPlanningWorld`, split `DESK_SPLIT`)."""

    world = "robodesk"
    kinds = ("task",)

    def __init__(self) -> None:
        from maskvit.sim.desk_world import ACTION_DIM, IMAGE_SIZE  # no MuJoCo import here

        self.action_low = [-1.0] * ACTION_DIM
        self.action_high = [1.0] * ACTION_DIM
        self.resolution = IMAGE_SIZE
        self._instances: dict[str, list] | None = None

    def instances(self) -> dict[str, list]:
        """Task -> its held-out instances, read from the shipped file when first asked for
        (a damaged file then answers one line, and the model endpoints keep working)."""
        if self._instances is None:
            from maskvit.sim.desk_instances import load_instances
            from maskvit.sim.desk_world import TASKS

            loaded = load_instances(split=DESK_SPLIT)
            self._instances = {task: [i for i in loaded if i.task == task] for task in TASKS}
        return self._instances

    def describe(self) -> dict[str, Any]:
        return {"tasks": {task: len(found) for task, found in self.instances().items() if found},
                "split": DESK_SPLIT,
                "key_hint": "arrow keys move the gripper across the image, PageUp and PageDown "
                            "raise and lower it (about 4 cm a step)"}

    def key_actions(self) -> dict[str, list[float]]:
        """Key -> action (x, y, z, wrist, gripper), wrist and gripper still. Found by stepping
        the world and projecting the end effector into the frame (the tests check each key
        that way): +x moves the gripper right in the image, +y up (towards the desk's back),
        +z up as well (towards the camera, which looks down at 60°)."""
        s = DESK_KEY_STEP
        return {"ArrowRight": [s, 0.0, 0.0, 0.0, 0.0], "ArrowLeft": [-s, 0.0, 0.0, 0.0, 0.0],
                "ArrowUp": [0.0, s, 0.0, 0.0, 0.0], "ArrowDown": [0.0, -s, 0.0, 0.0, 0.0],
                "PageUp": [0.0, 0.0, s, 0.0, 0.0], "PageDown": [0.0, 0.0, -s, 0.0, 0.0]}

    def check(self, kind: str, seed: int, task: str | None) -> None:
        available = {name: len(found) for name, found in self.instances().items() if found}
        if task not in available:
            raise BadInput(f"task: name a RoboDesk task with held-out instances, one of: "
                           f"{', '.join(available)}; got {task!r}")
        if not 0 <= seed < available[task]:
            raise BadInput(f"{task} has {available[task]} held-out instances, 0 to "
                           f"{available[task] - 1}; got instance {seed}")

    def open(self, kind: str, seed: int, task: str | None) -> Opened:
        from maskvit.plan.worlds import DeskPlanningWorld

        try:
            world = DeskPlanningWorld(task, split=DESK_SPLIT, instances=self.instances()[task])
        except UserError as err:  # no MuJoCo, robodesk or headless GL on this machine
            raise SimUnavailable(f"RoboDesk sessions are unavailable on this server: {err}") from None
        try:
            first = world.reset(seed)
            return Opened(world, first, world.goal_image(), np.zeros(len(self.action_low), np.float32))
        except BaseException:
            self.close(world)
            raise

    @staticmethod
    def step(world, action: np.ndarray) -> np.ndarray:
        return world.step(np.asarray(action, dtype=np.float32))

    @staticmethod
    def close(world) -> None:
        """Close `world` and free its GL context now, on this (the sim) thread: left to the
        garbage collector, it would be freed on whichever thread collects, where EGL refuses
        it (EGL_BAD_ACCESS, printed as an ignored exception) and the context leaks."""
        world.close()
        world.world.physics.free()

    @staticmethod
    def status(world) -> dict[str, Any]:
        """Solved at any step so far (the benchmark's verdict), and the task's own progress
        measure (`DeskWorld.progress`: in the task's units, 0 once solved)."""
        return {"goal_distance": float(world.goal_distance()), "success": bool(world.success())}


SCENES = {"push": PushScenes, "robodesk": DeskScenes}


class SimSessions:
    """Create, step and close playground simulator sessions (thread-safe)."""

    def __init__(self, max_sessions: int = 8, world: str = "push") -> None:
        self.max_sessions = max_sessions
        self.scenes = SCENES[world]()
        self._sessions: dict[str, Session] = {}
        self._sim_thread = ThreadPoolExecutor(1, thread_name_prefix="maskvit-sim")

    @classmethod
    def for_model(cls, config, max_sessions: int = 8) -> SimSessions:
        """Sessions in the world the model with `config` was trained for."""
        return cls(max_sessions, playground_world(config))

    @property
    def action_low(self) -> list[float]:
        return self.scenes.action_low

    @property
    def action_high(self) -> list[float]:
        return self.scenes.action_high

    @property
    def resolution(self) -> int:
        return self.scenes.resolution

    def describe(self) -> dict[str, Any]:
        return {"world": self.scenes.world, "kinds": list(self.scenes.kinds), **self.scenes.describe(),
                "action_low": self.action_low, "action_high": self.action_high,
                "resolution": self.resolution, "max_sessions": self.max_sessions,
                "max_session_steps": MAX_SESSION_STEPS, "keys": self.key_actions()}

    def key_actions(self) -> dict[str, list[float]]:
        return self.scenes.key_actions()

    def start(self, kind: str, seed: int, task: str | None = None) -> dict[str, Any]:
        """A new session; returns its id, the first two frames, the action between them,
        the goal image (tasks) or the recorded actions and last frame (episodes)."""
        kinds = self.scenes.kinds
        if kind not in kinds:
            raise BadInput(f"kind must be one of {', '.join(kinds)}; got {kind!r}")
        self.scenes.check(kind, seed, task)
        return self._sim_thread.submit(self._open, kind, seed, task).result()

    def step(self, session_id: str, action: np.ndarray) -> dict[str, Any]:
        """Execute one (checked) action; returns the new frame and the task's status."""
        return self._sim_thread.submit(self._step, session_id, action).result()

    def close(self, session_id: str) -> None:
        self._sim_thread.submit(self._close, session_id).result()

    def close_all(self) -> None:
        self._sim_thread.submit(self._close_all).result()
        self._sim_thread.shutdown()

    def __len__(self) -> int:
        return len(self._sessions)

    # ------------------------------------------------------------------ on the sim thread

    def _open(self, kind: str, seed: int, task: str | None) -> dict[str, Any]:
        self._make_room()
        opened = self.scenes.open(kind, seed, task)
        try:
            second = self.scenes.step(opened.env, opened.first_action)
        except BaseException:
            self.scenes.close(opened.env)
            raise
        session = Session(secrets.token_urlsafe(12), kind, seed, opened.env, steps=1,
                          recorded_actions=opened.recorded, task=task)
        self._sessions[session.id] = session
        out: dict[str, Any] = {"kind": kind, "seed": seed, "goal": opened.goal}
        if task is not None:
            out["task"] = task
        recorded = opened.recorded
        out.update(session=session.id, frames=[opened.first, second],
                   actions=[opened.first_action.tolist()],
                   recorded_actions=None if recorded is None else recorded.tolist(),
                   **self._status(session))
        return out

    def _step(self, session_id: str, action: np.ndarray) -> dict[str, Any]:
        session = self._get(session_id)
        if session.steps >= MAX_SESSION_STEPS:
            raise BadInput(f"this session has run {MAX_SESSION_STEPS} steps; start a new one")
        frame = self.scenes.step(session.env, action)
        session.steps += 1
        session.last_used = time.monotonic()
        return {"frame": frame, **self._status(session)}

    def _close(self, session_id: str) -> None:
        self._get(session_id)
        self.scenes.close(self._sessions.pop(session_id).env)

    def _close_all(self) -> None:
        for session in self._sessions.values():
            self.scenes.close(session.env)
        self._sessions.clear()

    def _get(self, session_id: str) -> Session:
        session = self._sessions.get(session_id)
        if session is None:
            raise NoSession("no such simulator session (it ended or was closed to make room); "
                            "start a new one")
        return session

    def _make_room(self) -> None:
        while len(self._sessions) >= self.max_sessions:
            oldest = min(self._sessions.values(), key=lambda s: s.last_used)
            self.scenes.close(self._sessions.pop(oldest.id).env)

    def _status(self, session: Session) -> dict[str, Any]:
        return {"step": session.steps, **self.scenes.status(session.env)}
