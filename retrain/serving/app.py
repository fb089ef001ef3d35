"""The HTTP server of ``retrain serve``: a FastAPI app over :class:`ServedModels`.

Endpoints (``<m>``: a model's name; the top-level paths serve the only model of a server that
serves one):

* ``POST /invocations``, ``/models/<m>/invocations``: MLflow's scoring protocol
  (:mod:`~retrain.serving.inputs`); the answer is ``{"predictions": [...]}`` as MLflow's scoring
  server gives it, plus ``"retrain": [...]``, one object per row with its ``request_id``,
  ``entity_id``, ``version``, ``arm`` and ``probability``.
* ``POST /feedback``, ``/models/<m>/feedback``: labels (:mod:`~retrain.serving.feedback`).
* ``GET /version``, ``/models/<m>/version``: the versions serving, their traffic fractions, when
  each was loaded, the prediction log's counters.
* ``GET /ping`` (MLflow's liveness probe) and ``GET /health``, ``/models/<m>/health``:
  ``status`` ``ok`` or ``degraded`` (a version that failed to load, an unreadable registry,
  dropped log rows), the versions serving, the error. Always 200 while a version serves.

Every endpoint but ``/ping`` and ``/health`` needs ``Authorization: Bearer <token>`` when the app
has a token. Errors are MLflow's error body ``{"error_code": ..., "message": ...}`` with a 4xx
naming the problem; a refused request predicts and logs nothing. A scoring request is checked
in the event loop, then handed to its router's batching thread (:meth:`Router.submit`), which
answers the requests that arrive together with one model call per version. The routers are
built at start-up (in each worker) and closed at shutdown, which drains the prediction logs.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from retrain.errors import DataError
from retrain.redact import redact
from retrain.serving.feedback import parse_labels, store_labels
from retrain.serving.inputs import Limits, RequestError, parse_invocation
from retrain.serving.router import PredictionError, Router, RouterClosedError
from retrain.serving.service import (
    SETTINGS_ENV,
    TOKEN_ENV,
    ServedModels,
    ServeSettings,
    build_models,
)

__all__ = ["app_from_env", "create_app"]

logger = logging.getLogger(__name__)


def create_app(
    build: Callable[[], ServedModels], *, token: str | None, limits: Limits | None = None
) -> FastAPI:
    """The app serving what ``build()`` returns (called at start-up; closed at shutdown).
    ``token``: the bearer token every endpoint but ``/ping`` and ``/health`` requires
    (``None``: no authentication)."""
    server = _Server(build, token, limits or Limits())
    app = FastAPI(
        title="retrain serve",
        lifespan=server.lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.add_exception_handler(RequestError, _refused)  # type: ignore[arg-type]
    app.add_api_route("/ping", _ping, methods=["GET"])
    endpoints = {
        "health": (server.health, "GET"),
        "version": (server.version, "GET"),
        "invocations": (server.invocations, "POST"),
        "feedback": (server.feedback, "POST"),
    }
    for path, (endpoint, method) in endpoints.items():
        app.add_api_route(f"/{path}", _only_model(endpoint), methods=[method])
        app.add_api_route(f"/models/{{name}}/{path}", endpoint, methods=[method])
    return app


class _Server:
    """The endpoints, over the models built at start-up. ``name``: the path's model (``None``
    at the top-level paths: the only model)."""

    def __init__(
        self, build: Callable[[], ServedModels], token: str | None, limits: Limits
    ) -> None:
        self._build = build
        self._token = token
        self._limits = limits
        self._models: ServedModels | None = None

    @asynccontextmanager
    async def lifespan(self, _app: FastAPI) -> AsyncIterator[None]:
        self._models = await run_in_threadpool(self._build)
        try:
            yield
        finally:
            models, self._models = self._models, None
            await run_in_threadpool(models.close)

    @property
    def models(self) -> ServedModels:
        if self._models is None:
            raise RequestError("starting or stopping", status=503, error_code="UNAVAILABLE")
        return self._models

    async def invocations(self, request: Request, name: str | None = None) -> Response:
        self._authorize(request)
        router = self._router(name, "invocations")
        with router.in_flight():
            body = await _read_json(request, self._limits)
            invocation = parse_invocation(body, router.config.model.features, self._limits)
            try:
                future = router.submit(
                    invocation.frame,
                    entity_ids=invocation.entity_ids,
                    request_ids=invocation.request_ids,
                )
                answers = await asyncio.wrap_future(future)
            except PredictionError as exc:
                raise RequestError(str(exc), status=422, error_code="MODEL_ERROR") from None
            except RouterClosedError as exc:
                raise RequestError(str(exc), status=503, error_code="UNAVAILABLE") from None
            return JSONResponse(answers.body())

    async def feedback(self, request: Request, name: str | None = None) -> Response:
        self._authorize(request)
        router = self._router(name, "feedback")
        labels = parse_labels(await _read_json(request, self._limits), self._limits)
        try:
            stored = await run_in_threadpool(store_labels, router.log.engine, router.name, labels)
        except sa.exc.SQLAlchemyError as exc:
            message = redact(f"labels not stored: {type(exc).__name__}: {exc}")[:500]
            logger.error("%s", message)
            return JSONResponse(
                {"error_code": "TEMPORARILY_UNAVAILABLE", "message": message}, status_code=503
            )
        return JSONResponse({"stored": stored})

    async def version(self, request: Request, name: str | None = None) -> Response:
        self._authorize(request)
        if name is not None:
            return JSONResponse(self._router(name, "version").status)
        return JSONResponse({"models": {n: r.status for n, r in self.models.routers.items()}})

    async def health(self, _request: Request, name: str | None = None) -> Response:
        served = self.models
        routers = [self._router(name, "health")] if name else list(served.routers.values())
        found = {r.name: _health(r) for r in routers}
        broken = served.broken if name is None else {}
        degraded = bool(broken) or any(h["status"] != "ok" for h in found.values())
        body: dict[str, Any] = {"status": "degraded" if degraded else "ok", "models": found}
        if broken:
            body["broken"] = broken
        return JSONResponse(body)

    def _authorize(self, request: Request) -> None:
        if self._token is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise RequestError(
                "missing bearer token (Authorization: Bearer <token>)",
                status=401,
                error_code="UNAUTHENTICATED",
            )
        if not hmac.compare_digest(given.strip().encode(), self._token.encode()):
            raise RequestError("wrong bearer token", status=401, error_code="UNAUTHENTICATED")

    def _router(self, name: str | None, path: str) -> Router:
        served = self.models
        if name is None:
            single = served.single
            if single is None:
                raise RequestError(
                    f"this server serves {len(served.routers)} models "
                    f"({', '.join(served.routers)}): use /models/<name>/{path}",
                    status=404,
                    error_code="RESOURCE_DOES_NOT_EXIST",
                )
            return single
        if name not in served.routers:
            raise RequestError(
                f"no model {name!r} here; serving {', '.join(served.routers)}",
                status=404,
                error_code="RESOURCE_DOES_NOT_EXIST",
            )
        return served.routers[name]


def _only_model(
    endpoint: Callable[[Request, str | None], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """``endpoint`` at a top-level path: the only model's."""

    async def top(request: Request) -> Response:
        return await endpoint(request, None)

    return top


