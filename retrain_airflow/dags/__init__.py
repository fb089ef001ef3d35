"""DAG factories: the retrain DAGs for every model of a config file or directory.

A DAG file (the repo's ``dags/`` or a user's own DAG folder on Astronomer, MWAA or Cloud
Composer) is two lines::

    from retrain_airflow.dags import pipeline_dags
    globals().update(pipeline_dags("/path/to/config"))  # default: $RETRAIN_CONFIG

Each factory returns ``{dag_id: DAG}``: ``retrain_pipeline`` / ``retrain_full_rebuild`` /
``retrain_monitor`` / ``retrain_rollback`` / ``retrain_promote`` (and ``retrain_canary`` for a
model judged online) for a config file, the same ids suffixed ``__<model>`` for each model of a
config directory. A broken model file does not stop the other models' DAGs: :func:`pipeline_dags`
adds a ``retrain_config_error__<file>`` DAG whose description and only task name the file and the
problem. Parsing reads the YAML files and
imports ``airflow.sdk`` and ``retrain.config``, nothing heavier.
"""

from __future__ import annotations

import os
from typing import Any

from retrain_airflow.dags import canary, monitor, pipeline, promote, rollback
from retrain_airflow.dags.broken import broken_config_dag
from retrain_airflow.dags.targets import CONFIG_ERROR_DAG, Target, broken_dag_id, load_targets

__all__ = [
    "CONFIG_ERROR_DAG",
    "Target",
    "all_dags",
    "broken_dag_id",
    "canary_dags",
    "full_rebuild_dags",
    "load_targets",
    "monitor_dags",
    "pipeline_dags",
    "pools",
    "promote_dags",
    "rollback_dags",
]

Config = str | os.PathLike[str] | None


def pipeline_dags(config: Config = None) -> dict[str, Any]:
    """``retrain_pipeline[__<model>]`` per model, and a DAG per broken model file."""
    catalog, targets = load_targets(config)
    dags = {dag.dag_id: dag for dag in (pipeline.build(t) for t in targets)}
    for file, error in catalog.errors.items():
        dag = broken_config_dag(broken_dag_id(file), file, error)
        dags[dag.dag_id] = dag
    return dags


def full_rebuild_dags(config: Config = None) -> dict[str, Any]:
    """``retrain_full_rebuild[__<model>]`` per model: the pipeline in mode ``full_rebuild`` on
    ``schedule.full_rebuild`` (a broken model file's DAG comes from :func:`pipeline_dags`)."""
    targets = load_targets(config)[1]
    return {dag.dag_id: dag for dag in (pipeline.build(t, "full_rebuild") for t in targets)}


def monitor_dags(config: Config = None) -> dict[str, Any]:
    """``retrain_monitor[__<model>]`` per model."""
    return {dag.dag_id: dag for dag in (monitor.build(t) for t in load_targets(config)[1])}


def rollback_dags(config: Config = None) -> dict[str, Any]:
    """``retrain_rollback[__<model>]`` per model."""
    return {dag.dag_id: dag for dag in (rollback.build(t) for t in load_targets(config)[1])}


def promote_dags(config: Config = None) -> dict[str, Any]:
    """``retrain_promote[__<model>]`` per model."""
    return {dag.dag_id: dag for dag in (promote.build(t) for t in load_targets(config)[1])}


def canary_dags(config: Config = None) -> dict[str, Any]:
    """``retrain_canary[__<model>]`` per model whose production comes from the online judge
    (``deployment.promote_to_production: judge``)."""
    targets = load_targets(config)[1]
    judged = [t for t in targets if t.config.deployment.promote_to_production == "judge"]
    return {dag.dag_id: dag for dag in (canary.build(t) for t in judged)}


def all_dags(config: Config = None) -> dict[str, Any]:
    """Every DAG of every model (one DAG file for everything)."""
    return {
        **pipeline_dags(config),
        **full_rebuild_dags(config),
        **monitor_dags(config),
        **rollback_dags(config),
        **promote_dags(config),
        **canary_dags(config),
    }


def pools(config: Config = None) -> dict[str, dict[str, Any]]:
    """The registry pools the DAGs use, in ``airflow pools import`` format (one slot each)."""
    return {
        target.pool: {
            "slots": 1,
            "description": f"retrain registry writes of {target.name}",
            "include_deferred": False,
        }
        for target in load_targets(config)[1]
    }
