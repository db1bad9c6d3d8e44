"""The dynamic batcher on its own: batch bounds, keys, waiting, cancellation, draining."""

import threading
import time

import pytest

from maskvit.serve.batcher import Closed, DynamicBatcher


class Recorder:
    """A run_batch that records each batch's payloads (and can be held up)."""

    def __init__(self):
        self.batches = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, payloads):
        self.gate.wait(10)
        self.batches.append(list(payloads))
        return [p * 10 for p in payloads]


def test_jobs_arriving_together_share_bounded_batches_of_one_key():
    run = Recorder()
    run.gate.clear()  # hold the first batch so the rest queue up behind it
    batcher = DynamicBatcher(run, max_batch=4, max_wait=0.0)
    first = batcher.submit("a", 1, 0)
    time.sleep(0.1)
    futures = [batcher.submit(key, size, value) for key, size, value in
               [("a", 2, 1), ("b", 1, 2), ("a", 2, 3), ("a", 1, 4), ("b", 1, 5), ("a", 9, 6)]]
    run.gate.set()
    assert [f.result(10).value for f in [first, *futures]] == [0, 10, 20, 30, 40, 50, 60]
    batcher.close()
    # FIFO by the oldest job's key; at most 4 videos unless one job alone is bigger
    assert run.batches == [[0], [1, 3], [2, 5], [4], [6]]
    result = futures[0].result()
    assert (result.batch_videos, result.batch_jobs) == (4, 2) and result.model_s >= 0
    assert batcher.stats.largest == 9 and batcher.stats.jobs == 7


def test_the_first_job_waits_up_to_max_wait_for_company():
    run = Recorder()
    batcher = DynamicBatcher(run, max_batch=8, max_wait=0.3)
    a = batcher.submit("k", 1, 1)
    time.sleep(0.05)
    b = batcher.submit("k", 1, 2)
    assert a.result(5).batch_jobs == 2 and b.result(5).queue_s < a.result(5).queue_s
    started = time.monotonic()
    batcher.submit("k", 8, 3).result(5)  # a full batch does not wait
    assert time.monotonic() - started < 0.25
    batcher.close()
    assert run.batches == [[1, 2], [3]]


def test_cancelled_jobs_are_dropped_and_close_drains_the_queue():
    run = Recorder()
    run.gate.clear()
    batcher = DynamicBatcher(run, max_batch=1, max_wait=0.0)
    batcher.submit("k", 1, 1)
    time.sleep(0.1)
    cancelled = batcher.submit("k", 1, 2)
    kept = batcher.submit("k", 1, 3)
    assert cancelled.cancel()
    closer = threading.Thread(target=batcher.close)
    closer.start()
    with pytest.raises(Closed):
        batcher.submit("k", 1, 4)
    run.gate.set()
    closer.join(10)
    assert kept.result(0).value == 30 and run.batches == [[1], [3]]


def test_a_failing_batch_fails_its_jobs_only():
    calls = []

    def run(payloads):
        calls.append(payloads)
        if payloads == ["bad"]:
            raise ValueError("boom")
        return payloads

    batcher = DynamicBatcher(run, max_batch=1, max_wait=0.0)
    bad, good = batcher.submit("k", 1, "bad"), batcher.submit("k", 1, "good")
    with pytest.raises(ValueError, match="boom"):
        bad.result(5)
    assert good.result(5).value == "good"
    batcher.close()
