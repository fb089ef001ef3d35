"""What one server process serves: a router per model of a config file or directory.

:class:`ServeSettings` holds the plain arguments (``retrain serve`` maps the config and its flags
to them; they travel to ``--workers`` processes as JSON in :data:`SETTINGS_ENV`).
:func:`build_models` loads the config (:func:`retrain.config.load_catalog`), builds one
:class:`~retrain.serving.router.Router` per model and one
:class:`~retrain.serving.prediction_log.PredictionLog` per database URL (models logging to the
same database share its writer). A broken model file of a directory is reported, not served.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from retrain.config import RetrainConfig, load_catalog
from retrain.errors import ConfigError, DataError
from retrain.serving.inputs import Limits
from retrain.serving.prediction_log import PredictionLog
from retrain.serving.router import Router
from retrain.serving.tables import log_url

__all__ = [
    "SETTINGS_ENV",
    "TOKEN_ENV",
    "ServeSettings",
    "ServedModels",
    "build_models",
    "check_settings",
]

logger = logging.getLogger(__name__)

#: The bearer token clients must send (``Authorization: Bearer <token>``).
TOKEN_ENV = "RETRAIN_SERVE_TOKEN"
#: :class:`ServeSettings` as JSON, for worker processes (never holds the token).
SETTINGS_ENV = "RETRAIN_SERVE_SETTINGS"


@dataclass(frozen=True)
class ServeSettings:
    """The arguments of a server: the config path (``model``: one model of a directory), the
    router's and the log's settings (``None``: from each model's config, its ``serving`` and
    ``deployment`` sections), the request limits, whether a bearer token is required, the rows
    per coalesced batch (``max_batch_rows``), the wait for requests in flight to join one
    (``batch_wait_ms``) and the OpenMP threads per model call (``model_threads``; ``None``:
    the config's ``serving`` values)."""

    config_path: str | None = None
    model: str | None = None
    refresh_seconds: float | None = None
    traffic_fraction: float | None = None
    prediction_log_url: str | None = None
    queue_size: int = 10_000
    batch_size: int = 500
    limits: Limits = field(default_factory=Limits)
    auth: bool = True
    max_batch_rows: int | None = None
    batch_wait_ms: float | None = None
    model_threads: int | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeSettings:
        data: dict[str, Any] = json.loads(text)
        data["limits"] = Limits(**data.get("limits", {}))
        return cls(**data)


@dataclass
class ServedModels:
    """The routers of one process by model name, the logs they write and the model files that
    failed to load. ``single``: one model, also served at the top-level paths."""

    routers: dict[str, Router]
    logs: list[PredictionLog]
    broken: dict[str, str] = field(default_factory=dict)

    @property
    def single(self) -> Router | None:
        return next(iter(self.routers.values())) if len(self.routers) == 1 else None

    def close(self) -> None:
        """Stop every router, then drain and close every log."""
        for router in self.routers.values():
            router.close()
        for log in self.logs:
            log.close()


def build_models(settings: ServeSettings) -> ServedModels:
    """Load the config and start a router per model (a failure closes what started)."""
    catalog = load_catalog(settings.config_path)
    if settings.model is not None:
        configs: Mapping[str, RetrainConfig] = {settings.model: catalog.select(settings.model)}
        broken: dict[str, str] = {}
    else:
        configs = catalog.configs
        broken = {str(path): str(error) for path, error in catalog.errors.items()}
    if not configs:
        raise ConfigError(
            ["no model loads: " + "; ".join(broken.values())], source=str(catalog.root)
        )
    for path, error in broken.items():
        logger.error("not serving the model of %s: %s", path, error)
    served = ServedModels(routers={}, logs=[], broken=broken)
    try:
        logs: dict[str, PredictionLog] = {}
        for name, config in configs.items():
            url = settings.prediction_log_url or log_url(config)
            if url not in logs:
                logs[url] = PredictionLog(
                    url, queue_size=settings.queue_size, batch_size=settings.batch_size
                )
                served.logs.append(logs[url])
            served.routers[name] = Router(
                config,
                refresh_seconds=settings.refresh_seconds,
                traffic_fraction=settings.traffic_fraction,
                prediction_log=logs[url],
                max_batch_rows=settings.max_batch_rows,
                batch_wait_ms=settings.batch_wait_ms,
                model_threads=settings.model_threads,
            )
    except BaseException:
        with contextlib.suppress(Exception):
            served.close()
        raise
    return served


def check_settings(settings: ServeSettings) -> None:
    """Refuse settings no server can run with (each names its flag)."""
    problems = []
    if settings.refresh_seconds is not None and not settings.refresh_seconds > 0:
        problems.append("--refresh-seconds must be > 0")
    if settings.queue_size < 1 or settings.batch_size < 1:
        problems.append("--queue-size and --batch-size must be at least 1")
    if settings.limits.max_rows < 1 or settings.limits.max_bytes < 1:
        problems.append("--max-rows and --max-bytes must be at least 1")
    if settings.max_batch_rows is not None and settings.max_batch_rows < 1:
        problems.append("--max-batch-rows must be at least 1")
    if settings.batch_wait_ms is not None and not settings.batch_wait_ms >= 0:
        problems.append("--batch-wait-ms must be >= 0")
    if settings.model_threads is not None and settings.model_threads < 0:
        problems.append("--model-threads must be >= 0")
    if problems:
        raise DataError(problems)
