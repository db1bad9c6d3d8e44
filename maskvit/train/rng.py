"""Capture and restore every random number generator a training step touches.

Exact resume needs the python, numpy and torch (CPU and CUDA) global states plus the
engine's own generator (the one tasks use for dropout-like noise and augmentation).

The engine's generator lives on the training device, and its state is device-specific
(a CPU generator's Mersenne Twister state is 5056 bytes, a CUDA generator's seed and
offset 16): a checkpoint records which device type saved it, restores the states that
apply on the device resuming it, and re-seeds the engine's generator deterministically
from (run seed, rank, step) where the device type changed. The python, numpy and CPU
torch states apply everywhere; CUDA's global states are restored where CUDA is.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

import numpy as np
import torch

CPU_GENERATOR_STATE_BYTES = torch.Generator().get_state().numel()


def capture_rng(generator: torch.Generator) -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "generator": generator.get_state(),
        "generator_device": generator.device.type,
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def saved_generator_device(state: dict[str, Any]) -> str:
    """Device type whose generator saved `state["generator"]`. Checkpoints written before
    the device was recorded are told apart by the state's size (only the CPU's is 5056)."""
    if "generator_device" in state:
        return str(state["generator_device"])
    return "cpu" if state["generator"].numel() == CPU_GENERATOR_STATE_BYTES else "cuda"


def resume_seed(seed: int, rank: int, step: int) -> int:
    """A 63-bit seed for the engine's generator of `rank` resuming at `step` on another
    device type: a hash, so it repeats across resumptions and differs between ranks."""
    digest = hashlib.blake2b(f"engine:{seed}:{rank}:{step}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def restore_rng(state: dict[str, Any], generator: torch.Generator,
                reseed: int | None = None) -> list[str]:
    """Restore `state` (from `capture_rng`); returns notes on what could not be restored.

    Where the engine's generator was saved on another device type it is seeded with
    `reseed` (see `resume_seed`) instead; without `reseed` that is an error.
    """
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    notes: list[str] = []
    saved_on, here = saved_generator_device(state), generator.device.type
    if saved_on == here:
        generator.set_state(state["generator"])
    elif reseed is None:
        raise ValueError(f"the engine's generator was saved on {saved_on}, not {here}")
    else:
        generator.manual_seed(reseed)
        notes.append(f"checkpoint saved on {saved_on}, resumed on {here}: the engine's "
                     f"generator was re-seeded from (seed, rank, step), so its draws (dropout, "
                     f"augmentation) differ from an uninterrupted run (the data order and the "
                     f"transformer's masks do not)")
    cuda_states = state.get("cuda")
    if cuda_states and torch.cuda.is_available():
        count = min(len(cuda_states), torch.cuda.device_count())
        for index in range(count):
            torch.cuda.set_rng_state(cuda_states[index], index)
    return notes


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices) for this process."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
