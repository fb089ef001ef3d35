"""Airflow glue for retrain: config for DAG files, task-side helpers, assets, sensors, notifiers.

The ``retrain`` library imports no Airflow; everything Airflow-specific lives here, in the
installed package (so workers and the triggerer can import it), and the DAG files in ``dags/``
stay thin wiring over both. Importing this package itself loads nothing (names resolve lazily),
so ``python -m tools.demo`` can set ``AIRFLOW_HOME`` before Airflow is imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["ASSET_KINDS", "POOL", "assets_for", "dag_options", "default_args", "with_params"]

if TYPE_CHECKING:
    from retrain_airflow.definitions import (
        ASSET_KINDS,
        POOL,
        assets_for,
        dag_options,
        default_args,
        with_params,
    )


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'retrain_airflow' has no attribute {name!r}")
    value = getattr(importlib.import_module("retrain_airflow.definitions"), name)
    globals()[name] = value
    return value
