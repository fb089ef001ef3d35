"""retrain_canary on real Airflow (dag.test) and a real MLflow server: with
``promote_to_production: judge`` the pipeline stops at canary, the judge rolls a worse canary back
(incident, production unchanged) and takes a better one to production."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from retrain.canary_watch import canary_start, prediction_log
from retrain.config import RetrainConfig
from retrain.log import LogStore
from retrain.registry import ModelRegistry
from tests import airflow_harness as af
from tests.helpers import churn_sections, serve, write_config
from tools.synthetic import StreamSpec, write_stream

SPEC = StreamSpec(weeks=3, rows_per_week=1500, drift_week=None)


@pytest.fixture(scope="module")
def airflow_db() -> None:
    af.migrate()


@pytest.fixture
def config(
    airflow_db: None,
    make_config: Callable[..., RetrainConfig],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> RetrainConfig:
    data = tmp_path / "events"
    write_stream(data, SPEC)
    config = make_config(
        **churn_sections(
            data,
            params={"max_iter": 40},
            data={"training_window_days": 21},
            storage={"work_dir": str(tmp_path / "work")},
            triggers={"cooldown_hours": 0},
            schedule={"retries": 0},
            deployment={"promote_to_production": "judge"},
            canary={"min_labels_per_arm": 100, "min_bake_minutes": 0, "planned_labels": 1000},
        )
    )
    monkeypatch.setenv("RETRAIN_CONFIG", str(write_config(config, tmp_path / "c.yaml")))
    return config


def retrain(reason: str) -> Any:
    run = af.get_dag("retrain_pipeline").test(
        run_conf={
            "force": True,
            "reason": reason,
            "as_of": (SPEC.start + timedelta(weeks=3)).isoformat(),
        }
    )
    assert str(run.state) == "success", af.states(run)
    return af.xcom(run, "finish")


def canary_traffic(config: RetrainConfig, canary: int, production: int, accuracy: float) -> str:
    """Labelled traffic of both arms (9:1) since the canary started; the time to judge at."""
    registry = ModelRegistry(config)
    start = canary_start(registry, canary)
    engine = prediction_log(config)
    name = config.model.name
    serve(
        engine,
        name,
        version=production,
        arm="production",
        n=3600,
        accuracy=0.85,
        start=start,
        seed=canary,
    )
    serve(
        engine,
        name,
        version=canary,
        arm="canary",
        n=400,
        accuracy=accuracy,
        start=start,
        seed=canary + 100,
    )
    return (start + timedelta(minutes=30)).isoformat()


def test_the_judge_rolls_back_a_worse_canary_and_promotes_a_better_one(
    config: RetrainConfig,
) -> None:
    assert retrain("first model")["status"] == "deployed", "a first model needs no judge"
    assert retrain("second")["status"] == "canary", "with judge, deploy stops at canary"
    registry = ModelRegistry(config)
    assert {a: v.version for a, v in registry.current().items()} == {
        "production": 1,
        "canary": 2,
    }

    now = canary_traffic(config, canary=2, production=1, accuracy=0.55)
    run = af.get_dag("retrain_canary").test(run_conf={"as_of": now})
    assert str(run.state) == "success", af.states(run)
    assert af.xcom(run, "judge")["action"] == "rolled back"
    assert {a: v.version for a, v in registry.current().items()} == {"production": 1}
    assert registry.get_version(2).status == "rejected"
    incident = registry.history(limit=1)[0]
    assert (incident.op, incident.from_version) == ("reject", 2)

    assert retrain("third")["status"] == "canary"
    now = canary_traffic(config, canary=3, production=1, accuracy=0.97)
    run = af.get_dag("retrain_canary").test(run_conf={"as_of": now})
    assert str(run.state) == "success", af.states(run)
    assert af.xcom(run, "judge")["action"] == "promoted"
    assert registry.current()["production"].version == 3
    assert "canary" not in registry.current()

    store = LogStore.of(config)
    online = {r.model_version: r.online for r in store.records() if r.online}
    assert {v: o["action"] for v, o in online.items()} == {"2": "rolled back", "3": "promoted"}
    assert {r.model_version: r.status for r in store.records()} == {
        "1": "deployed",
        "2": "rejected",
        "3": "deployed",
    }
    full = {v: store.get(r.retraining_id) for r in store.records() if (v := r.model_version)}
    assert full["2"].online["interval"][1] < 0 < full["3"].online["interval"][0]


def test_without_a_canary_the_run_is_skipped(config: RetrainConfig) -> None:
    assert retrain("first model")["status"] == "deployed"
    run = af.get_dag("retrain_canary").test()
    assert af.states(run) == {"judge": "skipped"}
