"""Predictor: tokenizer + transformer + iterative decoding behind one call.

    predictor = load_predictor("runs/push64-transformer")       # or Predictor.from_run
    frames = predictor.predict(context_frames, actions=actions, num_frames=10,
                               decoding=DecodingConfig(steps=8))

Frames in and out are uint8 (B, T, H, W, 3). Everything else (tokenising the context,
placing context/goal frames, decoding, detokenising) happens inside. The request is
checked by `maskvit.inference.requests`, the rules every caller shares.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from maskvit.config import Config, DecodingConfig
from maskvit.devices import enable_tf32, inference_batch, resolve_device, resolve_precision
from maskvit.errors import UserError
from maskvit.inference import requests
from maskvit.inference.spec import ModelSpec
from maskvit.model.decoding import generate
from maskvit.model.sampling import Generators, video_generators
from maskvit.model.transformer import MaskViT
from maskvit.pretrained import default_model
from maskvit.run_dir import (
    check_tokenizer,
    load_run,
    load_weights,
    tokenizer_run_of,
    tokenizer_step_of,
)
from maskvit.tokenizer.vqgan import load_vqgan


def _as_tensor(x: Any, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A tensor sharing `x`'s memory where it can; a read-only array (a broadcast view, say)
    is copied, as torch warns on tensors over memory it may not write."""
    if isinstance(x, torch.Tensor):
        t = x
    else:
        array = np.asarray(x)
        t = torch.from_numpy(array if array.flags.writeable else array.copy())
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

    @property
    def config(self) -> Config:
        return self._config

    @config.setter
    def config(self, config: Config) -> None:
        self._config = config
        self.spec = ModelSpec.from_config(config)  # what the request rules check against

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
        model_run = Path(model_run)
        if not model_run.is_dir():
            raise UserError(f"model run not found: {model_run} (a run directory of `maskvit train` or a bundle)")
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
    def latents(self, frames: Any) -> np.ndarray:
        """uint8 frames (..., H, W, 3) -> their code vectors, float32 (..., h, w, n_z)."""
        return self.tokenizer.embed(self.encode(frames)).cpu().numpy()

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
        decode_frames: Sequence[int] | None = None,
        output: str = "pixels",
    ) -> np.ndarray:
        """Predict `num_frames` frames after the context (default: the preset's, fewer when
        the clip is shorter; with a goal, the room left before it).

        context_frames: uint8 (B, Tc, H, W, 3). actions: float (B, Tc + num_frames, A) for
        an action-conditioned model (actions[t] leads from frame t to t + 1). goal_frame:
        uint8 (B, H, W, 3), placed in the clip's last slot. `decoding` defaults to the
        config's `eval.decoding`. `seed` gives video i its own generator seeded from
        (seed, i) (`video_generators`), so its frames do not depend on `batch_size` (default:
        the device's, `inference_batch`) nor on the device; `generator` (one for the batch,
        or one per video) replaces those, and
        `seed=None` without one draws from torch's global generator.
        `decode_frames` (indices into the predicted frames, e.g. `[-1]`) turns only those into
        pixels: all frames are still predicted as tokens, but the tokenizer's decoder, most of
        a planning call's time on a CPU, runs on those alone (same pixels as decoding all).
        `output="latents"` runs no decoder at all and returns the predicted frames' code
        vectors (the decoder's input), for costs that compare frames in latent space.
        Returns uint8 (B, num_frames, H, W, 3), or (B, len(decode_frames), H, W, 3); latents:
        float32 (B, frames, h, w, n_z).
        """
        if output not in ("pixels", "latents"):
            raise UserError(f"output must be 'pixels' or 'latents', got {output!r}")
        context = _as_tensor(context_frames)
        if context.dim() != 5:
            raise UserError(f"context frames must have shape (B, Tc, H, W, 3); got {tuple(context.shape)}")
        b, n_context = context.shape[:2]
        goal = goal_frame is not None
        num_frames = requests.frames_to_predict(self.spec, n_context, num_frames, goal)
        # Bounds are the server's and adapters' business; a store's own actions may leave them.
        action_array = requests.request_actions(actions, self.spec, b, n_context, num_frames, bounded=False)
        action_tensor = None if action_array is None else torch.from_numpy(action_array)
        if action_tensor is not None and goal:  # the goal frame's own action slot is unused
            action_tensor = torch.cat([action_tensor, action_tensor.new_zeros(b, 1, self.spec.action_dim)], 1)
        context_codes = self.encode(context)  # (B, Tc, h, w)
        goal_codes = self.encode(_as_tensor(goal_frame)) if goal else None
        if goal_codes is not None:
            requests.check_goal_count(goal_codes.shape[0], b)
        chunk = batch_size or inference_batch(self.device, b)
        codes = self._decode_in_chunks(context_codes, num_frames + goal, decoding or self.config.eval.decoding,
                                       action_tensor, goal_codes, chunk, seed, generator)
        codes = codes[:, n_context:n_context + num_frames]
        if decode_frames is not None:
            codes = codes[:, requests.frame_indices(decode_frames, num_frames)]
        if output == "latents":
            return self.tokenizer.embed(codes).cpu().numpy()
        return np.concatenate([self.decode(codes[i:i + chunk]) for i in range(0, b, chunk)])

    def _decode_in_chunks(self, context_codes: torch.Tensor, num_frames: int, decoding: DecodingConfig,
                          actions: torch.Tensor | None, goal_codes: torch.Tensor | None, chunk: int,
                          seed: int | None, generator: Generators) -> torch.Tensor:
        """Codes (B, Tc + num_frames, h, w), decoded `chunk` videos at a time."""
        b = context_codes.shape[0]
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
                    self.transformer, context_codes[sl], num_frames, decoding,
                    actions=None if actions is None else actions[sl].to(self.device),
                    goal_codes=None if goal_codes is None else goal_codes[sl],
                    generator=rows,
                )
            outputs.append(result.codes)
        return torch.cat(outputs)


def load_predictor(model: str | Path | None = None, tokenizer: str | Path | None = None,
                   device: str = "cpu", precision: str = "fp32",
                   overrides: list[str] | tuple[str, ...] = ()) -> Predictor:
    """The one way to load a model for inference: a transformer run or bundle directory
    (default: the shipped push64 reference model), its tokenizer (default: the one it was
    trained on), with `section.key=value` overrides applied to its config."""
    predictor = Predictor.from_run(model or default_model(), tokenizer, device=device,
                                   precision=precision)
    predictor.config = requests.config_with_flags(predictor.config, overrides)
    return predictor
