"""Airflow glue for retrain: config for DAG files, task-side helpers, assets and notifiers.

The ``retrain`` library imports no Airflow; everything Airflow-specific lives here, in the
installed package (so the triggerer and workers can import it), and the DAG files in ``dags/``
stay thin wiring over both. Importing this package loads only ``airflow.sdk`` and the light part
of ``retrain`` (config parsing): nothing heavy at DAG parse time.
"""

from __future__ import annotations

__all__ = ["ASSET_KINDS", "POOL", "assets_for", "dag_config", "default_args"]

from retrain_airflow.definitions import ASSET_KINDS, POOL, assets_for, dag_config, default_args
