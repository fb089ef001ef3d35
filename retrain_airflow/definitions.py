"""What DAG files need at parse time: the config, assets, pool name and default arguments.

Only ``airflow.sdk`` and ``retrain.config`` (pydantic + yaml) are imported here.
"""

from __future__ import annotations

import functools
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import Asset

from retrain.config import CONFIG_ENV, RetrainConfig, load_config

__all__ = ["ASSET_KINDS", "POOL", "assets_for", "config_path", "dag_config", "default_args"]

#: One-slot pool serialising registry writes: a deploy and a rollback never interleave.
POOL = "retrain_registry"
#: Monitor signals that start a data-driven pipeline run, one asset each.
ASSET_KINDS = ("drift", "volume", "performance")


def config_path() -> Path:
    """``$RETRAIN_CONFIG``, else ``config/retraining.yaml`` next to the ``dags/`` folder."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1] / "config" / "retraining.yaml"


@functools.cache
def _load(path: str, mtime: float) -> RetrainConfig:
    return load_config(path)


def dag_config() -> RetrainConfig:
    """The retraining config (cached per file version; a changed file is read again)."""
    path = config_path()
    try:
        mtime = path.stat().st_mtime
    except OSError:
        mtime = 0.0
    return _load(str(path), mtime)


def assets_for(config: RetrainConfig) -> dict[str, Asset]:
    """The monitor's assets for this model: ``retrain://<model>/<kind>``."""
    name = config.model.name
    return {
        kind: Asset(name=f"retrain.{name}.{kind}", uri=f"retrain://{name}/{kind}")
        for kind in ASSET_KINDS
    }


def default_args(config: RetrainConfig, **extra: Any) -> dict[str, Any]:
    """The seed's retry policy from ``schedule`` plus the failure notifier."""
    from retrain_airflow.notifier import RetrainNotifier

    return {
        "owner": "ml-team",
        "retries": config.schedule.retries,
        "retry_delay": timedelta(minutes=config.schedule.retry_delay_minutes),
        "on_failure_callback": RetrainNotifier(event="task_failed"),
        **extra,
    }
