"""Everything one running server holds: model, batcher, plan workers, admission count.

Created by the app's lifespan and closed by it: `close()` lets queued predictions and
running plans finish (uvicorn has already waited for the requests in flight), then stops
the batcher thread and the simulator sessions.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from maskvit.inference.batching import Engine, PredictJob
from maskvit.inference.spec import ModelSpec
from maskvit.serve.batcher import DynamicBatcher
from maskvit.serve.refusals import Busy
from maskvit.serve.settings import ServeSettings


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
        self.sessions = None
        if settings.playground:
            from maskvit.serve.sessions import SimSessions

            self.sessions = SimSessions(settings.max_sim_sessions)
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
