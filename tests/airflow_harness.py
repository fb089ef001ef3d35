"""Real Airflow 3.3 for tests: a migrated SQLite metadata DB, the repo's ``dags/``, the pool.

``configure_environment()`` must run before anything imports ``airflow`` (conftest calls it at
import time). Scheduled and asset-triggered runs go through :mod:`tools.local_runner`
(``dag.test()`` only creates manual runs).
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from tools import local_runner

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"


def configure_environment() -> Path:
    """Point Airflow at a private home and the repo's dags folder (idempotent per process)."""
    home = os.environ.get("RETRAIN_TEST_AIRFLOW_HOME")
    if not home:
        home = tempfile.mkdtemp(prefix="retrain-airflow-")
        os.environ["RETRAIN_TEST_AIRFLOW_HOME"] = home
    os.environ["AIRFLOW_HOME"] = home
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO / "plugins")
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    return Path(home)


def migrate() -> None:
    """Migrate the test metadata DB, serialise the DAGs and create the registry pool."""
    local_runner.migrate()


def dagbag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def get_dag(dag_id: str) -> Any:
    return local_runner.get_dag(dag_id, DAGS)


def run_dag(dag: Any, *, run_type: str, logical_date: datetime | None = None) -> Any:
    return local_runner.run_dag(dag.dag_id, run_type=run_type, logical_date=logical_date)


states = local_runner.states
xcom = local_runner.xcom
asset_events = local_runner.asset_events
unpause = local_runner.unpause
