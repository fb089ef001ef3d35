"""retrain.canary_watch: the canary's evidence from the prediction log, the judge, the action.

On a real MLflow server: v1 serves production, v2 is the canary; predictions and labels are
written to a SQLite serving database as ``retrain serve`` writes them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from mlflow import MlflowClient

from retrain.canary import Decision
from retrain.canary_watch import arm_stats, canary_start, outcomes, watch
from retrain.config import RetrainConfig
from retrain.errors import DataError
from retrain.registry import ModelRegistry
from retrain.serving.tables import LABELS, create_tables, open_engine
from tests.helpers import serve
from tests.registry_builders import Fleet, RecordingNotifier, make_data, make_pipeline_model

CANARY = {
    "alpha": 0.05,
    "margin": 0.01,
    "planned_labels": 1000,
    "min_labels_per_arm": 100,
    "min_bake_minutes": 0,
    "max_duration_hours": 2,
}


@pytest.fixture
def config(make_config: Callable[..., RetrainConfig], tmp_path: Path) -> RetrainConfig:
    return make_config(
        storage={"work_dir": str(tmp_path / "work")},
        canary=CANARY,
        deployment={"promote_to_production": "judge"},
    )


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    engine = open_engine(f"sqlite:///{tmp_path / 'predictions.db'}")
    create_tables(engine)
    return engine


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def registry(config: RetrainConfig, notifier: RecordingNotifier) -> ModelRegistry:
    return ModelRegistry(config, actor="judge", notifier=notifier)


def to_canary(registry: ModelRegistry) -> int:
    """v1 in production, v2 (with its reference profile, which production needs) in canary."""
    fleet = Fleet(registry, make_pipeline_model(), make_data(20, seed=1)[0])
    fleet.to_production()
    version = fleet.register(profile={"features": {}})
    registry.promote(version, "canary", reason="set-up")
    return version


@pytest.fixture
def canary(registry: ModelRegistry) -> int:
    return to_canary(registry)


def traffic(
    engine: sa.Engine, registry: ModelRegistry, canary: int, *, canary_accuracy: float, n: int
) -> datetime:
    """Both arms' labelled traffic since the canary started (9:1); the time to judge at."""
    start = canary_start(registry, canary)
    model = registry.name
    serve(
        engine,
        model,
        version=canary - 1,
        arm="production",
        n=9 * n,
        accuracy=0.85,
        start=start,
        seed=1,
    )
    serve(
        engine,
        model,
        version=canary,
        arm="canary",
        n=n,
        accuracy=canary_accuracy,
        start=start,
        seed=2,
    )
    return start + timedelta(minutes=30)


class TestEvidence:
    def test_labels_by_request_and_by_entity_answer_their_predictions(
        self, engine: sa.Engine
    ) -> None:
        start = datetime(2026, 11, 30, 12, tzinfo=UTC)
        serve(engine, "m", version=1, arm="production", n=200, accuracy=0.8, start=start, seed=1)
        serve(
            engine,
            "m",
            version=2,
            arm="canary",
            n=100,
            accuracy=0.5,
            start=start,
            seed=2,
            label_by="entity",
        )
        frame = outcomes(
            engine,
            "m",
            {"production": 1, "canary": 2},
            since=start,
            until=start + timedelta(hours=1),
        )
        stats = arm_stats(frame, since=start, until=start + timedelta(hours=1), window_minutes=1)
        assert (stats["production"].labelled, stats["canary"].labelled) == (200, 100)
        rng = np.random.default_rng(1)
        assert stats["production"].correct == int((rng.random(200) < 0.8).sum())
        rng = np.random.default_rng(2)
        assert stats["canary"].correct == int((rng.random(100) < 0.5).sum())
        assert stats["canary"].requests == 100
        # the canary served for 100 s: windows 0 and 1 are shared and complete
        assert stats["canary"].latency_p95_ms == (2.0, 2.0)

    def test_an_unlabelled_prediction_and_another_model_count_for_nothing(
        self, engine: sa.Engine
    ) -> None:
        start = datetime(2026, 11, 30, 12, tzinfo=UTC)
        serve(engine, "m", version=1, arm="production", n=10, accuracy=1.0, start=start, seed=1)
        serve(engine, "other", version=2, arm="canary", n=10, accuracy=1.0, start=start, seed=2)
        with engine.begin() as connection:
            connection.execute(sa.delete(LABELS).where(LABELS.c.request_id == "production-1-0"))
        frame = outcomes(
            engine,
            "m",
            {"production": 1, "canary": 2},
            since=start,
            until=start + timedelta(hours=1),
        )
        stats = arm_stats(frame, since=start, until=start + timedelta(hours=1), window_minutes=5)
        assert (stats["production"].labelled, stats["production"].requests) == (9, 10)
        assert stats["canary"].requests == 0


