"""The model side of the server: one batch of validated prediction jobs in, frames out.

A `PredictJob` is one request, already checked (shapes, dtypes, ranges): B videos with
their context frames, actions and goal frames, one seed and the decoding settings (one
`DecodingConfig`). Jobs whose settings and clip layout agree (`DecodeKey`) can share a
forward pass; the batcher
only ever hands `Engine.run_batch` jobs of one key. Each job keeps its own generator
(`maskvit.serve.sampling.row_generators`), so its frames equal `Predictor.predict` on that
job alone with the same seed.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch

from maskvit.config import DecodingConfig
from maskvit.model.decoding import generate
from maskvit.serve.sampling import row_generators


@dataclass(frozen=True)
class DecodeKey:
    """What must agree for jobs to run as one batch."""

    context_frames: int
    num_frames: int
    goal: bool
    decoding: DecodingConfig


@dataclass
class PredictJob:
    """One request's inputs, validated: uint8 frames, float32 actions, settings in `key`."""

    context: np.ndarray  # (B, Tc, H, W, 3) uint8
    actions: np.ndarray | None  # (B, Tc + N, A) float32, or None for a model without actions
    goal: np.ndarray | None  # (B, H, W, 3) uint8
    seed: int
    key: DecodeKey

    @property
    def videos(self) -> int:
        return int(self.context.shape[0])


def autocast(predictor):
    """The predictor's precision as a context (bf16 autocast, or nothing for fp32)."""
    if predictor.precision == "bf16":
        return torch.autocast(predictor.device.type, dtype=torch.bfloat16)
    return nullcontext()


class Engine:
    """Runs batches of `PredictJob`s through a `Predictor`'s tokenizer and transformer."""

    def __init__(self, predictor) -> None:
        self.predictor = predictor

    @torch.no_grad()
    def run_batch(self, jobs: list[PredictJob]) -> list[np.ndarray]:
        """Predicted frames uint8 (B_i, N, H, W, 3) for each job, in order."""
        if not jobs:
            return []
        key = jobs[0].key
        if any(job.key != key for job in jobs):
            raise ValueError("a batch must hold jobs of one DecodeKey")
        p = self.predictor
        device = p.device
        context = np.concatenate([job.context for job in jobs])
        context_codes = p.encode(context)  # (B, Tc, h, w)
        goal_codes = None
        if key.goal:
            goal_codes = p.encode(np.concatenate([job.goal for job in jobs]))
        actions = None
        if jobs[0].actions is not None:
            actions = torch.from_numpy(np.concatenate([job.actions for job in jobs])).float()
            if key.goal:  # the goal frame's own action slot is unused (as Predictor.predict)
                actions = torch.cat([actions, actions.new_zeros(actions.shape[0], 1, actions.shape[2])], 1)
            actions = actions.to(device)
        generators = row_generators([job.videos for job in jobs], [job.seed for job in jobs], device)
        with autocast(p):
            decoded = generate(
                p.transformer, context_codes, key.num_frames + key.goal, key.decoding,
                actions=actions, goal_codes=goal_codes, generator=generators,
            ).codes
        n_context = key.context_frames
        frames = p.decode(decoded[:, n_context:n_context + key.num_frames])
        out, start = [], 0
        for job in jobs:
            out.append(frames[start:start + job.videos])
            start += job.videos
        return out
