"""Split a list of independent jobs (planning episodes, evaluation videos) over processes.

Two ways to get several processes, one code path:

- `torchrun --nnodes M --nproc-per-node N -m maskvit ...` across machines: torchrun sets
  RANK / WORLD_SIZE / MASTER_ADDR and we join its process group (`join_torchrun`);
- `--workers N` on one machine: `run_local_workers` spawns N processes that form the same
  kind of process group on the loopback interface (gloo), so a local run is a small
  distributed run and is tested as one.

Jobs go round robin (`Shard.take`): job i to rank i mod world size, so a slow task family
spreads over the ranks. Results travel as JSON (`gather_json`), never pickled, and
`merge_round_robin` puts them back in job order: a sharded run's results equal a single
process's, job by job, as long as every job seeds its own randomness from its own identity
(not from how many jobs ran before it in the same process).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist

from maskvit.errors import UserError

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """This process's place among the processes sharing one job list."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def take(self, jobs: Sequence[T]) -> list[T]:
        """This rank's jobs: every world_size-th, starting at its rank."""
        return list(jobs[self.rank :: self.world_size])


def merge_round_robin(parts: Sequence[Sequence[T]]) -> list[T]:
    """Undo `Shard.take`: the ranks' result lists (in rank order) back in job order."""
    total = sum(len(part) for part in parts)
    merged: list[T] = []
    for index in range(total):
        rank, position = index % len(parts), index // len(parts)
        merged.append(parts[rank][position])
    return merged


def gather_json(obj: Any, shard: Shard) -> list[Any] | None:
    """Every rank's JSON-serialisable `obj`, in rank order, at rank 0 (None on the others).

    Sent as UTF-8 bytes in uint8 tensors (padded to the longest), so nothing is unpickled.
    """
    if not shard.distributed:
        return [obj]
    payload = torch.frombuffer(bytearray(json.dumps(obj).encode()), dtype=torch.uint8)
    sizes = [torch.zeros(1, dtype=torch.int64) for _ in range(shard.world_size)]
    dist.all_gather(sizes, torch.tensor([payload.numel()], dtype=torch.int64))
    longest = int(max(size.item() for size in sizes))
    padded = torch.zeros(longest, dtype=torch.uint8)
    padded[: payload.numel()] = payload
    received = [torch.zeros(longest, dtype=torch.uint8) for _ in range(shard.world_size)]
    dist.all_gather(received, padded)
    if not shard.is_main:
        return None
    return [json.loads(bytes(buf[: int(size.item())].tolist()).decode())
            for buf, size in zip(received, sizes, strict=True)]


