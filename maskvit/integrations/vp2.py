"""A MaskViT model behind VP2's video-prediction-model contract.

VP2 (s-tian/vp2) plans with any object that has `num_context`, `base_prediction_modality`
and `__call__(batch, grad_enabled=False)`, where

    batch["video"]    float in [0, 1], (B, T_context, H, W, 3) (float64 from VP2's MPPI:
                      the observed context tiled over the samples)
    batch["actions"]  float in [−1, 1], (B, T_context − 1 + H, A): the actions between
                      the context frames, then one per predicted frame
    returns           {"rgb": float32 in [0, 1], (B, T_context − 1 + H, H_img, W_img, 3)}:
                      the context frames after the first, then the H predictions

That length is VP2's: its costs compare the output with a goal of T_context − 1 + H
frames, and its own interfaces return `context[:, 1:]` before the predictions. Other keys
of `batch` (e.g. "state_obs") are ignored. Frames of another size than the model's are
resized in and out.

VP2's planners sample actions in [−1, 1]; `action_scale` maps them to the model's units.
By default it is the model's own action bound per dimension where that is under 1 (the
push world's ±5 cm gives 0.05), else 1 (RoboDesk's actions are already in [−1, 1]).
Actions outside the model's bounds after scaling are a one-line error. MaskViT samples:
call i of an adapter seeded s draws from the stream SeedSequence([s, i]), and every video
of a call from its own stream below that (`Predictor.predict`'s per-video generators), so
no two calls, chunks or adapters share random numbers, and two adapters built with the
same seed give the same predictions for the same calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from maskvit.errors import UserError
from maskvit.inference import requests
from maskvit.inference.predictor import load_predictor

# How the request rules name VP2's batch in their messages.
VP2_NAMES = requests.Names(context="batch['video'] context frames",
                           num_frames="batch['actions'] steps to predict",
                           actions="batch['actions'] × action_scale")


class MaskViTVP2Model:
    """VP2 video model: `model(batch) -> {"rgb": predictions}` (see module docstring)."""

    base_prediction_modality = "rgb"

    def __init__(self, model: str | Path | None = None, *, predictor: Any = None,
                 planning_modalities: tuple[str, ...] = ("rgb",), max_batch_size: int = 64,
                 action_scale: float | list[float] | None = None, seed: int = 0, steps: int | None = None,
                 device: str = "cpu", precision: str = "fp32") -> None:
        """`model`: a run or bundle directory (default: the shipped push64 model), or pass
        a loaded `predictor`. Decodes with the config's `plan.decoding`; `steps` replaces its
        steps."""
        if predictor is None:
            predictor = load_predictor(model, device=device, precision=precision)
        unsupported = set(planning_modalities) - {"rgb"}
        if unsupported:
            raise UserError(f"MaskViT predicts rgb only; cannot plan on {sorted(unsupported)}")
        if max_batch_size < 1:
            raise UserError(f"max_batch_size must be at least 1, got {max_batch_size}")
        self.predictor = predictor
        self.planning_modalities = tuple(planning_modalities)
        self.max_batch_size = max_batch_size
        self.seed = int(seed)
        self.calls = 0
        config = predictor.config
        self.num_context = config.eval.context_frames
        self.decoding = requests.decoding_with(config.plan.decoding, {"steps": steps} if steps else {},
                                               "steps")
        self.action_low, self.action_high = predictor.spec.bounds
        self.action_scale = self._action_scale(action_scale)

    def _action_scale(self, given: float | list[float] | None) -> np.ndarray:
        """Per-dimension factors from VP2's [−1, 1] to the model's units (see module docstring)."""
        if given is None:
            return np.minimum(1.0, np.maximum(np.abs(self.action_low), np.abs(self.action_high)))
        try:
            values = np.asarray(given, dtype=np.float64)
        except (TypeError, ValueError):
            values = np.array([np.nan])
        if (values.ndim > 1 or values.size not in (1, len(self.action_low))
                or not np.isfinite(values).all() or (values <= 0).any()):
            raise UserError(f"action_scale must be a positive number or {len(self.action_low)} "
                            f"positive numbers, got {given}")
        return np.broadcast_to(values, self.action_low.shape).copy()

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
        spec = self.predictor.spec
        horizon = requests.frames_to_predict(spec, tc, actions.shape[1] - (tc - 1), False, VP2_NAMES)
        scaled = actions.astype(np.float64) * self.action_scale
        clip = requests.request_actions(np.concatenate([scaled, np.zeros((b, 1, dim))], axis=1),
                                        spec, b, tc, horizon, VP2_NAMES)
        predicted = self.predictor.predict(
            frames, actions=clip, num_frames=horizon, decoding=self.decoding,
            seed=self.call_seed(self.calls), batch_size=self.max_batch_size)
        self.calls += 1
        rgb = np.asarray(predicted, dtype=np.float32) / 255.0
        if size is not None:
            rgb = _resize(rgb, size)
        given = np.asarray(video[:, -self.num_context:][:, 1:], dtype=np.float32)
        return {"rgb": np.concatenate([given, rgb], axis=1)}

    def call_seed(self, call: int) -> int:
        """The `Predictor.predict` seed of call `call`: its own stream, shared with no other
        call of this or another seed's adapter."""
        return int(np.random.SeedSequence([self.seed, call]).generate_state(1)[0])

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
