"""Plugging a trained MaskViT `Predictor` into the planner's `PredictFn` protocol.

The predictor takes one action per clip frame, `actions[t]` being the action taken after
frame t (the episode store's convention), so for Tc context frames and H predicted frames
it wants Tc + H actions: the Tc - 1 context actions, the H planned actions, and one for
the last predicted frame, which influences nothing that is predicted (zeros).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from maskvit.config import DecodingConfig
from maskvit.plan.planner import PredictFn


def clip_actions(context_actions: np.ndarray, future_actions: np.ndarray) -> np.ndarray:
    """(B, Tc-1, A) and (B, H, A) -> (B, Tc + H, A) per-frame actions, last one zeros."""
    pad = np.zeros((future_actions.shape[0], 1, future_actions.shape[2]))
    return np.concatenate([context_actions, future_actions, pad], axis=1).astype(np.float32)


def predictor_fn(predictor: Any, decoding: DecodingConfig, seed: int = 0) -> PredictFn:
    """A `PredictFn` calling `predictor.predict` with `decoding` (the config's
    `plan.decoding`); each call gets the next seed."""
    calls = itertools.count()

    def predict(context_frames, context_actions, future_actions) -> np.ndarray:
        frames = predictor.predict(
            np.ascontiguousarray(context_frames),
            clip_actions(context_actions, future_actions),
            num_frames=future_actions.shape[1],
            decoding=decoding,
            seed=seed + next(calls),
        )
        if hasattr(frames, "cpu"):  # a torch tensor
            frames = frames.cpu().numpy()
        return np.asarray(frames, dtype=np.uint8)

    return predict

