"""Which torch device, and which precision, a command runs on.

Devices: `auto` is CUDA when present, else the CPU. Under torchrun each process takes
the GPU of its LOCAL_RANK for a plain `cuda`; `cuda:N` names one GPU, so it is accepted
only where one process per node runs (otherwise every rank would share GPU N: choose
the GPUs with CUDA_VISIBLE_DEVICES instead).

Precision: `auto` is bf16 where bf16 trains and predicts faster than fp32, fp32
elsewhere (`auto_precision` holds the measured rule).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

import torch

from maskvit.errors import UserError


def resolve_device(name: str, local_rank: int = 0, local_world_size: int = 1) -> torch.device:
    """'auto' → CUDA when present, else CPU; 'cuda' picks this process's local GPU
    (`local_rank`); 'cuda:N' is GPU N, refused when several processes share this node."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name != "cuda" and not name.startswith("cuda:"):
        raise UserError(f"--device {name!r}: choose auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise UserError(f"--device {name}: no CUDA GPU is available; use --device cpu")
    if name == "cuda":
        index = local_rank
    else:
        index = _gpu_index(name)
        if local_world_size > 1:
            raise UserError(f"--device {name} would put all {local_world_size} processes of "
                            f"this node on one GPU; under torchrun pass --device cuda (process "
                            f"i takes GPU LOCAL_RANK i) and choose GPUs with CUDA_VISIBLE_DEVICES")
    count = torch.cuda.device_count()
    if index >= count:
        raise UserError(f"--device {name}: this process needs GPU {index} but {count} "
                        f"{'is' if count == 1 else 'are'} visible; use fewer processes per "
                        f"node or another --device")
    return torch.device("cuda", index)


def _gpu_index(name: str) -> int:
    index = name.removeprefix("cuda:")
    if not index.isdigit():
        raise UserError(f"--device {name!r}: choose auto, cpu, cuda or cuda:N")
    return int(index)


def process_device(name: str, environ: Mapping[str, str] = os.environ) -> torch.device:
    """The device for this process: torchrun's LOCAL_RANK / LOCAL_WORLD_SIZE applied."""
    local_rank = int(environ.get("LOCAL_RANK", "0"))
    local_world_size = int(environ.get("LOCAL_WORLD_SIZE", "1"))
    return resolve_device(name, local_rank, local_world_size)


def enable_tf32(device: torch.device) -> None:
    """Let fp32 matrix products on a GPU use TF32 tensor cores (~8x the fp32 rate on
    Ampere and later, 10-bit mantissa products with fp32 sums). Nothing changes on a CPU."""
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")


# Videos per decoding forward on a CPU: the planner's chunk that push64's planning was timed
# with (benchmarks/RESULTS.md "Planning"); a GPU takes every video at once.
CPU_INFERENCE_BATCH = 64


def inference_batch(device: torch.device, videos: int) -> int:
    """How many of `videos` one decoding forward takes on `device`: all of them on a GPU
    (its memory is the limit, and each forward is a launch-bound sync), at most
    CPU_INFERENCE_BATCH on a CPU (activations that fit its caches)."""
    return videos if device.type == "cuda" else min(videos, CPU_INFERENCE_BATCH)


def to_device(tensor: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """`tensor` on `device`. A CPU tensor bound for a GPU is copied from pinned memory,
    so the copy is queued behind the GPU's work instead of waiting for it (a copy from
    ordinary memory synchronises the stream)."""
    device = torch.device(device)
    if tensor.device == device:
        return tensor
    if tensor.device.type == "cpu" and device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


# --------------------------------------------------------------------------- precision

PRECISIONS = ("auto", "fp32", "bf16")
AMX_FLAG = "amx_bf16"  # Linux's name for AMX's bf16 tile multiply


def cpu_flags(text: str) -> set[str]:
    """The CPU feature flags in /proc/cpuinfo ("flags : ...") or `lscpu` ("Flags: ..."),
    and the vendor ("vendor_id" / "Vendor ID") as one more entry, `vendor=<id>`."""
    flags: set[str] = set()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if sep and key == "flags":
            flags.update(value.split())
        elif sep and key in ("vendor_id", "vendor id") and value.strip():
            flags.add(f"vendor={value.strip()}")
    return flags


def read_cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """This machine's CPU flags, from /proc/cpuinfo or else `lscpu`; empty if neither."""
    try:
        return cpu_flags(Path(cpuinfo).read_text())
    except OSError:
        pass
    try:
        result = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return set()
    return cpu_flags(result.stdout)


def cpu_has_amx(flags: set[str] | None = None) -> bool:
    """Whether this CPU multiplies bf16 on AMX tiles, where bf16 matmuls run ~6-7x fp32.

    Needs the `amx_bf16` flag and, where torch can tell, torch's own check that the
    kernel lets this process use the tiles.
    """
    flags = read_cpu_flags() if flags is None else flags
    torch_check = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return AMX_FLAG in flags and (torch_check is None or bool(torch_check()))


def cpu_fast_bf16(flags: set[str] | None = None) -> str | None:
    """Why bf16 runs faster than fp32 on this CPU ("AMX", "avx512_bf16 on AMD"), or None.

    By measurement (benchmarks/RESULTS.md): AMX multiplies bf16 at 6.2x fp32; an AMD EPYC
    with avx512_bf16 (Zen 4) read a 415 GFLOP/s bf16 peak against 154-196 fp32 and trained
    push64 1.4-1.9x and bair64 2.2x faster in bf16; an Intel Xeon with avx512_bf16 but no
    AMX multiplied bf16 at half its fp32 rate (71 against 134 GFLOP/s), so it stays fp32.
    """
    flags = read_cpu_flags() if flags is None else flags
    if cpu_has_amx(flags):
        return "AMX"
    if "avx512_bf16" in flags and "vendor=AuthenticAMD" in flags:
        return "avx512_bf16 on AMD"
    return None


def auto_precision(device_type: str, fast_bf16: str | None, cuda_bf16: bool) -> tuple[str, str]:
    """What `auto` means on this hardware: (precision, the reason in a few words).

    bf16 where it was measured faster: a GPU with bf16 support (tensor cores), a CPU for
    which `cpu_fast_bf16` gives a reason; fp32 everywhere else.
    """
    if device_type == "cuda":
        return ("bf16", "GPU with bf16") if cuda_bf16 else ("fp32", "GPU without bf16")
    if device_type == "cpu" and fast_bf16:
        return "bf16", fast_bf16
    return "fp32", "no fast bf16" if device_type == "cpu" else f"{device_type} device"


def choose_precision(precision: str, device: torch.device) -> tuple[str, str]:
    """(fp32 or bf16, why) for a requested precision on `device`.

    'auto' follows `auto_precision`; an explicit 'bf16' on a GPU without bf16 is a
    one-line error rather than slow emulation or a failure mid-run.
    """
    if precision not in PRECISIONS:
        raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    if precision == "bf16" and device.type == "cuda" and not cuda_bf16:
        raise UserError(f"bf16 was requested but {device} has no bf16 support; use fp32 "
                        f"(--precision fp32 or --set train.precision=fp32) or auto")
    if precision != "auto":
        return precision, "requested"
    fast_bf16 = cpu_fast_bf16() if device.type == "cpu" else None
    return auto_precision(device.type, fast_bf16, cuda_bf16)


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' → bf16 on a GPU with bf16 support or a CPU where bf16 is faster, else fp32."""
    return choose_precision(precision, device)[0]
