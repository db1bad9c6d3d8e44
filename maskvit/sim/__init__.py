"""The simulated robot-pushing world (PyBullet) and random-action data collection."""

from maskvit.sim.push_config import PushConfig
from maskvit.sim.push_env import PushEnv
from maskvit.sim.scenes import PushTask, SceneLayout, make_push_task, sample_layout
from maskvit.sim.world import PushState, PushWorld

__all__ = [
    "PushConfig",
    "PushEnv",
    "PushState",
    "PushTask",
    "PushWorld",
    "SceneLayout",
    "make_push_task",
    "sample_layout",
]
