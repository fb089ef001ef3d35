"""Warm start for task processes: import what any retrain task runs, once, before workers fork.

Airflow's LocalExecutor forks a process per task from its worker processes. Each task process
would otherwise import MLflow, scikit-learn, skops, pandas, SciPy and matplotlib again (about 5 s
of a 6-7 s task on a 2-core machine). With the scheduler's workers started by a ``forkserver``
that preloads this module, every task process inherits them copy-on-write::

    [scheduler]
    mp_start_method = forkserver
    mp_forkserver_preload = airflow,airflow.executors.local_executor,retrain_airflow.preload

(``AIRFLOW__SCHEDULER__MP_START_METHOD`` / ``AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD``; Airflow
3.3+). ``make airflow`` sets both. Celery workers fork from their pool processes instead; there
the same module belongs in the worker's start-up imports. Importing this module only imports:
it starts no thread, opens no connection and reads no config, so forking after it is safe.
"""

from __future__ import annotations

import importlib

__all__ = ["MODULES", "warm"]

#: Modules a task process may need, beyond the step functions and result types of the graph.
MODULES = (
    "airflow.dag_processing.dagbag",
    "airflow.sdk.execution_time.supervisor",
    "airflow.sdk.execution_time.task_runner",
    "airflow.providers.standard.decorators.python",
    "retrain_airflow.dags",
    "retrain_airflow.runtime",
    "retrain.deploy",
    "retrain.monitor",
    "retrain.serialization",
    "retrain.reports.figures",
    "mlflow",
    "mlflow.tracking",
    "sklearn.compose",
    "sklearn.ensemble",
    "sklearn.linear_model",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "sklearn.metrics",
    "pyarrow.parquet",
    "scipy.stats",
)


def warm() -> list[str]:
    """Import :data:`MODULES` and every step's function and result type; the names that failed.

    A failure is left for the task that needs the module to report (it raises there with its own
    message): the scheduler never fails to start because a warm-up import did.
    """
    from retrain.pipeline.graph import STEPS, load  # noqa: PLC0415
    from retrain.serialization import quiet_skops, skops_io  # noqa: PLC0415

    failed = []
    with quiet_skops():
        try:
            skops_io()
        except ImportError:
            failed.append("skops.io")
        for name in MODULES:
            try:
                importlib.import_module(name)
            except ImportError:
                failed.append(name)
        for step in STEPS.values():
            for path in (step.function, step.result):
                try:
                    load(path)
                except (ImportError, AttributeError):
                    failed.append(path)
    return failed


FAILED = warm()
