"""Serving the world model over HTTP: `maskvit serve` (see README, "Serving").

    from maskvit.serve import ServeSettings, create_app
    app = create_app(predictor, ServeSettings(max_batch=16))   # an ASGI app for uvicorn

Modules, one job each: `settings` (limits, token rule), `auth` (bearer tokens), `frames`
(PNG/.npy codecs), `schemas` (the JSON shapes), `validate` (requests -> checked jobs),
`engine` (a batch of jobs through the model), `sampling` (one generator per request),
`batcher` (dynamic batching), `planning` (CEM through the batcher), `sessions` and
`sim_routes` (the playground's simulator), `routes` (model endpoints), `pages` (the
playground and /docs), `middleware` (body cap, headers), `spec` (the model's geometry,
bounds, defaults), `state` (what a running server holds), `app` (assembly), `runner`
(uvicorn on a socket, in the foreground or a thread), `connections` (head deadline,
connection caps, lingering close), `testing` (a tiny model for tests).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ServeSettings", "create_app"]


def __getattr__(name: str) -> Any:
    # Lazy: `maskvit --help` registers the serve command without importing FastAPI.
    if name == "create_app":
        from maskvit.serve.app import create_app

        return create_app
    if name == "ServeSettings":
        from maskvit.serve.settings import ServeSettings

        return ServeSettings
    raise AttributeError(name)
