"""Dynamic batching: requests that arrive close together run as one batch on the model.

One worker thread owns the model. It waits for the first queued job, then up to
`max_wait` seconds for more jobs of the same key (the same clip layout and decoding
settings), and runs the oldest key's jobs, first come first served, as one batch of at
most `max_batch` videos (a single bigger job runs alone). Batching changes no result:
each job samples from its own generator (`maskvit.inference.batching`).

Jobs are plain `concurrent.futures.Future`s, so the asyncio side awaits them and a
request that gave up (timeout, client gone) cancels its future; a cancelled job that has
not started is dropped. `close()` finishes every queued job before the thread ends,
which is how a graceful shutdown completes in-flight requests.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Entry:
    key: Hashable
    size: int
    payload: Any
    future: Future
    enqueued: float = field(default_factory=time.monotonic)


@dataclass
class BatchStats:
    """Counters for /v1/health and the benchmark."""

    batches: int = 0
    jobs: int = 0
    videos: int = 0
    largest: int = 0


class Closed(RuntimeError):
    """The batcher is shutting down and takes no new jobs."""


class DynamicBatcher:
    """Queue + worker thread running `run_batch(payloads) -> results` (one per payload)."""

    def __init__(self, run_batch: Callable[[list[Any]], list[Any]], max_batch: int,
                 max_wait: float, name: str = "maskvit-batcher") -> None:
        if max_batch < 1 or max_wait < 0:
            raise ValueError("max_batch must be >= 1 and max_wait >= 0")
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.stats = BatchStats()
        self._queue: deque[_Entry] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ public

    def submit(self, key: Hashable, size: int, payload: Any) -> Future:
        """Queue one job of `size` videos; its future gets `run_batch`'s result for it."""
        future: Future = Future()
        with self._cond:
            if self._closed:
                raise Closed("the server is shutting down")
            self._queue.append(_Entry(key, size, payload, future))
            self._cond.notify_all()
        return future

    def queued(self) -> int:
        """Jobs waiting (not yet running)."""
        with self._cond:
            return len(self._queue)

    def close(self, timeout: float | None = None) -> None:
        """Take no new jobs, finish the queued ones, stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)

    # ------------------------------------------------------------------ worker

    def _take(self) -> list[_Entry] | None:
        """Block until a batch is due; None when closed and drained."""
        with self._cond:
            while True:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return None  # closed and empty
                first = self._queue[0]
                deadline = first.enqueued + self.max_wait
                while not self._closed:
                    if self._size_of(first.key) >= self.max_batch:
                        break
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                batch = self._pop_batch(self._queue[0].key)
                if batch:
                    return batch

    def _size_of(self, key: Hashable) -> int:
        return sum(e.size for e in self._queue if e.key == key and not e.future.cancelled())

    def _pop_batch(self, key: Hashable) -> list[_Entry]:
        """The oldest jobs of `key` up to max_batch videos (always at least one job)."""
        batch: list[_Entry] = []
        total = 0
        kept: deque[_Entry] = deque()
        for entry in self._queue:
            if entry.key == key and (not batch or total + entry.size <= self.max_batch):
                if entry.future.set_running_or_notify_cancel():
                    batch.append(entry)
                    total += entry.size
                continue  # a cancelled job is dropped here
            kept.append(entry)
        self._queue = kept
        return batch

    def _loop(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            started = time.monotonic()
            try:
                results = self.run_batch([e.payload for e in batch])
            except BaseException as err:  # noqa: BLE001 - handed to every waiting request
                for entry in batch:
                    entry.future.set_exception(err)
                continue
            model_s = time.monotonic() - started
            videos = sum(e.size for e in batch)
            self.stats.batches += 1
            self.stats.jobs += len(batch)
            self.stats.videos += videos
            self.stats.largest = max(self.stats.largest, videos)
            for entry, result in zip(batch, results, strict=True):
                entry.future.set_result(BatchResult(result, videos, len(batch), model_s,
                                                     started - entry.enqueued))


@dataclass
class BatchResult:
    """A job's result and the batch it ran in (reported to the client)."""

    value: Any
    batch_videos: int
    batch_jobs: int
    model_s: float  # time the whole batch spent on the model
    queue_s: float = 0.0  # time this job waited before its batch started
