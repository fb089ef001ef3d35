"""A real state for the Retraining view, built once per session.

A config *directory* (``$RETRAIN_CONFIG``) with three files:

* ``<alpha>``: versions 1-3 on the session's MLflow server: v1 and v2 went to production, then
  bob rolled back to v1 (his reason holds ``<script>``), carol rolled back again to v2 (so
  production is v2 and a rollback restores v1), and v3 is the canary. Its retraining log has
  three records (a deployed weekly run with drift and a drift report artifact, a rejected
  manual run with gate, A/B and checklist, a full rebuild with the canary verdict and cadence).
* ``<empty>``: nothing registered.
* ``broken-<hex>.yaml``: a model file that does not validate.

Airflow's metadata DB is migrated with this config, so the DAGs ``retrain_rollback__<alpha>``
etc. exist and the view's actions create real DAG runs.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import airflow_harness as af
from tools.mlflow_server import MlflowServer

SCRIPT = "<script>alert(1)</script>"
DRIFT_HTML = f"<html><body><h1>Drift report</h1>{SCRIPT}<p>tenure drifted</p></body></html>"


@dataclass(frozen=True)
class PluginState:
    config_dir: Path
    alpha: str
    empty: str
    broken_file: Path
    tracking_uri: str
    drift_run_id: str
    foreign_run_id: str
    pipeline_run_key: str

    def dag_id(self, base: str, model: str | None = None) -> str:
        return f"{base}__{model or self.alpha}"


def model_config(name: str, tracking_uri: str, work: Path, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "model": {
            "name": name,
            "target": "label",
            "features": {"numeric": ["x1", "x2"], "categorical": ["segment"]},
            "estimator": {"class": "sklearn.linear_model.LogisticRegression"},
        },
        "data": {
            "source": {"kind": "parquet", "path": str(work / "data"), "event_time_column": "t"}
        },
        "registry": {"tracking_uri": tracking_uri, "request_timeout_seconds": 5, "max_retries": 1},
        "storage": {"work_dir": str(work / "work")},
    }
    config.update(extra)
    return config


def _build(config: Any, tmp: Path) -> tuple[str, str, str]:
    """Registry history, log records and a drift report artifact for ``config``'s model."""
    from mlflow import MlflowClient

    from retrain.log import LogStore, RetrainingRecord
    from retrain.registry import ModelRegistry
    from retrain.tracking import ensure_experiment
    from tests.registry_builders import Fleet, make_data, make_pipeline_model

    fleet = Fleet(
        ModelRegistry(config, actor="alice"), make_pipeline_model(), make_data(10, seed=3)[0]
    )
    first = fleet.to_production()
    second = fleet.to_production()
    ModelRegistry(config, actor="bob").rollback(reason=f"bad canary numbers {SCRIPT}")
    ModelRegistry(config, actor="carol").rollback(reason="v2 was fine after all")
    canary = fleet.register()
    fleet.registry.promote(canary, "canary", reason="canary checks passed")
    assert (first, second, canary) == (1, 2, 3)

    client = MlflowClient(config.registry.tracking_uri)
    report = tmp / "drift_report.html"
    report.write_text(DRIFT_HTML, encoding="utf-8")
    ours = client.create_run(ensure_experiment(client, config.experiment_name)).info.run_id
    client.log_artifact(ours, str(report))
    foreign_experiment = ensure_experiment(client, f"someone-else-{uuid.uuid4().hex[:8]}")
    foreign = client.create_run(foreign_experiment).info.run_id
    client.log_artifact(foreign, str(report))

    run_key = f"retrain_pipeline__{config.model.name}/manual__2026-11-29T06:00:00+00:00"
    log = LogStore.of(config)
    # written in time order, as runs write them
    log.write(
        RetrainingRecord(
            retraining_id="retrain_20261128_001",
            trigger="scheduled",
            start_time="2026-11-28T20:00:00+00:00",
            status="canary",
            mode="full_rebuild",
            model_version="3",
            online={
                "decision": "continue",
                "action": "none",
                "d_hat": 0.004,
                "interval": [-0.011, 0.019],
                "canary_labels": 812,
                "production_labels": 7400,
                "at": "2026-11-30T11:00:00+00:00",
                "reasons": ["not enough labels yet"],
            },
            cadence={"level": "weekly", "interval_days": 7.0, "reasons": ["stable"], "due": False},
        )
    )
    log.write(
        RetrainingRecord(
            retraining_id="retrain_20261129_001",
            trigger="scheduled:weekly_retraining",
            start_time="2026-11-29T06:00:00+00:00",
            end_time="2026-11-29T06:04:00+00:00",
            training_duration_minutes=4.0,
            status="deployed",
            model_version="2",
            mode="weekly",
            run_key=run_key,
            mlflow_run_id=ours,
            trigger_reasons=["weekly_retraining: days_since_training 8 > 7"],
            drift={
                "drift_count": 1,
                "drift_share": 0.33,
                "severity": {"x1": "high", "x2": "none", "segment": "medium"},
            },
            gate={"status": "passed", "reasons": [], "checks": []},
        )
    )
    log.write(
        RetrainingRecord(
            retraining_id="retrain_20261130_001",
            trigger="manual",
            start_time="2026-11-30T06:00:00+00:00",
            status="rejected",
            mode="weekly",
            run_key="cli-20261130T060000",
            notes=f"rejected {SCRIPT}",
            gate={
                "status": "failed",
                "reasons": [f"accuracy 0.71 < 0.85 {SCRIPT}"],
                "checks": [{"check": "accuracy >= 0.85", "value": 0.71, "passed": False}],
            },
            ab_test={"winner": "current", "p_value": 0.0123, "difference": -0.042, "n": 4000},
            checklist=[
                {
                    "key": "gate",
                    "title": "Gate passed",
                    "passed": False,
                    "evidence": f"gate failed {SCRIPT}",
                    "required_for": "staging",
                }
            ],
        )
    )
    return ours, foreign, run_key