def torchrun_shard() -> Shard | None:
    """The shard torchrun gave this process (its process group joined), or None outside torchrun."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return None
    if not dist.is_initialized():
        dist.init_process_group("gloo")  # results are small; the CPU backend works everywhere
    return Shard(rank=dist.get_rank(), world_size=dist.get_world_size())


@contextlib.contextmanager
def torchrun_session() -> Iterator[Shard | None]:
    """`torchrun_shard()` for the length of a job, the process group destroyed when it ends.

    A rank that exits with its gloo group alive can die of SIGABRT at interpreter shutdown
    (gloo's threads still hold tensors whose release needs the GIL): seen as a rank ending
    with exit code -6 after its work was done. Destroying the group first avoids that.
    """
    shard = torchrun_shard()
    try:
        yield shard
    finally:
        if shard is not None and dist.is_initialized():
            dist.destroy_process_group()


def check_workers(workers: int) -> int:
    """`--workers` as given, or a one-line error."""
    if workers < 1:
        raise UserError(f"--workers must be 1 or more, got {workers}")
    if workers > 1 and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UserError("--workers and torchrun do not mix: under torchrun each rank is one worker "
                        "(use --nproc-per-node for more processes per machine)")
    return workers


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker_main(rank: int, world_size: int, port: int, fn: Callable[..., Any], args: tuple) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        fn(Shard(rank=rank, world_size=world_size), *args)
    finally:
        dist.destroy_process_group()


def run_local_workers(fn: Callable[..., Any], workers: int, *args: Any) -> None:
    """Run `fn(shard, *args)` in `workers` spawned processes joined into one gloo group.

    `fn` and `args` must be importable/picklable by `spawn` (a module-level function and
    plain values); rank 0 writes whatever the job writes. A failing worker ends the job with
    the worker's own error (a UserError stays one line). Stopped itself (Ctrl-C, or SIGTERM
    as the CLI's Terminated), it stops the workers before it goes on: they would otherwise
    finish the job, and write its outputs, after the command said it was stopped.
    """
    import torch.multiprocessing as mp

    port = _free_port()
    context = mp.start_processes(_worker_main, args=(workers, port, fn, args), nprocs=workers,
                                 join=False, start_method="spawn")
    try:
        while not context.join():
            pass
    except mp.ProcessRaisedException as err:
        last = str(err).strip().splitlines()[-1] if str(err).strip() else "a worker failed"
        if "UserError" in last:
            raise UserError(last.split("UserError:", 1)[-1].strip()) from None
        raise
    except BaseException:
        _stop_workers(context.processes)
        raise


def _stop_workers(processes: Sequence[Any]) -> None:
    """Terminate the local workers still running and wait until they are gone."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join()


# -- numeric arrays (evaluation's per-video scores, features and frames)


def _gather_bytes(payload: bytes, shard: Shard) -> list[bytes] | None:
    """Every rank's `payload`, in rank order, at rank 0 (None on the others)."""
    sizes = [torch.zeros(1, dtype=torch.int64) for _ in range(shard.world_size)]
    dist.all_gather(sizes, torch.tensor([len(payload)], dtype=torch.int64))
    longest = max(1, int(max(size.item() for size in sizes)))  # gloo wants a non-empty buffer
    padded = torch.zeros(longest, dtype=torch.uint8)
    padded[: len(payload)] = torch.from_numpy(np.frombuffer(payload, dtype=np.uint8).copy())
    received = [torch.zeros(longest, dtype=torch.uint8) for _ in range(shard.world_size)]
    dist.gather(padded, received if shard.is_main else None, dst=0)
    if not shard.is_main:
        return None
    return [buf[: int(size.item())].numpy().tobytes() for buf, size in zip(received, sizes, strict=True)]


def gather_arrays(arrays: dict[str, np.ndarray], shard: Shard) -> list[dict[str, np.ndarray]] | None:
    """Every rank's named numeric arrays, in rank order, at rank 0 (None on the others).

    The arrays' raw bytes travel in one uint8 tensor per rank, described by a JSON header
    (name, dtype, shape): values arrive bit for bit and nothing is unpickled.
    """
    arrays = {name: np.ascontiguousarray(array) for name, array in arrays.items()}
    for name, array in arrays.items():
        if array.dtype.kind not in "biuf":
            raise TypeError(f"gather_arrays sends numbers; {name!r} is {array.dtype}")
    if not shard.distributed:
        return [arrays]
    header = [[name, array.dtype.str, list(array.shape)] for name, array in arrays.items()]
    headers = gather_json(header, shard)
    payloads = _gather_bytes(b"".join(array.tobytes() for array in arrays.values()), shard)
    if headers is None or payloads is None:
        return None
    return [_unpack_arrays(h, p) for h, p in zip(headers, payloads, strict=True)]


def _unpack_arrays(header: list, payload: bytes) -> dict[str, np.ndarray]:
    arrays, offset = {}, 0
    for name, dtype, shape in header:
        dtype = np.dtype(dtype)
        size = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
        arrays[name] = np.frombuffer(payload, dtype, count=size // dtype.itemsize,
                                     offset=offset).reshape(shape).copy()
        offset += size
    return arrays


def merge_arrays_round_robin(parts: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Undo `Shard.take` along the first axis of every named array: the ranks' parts (in
    rank order; a rank without jobs, or without rows of some array, may leave it out) back
    in job order."""
    names = list(dict.fromkeys(name for part in parts for name in part))
    merged = {}
    for name in names:
        rows = merge_round_robin([list(part[name]) if name in part else [] for part in parts])
        template = next(part[name] for part in parts if name in part)
        merged[name] = np.stack(rows) if rows else template[:0]
    return merged


def broadcast_json(obj: Any, shard: Shard) -> Any:
    """Rank 0's JSON-serialisable `obj` on every rank (what the others pass is ignored).

    For a decision only rank 0 can make (its output folder is usable, or the one-line
    error why not) that every rank must act on alike. UTF-8 bytes in uint8 tensors.
    """
    if not shard.distributed:
        return obj
    payload = json.dumps(obj).encode() if shard.is_main else b""
    size = torch.tensor([len(payload)], dtype=torch.int64)
    dist.broadcast(size, src=0)
    buffer = torch.zeros(int(size.item()), dtype=torch.uint8)
    if shard.is_main:
        buffer.copy_(torch.frombuffer(bytearray(payload), dtype=torch.uint8))
    dist.broadcast(buffer, src=0)
    return json.loads(buffer.numpy().tobytes().decode())
