"""Simulator sessions for the playground: live push worlds a browser can step.

A session is one `PushEnv` in this process, either on a push task (a scene with a goal
image rendered by the simulator) or on a held-out episode: a scene and random-action
episode of a collection run seed the shipped model never saw, whose recorded actions
the page can replay or deviate from. Sessions are few (`max_sessions`, the least
recently used is closed when a new one needs room) and bounded in length; PyBullet
calls are serialised by one lock, since they are short (milliseconds) and the model,
not the simulator, is the expensive part.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from maskvit.serve.refusals import ApiError, BadInput

HELD_OUT_RUN_SEED = 777  # the reference data was collected with run seed 0
HELD_OUT_EPISODES = 64
EPISODE_STEPS = 30  # the reference data's episode length
MAX_SESSION_STEPS = 1000
KINDS = ("task", "episode")


class NoSession(ApiError):
    status = 404


@dataclass
class Session:
    id: str
    kind: str
    seed: int
    env: Any
    steps: int = 0
    recorded_actions: np.ndarray | None = None
    last_used: float = field(default_factory=time.monotonic)


class SimSessions:
    """Create, step and close playground simulator sessions (thread-safe)."""

    def __init__(self, max_sessions: int = 8) -> None:
        self.max_sessions = max_sessions
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        from maskvit.sim import PushConfig

        config = PushConfig()
        self.action_low = [-config.max_step, -config.max_step]
        self.action_high = [config.max_step, config.max_step]
        self.resolution = config.image_size

    def describe(self) -> dict[str, Any]:
        return {"kinds": list(KINDS), "held_out_episodes": HELD_OUT_EPISODES,
                "held_out_run_seed": HELD_OUT_RUN_SEED, "episode_steps": EPISODE_STEPS,
                "action_low": self.action_low, "action_high": self.action_high,
                "resolution": self.resolution, "max_sessions": self.max_sessions,
                "max_session_steps": MAX_SESSION_STEPS, "keys": self.key_actions()}

    def key_actions(self) -> dict[str, list[float]]:
        """Arrow key -> action: the camera looks down with the arm's base at the top of
        the image, so image up is world −x and image right is world +y."""
        step = self.action_high[0]
        return {"ArrowUp": [-step, 0.0], "ArrowDown": [step, 0.0],
                "ArrowLeft": [0.0, -step], "ArrowRight": [0.0, step]}

    def start(self, kind: str, seed: int) -> dict[str, Any]:
        """A new session; returns its id, the first two frames, the action between them,
        the goal image (tasks) or the recorded actions and last frame (episodes)."""
        from maskvit.sim import PushEnv, make_push_task
        from maskvit.sim.collection import collect_episode, episode_seed

        if kind not in KINDS:
            raise BadInput(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
        if kind == "episode" and not 0 <= seed < HELD_OUT_EPISODES:
            raise BadInput(f"episode must be in [0, {HELD_OUT_EPISODES}); got {seed}")
        if not 0 <= seed < 2**31:
            raise BadInput(f"seed must be in [0, 2^31); got {seed}")
        with self._lock:
            self._make_room()
            env = PushEnv()
            try:
                out: dict[str, Any] = {"kind": kind, "seed": seed}
                if kind == "task":
                    task = make_push_task(seed, env.config)
                    first, _ = env.reset(options={"task": task})
                    action = np.zeros(2, dtype=np.float32)
                    out["goal"] = env.goal_image(arm="goal")
                    recorded = None
                else:
                    episode = collect_episode(env, HELD_OUT_RUN_SEED, seed, EPISODE_STEPS)
                    recorded = episode["actions"].astype(np.float32)
                    out["goal"] = episode["frames"][-1]
                    first, _ = env.reset(seed=episode_seed(HELD_OUT_RUN_SEED, seed))
                    action = recorded[0]
                second, *_ = env.step(action)
            except BaseException:
                env.close()
                raise
            session = Session(secrets.token_urlsafe(12), kind, seed, env, steps=1,
                              recorded_actions=recorded)
            self._sessions[session.id] = session
        out.update(session=session.id, frames=[first, second], actions=[action.tolist()],
                   recorded_actions=None if recorded is None else recorded.tolist(),
                   **self._status(session))
        return out

    def step(self, session_id: str, action: np.ndarray) -> dict[str, Any]:
        """Execute one (checked) action; returns the new frame and the task's status."""
        with self._lock:
            session = self._get(session_id)
            if session.steps >= MAX_SESSION_STEPS:
                raise BadInput(f"this session has run {MAX_SESSION_STEPS} steps; start a new one")
            frame, *_ = session.env.step(np.asarray(action, dtype=np.float32))
            session.steps += 1
            session.last_used = time.monotonic()
            return {"frame": frame, **self._status(session)}

    def close(self, session_id: str) -> None:
        with self._lock:
            self._get(session_id)
            self._sessions.pop(session_id).env.close()

    def close_all(self) -> None:
        with self._lock:
            for session in self._sessions.values():
                session.env.close()
            self._sessions.clear()

    def __len__(self) -> int:
        return len(self._sessions)

    # ------------------------------------------------------------------ internals

    def _get(self, session_id: str) -> Session:
        session = self._sessions.get(session_id)
        if session is None:
            raise NoSession("no such simulator session (it ended or was closed to make room); "
                            "start a new one")
        return session

    def _make_room(self) -> None:
        while len(self._sessions) >= self.max_sessions:
            oldest = min(self._sessions.values(), key=lambda s: s.last_used)
            self._sessions.pop(oldest.id).env.close()

    @staticmethod
    def _status(session: Session) -> dict[str, Any]:
        status: dict[str, Any] = {"step": session.steps}
        env = session.env
        if env.task is not None:
            status["goal_distance"] = float(env.goal_distance())
            status["success"] = bool(env.success())
        return status
