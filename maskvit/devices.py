"""Which torch device (and, for inference, which precision) a command runs on."""

from __future__ import annotations

from pathlib import Path

import torch

from maskvit.errors import UserError


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """'auto' → CUDA when present, else CPU; 'cuda' picks this process's local GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {name}: no CUDA GPU is available; use --device cpu")
        if name == "cuda":
            return torch.device("cuda", local_rank)
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise UserError(f"--device {name!r}: choose auto, cpu, cuda or cuda:N")
    return torch.device(name)


PRECISIONS = ("auto", "fp32", "bf16")


def cpu_has_amx(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether this CPU has AMX bf16 tiles (Linux `amx_bf16` flag), where bf16 matmuls run
    several times faster than fp32; without AMX, bf16 can be slower (benchmarks/RESULTS.md)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return False
    return any(line.startswith("flags") and "amx_bf16" in line.split() for line in text.splitlines())


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' → bf16 on a GPU with bf16 support or a CPU with AMX, else fp32."""
    if precision not in PRECISIONS:
        raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and cpu_has_amx() else "fp32"
