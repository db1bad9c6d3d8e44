"""Masked visual modeling (paper §3.2) as a `Task` for the training engine.

Each clip of token codes gets a random mask over its future frames (variable ratio
r ~ U[0.5, 1) by default), the transformer runs on every position, its output head on
the masked ones only, and the loss is cross-entropy there. Logged: loss and masked-token
accuracy.

Training masks come from per-video generators keyed on (train.seed, step, the video's
index in the step's global batch), so 1 process × batch B, N processes × B/N and gradient
accumulation all mask the same videos the same way (and resumed runs repeat exactly).
The training loss is each micro-batch's share of the mean over the masked tokens of the
whole global batch, so the engine's averaging over micro-batches and processes gives that
mean exactly. Validation masks come from the engine's validation generator.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from maskvit.config import TrainConfig, TransformerConfig
from maskvit.devices import to_device
from maskvit.errors import UserError
from maskvit.model import MaskViT, masked_cross_entropy
from maskvit.model.masking import (
    Generators,
    changed_tokens,
    flat_positions,
    future_frame_mask,
    masked_count,
    sample_generators,
    training_mask,
)
from maskvit.train.task_protocol import Logs, StepContext, Task


def global_offset(ctx: StepContext, micro_batch_size: int) -> int:
    """Index, in the step's global batch, of this micro-batch's first video.

    Follows `GlobalBatchSampler`: the global batch is cut into world × accum equal
    micro-batches and process r takes micro-batches r, r + world, r + 2·world, ...
    """
    return (ctx.micro_batch * ctx.world_size + ctx.rank) * micro_batch_size


class MaskedVideoTask(Task):
    """Trains `MaskViT` on batches `{"tokens": (B,T,h,w) int64, "actions": (B,T,A)}`."""

    def __init__(self, cfg: TransformerConfig, train_cfg: TrainConfig,
                 model: MaskViT | None = None) -> None:
        self.cfg = cfg
        self.goal = cfg.goal_prob if cfg.goal_conditioned else 0.0  # P(a clip's goal is given)
        self.mask_ratio = train_cfg.mask_ratio
        self.seed = train_cfg.seed
        self.global_batch, self.grad_accum = train_cfg.batch_size, train_cfg.grad_accum
        self.changed_token_weight = train_cfg.changed_token_weight
        self.model = model if model is not None else MaskViT(cfg)

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def loss(self, phase: str, batch: dict[str, Any],
             ctx: StepContext) -> tuple[torch.Tensor, Logs]:
        tokens = batch["tokens"]  # (B, T, h, w)
        actions = batch.get("actions") if self.cfg.action_dim > 0 else None
        # The mask and its positions are made where its random numbers are drawn (the CPU
        # while training) and reach a GPU in one copy each, without a wait on the GPU.
        drawn = training_mask(tuple(tokens.shape), self.cfg.context_frames, self.mask_ratio,
                              self.goal, self.mask_generators(ctx, len(tokens)), tokens.device)
        mask = to_device(drawn, tokens.device)
        positions = to_device(flat_positions(drawn), tokens.device)
        inputs = tokens.masked_fill(mask, self.cfg.mask_token_id)
        # (M, K) at the masked positions only: the loss looks nowhere else.
        logits = ctx.modules["model"](inputs, actions, select=positions)
        normalizer = self.loss_normalizer(ctx, tokens) if ctx.training else None
        weights = None
        if ctx.training and self.changed_token_weight != 1.0:  # validation stays the plain mean
            weights = 1.0 + (self.changed_token_weight - 1.0) * changed_tokens(tokens).float()
        loss, accuracy = masked_cross_entropy(logits, tokens, positions, normalizer, weights)
        return loss, {"accuracy": accuracy, "mask_fraction": mask.float().mean()}

    def mask_generators(self, ctx: StepContext, batch_size: int) -> Generators:
        """Per-video generators while training (see module docstring); else the engine's."""
        if not ctx.training:
            return ctx.generator
        self.check_micro_batch(ctx, batch_size)
        first = global_offset(ctx, batch_size)
        return sample_generators(self.seed, ctx.step, range(first, first + batch_size))

    def check_micro_batch(self, ctx: StepContext, batch_size: int) -> None:
        """Global indices assume the engine's layout: world × accum equal micro-batches."""
        world = ctx.world_size
        if batch_size * world * self.grad_accum != self.global_batch:
            raise UserError(
                f"MaskedVideoTask got a micro-batch of {batch_size} clips; train.batch_size="
                f"{self.global_batch} over {world} process(es) × grad_accum {self.grad_accum} "
                f"makes micro-batches of {self.global_batch / (world * self.grad_accum):g}")

    def loss_normalizer(self, ctx: StepContext, tokens: torch.Tensor) -> float:
        """Divisor turning this micro-batch's summed loss into its share of the global mean.

        The engine averages the world × accum micro-batch losses, hence the factor
        micro / global on the masked-token count of the global batch.
        """
        t, h, w = tokens.shape[1:]
        n_future = int(future_frame_mask(t, self.cfg.context_frames).sum()) * h * w
        total = masked_count(self.seed, ctx.step, range(self.global_batch), self.mask_ratio,
                             n_future, self.goal, h * w)
        return max(total, 1) * len(tokens) / self.global_batch

    def count_tokens(self, batch: dict[str, Any]) -> int:
        return int(batch["tokens"].numel())
