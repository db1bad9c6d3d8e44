"""Loading a trained tokenizer back from a `maskvit train-tokenizer` run directory."""

from __future__ import annotations

from pathlib import Path

import torch

from maskvit.errors import UserError
from maskvit.train.checkpoint import checkpoint_path, checkpoint_step, load_run

# The module name the tokenizer task checkpoints under (RUN/checkpoints/step_N/vqgan.*).
MODULE = "vqgan"


def load_vqgan(path: str | Path, map_location: str | torch.device = "cpu",
               step: int | None = None, use_ema: bool = True):
    """VQGAN (eval mode) from a run directory; its EMA weights when the run kept them."""
    from maskvit.tokenizer.vqgan import VQGAN

    config, weights, ema = load_run(path, module=MODULE, step=step)
    model = VQGAN(config.tokenizer)
    model.load_state_dict(ema if (use_ema and ema is not None) else weights)
    return model.to(map_location).eval()


def tokenizer_step(path: str | Path, step: int | None = None) -> int:
    """The exact checkpoint step `load_vqgan(path, step=step)` reads (None: the latest now).

    `maskvit tokenize` records it, so later stages load that checkpoint and no other.
    """
    run = Path(path)
    if not run.is_dir():
        raise UserError(f"run directory not found: {run}")
    return checkpoint_step(checkpoint_path(run, step))
