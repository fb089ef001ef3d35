"""Online serving: ``@production`` and ``@canary`` behind one router, every answer logged.

* :mod:`~retrain.serving.router`: :class:`Router` loads both aliases through the registry's
  verified loader, follows alias moves (load first, then one atomic swap; a failed load keeps
  the old version serving) and answers ``Router(config).predict(frame, entity_ids=...)``, or
  ``submit(...)`` (a future) to batch concurrent requests into one model call per version; the
  answers of a request are :class:`~retrain.serving.router.Answers` (columns, read as a sequence
  of ``Prediction``).
* :mod:`~retrain.serving.split`: the sticky canary split, a BLAKE2b hash of model and entity id.
* :mod:`~retrain.serving.prediction_log`: the batched, bounded, drain-on-close prediction log.
* :mod:`~retrain.serving.tables`: its SQL tables (predictions, labels); SQLite or PostgreSQL.
* :mod:`~retrain.serving.feedback`: labels by request id or entity id.
* :mod:`~retrain.serving.inputs`: MLflow's scoring formats, checked against the features.
* :mod:`~retrain.serving.service`: the routers of a config file or directory.
* :mod:`~retrain.serving.app`: the FastAPI app of ``retrain serve`` (the only module that
  imports FastAPI).

No Airflow import. Importing this package loads nothing heavy: names resolve on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "Router": "retrain.serving.router",
    "Answers": "retrain.serving.router",
    "Prediction": "retrain.serving.router",
    "PredictionError": "retrain.serving.router",
    "RouterClosedError": "retrain.serving.router",
    "PredictionLog": "retrain.serving.prediction_log",
    "canary_share": "retrain.serving.split",
    "choose_arm": "retrain.serving.split",
    "Limits": "retrain.serving.inputs",
    "ServeSettings": "retrain.serving.service",
    "build_models": "retrain.serving.service",
    "create_app": "retrain.serving.app",
}

__all__ = [
    "Answers",
    "Limits",
    "Prediction",
    "PredictionError",
    "PredictionLog",
    "Router",
    "RouterClosedError",
    "ServeSettings",
    "build_models",
    "canary_share",
    "choose_arm",
    "create_app",
]

if TYPE_CHECKING:
    from retrain.serving.app import create_app
    from retrain.serving.inputs import Limits
    from retrain.serving.prediction_log import PredictionLog
    from retrain.serving.router import (
        Answers,
        Prediction,
        PredictionError,
        Router,
        RouterClosedError,
    )
    from retrain.serving.service import ServeSettings, build_models
    from retrain.serving.split import canary_share, choose_arm


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'retrain.serving' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
