"""Predictor: tokenizer + transformer + iterative decoding behind one call.

    predictor = Predictor.from_run("runs/push64-transformer")
    frames = predictor.predict(context_frames, actions=actions, num_frames=10)

Frames in and out are uint8 (B, T, H, W, 3). Everything else (tokenising the context,
placing context/goal frames, decoding, detokenising) happens inside.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from maskvit.config import Config, DecodingConfig
from maskvit.devices import enable_tf32, resolve_device, resolve_precision
from maskvit.errors import UserError
from maskvit.model.decoding import generate, with_settings
from maskvit.model.sampling import Generators, video_generators
from maskvit.model.transformer import MaskViT
from maskvit.run_dir import check_tokenizer, load_weights, tokenizer_run_of, tokenizer_step_of


def _as_tensor(x: Any, dtype: torch.dtype | None = None) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    return t if dtype is None else t.to(dtype)


class Predictor:
    """Predicts future frames of videos from context frames (and actions / a goal frame)."""

    def __init__(self, tokenizer: torch.nn.Module, transformer: MaskViT, config: Config,
                 device: str | torch.device = "cpu", precision: str = "fp32") -> None:
        # A bad or unavailable --device is a one-line UserError, by the engine's rules.
        self.device = resolve_device(device) if isinstance(device, str) else torch.device(device)
        enable_tf32(self.device)  # fp32 products on a GPU's tensor cores
        precision = resolve_precision(precision, self.device)  # "auto": bf16 only where it pays
        self.tokenizer = tokenizer.to(self.device).eval()
        self.transformer = transformer.to(self.device).eval()
        self.config = config
        self.precision = precision

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_run(cls, model_run: str | Path, tokenizer_run: str | Path | None = None,
                 device: str | torch.device = "cpu", precision: str = "fp32",
                 use_ema: bool = True) -> Predictor:
        """Load a transformer run (and its tokenizer run) trained with `maskvit train`.

        The tokenizer is the exact checkpoint that made the run's tokens (`sources.json`),
        not merely its run's latest; a one-line error when it is gone or differs.

        `model_run` may also be a bundle directory holding `transformer/` and `tokenizer/`
        runs (the layout of the shipped reference model).
        """
        from maskvit.run_dir import load_run
        from maskvit.tokenizer.vqgan import load_vqgan

        model_run = Path(model_run)
        if not model_run.is_dir():
            raise UserError(f"model run directory not found: {model_run}")
        if (model_run / "transformer").is_dir() and (model_run / "tokenizer").is_dir():
            tokenizer_run = tokenizer_run or model_run / "tokenizer"
            model_run = model_run / "transformer"
        tokenizer_run = Path(tokenizer_run) if tokenizer_run else tokenizer_run_of(model_run)
        config, weights, ema = load_run(model_run, module="model")
        transformer = MaskViT(config.transformer)
        load_weights(transformer, ema if (use_ema and ema is not None) else weights, model_run,
                     config, "model")
        tokenizer = load_vqgan(tokenizer_run, map_location="cpu",
                               step=tokenizer_step_of(model_run, tokenizer_run))
        check_tokenizer(model_run, tokenizer_run, tokenizer)
        if tuple(tokenizer.token_grid) != (config.transformer.tokens_h, config.transformer.tokens_w):
            raise UserError(f"tokenizer {tokenizer_run} makes {tokenizer.token_grid} token grids "
                            f"but the transformer expects {(config.transformer.tokens_h, config.transformer.tokens_w)}")
        return cls(tokenizer, transformer, config, device=device, precision=precision)

    # --------------------------------------------------------------- prediction

    @property
    def resolution(self) -> int:
        return self.config.tokenizer.resolution

    def _autocast(self):
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    @torch.no_grad()
    def encode(self, frames: Any) -> torch.Tensor:
        """uint8 frames (..., H, W, 3) -> codes (..., h, w) int64."""
        frames = _as_tensor(frames)
        r = self.resolution
        if frames.dtype != torch.uint8 or tuple(frames.shape[-3:]) != (r, r, 3):
            raise UserError(f"frames must be uint8 of shape (..., {r}, {r}, 3); got "
                            f"{frames.dtype} {tuple(frames.shape)}")
        with self._autocast():
            return self.tokenizer.encode(frames.to(self.device))

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> np.ndarray:
        """codes (..., h, w) -> uint8 frames (..., H, W, 3) as numpy."""
        with self._autocast():
            return self.tokenizer.decode(codes.to(self.device)).cpu().numpy()

    @torch.no_grad()
    def predict(
        self,
        context_frames: Any,
        actions: Any = None,
        goal_frame: Any = None,
        num_frames: int | None = None,
        decoding: DecodingConfig | None = None,
        seed: int | None = 0,
        batch_size: int | None = None,
        generator: Generators = None,
        **settings: Any,
    ) -> np.ndarray:
        """Predict `num_frames` frames after the context.

        context_frames: uint8 (B, Tc, H, W, 3). actions: float (B, Tc + num_frames, A) for
        an action-conditioned model (actions[t] leads from frame t to t + 1). goal_frame:
        uint8 (B, H, W, 3), placed after the predicted frames. `decoding` defaults to the
        config's `eval.decoding`; `settings` (steps=, temperature=, ...) replace single
        fields of it, for callers of the earlier API. `seed` gives video i its own generator
        seeded from (seed, i) (`video_generators`), so its frames do not depend on
        `batch_size` nor on the device; `generator` (one for the batch, or one per video)
        replaces those, and `seed=None` without one draws from torch's global generator.
        Returns uint8 (B, num_frames, H, W, 3).
        """
        ev, tc = self.config.eval, self.config.transformer
        decoding = with_settings(decoding or ev.decoding, **settings)
        context = _as_tensor(context_frames)
        if context.dim() != 5:
            raise UserError(f"context frames must have shape (B, Tc, H, W, 3); got {tuple(context.shape)}")
        b, n_context = context.shape[:2]
        num_frames = num_frames if num_frames is not None else ev.predicted_frames
        total = n_context + num_frames + (goal_frame is not None)
        if goal_frame is not None and not tc.goal_conditioned:
            raise UserError("this model was trained without goal frames "
                            "(transformer.goal_conditioned is false); predict without --goal")
        if goal_frame is not None and total != tc.num_frames:
            # The goal sits in the clip's last slot, where training put it.
            raise UserError(f"with a goal frame, context + predicted frames must fill the "
                            f"model's {tc.num_frames}-frame clip less one: predict "
                            f"{tc.num_frames - 1 - n_context} frames from {n_context} context "
                            f"frames (got {num_frames})")
        if total > tc.num_frames:
            raise UserError(f"{n_context} context + {num_frames} predicted"
                            f"{' + 1 goal' if goal_frame is not None else ''} frames exceed the "
                            f"model's {tc.num_frames}-frame clips")
        if tc.action_dim and actions is None:
            raise UserError(f"this model is action-conditioned: pass actions of shape "
                            f"(B, {n_context + num_frames}, {tc.action_dim})")
        action_tensor = None
        if actions is not None:
            action_tensor = _as_tensor(actions, torch.float32)
            expected = (b, n_context + num_frames, tc.action_dim)
            if tuple(action_tensor.shape) != expected:
                raise UserError(f"actions must have shape {expected}; got {tuple(action_tensor.shape)}")
            if goal_frame is not None:  # the goal frame's own action slot is unused
                action_tensor = torch.cat([action_tensor, action_tensor.new_zeros(b, 1, tc.action_dim)], 1)
        context_codes = self.encode(context)  # (B, Tc, h, w)
        goal_codes = self.encode(_as_tensor(goal_frame)) if goal_frame is not None else None
        if goal_codes is not None and tuple(goal_codes.shape[:1]) != (b,):
            raise UserError(f"goal frames must have shape ({b}, H, W, 3)")
        chunk = batch_size or b
        outputs = []
        for start in range(0, b, chunk):
            sl = slice(start, start + chunk)
            if generator is None and seed is not None:
                rows: Generators = video_generators(seed, range(b)[sl])
            elif generator is None or isinstance(generator, torch.Generator):
                rows = generator  # one for the batch: it draws on its own device
            else:
                rows = generator[sl]
            with self._autocast():
                result = generate(
                    self.transformer, context_codes[sl], num_frames + (goal_codes is not None),
                    decoding,
                    actions=None if action_tensor is None else action_tensor[sl].to(self.device),
                    goal_codes=None if goal_codes is None else goal_codes[sl],
                    generator=rows,
                )
            outputs.append(result.codes[:, n_context:n_context + num_frames])
        return self.decode(torch.cat(outputs))
