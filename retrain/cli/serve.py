"""``retrain serve``: ``@production`` and ``@canary`` over HTTP, every prediction logged.

The config gives each model's name, tracking URI, canary share
(``deployment.canary_traffic_percent``) and the defaults of ``--prediction-log`` and
``--refresh-seconds`` (its ``serving`` section); the flags give the rest
(:class:`~retrain.serving.service.ServeSettings`). Clients send ``Authorization: Bearer
$RETRAIN_SERVE_TOKEN``; without a token the server refuses to start, unless
``--insecure-no-auth`` on a loopback address. The token is never printed. FastAPI and uvicorn
are imported when the command runs, not when the CLI starts.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys

from retrain.cli.common import AddCommand, config_path, selected_model
from retrain.constants import ExitCode
from retrain.errors import DataError
from retrain.redact import register_secret

__all__ = ["register"]

TOKEN_ENV = "RETRAIN_SERVE_TOKEN"  # = retrain.serving.service.TOKEN_ENV (not imported: light CLI)
MIN_TOKEN_CHARS = 16


def register(add: AddCommand) -> None:
    serve = add(
        "serve",
        _serve,
        "Serve @production and @canary over HTTP (MLflow-compatible POST /invocations, "
        "/feedback, /version, /health, /ping), following alias moves and logging every "
        "prediction. Clients send 'Authorization: Bearer $RETRAIN_SERVE_TOKEN'.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--workers", type=int, default=1, help="server processes, each with its own router"
    )
    serve.add_argument(
        "--refresh-seconds",
        type=float,
        help="an alias move is served within this delay (default: serving.refresh_seconds, 5)",
    )
    serve.add_argument(
        "--prediction-log",
        metavar="URL",
        help="SQLAlchemy URL of the prediction log (default: serving.prediction_log, else the "
        "SQLite file <storage.work_dir>/serving/predictions.db)",
    )
    serve.add_argument(
        "--queue-size", type=int, default=10_000, help="prediction rows buffered at most"
    )
    serve.add_argument("--batch-size", type=int, default=500, help="prediction rows per insert")
    serve.add_argument("--max-rows", type=int, default=10_000, help="rows per request at most")
    serve.add_argument(
        "--max-batch-rows",
        type=int,
        help="rows per coalesced batch of concurrent requests (default: serving.max_batch_rows, "
        "1000)",
    )
    serve.add_argument(
        "--batch-wait-ms",
        type=float,
        help="how long a batch waits for requests in flight to join it (default: "
        "serving.batch_wait_ms, 5)",
    )
    serve.add_argument(
        "--model-threads",
        type=int,
        help="OpenMP threads per model call, 0 for the library's default (default: "
        "serving.model_threads, 1)",
    )
    serve.add_argument(
        "--max-bytes", type=int, default=10 * 1024 * 1024, help="bytes per request body at most"
    )
    serve.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help=f"serve without ${TOKEN_ENV} (only on a loopback address)",
    )
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--access-log", action="store_true", help="log every request")


def _serve(args: argparse.Namespace) -> int:
    # imported here: FastAPI, uvicorn, mlflow and scikit-learn are for this command only
    import uvicorn  # noqa: PLC0415

    from retrain.serving.app import create_app  # noqa: PLC0415
    from retrain.serving.inputs import Limits  # noqa: PLC0415
    from retrain.serving.service import (  # noqa: PLC0415
        SETTINGS_ENV,
        ServeSettings,
        build_models,
        check_settings,
    )

    token = _token(args)
    if args.workers < 1:
        raise DataError(["--workers must be at least 1"])
    settings = ServeSettings(
        config_path=str(config_path(args)),
        model=selected_model(args),
        refresh_seconds=args.refresh_seconds,
        prediction_log_url=args.prediction_log,
        queue_size=args.queue_size,
        batch_size=args.batch_size,
        limits=Limits(max_rows=args.max_rows, max_bytes=args.max_bytes),
        auth=token is not None,
        max_batch_rows=args.max_batch_rows,
        batch_wait_ms=args.batch_wait_ms,
        model_threads=args.model_threads,
    )
    check_settings(settings)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    models = build_models(settings)  # errors (no production version, bad config) surface here
    names = ", ".join(models.routers)
    served = {n: r.served() for n, r in models.routers.items()}
    auth = "bearer token" if token else "NONE (--insecure-no-auth)"
    sys.stderr.write(
        f"retrain serve: {names} {served} at http://{args.host}:{args.port} "
        f"({args.workers} worker{'s' if args.workers > 1 else ''}; auth: {auth})\n"
    )
    options = {
        "host": args.host,
        "port": args.port,
        "log_level": args.log_level,
        "access_log": args.access_log,
        "timeout_graceful_shutdown": 30,
    }
    if args.workers == 1:
        app = create_app(lambda: models, token=token, limits=settings.limits)
        uvicorn.run(app, **options)
        return ExitCode.OK
    models.close()  # checked; each worker builds its own
    os.environ[SETTINGS_ENV] = settings.to_json()
    uvicorn.run(
        "retrain.serving.app:app_from_env",
        factory=True,
        workers=args.workers,
        **options,
    )
    return ExitCode.OK


def _token(args: argparse.Namespace) -> str | None:
    """The bearer token, or ``None`` with ``--insecure-no-auth`` on a loopback address."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if args.insecure_no_auth:
        if not _loopback(args.host):
            raise DataError(
                [f"--insecure-no-auth is only allowed on a loopback address, not {args.host!r}"]
            )
        return None
    if not token:
        raise DataError(
            [
                f"set {TOKEN_ENV} to the bearer token clients must send "
                "(or --insecure-no-auth on 127.0.0.1)"
            ]
        )
    if len(token) < MIN_TOKEN_CHARS:
        raise DataError([f"{TOKEN_ENV} must be at least {MIN_TOKEN_CHARS} characters"])
    register_secret(token)
    return token


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
