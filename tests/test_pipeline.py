from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrain import pipeline
from retrain.config import RetrainConfig
from retrain.log import LogStore
from retrain.pipeline import RunOptions, Services
from retrain.registry import ModelRegistry
from retrain.tracking import tracking_client
from tests.helpers import churn_sections, merge_sections, run_record
from tools.synthetic import StreamSpec, generate_week, write_stream

SPEC = StreamSpec(weeks=8, rows_per_week=2000, drift_week=5)
WEEK = timedelta(weeks=1)
RULES = {
    "performance_based": {"trigger": "accuracy_drops_below_0.85", "condition": "accuracy < 0.85"},
    "drift_based": {
        "trigger": "high_data_drift",
        "condition": "drift_count > 3",
        "action": "investigate_and_retrain",
    },
    "data_based": {"trigger": "new_data_volume", "condition": "new_samples > 100000"},
}


def churn(
    make_config: Callable[..., RetrainConfig], data: Path, work: Path, **extra: Any
) -> RetrainConfig:
    sections = churn_sections(
        data,
        params={"max_iter": 60},
        data={"training_window_days": 21},
        retraining_rules=RULES,
        triggers={"cooldown_hours": 0},
        storage={"work_dir": str(work)},
    )
    return make_config(**merge_sections(sections, extra))


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("churn") / "events"
    write_stream(root, SPEC)
    return root


def deployed(result: pipeline.Deployed) -> pipeline.Results:
    results = pipeline.Results()
    results.put("deploy", result)
    return results


def records(config: RetrainConfig) -> list[Any]:
    return LogStore.of(config).records()


class TestRetrainingStory:
    """Bootstrap -> quiet week -> drift -> worse candidate, on one registered model."""

    def test_story(
        self, make_config: Callable[..., RetrainConfig], stream: Path, tmp_path: Path
    ) -> None:
        config = churn(make_config, stream, tmp_path / "work")
        registry = ModelRegistry(config)

        # 1. bootstrap: first scheduled run trains v1 -> production
        first = run_record(config, trigger="scheduled", as_of=SPEC.start + 4 * WEEK)
        assert first["status"] == "deployed", first["notes"]
        assert first["model_version"] == "1"
        assert "bootstrap: no trained model yet" in first["trigger_reasons"]
        assert registry.current()["production"].version == 1
        assert all(item["passed"] for item in first["checklist"])
        assert first["metrics"]["accuracy"] > 0.9
        assert first["baseline_metrics"] == {}

        # 2. a quiet week: nothing fires, the run short-circuits and says why
        quiet = run_record(config, trigger="scheduled", as_of=SPEC.start + 5 * WEEK)
        assert quiet["status"] == "skipped"
        assert quiet["notes"].startswith("no rule fired")
        assert quiet["model_version"] is None
        assert registry.current()["production"].version == 1

        # 3. drift weeks: performance and drift rules fire, v2 passes gate and A/B, promoted
        drift = run_record(config, trigger="scheduled", as_of=SPEC.start + 7 * WEEK)
        assert drift["status"] == "deployed", drift["notes"]
        assert any(
            r.startswith("accuracy_drops_below_0.85: accuracy 0.") for r in drift["trigger_reasons"]
        )
        assert any(r.startswith("high_data_drift: drift_count") for r in drift["trigger_reasons"])
        assert drift["metrics"]["accuracy"] > drift["baseline_metrics"]["accuracy"] + 0.1
        assert drift["gate"]["status"] == "passed"
        assert drift["ab_test"]["winner"] == "candidate" and drift["ab_test"]["significant"]
        assert drift["ab_test"]["p_value"] < 0.001
        current = registry.current()
        assert current["production"].version == 2
        moves = [(e.op, e.alias, e.to_version) for e in reversed(registry.history())]
        assert ("promote", "canary", 2) in moves and ("promote", "production", 2) in moves

        # 4. a worse candidate is rejected; production unchanged; the log says why
        worse = churn(
            make_config,
            stream,
            tmp_path / "work",
            model={
                "estimator": {
                    "class": "sklearn.dummy.DummyClassifier",
                    "params": {"strategy": "most_frequent"},
                }
            },
        )
        rejected = run_record(worse, trigger="manual", as_of=SPEC.start + 7 * WEEK)
        assert rejected["status"] == "rejected"
        assert "accuracy" in rejected["notes"] and "threshold 0.85" in rejected["notes"]
        assert rejected["model_version"] is None
        assert registry.current()["production"].version == 2
        assert len(registry.versions()) == 2, "a rejected candidate is never registered"

        # every run is in the retraining log, newest first, with the seed's fields
        log = records(config)
        assert [r.status for r in log] == ["rejected", "deployed", "skipped", "deployed"]
        seed = log[0].seed_view()
        assert list(seed) == [
            "retraining_id",
            "trigger",
            "start_time",
            "end_time",
            "training_duration_minutes",
            "data_version",
            "new_samples",
            "model_version",
            "metrics",
            "baseline_metrics",
            "status",
            "notes",
        ]