@pytest.fixture(scope="session")
def plugin_state(
    mlflow_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PluginState]:
    from retrain.config import load_model_config

    root = tmp_path_factory.mktemp("plugin")
    config_dir = root / "models"
    config_dir.mkdir()
    suffix = uuid.uuid4().hex[:8]
    alpha, empty = f"alpha-{suffix}", f"empty-{suffix}"
    for name in (alpha, empty):
        data = model_config(name, mlflow_server.url, root / name)
        (config_dir / f"{name}.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    broken = config_dir / f"broken-{suffix}.yaml"
    broken.write_text(
        yaml.safe_dump({"model": {"name": f"broken-{suffix}", "target": 3}}), encoding="utf-8"
    )
    previous = os.environ.get("RETRAIN_CONFIG")
    os.environ["RETRAIN_CONFIG"] = str(config_dir)
    try:
        ours, foreign, run_key = _build(load_model_config(config_dir, alpha), root)
        af.migrate()  # the DAGs of this config into Airflow's DB, and their pools
        yield PluginState(
            config_dir=config_dir,
            alpha=alpha,
            empty=empty,
            broken_file=broken,
            tracking_uri=mlflow_server.url,
            drift_run_id=ours,
            foreign_run_id=foreign,
            pipeline_run_key=run_key,
        )
    finally:
        if previous is None:
            os.environ.pop("RETRAIN_CONFIG", None)
        else:
            os.environ["RETRAIN_CONFIG"] = previous


@pytest.fixture
def state(plugin_state: PluginState, monkeypatch: pytest.MonkeyPatch) -> PluginState:
    """The session's state, with ``$RETRAIN_CONFIG`` pointing at it for this test."""
    monkeypatch.setenv("RETRAIN_CONFIG", str(plugin_state.config_dir))
    return plugin_state


def dag_runs(dag_id: str) -> list[Any]:
    """The DAG runs of ``dag_id`` in Airflow's DB, oldest first."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        runs = list(
            session.scalars(select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.id))
        )
        session.expunge_all()
        return runs
