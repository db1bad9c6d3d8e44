"""Stand-in tasks and datasets for the training-engine tests (tiny, deterministic).

`ToyTask` is a 2-layer regression net whose loss draws noise from the engine's
generator and (optionally) uses dropout, so exact resume has to restore both RNGs.
`ToyGANTask` has two optimizers, like the VQ-GAN tokenizer stage.
"""

from __future__ import annotations

import dataclasses
import os
import signal

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from maskvit.config import TrainConfig
from maskvit.train import OptimizerSpec, StepContext, Task


class ToyDataset(Dataset):
    """Item i is a fixed (x, y) pair with y a fixed linear function of x."""

    def __init__(self, n: int = 64, offset: int = 0) -> None:
        self.n, self.offset = n, offset
        self.w = torch.randn(6, 2, generator=torch.Generator().manual_seed(123))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        x = torch.randn(6, generator=torch.Generator().manual_seed(i + self.offset))
        return {"x": x, "y": x @ self.w, "index": torch.tensor(i)}


def toy_config(**changes) -> TrainConfig:
    base = dict(batch_size=8, lr=1e-2, steps=8, warmup_steps=2, optimizer="adamw",
                weight_decay=0.01, grad_clip=1.0, precision="fp32", log_every=1,
                val_every=0, checkpoint_every=1000, keep_checkpoints=2, seed=3)
    base.update(changes)
    return TrainConfig(**base)


class ToyTask(Task):
    def __init__(self, noise: float = 0.1, dropout: float = 0.0,
                 kill_at_step: int | None = None) -> None:
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(6, 16), nn.Dropout(dropout), nn.Tanh(),
                                 nn.Linear(16, 2))
        self.noise, self.kill_at_step = noise, kill_at_step
        self.seen: list[list[int]] = []  # indices of every micro-batch, in order

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.net}

    def loss(self, phase: str, batch, ctx: StepContext):
        if ctx.training:
            self.seen.append(batch["index"].tolist())
            if self.kill_at_step is not None and ctx.step == self.kill_at_step:
                os.kill(os.getpid(), signal.SIGTERM)  # as if the scheduler stopped the job
        x = batch["x"]
        if self.noise:
            x = x + self.noise * torch.randn(x.shape, generator=ctx.generator, device=x.device)
        pred = ctx.modules["model"](x)
        loss = F.mse_loss(pred.float(), batch["y"])
        return loss, {"abs_err": (pred.float() - batch["y"]).abs().mean()}


class ToyGANTask(Task):
    """Generator + discriminator, the discriminator joining at `disc_start`."""

    def __init__(self, cfg: TrainConfig, disc_start: int = 2, disc_lr: float = 5e-3) -> None:
        torch.manual_seed(0)
        self.gen = nn.Linear(6, 2)
        self.disc = nn.Linear(2, 1)
        self.disc_start = disc_start
        self.disc_cfg = dataclasses.replace(cfg, lr=disc_lr, warmup_steps=0)

    def modules(self) -> dict[str, nn.Module]:
        return {"gen": self.gen, "disc": self.disc}

    def optimizers(self) -> list[OptimizerSpec]:
        return [OptimizerSpec("gen", ["gen"]), OptimizerSpec("disc", ["disc"], self.disc_cfg)]

    def loss(self, phase: str, batch, ctx: StepContext):
        if phase == "gen":
            fake = ctx.modules["gen"](batch["x"])
            ctx.scratch["fake"] = fake.detach()
            loss = F.mse_loss(fake, batch["y"])
            if ctx.step >= self.disc_start:
                loss = loss - 0.1 * ctx.modules["disc"](fake).mean()
            return loss, {}
        if ctx.step < self.disc_start:
            return None
        both = torch.cat([batch["y"], ctx.scratch["fake"]])
        scores = ctx.modules["disc"](both)  # one forward for real and fake
        real, fake = scores.chunk(2)
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean(), {}


def test_toy_task_learns():
    """Sanity check of the stand-in itself: its loss falls under the engine."""
    from maskvit.train import Trainer

    task = ToyTask(noise=0.0)
    result = Trainer(task, toy_config(steps=40, lr=3e-2, log_every=40), ToyDataset(),
                     progress=False).fit()
    first = ToyTask(noise=0.0)
    with torch.no_grad():
        data = ToyDataset()
        x = torch.stack([data[i]["x"] for i in range(64)])
        y = torch.stack([data[i]["y"] for i in range(64)])
        before = F.mse_loss(first.net(x), y).item()
        after = F.mse_loss(task.net(x), y).item()
    assert result.step == 40
    assert after < 0.5 * before