class TestWatch:
    def test_a_worse_canary_is_rolled_back_with_an_incident_and_production_stays(
        self,
        config: RetrainConfig,
        registry: ModelRegistry,
        engine: sa.Engine,
        canary: int,
        notifier: RecordingNotifier,
    ) -> None:
        now = traffic(engine, registry, canary, canary_accuracy=0.60, n=400)
        client = MlflowClient(registry.tracking_uri, registry.tracking_uri)

        watched = watch(config, registry, engine, now=now, client=client)

        assert watched.evaluation is not None
        assert watched.evaluation.decision is Decision.ROLLBACK
        assert watched.action == "rolled back"
        current = registry.current()
        assert current["production"].version == canary - 1
        assert "canary" not in current
        assert registry.get_version(canary).status == "rejected"
        entry = registry.history(limit=1)[0]
        assert (entry.op, entry.from_version) == ("reject", canary)
        assert entry.reason.startswith("canary judge: ")
        assert [n.level for n in notifier.sent if n.event == "rejection"] == ["critical"]
        runs = client.search_runs(
            [client.get_experiment_by_name(config.experiment_name).experiment_id],
            filter_string=f"tags.`retrain.canary` = '{config.model.name}/v{canary}'",
        )
        assert len(runs) == 1
        assert runs[0].data.tags["retrain.canary_action"] == "rolled back"
        assert runs[0].data.metrics["canary_upper"] < 0
        artifacts = [a.path for a in client.list_artifacts(runs[0].info.run_id)]
        assert "canary.png" in artifacts

    def test_a_better_canary_is_promoted_through_the_checklist(
        self, config: RetrainConfig, registry: ModelRegistry, engine: sa.Engine, canary: int
    ) -> None:
        now = traffic(engine, registry, canary, canary_accuracy=0.97, n=400)

        watched = watch(config, registry, engine, now=now)

        assert watched.action == "promoted", watched.detail
        assert registry.current()["production"].version == canary
        assert registry.history(limit=1)[0].reason.startswith("canary judge: ")

    def test_with_too_few_labels_nothing_moves(
        self, config: RetrainConfig, registry: ModelRegistry, engine: sa.Engine, canary: int
    ) -> None:
        now = traffic(engine, registry, canary, canary_accuracy=0.2, n=50)

        watched = watch(config, registry, engine, now=now)

        assert watched.evaluation is not None
        assert watched.evaluation.decision is Decision.CONTINUE
        assert "min_labels" in " ".join(watched.evaluation.reasons) or "labels" in " ".join(
            watched.evaluation.reasons
        )
        assert registry.current()["canary"].version == canary

    def test_a_promotion_that_needs_approval_waits_and_moves_nothing(
        self,
        make_config: Callable[..., RetrainConfig],
        tmp_path: Path,
        engine: sa.Engine,
        notifier: RecordingNotifier,
    ) -> None:
        config = make_config(
            storage={"work_dir": str(tmp_path / "work")},
            canary=CANARY,
            deployment={"promote_to_production": "judge", "require_approval": True},
        )
        registry = ModelRegistry(config, actor="judge", notifier=notifier)
        canary = Fleet(registry, make_pipeline_model(), make_data(20, seed=1)[0]).bring_to("canary")
        now = traffic(engine, registry, canary, canary_accuracy=0.97, n=400)

        watched = watch(config, registry, engine, now=now)

        assert watched.action == "awaiting approval"
        assert registry.current()["canary"].version == canary
        assert registry.current()["production"].version == canary - 1

    def test_no_canary_is_said_and_nothing_is_read(
        self, config: RetrainConfig, registry: ModelRegistry, engine: sa.Engine
    ) -> None:
        Fleet(registry, make_pipeline_model(), make_data(20, seed=1)[0]).to_production()
        assert watch(config, registry, engine).action == "no canary"


