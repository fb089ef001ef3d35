"""retrain: Airflow-native retraining for scikit-learn models on MLflow.

Importing the package is cheap: it loads no Airflow, mlflow, scikit-learn or pandas. Public names
resolve lazily on first use.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# OpenMP (scikit-learn's gradient boosting, through libgomp) busy-waits between parallel regions
# unless told otherwise. Training shares the cores with Airflow's scheduler, workers and other
# tasks; oversubscribed, a 2 s fit took 30-80 s on a 2-core machine (benchmarks/README.md).
# Passive waiting keeps the threads and drops the spinning. The OpenMP runtime reads it once, when
# it loads, so it is set before scikit-learn is imported; an explicit value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_EXPORTS: dict[str, str] = {
    "RetrainConfig": "retrain.config",
    "load_config": "retrain.config",
    "ConfigError": "retrain.errors",
    "DataError": "retrain.errors",
    "RegistryError": "retrain.errors",
    "RetrainError": "retrain.errors",
    "UnknownModelError": "retrain.errors",
    "parse_condition": "retrain.conditions",
    "Decision": "retrain.triggers",
    "Signals": "retrain.triggers",
    "TriggerPolicy": "retrain.triggers",
    "CadenceDecision": "retrain.cadence",
    "decide_cadence": "retrain.cadence",
    "ModelRegistry": "retrain.registry",
    "VersionRecord": "retrain.registry",
    "build_profile": "retrain.drift",
    "check_drift": "retrain.drift",
    "ReferenceProfile": "retrain.drift",
    "DriftReport": "retrain.drift",
    "run_pipeline": "retrain.pipeline",
    "RetrainingRecord": "retrain.log",
}

__all__ = [
    "CadenceDecision",
    "ConfigError",
    "DataError",
    "Decision",
    "DriftReport",
    "ModelRegistry",
    "ReferenceProfile",
    "RegistryError",
    "RetrainConfig",
    "RetrainError",
    "RetrainingRecord",
    "Signals",
    "TriggerPolicy",
    "UnknownModelError",
    "VersionRecord",
    "__version__",
    "build_profile",
    "check_drift",
    "decide_cadence",
    "load_config",
    "parse_condition",
    "run_pipeline",
]

if TYPE_CHECKING:
    from retrain.cadence import CadenceDecision, decide_cadence
    from retrain.conditions import parse_condition
    from retrain.config import RetrainConfig, load_config
    from retrain.drift import DriftReport, ReferenceProfile, build_profile, check_drift
    from retrain.errors import (
        ConfigError,
        DataError,
        RegistryError,
        RetrainError,
        UnknownModelError,
    )
    from retrain.log import RetrainingRecord
    from retrain.pipeline import run_pipeline
    from retrain.registry import ModelRegistry, VersionRecord
    from retrain.triggers import Decision, Signals, TriggerPolicy


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'retrain' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
