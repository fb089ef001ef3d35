"""The retraining config: one YAML file describing a model's whole retraining setup.

``load_catalog(path)`` / ``load_model_config(path, model)`` also read a directory of model
files sharing a ``defaults.yaml`` (``retrain.config.catalog``).

``load_config(path)`` reads and validates the file into a frozen :class:`RetrainConfig`; every
problem is reported at once as ``<file>: <key.path>: <problem>``. The package is light (standard
library, pydantic, yaml): DAG files import it at Airflow parse time.

* ``retrain.config.schema``: the sections of the file, one frozen pydantic model each.
* ``retrain.config.loader``: reading YAML, ``${VAR}`` expansion, error messages, relative paths.
* ``retrain.config.reference``: the reference documentation generated from the schema
  (``reference_rows`` / ``reference_markdown`` import it on first use, not at parse time).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from retrain.config.catalog import (
    DEFAULTS_FILE,
    MODEL_ENV,
    Catalog,
    deep_merge,
    load_catalog,
    load_model_config,
)
from retrain.config.loader import CONFIG_ENV, default_config_path, load_config, parse_config
from retrain.config.schema import (
    METRICS,
    ABTestSettings,
    CadenceSettings,
    CanarySettings,
    DataSettings,
    DeploymentSettings,
    DriftSettings,
    DriftStatistic,
    Estimator,
    EvaluationSettings,
    FeatureDriftOverride,
    Features,
    LeakageSettings,
    Metric,
    ModelSettings,
    NotificationSettings,
    ParquetSource,
    RegistrySettings,
    RetrainConfig,
    Rule,
    ScheduleSettings,
    ServingSettings,
    SeverityCuts,
    SqlSource,
    StorageSettings,
    TriggerSettings,
    ValidationSettings,
)
from retrain.constants import Action
from retrain.errors import ConfigError

__all__ = [
    "CONFIG_ENV",
    "DEFAULTS_FILE",
    "METRICS",
    "MODEL_ENV",
    "ABTestSettings",
    "Action",
    "CadenceSettings",
    "CanarySettings",
    "Catalog",
    "ConfigError",
    "DataSettings",
    "DeploymentSettings",
    "DriftSettings",
    "DriftStatistic",
    "Estimator",
    "EvaluationSettings",
    "FeatureDriftOverride",
    "Features",
    "LeakageSettings",
    "Metric",
    "ModelSettings",
    "NotificationSettings",
    "ParquetSource",
    "RegistrySettings",
    "RetrainConfig",
    "Rule",
    "ScheduleSettings",
    "ServingSettings",
    "SeverityCuts",
    "SqlSource",
    "StorageSettings",
    "TriggerSettings",
    "ValidationSettings",
    "deep_merge",
    "default_config_path",
    "load_catalog",
    "load_config",
    "load_model_config",
    "parse_config",
    "reference_markdown",
    "reference_rows",
]

if TYPE_CHECKING:
    from retrain.config.reference import reference_markdown, reference_rows

_LAZY: dict[str, str] = {
    "reference_markdown": "retrain.config.reference",
    "reference_rows": "retrain.config.reference",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