class TestErrors:
    def test_failed_rows_count_as_errors_never_as_labelled(self, engine: sa.Engine) -> None:
        start = datetime(2026, 11, 30, 12, tzinfo=UTC)
        serve(engine, "m", version=2, arm="canary", n=30, accuracy=1.0, start=start, seed=2)
        serve(
            engine,
            "m",
            version=2,
            arm="canary",
            n=10,
            accuracy=1.0,
            start=start,
            seed=3,
            error="m v2 could not predict: ValueError: boom",
        )
        until = start + timedelta(hours=1)
        frame = outcomes(engine, "m", {"production": 1, "canary": 2}, since=start, until=until)
        stats = arm_stats(frame, since=start, until=until, window_minutes=5)["canary"]
        assert (stats.requests, stats.errors, stats.labelled, stats.correct) == (40, 10, 30, 30)

    def test_a_canary_that_fails_requests_is_rolled_back(
        self, config: RetrainConfig, registry: ModelRegistry, engine: sa.Engine, canary: int
    ) -> None:
        start = canary_start(registry, canary)
        name = registry.name
        serve(
            engine,
            name,
            version=canary - 1,
            arm="production",
            n=2700,
            accuracy=0.85,
            start=start,
            seed=1,
        )
        serve(engine, name, version=canary, arm="canary", n=250, accuracy=0.85, start=start, seed=2)
        serve(
            engine,
            name,
            version=canary,
            arm="canary",
            n=50,
            accuracy=0.85,
            start=start,
            seed=3,
            error="could not predict",
        )

        watched = watch(config, registry, engine, now=start + timedelta(minutes=50))

        assert watched.action == "rolled back"
        assert "error-rate guardrail" in " ".join(
            watched.evaluation.reasons if watched.evaluation else ()
        )
        assert "canary" not in registry.current()


class TestLabelsFromTheEventSource:
    def test_an_entitys_first_event_after_the_prediction_labels_it(self, engine: sa.Engine) -> None:
        start = datetime(2026, 11, 30, 12, tzinfo=UTC)
        serve(engine, "m", version=1, arm="production", n=4, accuracy=1.0, start=start, seed=1)
        with engine.begin() as connection:
            connection.execute(sa.delete(LABELS))  # no /feedback: labels come from the events
        entity = "e-production-1-{}".format
        events = pd.DataFrame(
            {
                "entity_id": [entity(0), entity(0), entity(1), entity(2), entity(3)],
                "event_time": [
                    start - timedelta(hours=1),  # before the prediction: not its outcome
                    start + timedelta(hours=2),  # the first after it: labels it (right)
                    start + timedelta(hours=1),  # wrong
                    start + timedelta(days=30),  # beyond the horizon: still unlabelled
                    start + timedelta(minutes=5),  # right
                ],
                "label": [0, 1, 0, 1, 1],
            }
        )
        until = start + timedelta(hours=3)
        frame = outcomes(
            engine,
            "m",
            {"production": 1, "canary": 2},
            since=start,
            until=until,
            events=events,
            horizon=timedelta(days=7),
        )
        stats = arm_stats(frame, since=start, until=until, window_minutes=5)["production"]
        assert (stats.labelled, stats.correct, stats.requests) == (3, 2, 4)

    def test_the_event_source_is_read_only_with_an_entity_column(
        self, make_config: Callable[..., RetrainConfig], tmp_path: Path
    ) -> None:
        from retrain.canary_watch import events_for_labels

        start = datetime(2026, 11, 30, 12, tzinfo=UTC)
        assert events_for_labels(make_config(), since=start, until=start) is None
        data = tmp_path / "data"  # make_config's data.source.path
        data.mkdir()
        pd.DataFrame(
            {
                "event_time": [start + timedelta(hours=1)],  # make_config's time column
                "customer": ["c1"],
                "x1": [0.1],
                "x2": [0.2],
                "segment": ["a"],
                "label": [1],
            }
        ).to_parquet(data / "part-0.parquet")
        config = make_config(serving={"entity_column": "customer"})
        events = events_for_labels(config, since=start, until=start)
        assert events is not None
        assert events.to_dict("records")[0]["entity_id"] == "c1"
        missing = make_config(serving={"entity_column": "account"})
        with pytest.raises(DataError, match="account"):
            events_for_labels(missing, since=start, until=start)
