"""`maskvit serve`: the world model over HTTP, with a playground page at /.

Checks every flag (and the token rule: any address but loopback needs --token-file)
before loading the model, binds the port, then runs uvicorn until Ctrl-C or SIGTERM,
which stop it gracefully: requests in flight are finished first.

Serve a trained model (default: the shipped push64 reference model): POST /v1/predict, POST
/v1/plan, GET /v1/health, GET /v1/info, the API reference at /docs and a playground at /.
Concurrent requests are batched on the model; the same seed gives the same frames whatever
the batch.
"""

from __future__ import annotations

import argparse
from dataclasses import Field, fields

from maskvit.commands import add_model_arguments, command_parser
from maskvit.serve.settings import ServeSettings, read_token_file

SUMMARY = "serve the world model over HTTP (predict, plan) with a playground page"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = command_parser(subparsers, "serve", SUMMARY, __doc__)
    add_model_arguments(parser)
    parser.add_argument("--token-file", default=None, metavar="F",
                        help="file holding the bearer token clients must send "
                             "(Authorization: Bearer <token>)")
    for setting in fields(ServeSettings):
        if "flag" in setting.metadata:
            _add_setting_flag(parser, setting)
    parser.add_argument("--log-level", default="info",
                        choices=["critical", "error", "warning", "info", "debug"],
                        help="server log level (default info: one line per request)")
    parser.set_defaults(func=run)


def _add_setting_flag(parser: argparse.ArgumentParser, setting: Field) -> None:
    """The flag of one `ServeSettings` field, its type, default and help taken from the field."""
    name, scale = setting.metadata["flag"], setting.metadata["scale"]
    default = setting.default
    if isinstance(default, bool):  # a switch that turns a default-on setting off
        parser.add_argument(name, dest=setting.name, action="store_false",
                            help=setting.metadata["help"])
    elif isinstance(default, tuple):  # a repeatable flag
        parser.add_argument(name, dest=setting.name, action="append", default=[],
                            metavar=name.lstrip("-").split("-")[-1].upper(),
                            help=setting.metadata["help"])
    else:
        shown = default / scale if scale != 1 else default
        parser.add_argument(name, dest=setting.name, default=shown,
                            metavar=name.lstrip("-").upper().replace("-", "_"),
                            type=float if scale != 1 else type(default),
                            help=setting.metadata["help"].format(default=shown))


def settings_from_args(args: argparse.Namespace) -> ServeSettings:
    """ServeSettings from the flags, checked (token rule included); no model loaded yet."""
    values = {}
    for setting in fields(ServeSettings):
        if "flag" in setting.metadata:
            value = getattr(args, setting.name)
            scale = setting.metadata["scale"]
            values[setting.name] = (int(value * scale) if scale != 1 else
                                    tuple(value) if isinstance(setting.default, tuple) else value)
    token = read_token_file(args.token_file) if args.token_file else None
    settings = ServeSettings(token=token, **values)
    settings.check()
    return settings


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from maskvit.commands import predictor_from_args
    from maskvit.pretrained import default_model
    from maskvit.serve.app import create_app
    from maskvit.serve.runner import bind_socket, limit_malloc_arenas, uvicorn_config

    settings = settings_from_args(args)
    limit_malloc_arenas()  # before the server's threads exist
    sock = bind_socket(settings.host, settings.port)
    try:
        model = args.model or default_model()
        predictor = predictor_from_args(args)
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
