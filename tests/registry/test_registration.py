"""Registration (retrain.registry.registration): log, check and register a model as a version,
idempotently, against a real MLflow server."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.pipeline import Pipeline

from retrain.errors import RegistryError
from retrain.registry import ModelRegistry, VersionRecord, pinned_requirements
from retrain.registry.artifacts import artifact_text
from retrain.registry.registration import Registrar, key_digest
from retrain.serialization import dumps_trusted
from tests.registry_builders import (
    FEATURES,
    BrokenPredict,
    Fleet,
    LosesStateWhenSaved,
    Majority,
    make_pipeline_model,
    record,
)


class TestRegister:
    def test_registers_a_staging_version_loadable_by_alias(
        self, registry: ModelRegistry, fitted: Pipeline, example: pd.DataFrame
    ) -> None:
        info = registry.register(
            fitted,
            input_example=example,
            record=record(),
            idempotency_key="run-1:register",
            reference_profile={"features": {"x1": {"bins": [0, 1]}}},
        )

        assert (info.version, info.status, info.aliases, info.created) == (
            1,
            "staging",
            ("staging",),
            True,
        )
        loaded = registry.load_model("staging")
        np.testing.assert_array_equal(loaded.predict(example), fitted.predict(example))
        profile = registry.reference_profile(1)
        assert profile == {"features": {"x1": {"bins": [0, 1]}}}
        profile["features"].clear()  # a caller's change never reaches the next reader
        downloads = artifact_text.cache_info().misses
        assert registry.reference_profile(1) == {"features": {"x1": {"bins": [0, 1]}}}
        assert artifact_text.cache_info().misses == downloads, "downloaded once per process"

    def test_version_carries_the_seed_record_and_lineage(
        self, registry: ModelRegistry, fitted: Pipeline, example: pd.DataFrame
    ) -> None:
        os.environ["RETRAIN_GIT_COMMIT"] = "abc123"
        try:
            info = registry.register(
                fitted, input_example=example, record=record(), idempotency_key="k"
            )
        finally:
            del os.environ["RETRAIN_GIT_COMMIT"]

        rec = registry.get_version(info.version).record
        assert rec.algorithm == "LogisticRegression"
        assert rec.training_data_version == "2024-01-15"
        assert rec.metrics == {"accuracy": 0.913, "precision": 0.892, "recall": 0.875}
        assert list(rec.features) == FEATURES
        assert rec.status == "staging"
        assert rec.retraining_id == "retrain_20240115_001"
        assert list(rec.trigger_reasons) == ["weekly_retraining: days_since_training 8 > 7"]
        assert rec.gate == "passed"
        assert rec.watermark == "2024-01-15T01:59:00Z"
        assert rec.git_commit == "abc123"
        assert rec.version_id.startswith(f"{registry.name}-")
        assert rec.timestamp.endswith("Z")
        assert info.idempotency_key == "k"

    def test_registering_twice_with_one_key_returns_the_same_version(
        self, registry: ModelRegistry, fitted: Pipeline, example: pd.DataFrame
    ) -> None:
        first = registry.register(
            fitted, input_example=example, record=record(), idempotency_key="dag-run-7:task"
        )
        again = registry.register(
            fitted, input_example=example, record=record(), idempotency_key="dag-run-7:task"
        )

        assert (again.version, again.created) == (first.version, False)
        assert [v.version for v in registry.versions()] == [first.version]
        assert [e.op for e in registry.history()] == ["register"]

    def test_logs_into_the_given_run(
        self, registry: ModelRegistry, fitted: Pipeline, example: pd.DataFrame, tracking_uri: str
    ) -> None:
        client = MlflowClient(tracking_uri)
        experiment = client.create_experiment(f"exp-{uuid.uuid4().hex[:8]}")
        run = client.create_run(experiment)

        info = registry.register(
            fitted,
            input_example=example,
            record=record(),
            idempotency_key="k",
            run_id=run.info.run_id,
        )

        assert info.run_id == run.info.run_id
        assert client.get_run(run.info.run_id).info.status == "RUNNING"  # the caller ends it

    def test_registering_prints_nothing_to_stdout(
        self,
        registry: ModelRegistry,
        fitted: Pipeline,
        example: pd.DataFrame,
        monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str],
    ) -> None:
        monkeypatch.delenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT")

        registry.register(fitted, input_example=example, record=record(), idempotency_key="k")

        assert capfd.readouterr().out == ""

    def test_new_version_displaces_the_previous_staging_version(self, fleet: Fleet) -> None:
        first = fleet.register()
        second = fleet.register()

        assert fleet.registry.current()["staging"].version == second
        assert fleet.registry.get_version(first).status == "archived"

    @pytest.mark.parametrize(("given", "checked"), [(None, []), (["scikit-learn"], [1])])
    def test_mlflow_checks_only_requirements_not_read_from_this_environment(
        self,
        registry: ModelRegistry,
        fitted: Pipeline,
        *,
        example: pd.DataFrame,
        monkeypatch: pytest.MonkeyPatch,
        given: list[str] | None,
        checked: list[int],
    ) -> None:
        from mlflow.utils import environment

        calls: list[int] = []

        def spy(requirements: list[str]) -> None:
            calls.append(1)

        monkeypatch.setattr(environment, "warn_dependency_requirement_mismatches", spy)

        info = registry.register(
            fitted,
            input_example=example,
            record=record(),
            idempotency_key=uuid.uuid4().hex,
            pip_requirements=given,
        )

        assert calls == checked
        assert info.version >= 1
        assert environment.warn_dependency_requirement_mismatches is spy  # put back

    def test_stores_extra_artifacts_with_the_model(
        self, registry: ModelRegistry, fitted: Pipeline, example: pd.DataFrame, tmp_path: Path
    ) -> None:
        report = tmp_path / "report.json"
        report.write_text('{"ok": true}')
        info = registry.register(
            fitted,
            input_example=example,
            record=record(),
            idempotency_key="k",
            artifacts={"evaluation": report},
        )
        client = MlflowClient(registry.tracking_uri)
        uri = client.get_model_version_download_uri(registry.name, str(info.version))
        import mlflow

        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{uri}/extra_files/evaluation.json",
            dst_path=str(tmp_path / "dl"),
            tracking_uri=registry.tracking_uri,
        )
        assert json.loads(Path(local).read_text()) == {"ok": True}
        assert registry.reference_profile(info.version) is None

    @pytest.mark.parametrize(
        ("estimator", "message"),
        [
            pytest.param(BrokenPredict(), "cannot predict", id="a model whose predict raises"),
            pytest.param(
                LosesStateWhenSaved(),
                "failed its load check",
                id="a model that predicts in memory but not after loading",
            ),
        ],
    )
    def test_a_model_failing_its_load_check_gets_no_version_and_no_alias(
        self, registry: ModelRegistry, example: pd.DataFrame, estimator: Any, message: str
    ) -> None:
        model = make_pipeline_model(estimator)

        with pytest.raises(RegistryError, match=message):
            registry.register(model, input_example=example, record=record(), idempotency_key="k")

        assert registry.versions() == []
        assert registry.current() == {}
        assert registry.history() == []

    def test_known_trusted_types_are_used_and_a_wrong_list_admits_nothing(
        self, registry: ModelRegistry, example: pd.DataFrame
    ) -> None:
        model = make_pipeline_model(Majority())
        _, trusted = dumps_trusted(model)
        assert trusted == ["tests.registry_builders.Majority"]

        with pytest.raises(RegistryError, match="untrusted types"):
            registry.register(
                model, input_example=example, record=record(), idempotency_key="k", trusted_types=[]
            )
        assert registry.versions() == [] and registry.current() == {}

        info = registry.register(
            model,
            input_example=example,
            record=record(),
            idempotency_key="k",
            trusted_types=trusted,
        )
        assert info.version == 1
        np.testing.assert_array_equal(
            registry.load_model(1).predict(example), model.predict(example)
        )

    def test_a_failed_load_check_marks_the_logged_model_failed(
        self, registry: ModelRegistry, example: pd.DataFrame, tracking_uri: str
    ) -> None:
        model = make_pipeline_model(LosesStateWhenSaved())
        with pytest.raises(RegistryError):
            registry.register(model, input_example=example, record=record(), idempotency_key="k")

        client = MlflowClient(tracking_uri)
        experiment = client.get_experiment_by_name(registry.config.experiment_name)
        logged = client.search_logged_models(experiment_ids=[experiment.experiment_id])
        assert [str(m.status) for m in logged] == ["FAILED"]
        assert "failed its load check" in logged[0].tags["retrain.load_check"]

    @pytest.mark.parametrize(
        ("overrides", "problem"),
        [
            pytest.param({"gate": "maybe"}, "gate: expected one of", id="an unknown gate result"),
            pytest.param({"watermark": "yesterday"}, "not an ISO-8601", id="a bad watermark"),
            pytest.param({"metrics": {"accuracy": "high"}}, "metrics.accuracy", id="a bad metric"),
            pytest.param({"features": []}, "features: expected", id="no features"),
            pytest.param({"colour": "red"}, "unknown field 'colour'", id="an unknown field"),
        ],
    )
    def test_an_invalid_record_is_refused_before_anything_is_logged(
        self,
        registry: ModelRegistry,
        fitted: Pipeline,
        example: pd.DataFrame,
        overrides: dict[str, Any],
        problem: str,
    ) -> None:
        with pytest.raises(ValueError, match=problem):
            registry.register(
                fitted, input_example=example, record=record(**overrides), idempotency_key="k"
            )


class TestRaceCheck:
    """Two concurrent first attempts with one key leave one version: the lowest."""

    def test_a_later_version_with_the_same_key_is_deleted_and_the_first_returned(
        self, registry: ModelRegistry, fitted: Pipeline, example: pd.DataFrame
    ) -> None:
        first = registry.register(
            fitted, input_example=example, record=record(), idempotency_key="race"
        )
        # the loser of the race: its key search ran before the winner's version existed
        with registry._client.calls("test"):
            rec = replace(VersionRecord.from_value(record()), status="pending")
            mv, won = registry._registrar.create(
                fitted,
                example=example,
                rec=rec,
                key="race",
                digest=key_digest("race"),
                profile=None,
                run_id=None,
                artifacts={},
                requirements=pinned_requirements(),
                trusted_types=None,
                latest_before=None,
            )
        assert (int(mv.version), won) == (first.version, False)
        assert [v.version for v in registry.versions()] == [first.version]

    def test_the_next_version_number_skips_the_search(
        self,
        registry: ModelRegistry,
        fitted: Pipeline,
        example: pd.DataFrame,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        searches: list[str] = []
        find = Registrar.find

        def counted(self: Registrar, digest: str, **options: Any) -> Any:
            searches.append(digest)
            return find(self, digest, **options)

        monkeypatch.setattr(Registrar, "find", counted)
        registry.register(fitted, input_example=example, record=record(), idempotency_key="one")
        assert len(searches) == 1, "only the key search before creating: version 1 is the first"