async def _ping() -> Response:
    return PlainTextResponse("\n")


async def _refused(_request: Request, exc: RequestError) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(
        {"error_code": exc.error_code, "message": exc.message},
        status_code=exc.status,
        headers=headers,
    )


def app_from_env() -> FastAPI:
    """The app of a ``--workers`` process: settings from :data:`SETTINGS_ENV`, the token from
    :data:`TOKEN_ENV` (uvicorn's factory)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = ServeSettings.from_json(os.environ[SETTINGS_ENV])
    token = os.environ.get(TOKEN_ENV) if settings.auth else None
    if settings.auth and not token:
        raise DataError([f"{TOKEN_ENV} is not set"])
    return create_app(lambda: build_models(settings), token=token, limits=settings.limits)


async def _read_json(request: Request, limits: Limits) -> Any:
    """The decoded JSON body, refused when it is not JSON or larger than ``max_bytes``."""
    kind = request.headers.get("content-type", "")
    if "json" not in kind.lower():
        raise RequestError(
            f"content type {kind or 'none'!r}: send application/json",
            status=415,
            error_code="UNSUPPORTED_MEDIA_TYPE",
        )
    length = request.headers.get("content-length")
    too_large = RequestError(
        f"the body is larger than {limits.max_bytes} bytes",
        status=413,
        error_code="REQUEST_TOO_LARGE",
    )
    if length is not None and (not length.isdigit() or int(length) > limits.max_bytes):
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_bytes:
            raise too_large
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, RecursionError) as exc:
        raise RequestError(f"bad JSON: {exc}") from None


def _answer(router: Router, body: Any, limits: Limits) -> dict[str, Any]:
    """Check, predict and log a scoring request in this thread, unbatched (what the endpoint
    does, for in-process use and measurements)."""
    invocation = parse_invocation(body, router.config.model.features, limits)
    try:
        answers = router.predict(
            invocation.frame,
            entity_ids=invocation.entity_ids,
            request_ids=invocation.request_ids,
        )
    except PredictionError as exc:
        raise RequestError(str(exc), status=422, error_code="MODEL_ERROR") from None
    return answers.body()


def _health(router: Router) -> dict[str, Any]:
    status = router.status
    log = status["prediction_log"]
    problems = [status["error"]] if status["error"] else []
    if log["dropped"] or log["lost"]:
        problems.append(f"prediction log dropped {log['dropped']} rows, lost {log['lost']}")
    if log["last_error"]:
        problems.append(f"prediction log: {log['last_error']}")
    return {
        "status": "degraded" if problems else "ok",
        "versions": {arm: found["version"] for arm, found in status["arms"].items()},
        "error": "; ".join(problems) or None,
    }
