"""Serving the world model over HTTP: `maskvit serve` (see README, "Serving").

    from maskvit.serve import ServeSettings, create_app
    app = create_app(predictor, ServeSettings(max_batch=16))   # an ASGI app for uvicorn

Modules, one job each: `settings` (limits, token rule, the `maskvit serve` flags),
`refusals` (status codes, one-line details, bearer tokens), `frames` (PNG/.npy codecs),
`schemas` (the JSON shapes, their ranges generated from the config's), `validate`
(requests -> jobs checked by `maskvit.inference.requests`), `batcher` (dynamic batching
of `maskvit.inference.batching` jobs), `state` (what a running server holds; CEM through
the batcher), `sessions` (the playground's simulator), `routes` (the endpoints), `pages`
(the playground and /docs), `app` (assembly; body cap and security headers), `runner`
(uvicorn on a socket, in the foreground or a thread; head deadline, connection caps,
lingering close).
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
