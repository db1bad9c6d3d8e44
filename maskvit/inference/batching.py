"""Batches of validated prediction jobs through one `Predictor`: frames out, one
generator per video, so a job's frames never depend on its batch-mates.

A `PredictJob` is one request, already checked (shapes, dtypes, ranges): B videos with
their context frames, actions and goal frames, one seed and the decoding settings (one
`DecodingConfig`). Jobs whose settings and clip layout agree (`DecodeKey`) can share a
forward pass; the batcher
only ever hands `Engine.run_batch` jobs of one key. Each job keeps its own generator
(`row_generators`), so its frames equal `Predictor.predict` on that
job alone with the same seed.

A request that gives up (504) sets its job's `abandoned` event; once every job of the
running batch has, the batch stops at its next decoding step (`BatchAbandoned`), so the
model is free for the requests still waiting instead of finishing work nobody will read.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from maskvit.config import DecodingConfig
from maskvit.model.sampling import video_generators

MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes up to 64 bits; JSON-safe as an int


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
    abandoned: threading.Event = field(default_factory=threading.Event, compare=False, repr=False)

    @property
    def videos(self) -> int:
        return int(self.context.shape[0])


class BatchAbandoned(Exception):
    """Every request of a batch gave up; the batch stopped at a decoding step."""


class Engine:
    """Runs batches of `PredictJob`s through a `Predictor` (one `predict` call per batch)."""

    def __init__(self, predictor) -> None:
        self.predictor = predictor

    def run_batch(self, jobs: list[PredictJob]) -> list[np.ndarray]:
        """Predicted frames uint8 (B_i, N, H, W, 3) for each job, in order."""
        if not jobs:
            return []
        key = jobs[0].key
        if any(job.key != key for job in jobs):
            raise ValueError("a batch must hold jobs of one DecodeKey")
        p = self.predictor
        stop_check = p.transformer.register_forward_pre_hook(self._stop_if_abandoned(jobs))
        try:
            frames = p.predict(
                np.concatenate([job.context for job in jobs]),
                actions=None if jobs[0].actions is None else np.concatenate([job.actions for job in jobs]),
                goal_frame=np.concatenate([job.goal for job in jobs]) if key.goal else None,
                num_frames=key.num_frames, decoding=key.decoding,
                generator=row_generators([job.videos for job in jobs], [job.seed for job in jobs],
                                         p.device),
            )
        finally:
            stop_check.remove()
        out, start = [], 0
        for job in jobs:
            out.append(frames[start:start + job.videos])
            start += job.videos
        return out

    @staticmethod
    def _stop_if_abandoned(jobs: list[PredictJob]):
        """A forward pre-hook for the transformer (one call per decoding step) that ends
        this batch once all its jobs are abandoned; calls from other threads (someone else
        using the same predictor) pass untouched."""
        worker = threading.get_ident()

        def hook(module, args) -> None:
            if threading.get_ident() == worker and all(job.abandoned.is_set() for job in jobs):
                raise BatchAbandoned(f"all {len(jobs)} requests of the batch gave up")

        return hook


def fresh_seed() -> int:
    """A random seed for a request that gave none (reported back, so it can be replayed)."""
    return secrets.randbelow(2**53)  # exact in a JavaScript number too


def row_generators(sizes: Sequence[int], seeds: Sequence[int],
                   device: torch.device | str | None = None) -> list[torch.Generator]:
    """Per-row generators for a batch made of requests of `sizes[i]` videos each.

    A server batches unrelated requests, and a request's frames must not depend on its
    batch-mates: request i's videos get `video_generators(seeds[i], range(sizes[i]))`, the
    generators `Predictor.predict(..., seed=seeds[i])` gives them, so its frames equal
    `Predictor.predict` on that request alone, whatever else shares the batch and on any
    device. `device` is accepted for callers that pass the model's: the generators are CPU
    generators on any device, so that a seed gives the same numbers on a GPU as on the CPU.
    """
    if len(sizes) != len(seeds):
        raise ValueError("one seed per request is needed")
    rows: list[torch.Generator] = []
    for size, seed in zip(sizes, seeds, strict=True):
        rows.extend(video_generators(int(seed), range(int(size))))
    return rows
