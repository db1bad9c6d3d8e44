"""Masked visual modeling (paper §3.2) as a `Task` for the training engine.

Each clip of token codes gets a random mask over its future frames (variable ratio
r ~ U[0.5, 1) by default), the transformer predicts every position, and the loss is
cross-entropy on the masked positions only. Logged: loss and masked-token accuracy.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from maskvit.config import TrainConfig, TransformerConfig
from maskvit.model import MaskViT, mask_for_training, masked_cross_entropy
from maskvit.train.task import Logs, StepContext, Task


class MaskedVideoTask(Task):
    """Trains `MaskViT` on batches `{"tokens": (B,T,h,w) int64, "actions": (B,T,A)}`."""

    def __init__(self, cfg: TransformerConfig, train_cfg: TrainConfig,
                 model: MaskViT | None = None) -> None:
        self.cfg = cfg
        self.mask_ratio = train_cfg.mask_ratio
        self.model = model if model is not None else MaskViT(cfg)

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def loss(self, phase: str, batch: dict[str, Any],
             ctx: StepContext) -> tuple[torch.Tensor, Logs]:
        tokens = batch["tokens"]  # (B, T, h, w)
        actions = batch.get("actions") if self.cfg.action_dim > 0 else None
        inputs, mask = mask_for_training(
            tokens, self.cfg.context_frames, self.mask_ratio,
            goal=self.cfg.goal_conditioned, generator=ctx.generator,
            mask_token_id=self.cfg.mask_token_id)
        logits = ctx.modules["model"](inputs, actions)  # (B, T, h, w, K)
        loss, accuracy = masked_cross_entropy(logits, tokens, mask)
        return loss, {"accuracy": accuracy, "mask_fraction": mask.float().mean()}

    def count_tokens(self, batch: dict[str, Any]) -> int:
        return int(batch["tokens"].numel())
