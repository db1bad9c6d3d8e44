"""The task interface: what a model brings to the one training engine.

The engine (`Trainer`) owns everything generic — devices, DDP, autocast, gradient
accumulation, clipping, learning-rate schedules, EMA, checkpoints, logs. A task owns
only the model-specific parts (`maskvit.tokenizer.vqgan_task.TokenizerTask` and
`maskvit.model.masked_video_task.MaskedVideoTask` are the two stages). To plug in a new one:

1. Subclass `Task` and build the modules in `__init__` (seed first if you care about
   identical initialisation; the engine moves them to the device and wraps them in DDP).
2. `modules()` returns the trainable/checkpointed modules by name, e.g.
   ``{"vqgan": vqgan, "discriminator": disc}``. Names become the weight file names
   (``RUN/checkpoints/step_N/vqgan.safetensors``) and `load_run(..., module=name)`.
3. `optimizers()` returns one `OptimizerSpec` per optimizer, in the order they step.
   Each spec names the modules it updates and, optionally, its own `TrainConfig`
   (lr, warm-up, cosine floor, Adam/AdamW, betas, weight decay, grad clip); `None`
   uses the run's TrainConfig. Batch size, steps, accumulation, precision, seeding and
   logging always come from the run's TrainConfig.
4. `loss(phase, batch, ctx)` is called once per optimizer ("phase" = the spec's name)
   and per micro-batch, under autocast. Return ``(loss, logs)`` — the engine runs
   ``(loss / grad_accum).backward()`` with DDP gradient sync only on the last
   micro-batch, clips and steps that optimizer — or return ``None`` to skip that
   optimizer for this step (e.g. the discriminator before ``disc_start``; every rank
   must decide the same way). All gradients are zeroed before each phase, so the
   generator phase may backpropagate through the discriminator freely. Call the
   modules through ``ctx.modules[name]`` (the DDP/compiled wrappers) so gradients are
   synchronised. ``ctx.scratch`` is a dict private to one micro-batch and shared by
   the phases of one step: the generator phase can leave ``scratch["fake"] =
   recon.detach()`` for the discriminator phase. Give a DDP-wrapped module one forward
   call per phase (concatenate real and fake before a discriminator).
5. Optional: `validation_step(batch, ctx)` (validation metrics; default: the first phase's
   logs), `count_tokens(batch)` (for tokens/s; default: batch size),
   `ema_modules()` (default: the first optimizer's modules) and
   `state_dict()/load_state_dict()` for task state that must survive a resume.

Randomness a step needs (masking!) should come from ``ctx.generator``: the engine
seeds it per rank and saves/restores it so resumed runs repeat exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from maskvit.config import TrainConfig

Logs = dict[str, "torch.Tensor | float"]


@dataclass
class OptimizerSpec:
    """One optimizer: its name (also the phase name), its modules, its settings."""

    name: str
    modules: list[str]
    config: TrainConfig | None = None  # None: the run's TrainConfig


@dataclass
class StepContext:
    """What the engine hands a task for one micro-batch."""

    step: int  # optimizer steps completed before this one
    modules: dict[str, nn.Module]  # call these (DDP/compiled wrappers while training)
    generator: torch.Generator  # engine-owned RNG (on the training device), checkpointed
    device: torch.device
    training: bool = True
    micro_batch: int = 0  # index within the step's accumulation
    rank: int = 0  # this process among world_size (per-sample RNG keys need the global index)
    world_size: int = 1
    scratch: dict[str, Any] = field(default_factory=dict)


class Task:
    """Base class for a trainable stage; see the module docstring for the contract."""

    def modules(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def optimizers(self) -> list[OptimizerSpec]:
        return [OptimizerSpec("model", list(self.modules()))]

    def loss(self, phase: str, batch: Any, ctx: StepContext) -> tuple[torch.Tensor, Logs] | None:
        raise NotImplementedError

    def validation_step(self, batch: Any, ctx: StepContext) -> Logs:
        out = self.loss(self.optimizers()[0].name, batch, ctx)
        if out is None:
            return {}
        loss, logs = out
        return {"loss": loss, **logs}

    def count_tokens(self, batch: Any) -> int:
        if isinstance(batch, dict):
            batch = next(iter(batch.values()))
        return int(batch.shape[0]) if isinstance(batch, torch.Tensor) else len(batch)

    def ema_modules(self) -> list[str]:
        return list(self.optimizers()[0].modules)

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass
