"""What DAG files need at parse time: the config, assets, pool name and default arguments.

Only ``airflow.sdk`` and ``retrain.config`` (pydantic + yaml) are imported here.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import Asset
from airflow.sdk.definitions.param import ParamsDict

from retrain import constants
from retrain.config import CONFIG_ENV, RetrainConfig
from retrain_airflow.notifier import RetrainNotifier

__all__ = [
    "ASSET_KINDS",
    "POOL",
    "assets_for",
    "config_path",
    "dag_options",
    "default_args",
    "with_params",
]

#: One-slot pool serialising registry writes: a deploy and a rollback never interleave.
POOL = "retrain_registry"
#: Monitor signals that start a data-driven pipeline run, one asset each.
ASSET_KINDS = tuple(str(kind) for kind in constants.ASSET_KINDS)


def config_path() -> Path:
    """``$RETRAIN_CONFIG``, else ``config/retraining.yaml`` next to the ``dags/`` folder."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1] / "config" / "retraining.yaml"


def assets_for(config: RetrainConfig) -> dict[str, Asset]:
    """The monitor's assets for this model: ``retrain://<model>/<kind>``."""
    name = config.model.name
    return {
        kind: Asset(name=f"retrain.{name}.{kind}", uri=f"retrain://{name}/{kind}")
        for kind in ASSET_KINDS
    }


def dag_options(config: RetrainConfig, doc: str | None, **default_overrides: Any) -> dict[str, Any]:
    """What every retrain DAG shares: start date, no catchup, one run at a time, the seed's
    retries and the failure notifier (``default_overrides`` e.g. ``retries=0``), docs and tags."""
    return {
        "start_date": datetime(2026, 1, 1, tzinfo=UTC),
        "catchup": False,
        "max_active_runs": 1,
        "default_args": default_args(config, **default_overrides),
        "doc_md": doc,
        "tags": ["retrain", config.model.name],
    }


def with_params(dag: Any, params: dict[str, Any]) -> Any:
    """``dag`` with its trigger-form ``params``, set once its tasks exist.

    Airflow deep-copies (and re-validates on serialisation) a DAG's params into every task it
    creates: about half of the pipeline file's parse time at 50 models (benchmarks/README.md).
    At run time a task's params are the DAG's merged with its own and the run's conf
    (``airflow.sdk.definitions.param.process_params``), so every task still sees them; setting
    them validates the defaults as the constructor would.
    """
    dag.params = ParamsDict(params)
    return dag


def default_args(config: RetrainConfig, **extra: Any) -> dict[str, Any]:
    """The seed's retry policy from ``schedule`` plus the failure notifier."""
    return {
        "owner": "ml-team",
        "retries": config.schedule.retries,
        "retry_delay": timedelta(minutes=config.schedule.retry_delay_minutes),
        "on_failure_callback": RetrainNotifier(
            event="task_failed", model=config.model.name, settings=config.notifications
        ),
        **extra,
    }
