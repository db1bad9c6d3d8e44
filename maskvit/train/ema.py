"""Exponential moving average of weights, kept in fp32 beside the trained modules."""

from __future__ import annotations

import torch
from torch import nn


class EMA:
    """shadow ← decay · shadow + (1 − decay) · weight, after every optimizer step.

    Buffers (e.g. codebook statistics) are copied, not averaged.
    """

    def __init__(self, module: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.shadow = {k: v.detach().clone().float() if v.is_floating_point() else v.clone()
                       for k, v in module.state_dict().items()}
        self._param_names = {name for name, _ in module.named_parameters()}

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        for name, value in module.state_dict().items():
            shadow = self.shadow[name]
            if name in self._param_names and value.is_floating_point():
                shadow.lerp_(value.float(), 1.0 - self.decay)
            else:
                shadow.copy_(value)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = self.shadow.keys() - state.keys()
        if missing:
            raise KeyError(f"EMA state lacks {sorted(missing)[:3]}")
        for name, value in state.items():
            self.shadow[name].copy_(value)
