"""Everything one running server holds (model, batcher, plan workers, admission count), and
how a plan runs on them.

Created by the app's lifespan and closed by it: `close()` lets queued predictions and
running plans finish (uvicorn has already waited for the requests in flight), then stops
the batcher thread and the simulator sessions.

/v1/plan: CEM through the served model, its predictions batched with everyone else's. A
plan runs the ordinary `ModelPlanner` in a plan worker thread (`run_plan`). Its `PredictFn`
does not call the model itself: it queues each chunk of sampled action sequences with the
batcher, like any /v1/predict request, and waits. So concurrent plans and predictions share
batches, and a plan equals `ModelPlanner` with `maskvit.plan.predictor_fn.predictor_fn` on
the same inputs and seed (the CEM rng is seeded with the seed; call i of the predictor uses
seed + i, as each episode of `maskvit plan` does from its own seed). A timed-out or abandoned plan stops at its next chunk,
and a chunk it is running stops at its next decoding step (`PredictJob.abandoned`).
"""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maskvit.inference.batching import DecodeKey, Engine, PredictJob
from maskvit.inference.spec import ModelSpec
from maskvit.plan.planner import ModelPlanner, Plan
from maskvit.plan.predictor_fn import clip_actions
from maskvit.serve.batcher import BatchResult, DynamicBatcher
from maskvit.serve.refusals import Busy
from maskvit.serve.sessions import SimSessions
from maskvit.serve.settings import ServeSettings
from maskvit.serve.validate import PlanJob


class ServerState:
    """The model behind the API and the bookkeeping around it."""

    def __init__(self, predictor, settings: ServeSettings, model_name: str | Path) -> None:
        self.predictor = predictor
        self.settings = settings
        # /v1/info names the model by its folder, not its path: where the server keeps its
        # files is nobody's business but the operator's.
        self.spec = ModelSpec.from_config(predictor.config, Path(model_name).name or str(model_name))
        self.engine = Engine(predictor)
        self.batcher = DynamicBatcher(self.engine.run_batch, settings.max_batch,
                                      settings.max_wait_ms / 1000.0)
        self.plan_pool = ThreadPoolExecutor(settings.plan_workers, thread_name_prefix="maskvit-plan")
        self.sessions = (SimSessions.for_model(predictor.config, settings.max_sim_sessions)
                         if settings.playground else None)
        self.in_flight = 0
        self.started = time.monotonic()
        self.stopping = False

    def submit(self, job: PredictJob):
        """Queue a prediction (a request's or one chunk of a plan's)."""
        return self.batcher.submit(job.key, job.videos, job)

    def admit(self) -> None:
        """Count a request in, or answer 503 when `queue_limit` are already in."""
        limit = self.settings.queue_limit
        if self.in_flight >= limit:
            raise Busy(f"server busy: {self.in_flight} requests queued or running (limit {limit}); "
                       "retry shortly", headers={"Retry-After": "1"})
        self.in_flight += 1

    def release(self) -> None:
        self.in_flight -= 1

    def close(self) -> None:
        self.stopping = True
        self.plan_pool.shutdown(wait=True)
        self.batcher.close()
        if self.sessions is not None:
            self.sessions.close_all()


# ---------------------------------------------------------------- plans

class PlanAbandoned(Exception):
    """The request gave up (timeout or shutdown); the plan stops at its next chunk."""


@dataclass
class PlanOutcome:
    """The chosen plan and what its model calls cost (filled in as the calls return)."""

    plan: Plan | None = None
    model_calls: int = 0
    queue_s: float = 0.0
    model_s: float = 0.0
    batch_videos: int = 0  # the largest batch one of its calls ran in
    batch_requests: int = 0


def run_plan(job: PlanJob, submit, stop: threading.Event, poll_s: float = 0.05) -> PlanOutcome:
    """Plan `job`; `submit(PredictJob) -> Future[BatchResult]` queues a prediction."""
    cfg = job.config
    tc = len(job.context)
    seeds = itertools.count(job.seed)
    outcome = PlanOutcome()

    def predict(context_frames, context_actions, future_actions) -> np.ndarray:
        if stop.is_set():
            raise PlanAbandoned()
        key = DecodeKey(context_frames=tc, num_frames=future_actions.shape[1], goal=False,
                        decoding=cfg.decoding)
        request = PredictJob(np.ascontiguousarray(context_frames),
                             clip_actions(context_actions, future_actions), None, next(seeds), key,
                             abandoned=stop)  # a plan that gives up stops its running chunk too
        result = _wait(submit(request), stop, poll_s)
        outcome.model_calls += 1
        outcome.model_s += result.model_s
        outcome.queue_s += result.queue_s
        if result.batch_videos >= outcome.batch_videos:
            outcome.batch_videos, outcome.batch_requests = result.batch_videos, result.batch_jobs
        return result.value

    planner = ModelPlanner(predict, cfg, job.low, job.high, context=tc)
    outcome.plan = planner.plan(job.context, job.past, job.goal, np.random.default_rng(job.seed))
    return outcome


def _wait(future: Future, stop: threading.Event, poll_s: float) -> BatchResult:
    while True:
        if stop.is_set():
            future.cancel()
            raise PlanAbandoned()
        try:
            return future.result(timeout=poll_s)
        except FutureTimeout:
            continue
        except CancelledError:
            raise PlanAbandoned() from None
