"""The DAG that stands for a broken model file: visible in the UI, naming the file and problem."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, task

from retrain.errors import ConfigError

__all__ = ["broken_config_dag"]


def broken_config_dag(dag_id: str, file: Path, error: ConfigError) -> Any:
    """A DAG with no schedule whose description and docs carry ``error`` and whose only task
    fails with it: the other models' DAGs keep loading, this one says what to fix."""
    message = str(error)
    first = error.problems[0] if error.problems else message
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        catchup=False,
        description=f"BROKEN CONFIG {file.name}: {first}"[:400],
        doc_md=f"### Broken retrain config\n\n`{file}` did not load, so its model's DAGs are "
        f"not generated. Fix the file; the DAGs appear at the next parse.\n\n```\n{message}\n```",
        tags=["retrain", "config-error"],
    ) as dag:

        @task(task_id="config_error", retries=0)
        def config_error() -> None:
            raise ConfigError(list(error.problems), source=str(file))

        config_error()
    return dag
