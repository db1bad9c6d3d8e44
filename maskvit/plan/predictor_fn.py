"""Plugging a trained MaskViT `Predictor` into the planner's `PredictFn` protocol.

The predictor takes one action per clip frame, `actions[t]` being the action taken after
frame t (the episode store's convention), so for Tc context frames and H predicted frames
it wants Tc + H actions: the Tc - 1 context actions, the H planned actions, and one for
the last predicted frame, which influences nothing that is predicted (zeros).

Decoding seeds: call k decodes with seed `base + k`, where `base` is the `seed` given, or
the episode's own seed once `start_episode` names it. `maskvit plan` names it before every
episode (from the run's seed and the episode's task and instance), so what an episode
predicts does not depend on which episodes ran before it in the same process: a sharded
run plans every episode as a single process does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from maskvit.config import DecodingConfig


def clip_actions(context_actions: np.ndarray, future_actions: np.ndarray) -> np.ndarray:
    """(B, Tc-1, A) and (B, H, A) -> (B, Tc + H, A) per-frame actions, last one zeros."""
    pad = np.zeros((future_actions.shape[0], 1, future_actions.shape[2]))
    return np.concatenate([context_actions, future_actions, pad], axis=1).astype(np.float32)


class SeededPredictFn:
    """A `PredictFn` calling `predictor.predict` with `decoding`; call k since the last
    `start_episode(base)` (or since construction, with `seed`) decodes with seed base + k."""

    def __init__(self, predictor: Any, decoding: DecodingConfig, seed: int = 0):
        self.predictor = predictor
        self.decoding = decoding
        self.start_episode(seed)

    def start_episode(self, seed: int) -> None:
        """Count calls afresh from `seed` (an episode's own seed)."""
        self._base, self._calls = int(seed), 0

    decodes_subsets = True  # takes `decode_frames=`: the planner's costs that read a few frames ask for those
    predicts_latents = True  # takes `latents=True` and has `latents_of`: for the latent-space costs

    def __call__(self, context_frames, context_actions, future_actions, decode_frames=None,
                 latents: bool = False) -> np.ndarray:
        seed = self._base + self._calls
        self._calls += 1
        # Only what is asked for: any object with `predict` serves the pixel costs of all frames.
        extra: dict[str, Any] = {} if decode_frames is None else {"decode_frames": decode_frames}
        if latents:
            extra["output"] = "latents"
        frames = self.predictor.predict(
            np.ascontiguousarray(context_frames),
            clip_actions(context_actions, future_actions),
            num_frames=future_actions.shape[1],
            decoding=self.decoding,
            seed=seed,
            **extra,
        )
        if hasattr(frames, "cpu"):  # a torch tensor
            frames = frames.cpu().numpy()
        # latents: float code vectors (B, H, h, w, n_z), no decoder run
        return np.asarray(frames, dtype=np.float32 if latents else np.uint8)

    def latents_of(self, frames: np.ndarray) -> np.ndarray:
        """The code vectors of real frames (..., h, w, 3) uint8, e.g. the goal's."""
        return np.asarray(self.predictor.latents(np.ascontiguousarray(frames)))


def predictor_fn(predictor: Any, decoding: DecodingConfig, seed: int = 0) -> SeededPredictFn:
    """A `PredictFn` calling `predictor.predict` with `decoding` (the config's
    `plan.decoding`); each call gets the next seed, from `seed` until an episode names its own."""
    return SeededPredictFn(predictor, decoding, seed)
