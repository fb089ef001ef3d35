"""``retrain.overview``: a model's page data read from a real MLflow server and its log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sklearn.pipeline import Pipeline

from retrain.config import RetrainConfig
from retrain.errors import RetrainError
from retrain.log import LogStore, RetrainingRecord
from retrain.overview import ModelOverview, model_overview, model_row
from retrain.registry import ModelRegistry
from tests.registry_builders import Fleet, make_data, make_pipeline_model

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)  # a Monday


@pytest.fixture(scope="module")
def fitted() -> Pipeline:
    return make_pipeline_model()


@pytest.fixture
def config(make_config: Callable[..., RetrainConfig], tmp_path: Path) -> RetrainConfig:
    return make_config(storage={"work_dir": str(tmp_path / "work")})


@pytest.fixture
def fleet(config: RetrainConfig, fitted: Pipeline) -> Fleet:
    return Fleet(ModelRegistry(config, actor="alice"), fitted, make_data(10, seed=3)[0])


def overview(config: RetrainConfig, **kwargs: Any) -> ModelOverview:
    return model_overview(
        config, registry=ModelRegistry(config), log=LogStore.of(config), now=NOW, **kwargs
    )


class TestModelOverview:
    def test_what_serves_what_served_and_what_a_rollback_restores(
        self, config: RetrainConfig, fleet: Fleet
    ) -> None:
        first = fleet.to_production()
        second = fleet.to_production()
        page = overview(config)
        assert (page.production, page.canary) == (second, None)
        assert page.rollback_to == first and page.rollback_note == ""
        assert [v.version for v in page.versions] == [second, first]
        assert "production" in page.versions[0].aliases
        assert [(c.from_version, c.to_version) for c in page.timeline][:2] == [
            (first, second),
            (None, first),
        ]

        ModelRegistry(config, actor="bob").rollback(reason="bad <b>canary</b> numbers")
        page = overview(config)
        assert page.production == first
        newest = page.timeline[0]
        assert (newest.op, newest.actor, newest.reason) == (
            "rollback",
            "bob",
            "bad <b>canary</b> numbers",
        )
        assert page.rollback_to == second, "a rollback of a rollback restores what served"
        statuses = {v.version: v.status for v in page.versions}
        assert statuses[second] == "rolled_back"

    def test_next_runs_come_from_both_schedules(self, config: RetrainConfig) -> None:
        page = overview(config)
        assert page.next_runs == {
            "weekly": "2026-12-07T06:00:00+00:00",
            "full_rebuild": "2026-12-06T20:00:00+00:00",
        }

    def test_a_model_nothing_was_registered_for_has_an_empty_page(
        self, config: RetrainConfig
    ) -> None:
        page = overview(config)
        assert page.production is None and page.versions == () and page.timeline == ()
        assert page.rollback_to is None and "no version is in production" in page.rollback_note

    def test_the_log_drift_and_canary_verdict_come_from_the_newest_records(
        self, config: RetrainConfig
    ) -> None:
        log = LogStore.of(config)
        log.write(
            RetrainingRecord(
                retraining_id="retrain_1",
                trigger="scheduled",
                start_time="2026-11-29T06:00:00+00:00",
                status="deployed",
                drift={"drift_count": 1, "drift_share": 0.33, "severity": {"x1": "high"}},
                online={"decision": "promote", "action": "promoted"},
                cadence={"cadence": "weekly"},
            )
        )
        log.write(
            RetrainingRecord(
                retraining_id="retrain_2",
                trigger="manual",
                start_time="2026-11-30T06:00:00+00:00",
                status="rejected",
            )
        )
        page = overview(config)
        assert [r.retraining_id for r in page.records] == ["retrain_2", "retrain_1"]
        assert page.drift is not None and page.drift.retraining_id == "retrain_1"
        assert dict(page.drift.severity) == {"x1": "high"}
        assert page.canary_verdict["decision"] == "promote"
        assert page.cadence["cadence"] == "weekly"
        assert model_row(config, registry=ModelRegistry(config), log=log).last_run is not None

    def test_an_unreachable_registry_raises_a_clear_error(
        self, make_config: Callable[..., RetrainConfig]
    ) -> None:
        config = make_config(registry={"tracking_uri": "http://127.0.0.1:1", "max_retries": 0})
        with pytest.raises(RetrainError):
            model_overview(config, registry=ModelRegistry(config), log=LogStore.of(config))
        row = model_row(config, registry=ModelRegistry(config), log=LogStore.of(config))
        assert row.error and row.production is None


class TestCanaryLooks:
    def test_the_judges_looks_come_back_oldest_first_from_the_canary_run(
        self, config: RetrainConfig
    ) -> None:
        from mlflow import MlflowClient

        from retrain.canary import Decision
        from retrain.overview import CANARY_RUN_TAG, canary_looks
        from retrain.tracking import ensure_experiment

        client = MlflowClient(config.registry.tracking_uri)
        experiment = ensure_experiment(client, config.experiment_name)
        run = client.create_run(experiment, tags={CANARY_RUN_TAG: f"{config.model.name}/v3"})
        looks = [(-0.2, 0.1, 50, 0), (-0.05, 0.04, 400, 0), (-0.006, 0.03, 900, 1)]
        for step, (lower, upper, labels, decision) in enumerate(looks):
            stamp = 1_700_000_000_000 + step * 60_000
            for name, value in {
                "lower": lower,
                "upper": upper,
                "d_hat": (lower + upper) / 2,
                "canary_labels": labels,
                "production_labels": labels * 9,
                "decision": decision,
            }.items():
                client.log_metric(run.info.run_id, f"canary_{name}", value, timestamp=stamp)
        got = canary_looks(client, config, 3)
        assert [(g.lower, g.upper, g.canary_labels) for g in got] == [
            (lower, upper, labels) for lower, upper, labels, _ in looks
        ]
        assert got[-1].decision is Decision.PROMOTE and got[0].decision is Decision.CONTINUE
        assert canary_looks(client, config, 4) == ()
