"""The dynamic batcher on its own: batch bounds, keys, waiting, cancellation, draining.

Every test orders its steps by events (a batch reaching the model, a result); waits that
would be long on purpose (an hour) are what a broken batcher would get stuck in, and the
result timeouts only bound how long a failure takes.
"""

import threading

import pytest

from maskvit.serve.batcher import Closed, DynamicBatcher

HOUR = 3600.0


class Recorder:
    """A run_batch that records each batch's payloads (and can be held up at `gate`)."""

    def __init__(self):
        self.batches = []
        self.entered = threading.Event()  # a batch has reached the model
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, payloads):
        self.entered.set()
        assert self.gate.wait(60), "the test never opened the gate"
        self.batches.append(list(payloads))
        return [p * 10 for p in payloads]


def test_jobs_arriving_together_share_bounded_batches_of_one_key():
    run = Recorder()
    run.gate.clear()  # hold the first batch so the rest queue up behind it
    batcher = DynamicBatcher(run, max_batch=4, max_wait=0.0)
    first = batcher.submit("a", 1, 0)
    assert run.entered.wait(60)  # the first batch is on the model; the rest queue behind it
    futures = [batcher.submit(key, size, value) for key, size, value in
               [("a", 2, 1), ("b", 1, 2), ("a", 2, 3), ("a", 1, 4), ("b", 1, 5), ("a", 9, 6)]]
    run.gate.set()
    assert [f.result(60).value for f in [first, *futures]] == [0, 10, 20, 30, 40, 50, 60]
    batcher.close()
    # FIFO by the oldest job's key; at most 4 videos unless one job alone is bigger
    assert run.batches == [[0], [1, 3], [2, 5], [4], [6]]
    result = futures[0].result()
    assert (result.batch_videos, result.batch_jobs) == (4, 2) and result.model_s >= 0
    assert batcher.stats.largest == 9 and batcher.stats.jobs == 7


def test_the_first_job_waits_for_company_and_a_full_batch_does_not():
    run = Recorder()
    batcher = DynamicBatcher(run, max_batch=2, max_wait=HOUR)  # only a full batch runs now
    a = batcher.submit("k", 1, 1)
    b = batcher.submit("k", 1, 2)  # the company: the batch is full and runs at once
    assert a.result(60).batch_jobs == 2 and b.result(60).batch_jobs == 2
    assert b.result().queue_s <= a.result().queue_s  # each job's own wait
    assert batcher.submit("k", 2, 3).result(60).batch_jobs == 1  # full alone: no hour's wait
    batcher.close()
    assert run.batches == [[1, 2], [3]]


def test_a_lone_job_runs_once_max_wait_has_passed():
    run = Recorder()
    batcher = DynamicBatcher(run, max_batch=8, max_wait=0.01)
    assert batcher.submit("k", 1, 1).result(60).batch_jobs == 1  # nobody came: it ran alone
    batcher.close()
    assert run.batches == [[1]]


def test_cancelled_jobs_are_dropped_and_close_drains_the_queue():
    run = Recorder()
    run.gate.clear()
    batcher = DynamicBatcher(run, max_batch=1, max_wait=0.0)
    batcher.submit("k", 1, 1)
    assert run.entered.wait(60)  # job 1 is on the model; 2 and 3 queue
    cancelled = batcher.submit("k", 1, 2)
    kept = batcher.submit("k", 1, 3)
    assert cancelled.cancel()
    batcher.close(timeout=0)  # closed to new jobs now; the held batch is still running
    with pytest.raises(Closed):
        batcher.submit("k", 1, 4)
    run.gate.set()
    batcher.close()  # returns once the queue is drained and the thread has ended
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
        bad.result(60)
    assert good.result(60).value == "good"
    batcher.close()
