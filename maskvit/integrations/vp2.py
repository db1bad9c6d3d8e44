"""A MaskViT model behind VP2's video-prediction-model contract.

VP2 (s-tian/vp2) plans with any object that has `num_context`, `base_prediction_modality`
and `__call__(batch, grad_enabled=False)`, where

    batch["video"]    float in [0, 1], (B, T_context, H, W, 3)
    batch["actions"]  float, (B, T − 1, A): the T_context − 1 actions between the context
                      frames, then one per predicted frame (T = T_context + T_pred)
    returns           {"rgb": float32 in [0, 1], (B, T_pred, H, W, 3)}  (numpy)

Other keys of `batch` (e.g. "state_obs") are ignored. Frames of another size than the
model's are resized in and out. VP2's planners sample actions in [−1, 1]; `action_scale`
maps them to the model's units (0.05 for the push world's ±5 cm), and actions outside
the model's bounds after scaling are a one-line error. MaskViT samples, so each call
draws from a seed: call i uses `seed + i`, as `maskvit plan` does, so two adapters built
with the same seed give the same predictions for the same calls.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from maskvit.errors import UserError


class MaskViTVP2Model:
    """VP2 video model: `model(batch) -> {"rgb": predictions}` (see module docstring)."""

    base_prediction_modality = "rgb"

    def __init__(self, model: str | Path | None = None, *, predictor: Any = None,
                 planning_modalities: tuple[str, ...] = ("rgb",), max_batch_size: int = 64,
                 action_scale: float = 1.0, seed: int = 0, steps: int | None = None,
                 device: str = "cpu", precision: str = "fp32") -> None:
        """`model`: a run or bundle directory (default: the shipped push64 model), or pass
        a loaded `predictor`. Decodes with the config's `plan.decoding`; `steps` replaces its
        steps."""
        if predictor is None:
            from maskvit.predictor import Predictor
            from maskvit.pretrained import default_model

            predictor = Predictor.from_run(model or default_model(), device=device, precision=precision)
        unsupported = set(planning_modalities) - {"rgb"}
        if unsupported:
            raise UserError(f"MaskViT predicts rgb only; cannot plan on {sorted(unsupported)}")
        if max_batch_size < 1:
            raise UserError(f"max_batch_size must be at least 1, got {max_batch_size}")
        if not np.isfinite(action_scale) or action_scale <= 0:
            raise UserError(f"action_scale must be a positive number, got {action_scale}")
        self.predictor = predictor
        self.planning_modalities = tuple(planning_modalities)
        self.max_batch_size = max_batch_size
        self.action_scale = float(action_scale)
        self.seed = int(seed)
        self.calls = 0
        config = predictor.config
        self.num_context = config.eval.context_frames
        self.decoding = dataclasses.replace(config.plan.decoding,
                                            steps=steps or config.plan.decoding.steps)
        from maskvit.serve.spec import action_bounds

        self.action_low, self.action_high = action_bounds(config.data.dataset,
                                                          config.transformer.action_dim)

    @property
    def device(self):
        return self.predictor.device

    def __call__(self, batch: dict[str, Any], grad_enabled: bool = False) -> dict[str, np.ndarray]:
        if grad_enabled:
            raise UserError("MaskViT decodes by sampling discrete tokens: it has no gradients "
                            "for gradient-based planners; use CEM or MPPI")
        video = _numpy(batch.get("video"), "video")
        actions = _numpy(batch.get("actions"), "actions")
        frames, size = self._frames(video)
        b, tc = frames.shape[:2]
        dim = self.predictor.config.transformer.action_dim
        if actions.ndim != 3 or actions.shape[0] != b or actions.shape[2] != dim:
            raise UserError(f"batch['actions'] must be (B, T - 1, {dim}) with B = {b}; got {actions.shape}")
        horizon = actions.shape[1] - (tc - 1)
        room = self.predictor.config.transformer.num_frames - tc
        if not 1 <= horizon <= room:
            raise UserError(f"batch['actions'] has {actions.shape[1]} steps: {tc - 1} between the "
                            f"context frames and 1 to {room} to predict are possible")
        scaled = actions.astype(np.float64) * self.action_scale
        if not np.isfinite(scaled).all():
            raise UserError("batch['actions'] must be finite")
        if (scaled < self.action_low - 1e-6).any() or (scaled > self.action_high + 1e-6).any():
            raise UserError(f"batch['actions'] × action_scale leave the model's bounds "
                            f"[{self.action_low.tolist()}, {self.action_high.tolist()}]; "
                            "set action_scale so VP2's [-1, 1] maps inside them")
        clip = np.concatenate([scaled, np.zeros((b, 1, dim))], axis=1).astype(np.float32)
        predicted = self.predictor.predict(
            frames, actions=clip, num_frames=horizon, decoding=self.decoding,
            seed=self.seed + self.calls,
            batch_size=self.max_batch_size)
        self.calls += 1
        rgb = np.asarray(predicted, dtype=np.float32) / 255.0
        if size is not None:
            rgb = _resize(rgb, size)
        return {"rgb": rgb}

    def reseed(self, seed: int) -> None:
        """Start the per-call seeds again from `seed`."""
        self.seed, self.calls = int(seed), 0

    def close(self) -> None:
        """Nothing to release (VP2 calls this when it is done)."""

    def _frames(self, video: np.ndarray) -> tuple[np.ndarray, tuple[int, int] | None]:
        """uint8 context frames at the model's size (the last `num_context` given), and the
        caller's size when it differs (predictions are resized back to it)."""
        if video.ndim != 5 or video.shape[-1] != 3 or 0 in video.shape:
            raise UserError(f"batch['video'] must be (B, T, H, W, 3); got {video.shape}")
        if not np.isfinite(video).all() or video.min() < 0 or video.max() > 1:
            raise UserError("batch['video'] must hold finite values in [0, 1]")
        if video.shape[1] < self.num_context:
            raise UserError(f"batch['video'] has {video.shape[1]} frames; this model needs "
                            f"{self.num_context} context frames")
        frames = np.rint(video[:, -self.num_context:] * 255.0).astype(np.uint8)
        r = self.predictor.resolution
        size = tuple(video.shape[2:4])
        if size == (r, r):
            return frames, None
        return _resize(frames, (r, r)), size


def _numpy(value: Any, name: str) -> np.ndarray:
    if value is None:
        raise UserError(f"batch[{name!r}] is missing")
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _resize(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize (B, T, H, W, 3) frames (uint8 or float in [0, 1]) to `size` = (H', W')."""
    from PIL import Image

    floating = frames.dtype != np.uint8
    data = np.rint(frames * 255.0).astype(np.uint8) if floating else frames
    out = np.stack([np.stack([np.asarray(Image.fromarray(f).resize((size[1], size[0]), Image.Resampling.LANCZOS))
                              for f in video]) for video in data])
    return out.astype(np.float32) / 255.0 if floating else out