def _write(frame: pd.DataFrame, root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(root / "part-0.parquet", index=False)
    return root


WEEK0 = generate_week(StreamSpec(rows_per_week=1500, drift_week=None), 0)


class TestInvalidData:
    @pytest.mark.parametrize(
        ("frame", "as_of_weeks", "fragment"),
        [
            pytest.param(
                WEEK0.drop(columns=["tenure"]),
                1,
                "column 'tenure': required but missing",
                id="missing column",
            ),
            pytest.param(WEEK0.assign(churned=0), 1, "only one class", id="one class"),
            pytest.param(
                WEEK0.assign(churned=np.where(np.arange(1500) % 50 == 0, np.nan, WEEK0["churned"])),
                1,
                "label 'churned': 30 missing values",
                id="NaN labels",
            ),
            pytest.param(WEEK0, -1, "no rows in the training window", id="empty window"),
        ],
    )
    def test_fails_at_validation_and_registers_nothing(
        self,
        make_config: Callable[..., RetrainConfig],
        tmp_path: Path,
        frame: pd.DataFrame,
        as_of_weeks: int,
        fragment: str,
    ) -> None:
        config = churn(make_config, _write(frame, tmp_path / "data"), tmp_path / "work")
        record = run_record(config, trigger="manual", as_of=SPEC.start + as_of_weeks * WEEK)
        assert record["status"] == "failed"
        assert record["failed_step"] == "validate"
        assert fragment in record["error"]
        assert record["error"].startswith("DataError")
        client = tracking_client(config)
        assert client.search_registered_models(f"name='{config.model.name}'") == []
        logged = records(config)
        assert len(logged) == 1 and logged[0].status == "failed"
        assert fragment in (logged[0].error or "")


class TestIdempotentSteps:
    def test_rerunning_steps_changes_nothing(
        self, make_config: Callable[..., RetrainConfig], stream: Path, tmp_path: Path
    ) -> None:
        config = churn(make_config, stream, tmp_path / "work")
        as_of = SPEC.start + 3 * WEEK
        services = Services.build(config)
        options = RunOptions(trigger="manual", run_key="dag-run-1", as_of=as_of)
        ctx = pipeline.start(services, options)
        again = pipeline.start(services, options)
        assert (again.retraining_id, again.mlflow_run_id) == (ctx.retraining_id, ctx.mlflow_run_id)
        ctx = pipeline.check(services, ctx).context

        ex1 = pipeline.extract_step(services, ctx)
        ex2 = pipeline.extract_step(services, ctx)
        assert ex1 == ex2
        val = pipeline.validate_step(services, ctx, ex1)
        tr1 = pipeline.train_step(services, ctx, ex1)
        tr2 = pipeline.train_step(services, ctx, ex1)
        assert tr1.fit.preprocessing_fingerprint == tr2.fit.preprocessing_fingerprint
        ev = pipeline.evaluate_step(services, ctx, tr2, ex2)
        assert pipeline.evaluate_step(services, ctx, tr2, ex2).candidate == ev.candidate
        cmp = pipeline.compare_step(services, ctx, ev)
        inputs = (ex1, val, tr2, ev, cmp)
        first = pipeline.deploy_step(services, ctx, *inputs)
        second = pipeline.deploy_step(services, ctx, *inputs)
        assert first.version == second.version == 1
        assert second.stage == "production"
        registry = ModelRegistry(config)
        assert len(registry.versions()) == 1
        history = registry.history()
        pipeline.deploy_step(services, ctx, *inputs)
        assert len(registry.history()) == len(history), "no alias moved on a re-run"
        rec1, _ = pipeline.finish(services, ctx, deployed(first))
        rec2, _ = pipeline.finish(services, ctx, deployed(second))
        assert rec1.retraining_id == rec2.retraining_id
        assert len(records(config)) == 1


class TestNativeCategoricalEncoding:
    def test_bootstrap_and_drift_runs_register_models_that_load(
        self, make_config: Callable[..., RetrainConfig], stream: Path, tmp_path: Path
    ) -> None:
        config = churn(
            make_config, stream, tmp_path / "work", model={"categorical_encoding": "native"}
        )
        first = run_record(config, trigger="scheduled", as_of=SPEC.start + 4 * WEEK)
        assert first["status"] == "deployed", first["notes"]
        assert all(item["passed"] for item in first["checklist"])
        drift = run_record(config, trigger="scheduled", as_of=SPEC.start + 7 * WEEK)
        assert drift["status"] == "deployed", drift["notes"]
        assert drift["metrics"]["accuracy"] > drift["baseline_metrics"]["accuracy"] + 0.1
        served = ModelRegistry(config).load_model("production")
        encoder = served.named_steps["preprocess"].named_transformers_["categorical"]
        assert type(encoder).__name__ == "OrdinalEncoder"
        assert served.named_steps["model"].is_categorical_.sum() == 3


class TestStaleData:
    def test_scheduled_run_skips_when_the_training_window_is_empty(
        self, make_config: Callable[..., RetrainConfig], stream: Path, tmp_path: Path
    ) -> None:
        config = churn(
            make_config,
            stream,
            tmp_path / "work",
            triggers={"cooldown_hours": 0},
            cadence={"monthly_days": 7},
        )
        first = run_record(config, trigger="manual", as_of=SPEC.start + 4 * WEEK)
        assert first["status"] == "deployed"
        late = run_record(config, trigger="scheduled", as_of=SPEC.start + 30 * WEEK)
        assert late["status"] == "skipped"
        assert "no rows in the 21-day training window" in late["notes"]
        assert "stale data" in late["notes"]

    @pytest.mark.parametrize(
        ("window", "mode"),
        [
            pytest.param({"training_window_days": None}, "weekly", id="window: all history"),
            pytest.param({}, "full_rebuild", id="full rebuild"),
        ],
    )
    def test_a_scheduled_run_with_no_rows_at_all_skips_even_its_bootstrap(
        self,
        make_config: Callable[..., RetrainConfig],
        stream: Path,
        tmp_path: Path,
        window: dict[str, Any],
        mode: str,
    ) -> None:
        """With all history as the window (the shipped config, or a full rebuild), a scheduled
        run before any data stops at ``check`` instead of failing at ``validate``."""
        config = churn(make_config, stream, tmp_path / "work")
        if window:
            data = config.data.model_copy(update=window)
            config = config.model_copy(update={"data": data})
        early = run_record(config, trigger="scheduled", as_of=SPEC.start - WEEK, mode=mode)
        assert early["status"] == "skipped"
        assert "no rows in the training data (all history)" in early["notes"]
