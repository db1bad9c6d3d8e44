"""`maskvit serve`: the world model over HTTP, with a playground page at /.

Checks every flag (and the token rule: any address but loopback needs --token-file)
before loading the model, binds the port, then runs uvicorn until Ctrl-C or SIGTERM,
which stop it gracefully: requests in flight are finished first.
"""

from __future__ import annotations

import argparse

from maskvit.commands._model_args import add_model_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    from maskvit.serve.settings import ServeSettings

    d = ServeSettings()
    parser = subparsers.add_parser(
        "serve", help="serve the world model over HTTP (predict, plan) with a playground page",
        description="Serve a trained model (default: the shipped push64 reference model): "
                    "POST /v1/predict, POST /v1/plan, GET /v1/health, GET /v1/info, the API "
                    "reference at /docs and a playground at /. Concurrent requests are batched "
                    "on the model; the same seed gives the same frames whatever the batch.",
    )
    add_model_arguments(parser)
    parser.add_argument("--host", default=d.host,
                        help=f"address to listen on (default {d.host}; anything but loopback "
                             "needs --token-file)")
    parser.add_argument("--port", type=int, default=d.port, help=f"port (default {d.port}; 0: a free one)")
    parser.add_argument("--token-file", default=None, metavar="F",
                        help="file holding the bearer token clients must send "
                             "(Authorization: Bearer <token>)")
    parser.add_argument("--max-batch", type=int, default=d.max_batch,
                        help=f"most videos run as one model batch (default {d.max_batch}; 1 turns "
                             "batching off)")
    parser.add_argument("--max-wait-ms", type=float, default=d.max_wait_ms,
                        help=f"how long a batch waits for more requests (default {d.max_wait_ms:g})")
    parser.add_argument("--queue-limit", type=int, default=d.queue_limit,
                        help=f"requests queued or running at once; more get 503 (default {d.queue_limit})")
    parser.add_argument("--timeout", type=float, default=d.timeout_s,
                        help=f"seconds a request may take before it answers 504 (default {d.timeout_s:g})")
    parser.add_argument("--read-timeout", type=float, default=d.read_timeout_s,
                        help=f"seconds a request's head may take to arrive, and its body may pause, "
                             f"before it answers 408 (default {d.read_timeout_s:g})")
    parser.add_argument("--max-connections", type=int, default=d.max_connections,
                        help=f"open connections at once; past it the longest-idle one is closed, "
                             f"or the new one refused (503) when all are busy "
                             f"(default {d.max_connections})")
    parser.add_argument("--max-client-connections", type=int, default=d.max_client_connections,
                        help=f"the same, per client address (default {d.max_client_connections}; "
                             "behind a reverse proxy every client has the proxy's address)")
    parser.add_argument("--max-body-mb", type=float, default=d.max_body_bytes / 2**20,
                        help=f"largest request body in MiB (default {d.max_body_bytes / 2**20:g})")
    parser.add_argument("--max-videos", type=int, default=d.max_videos,
                        help=f"videos per /v1/predict request (default {d.max_videos})")
    parser.add_argument("--max-plan-samples", type=int, default=d.max_plan_samples,
                        help=f"CEM samples per iteration a plan may ask for (default {d.max_plan_samples})")
    parser.add_argument("--max-plan-iterations", type=int, default=d.max_plan_iterations,
                        help=f"CEM iterations a plan may ask for (default {d.max_plan_iterations})")
    parser.add_argument("--plan-workers", type=int, default=d.plan_workers,
                        help=f"plans whose CEM loops run at once (default {d.plan_workers})")
    parser.add_argument("--no-playground", action="store_true",
                        help="no playground page and no simulator endpoints")
    parser.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                        help="allow browser pages of ORIGIN to call the API (repeatable; default: none)")
    parser.add_argument("--log-level", default="info",
                        choices=["critical", "error", "warning", "info", "debug"],
                        help="server log level (default info: one line per request)")
    parser.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace):
    """ServeSettings from the flags, checked (token rule included); no model loaded yet."""
    from maskvit.serve.settings import ServeSettings, read_token_file

    token = read_token_file(args.token_file) if args.token_file else None
    settings = ServeSettings(
        host=args.host, port=args.port, token=token, max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms, queue_limit=args.queue_limit, timeout_s=args.timeout,
        read_timeout_s=args.read_timeout, max_connections=args.max_connections,
        max_client_connections=args.max_client_connections,
        max_body_bytes=int(args.max_body_mb * 2**20), max_videos=args.max_videos,
        max_plan_samples=args.max_plan_samples, max_plan_iterations=args.max_plan_iterations,
        plan_workers=args.plan_workers, playground=not args.no_playground,
        cors_origins=tuple(args.cors_origin),
    )
    settings.check()
    return settings


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from maskvit.commands._model_args import load_predictor
    from maskvit.pretrained import default_model
    from maskvit.serve.app import create_app
    from maskvit.serve.runner import bind_socket, limit_malloc_arenas, uvicorn_config

    settings = settings_from_args(args)
    limit_malloc_arenas()  # before the server's threads exist
    sock = bind_socket(settings.host, settings.port)
    try:
        model = args.model or default_model()
        predictor = load_predictor(args)
        app = create_app(predictor, settings, model)
        port = sock.getsockname()[1]
        shown = f"[{settings.host}]" if ":" in settings.host else settings.host
        print(f"maskvit serve: {model} on http://{shown}:{port} (playground /, API reference "
              f"/docs{', bearer token required' if settings.token else ''})", flush=True)
        server = uvicorn.Server(uvicorn_config(app, settings, log_level=args.log_level))
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:  # uvicorn re-raises the signal it stopped on, once done
            pass
    finally:
        sock.close()
    print("maskvit serve: stopped (requests in flight were finished)", flush=True)
    return 0
