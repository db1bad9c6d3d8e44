"""Stand-ins for the tests: a tiny push-world model and a point world with an exact predictor.

`tiny_predictor` / `save_tiny_bundle`: an untrained, small MaskViT (one transformer block
of width 16, an 8-channel tokenizer) with the shipped model's interface (64×64 frames, 8×8
tokens, 2 context frames, 2-D push actions): it loads and predicts in milliseconds, so it
exercises every code path of the server, the VP2 adapter and the commands fast. Its frames
are noise.

`PointWorld` / `point_predictor`: the agent is a Gaussian blob on a 16×16 image (wide
enough that the pixel cost changes smoothly with position); actions move it by (dx, dy) ≤
0.1 per step inside [0, 1]². `point_predictor` reads the blob's position off the last
context frame and renders where the actions take it, so a planner driven by it must solve
the task through images only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from maskvit.config import (
    Config,
    DataConfig,
    DecodingConfig,
    EvalConfig,
    PlanConfig,
    TokenizerConfig,
    TransformerConfig,
    save_config,
)
from maskvit.inference.predictor import Predictor
from maskvit.model import MaskViT
from maskvit.run_dir import CONFIG_FILE, save_checkpoint
from maskvit.tokenizer.vqgan import MODULE, VQGAN


def tiny_config(goal: bool = False):
    """The tiny model's config (push dataset, 6-frame clips, 2 → 4 frames; with `goal`,
    goal-conditioned for half its training clips: 2 → 3 frames + the goal)."""
    return Config(
        name="tiny-push",
        data=DataConfig(dataset="push", resolution=64, action_dim=2),
        tokenizer=TokenizerConfig(resolution=64, downsample=8, channels=8, num_res_blocks=1,
                                  codebook_size=16, code_dim=8),
        transformer=TransformerConfig(num_frames=6, context_frames=2, tokens_h=8, tokens_w=8,
                                      codebook_size=16, spatial_window=(1, 8, 8),
                                      spatiotemporal_window=(0, 4, 4), depth=1, heads=1, dim=16,
                                      mlp_dim=32, dropout=0.0, action_dim=2,
                                      goal_conditioned=goal, goal_prob=0.5),
        eval=EvalConfig(context_frames=2, predicted_frames=3 if goal else 4,
                        decoding=DecodingConfig(steps=3, temperature=4.5)),
        plan=PlanConfig(horizon=3, samples=4, iterations=1, decoding=DecodingConfig(steps=2),
                        init_mean=(0.0, 0.0),
                        init_std=(0.05, 0.05), round_gripper=False, chunk_size=4),
    )


def tiny_predictor(seed: int = 0, goal: bool = False):
    """A `Predictor` around freshly initialised tiny networks (weights fixed by `seed`)."""
    config = tiny_config(goal)
    torch.manual_seed(seed)
    return Predictor(VQGAN(config.tokenizer), MaskViT(config.transformer), config)


def save_tiny_bundle(out: str | Path, seed: int = 0, goal: bool = False) -> Path:
    """The tiny model as a bundle directory `maskvit serve --model` can load."""
    return save_bundle(tiny_predictor(seed, goal), out)


def save_bundle(predictor: Predictor, out: str | Path) -> Path:
    """`predictor` as a bundle directory (tokenizer/ and transformer/ runs)."""
    out = Path(out)
    for part, module, net in (("tokenizer", MODULE, predictor.tokenizer),
                              ("transformer", "model", predictor.transformer)):
        (out / part).mkdir(parents=True, exist_ok=True)
        save_config(predictor.config, out / part / CONFIG_FILE)
        save_checkpoint(out / part, 1, {module: net.state_dict()}, {}, {}, keep=1)
    return out

SIZE = 16
BOUND = 0.1


def render_point(xy: np.ndarray) -> np.ndarray:
    """uint8 (16, 16, 3) image of a blob at xy ∈ [0, 1]² (any leading batch shape)."""
    xy = np.asarray(xy, dtype=float)
    grid = (np.arange(SIZE) + 0.5) / SIZE
    dx = grid[None, :] - xy[..., 0, None, None]  # (..., 1, W)
    dy = grid[:, None] - xy[..., 1, None, None]  # (..., H, 1)
    blob = np.exp(-(dx**2 + dy**2) / (2 * 0.15**2))
    return np.repeat((blob * 255).round().astype(np.uint8)[..., None], 3, axis=-1)


def locate_point(frame: np.ndarray) -> np.ndarray:
    """Blob centre (x, y) from an image: the brightest pixel refined by a weighted mean."""
    weight = frame[..., 0].astype(float) ** 4
    grid = (np.arange(SIZE) + 0.5) / SIZE
    total = weight.sum(axis=(-2, -1))
    x = (weight.sum(axis=-2) * grid).sum(axis=-1) / total
    y = (weight.sum(axis=-1) * grid).sum(axis=-1) / total
    return np.stack([x, y], axis=-1)


class PointWorld:
    """The `World` interface of `maskvit.plan.mpc` for the point task of a seed."""

    def __init__(self):
        self.action_low = np.full(2, -BOUND)
        self.action_high = np.full(2, BOUND)
        self.xy = np.zeros(2)
        self.goal = np.zeros(2)

    def reset(self, task_seed: int) -> np.ndarray:
        rng = np.random.default_rng(task_seed)
        self.xy = rng.uniform(0.2, 0.8, 2)
        direction = rng.normal(size=2)
        self.goal = np.clip(self.xy + 0.3 * direction / np.linalg.norm(direction), 0.1, 0.9)
        return render_point(self.xy)

    def step(self, action: np.ndarray) -> np.ndarray:
        self.xy = np.clip(self.xy + np.clip(action, -BOUND, BOUND), 0.0, 1.0)
        return render_point(self.xy)

    def goal_image(self) -> np.ndarray:
        return render_point(self.goal)

    def goal_distance(self) -> float:
        return float(np.linalg.norm(self.xy - self.goal))

    def success(self) -> bool:
        return self.goal_distance() < 0.06


def point_predictor(context_frames, context_actions, future_actions) -> np.ndarray:
    """Exact dynamics of `PointWorld`, seen through images: (B, H, 16, 16, 3) uint8."""
    start = locate_point(context_frames[:, -1])  # (B, 2)
    steps = np.clip(future_actions, -BOUND, BOUND)
    path = start[:, None]
    positions = []
    for i in range(steps.shape[1]):
        path = np.clip(path + steps[:, i : i + 1], 0.0, 1.0)
        positions.append(path[:, 0])
    return render_point(np.stack(positions, axis=1))
