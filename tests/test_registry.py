"""The model registry against a real MLflow server (no MLflow mocks)."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.pipeline import Pipeline

from retrain.config import RetrainConfig, parse_config
from retrain.errors import RegistryError, UnknownModelError
from retrain.mlflow_server import MlflowServer, free_port
from retrain.registry import (
    ALIASES,
    STATUSES,
    TRANSITIONS,
    AuditEntry,
    ModelRegistry,
    VersionRecord,
    allowed_transition,
)
from retrain.registry.artifacts import ModelArtifacts, _artifact_text
from retrain.registry.audit import AuditStore
from retrain.registry.moves import AuditedMoves
from retrain.serialization import dumps_trusted
from tests.registry_builders import (
    FEATURES,
    BrokenPredict,
    Fleet,
    LosesStateWhenSaved,
    Majority,
    RecordingNotifier,
    config_dict,
    make_data,
    make_pipeline_model,
    record,
)


@pytest.fixture(scope="module")
def fitted() -> Pipeline:
    return make_pipeline_model()


@pytest.fixture(scope="module")
def example() -> pd.DataFrame:
    return make_data(20, seed=1)[0]


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def registry(
    make_config: Callable[..., RetrainConfig], notifier: RecordingNotifier
) -> ModelRegistry:
    return ModelRegistry(make_config(), actor="tester", notifier=notifier)


@pytest.fixture
def fleet(registry: ModelRegistry, fitted: Pipeline, example: pd.DataFrame) -> Fleet:
    return Fleet(registry, fitted, example)


# --- registration --------------------------------------------------------------------------------


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
        downloads = _artifact_text.cache_info().misses
        assert registry.reference_profile(1) == {"features": {"x1": {"bins": [0, 1]}}}
        assert _artifact_text.cache_info().misses == downloads, "downloaded once per process"

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


class TestVersionRecord:
    def test_round_trips_through_tags(self) -> None:
        rec = VersionRecord.from_value(record(version_id="v1", timestamp="2024-01-15T04:30:00"))

        assert VersionRecord.from_tags(rec.to_tags()) == rec
        assert rec.timestamp == "2024-01-15T04:30:00Z"

    def test_reports_every_problem_at_once(self) -> None:
        with pytest.raises(ValueError) as caught:
            VersionRecord.from_value(record(gate="x", watermark=None, algorithm=""))

        assert str(caught.value).count(";") == 2


# --- status flow ---------------------------------------------------------------------------------

# Every status a version can be in, crossed with every operation that changes a status.
OPERATIONS = ("promote to canary", "promote to production", "reject", "rollback to it")
LEGAL = {
    ("staging", "promote to canary"),
    ("staging", "reject"),
    ("staging", "rollback to it"),
    ("canary", "promote to production"),
    ("canary", "reject"),
    ("canary", "rollback to it"),
    ("archived", "rollback to it"),
    ("rolled_back", "rollback to it"),
}
ENDS = {
    "promote to canary": "canary",
    "promote to production": "production",
    "reject": "rejected",
    "rollback to it": "production",
}
STATUSES_UNDER_TEST = ("staging", "canary", "production", "archived", "rolled_back", "rejected")
LEGAL_CASES = [
    pytest.param(status, operation, id=f"a {status} version: {operation} is allowed")
    for status in STATUSES_UNDER_TEST
    for operation in OPERATIONS
    if (status, operation) in LEGAL
]
ILLEGAL_CASES = [
    pytest.param(status, operation, id=f"a {status} version: {operation} is refused")
    for status in STATUSES_UNDER_TEST
    for operation in OPERATIONS
    if (status, operation) not in LEGAL
]


def apply(registry: ModelRegistry, version: int, operation: str) -> AuditEntry:
    if operation == "promote to canary":
        return registry.promote(version, "canary", reason="test")
    if operation == "promote to production":
        return registry.promote(version, "production", reason="test")
    if operation == "reject":
        return registry.reject(version, reason="test")
    return registry.rollback(reason="test", to_version=version)


@pytest.fixture(scope="module")
def shared_fleet(
    mlflow_server: MlflowServer, fitted: Pipeline, example: pd.DataFrame
) -> tuple[Fleet, dict[str, int]]:
    """One model with a version in every status (for refusals, which change nothing)."""
    config = parse_config(config_dict(mlflow_server.url, f"fleet-{uuid.uuid4().hex[:8]}"))
    fleet = Fleet(ModelRegistry(config, actor="tester"), fitted, example)
    archived = fleet.to_production()
    production = fleet.to_production()
    rolled_back = fleet.to_production()
    fleet.registry.rollback(reason="set-up")
    rejected = fleet.register()
    fleet.registry.reject(rejected, reason="set-up")
    canary = fleet.register()
    fleet.registry.promote(canary, "canary", reason="set-up")
    staging = fleet.register()
    versions = {
        "staging": staging,
        "canary": canary,
        "production": production,
        "archived": archived,
        "rolled_back": rolled_back,
        "rejected": rejected,
    }
    for status, version in versions.items():
        assert fleet.registry.get_version(version).status == status
    return fleet, versions


class TestTransitions:
    @pytest.mark.parametrize(("status", "operation"), LEGAL_CASES)
    def test_a_legal_transition_moves_status_and_alias(
        self, fleet: Fleet, status: str, operation: str
    ) -> None:
        registry = fleet.registry
        version = fleet.bring_to(status)
        assert registry.get_version(version).status == status

        entry = apply(registry, version, operation)

        after = registry.get_version(version)
        assert after.status == ENDS[operation]
        assert after.aliases == (() if operation == "reject" else (ENDS[operation],))
        assert (entry.state, registry.history(limit=1)[0]) == ("done", entry)

    @pytest.mark.parametrize(("status", "operation"), ILLEGAL_CASES)
    def test_an_illegal_transition_is_refused_and_changes_nothing(
        self, shared_fleet: tuple[Fleet, dict[str, int]], status: str, operation: str
    ) -> None:
        fleet, versions = shared_fleet
        registry, version = fleet.registry, versions[status]
        before = (registry.current(), registry.history())

        with pytest.raises(RegistryError) as caught:
            apply(registry, version, operation)

        message = str(caught.value)
        assert f"version {version}" in message
        assert status in message
        assert (registry.current(), registry.history()) == before

    @pytest.mark.parametrize(
        ("skip_canary", "allowed"),
        [
            pytest.param(False, False, id="staging to production is refused by default"),
            pytest.param(True, True, id="staging to production is allowed with skip_canary"),
        ],
    )
    def test_skip_canary_decides_staging_to_production(
        self,
        make_config: Callable[..., RetrainConfig],
        fitted: Pipeline,
        example: pd.DataFrame,
        skip_canary: bool,
        allowed: bool,
    ) -> None:
        config = make_config(deployment={"skip_canary": skip_canary})
        fleet = Fleet(ModelRegistry(config, actor="tester"), fitted, example)
        version = fleet.register()

        if allowed:
            fleet.registry.promote(version, "production", reason="no canary here")
            assert fleet.registry.current()["production"].version == version
        else:
            with pytest.raises(RegistryError, match=r"staging -> production.*skip_canary"):
                fleet.registry.promote(version, "production", reason="no canary here")

    def test_a_version_that_failed_the_gate_cannot_be_promoted(self, fleet: Fleet) -> None:
        version = fleet.register(gate="failed")

        with pytest.raises(RegistryError, match="gate result is 'failed'"):
            fleet.registry.promote(version, "canary", reason="try anyway")

    def test_a_forced_gate_can_be_promoted(self, fleet: Fleet) -> None:
        version = fleet.register(gate="forced")

        fleet.registry.promote(version, "canary", reason="operator override")

        assert fleet.registry.current()["canary"].version == version

    def test_promoting_to_production_archives_the_previous_production_version(
        self, fleet: Fleet
    ) -> None:
        first = fleet.to_production()
        second = fleet.to_production()

        current = fleet.registry.current()
        assert current["production"].version == second
        assert "canary" not in current
        assert fleet.registry.get_version(first).status == "archived"

    def test_transition_table_only_names_known_statuses(self) -> None:
        for start, end in TRANSITIONS:
            assert start in STATUSES and end in STATUSES
        assert set(ALIASES) <= set(STATUSES)
        assert not allowed_transition("rejected", "production", "rollback", skip_canary=True)


# --- rollback ------------------------------------------------------------------------------------


class TestRollback:
    def test_returns_to_the_previously_serving_version(self, fleet: Fleet) -> None:
        first = fleet.to_production()
        second = fleet.to_production()

        entry = fleet.registry.rollback(reason="accuracy dropped")

        assert (entry.from_version, entry.to_version) == (second, first)
        assert fleet.registry.current()["production"].version == first
        assert fleet.registry.get_version(second).status == "rolled_back"

    def test_after_two_promotions_in_a_row_returns_to_the_one_before(self, fleet: Fleet) -> None:
        fleet.to_production()
        second = fleet.to_production()
        third = fleet.to_production()

        entry = fleet.registry.rollback(reason="third is bad")

        assert (entry.from_version, entry.to_version) == (third, second)

    def test_a_rollback_of_a_rollback_returns_to_the_version_serving_before(
        self, fleet: Fleet
    ) -> None:
        fleet.to_production()
        second = fleet.to_production()
        third = fleet.to_production()
        fleet.registry.rollback(reason="third looked bad")

        entry = fleet.registry.rollback(reason="false alarm")

        assert (entry.from_version, entry.to_version) == (second, third)
        assert fleet.registry.current()["production"].version == third

    def test_follows_the_audit_history_not_version_minus_one(self, fleet: Fleet) -> None:
        first = fleet.to_production()
        rejected = fleet.register()
        fleet.registry.reject(rejected, reason="gate")
        third = fleet.to_production()

        entry = fleet.registry.rollback(reason="bad")

        assert (entry.from_version, entry.to_version, third - 1) == (third, first, rejected)

    def test_logs_at_critical_and_notifies(
        self, fleet: Fleet, notifier: RecordingNotifier, caplog: pytest.LogCaptureFixture
    ) -> None:
        fleet.to_production()
        fleet.to_production()
        notifier.sent.clear()

        with caplog.at_level(logging.CRITICAL, logger="retrain.registry"):
            fleet.registry.rollback(reason="pager went off", run_id="run-42")

        assert any(
            r.levelno == logging.CRITICAL and "ROLLBACK" in r.message for r in caplog.records
        )
        [sent] = notifier.sent
        assert (sent.event, sent.level) == ("rollback", "critical")
        assert sent.details["run_id"] == "run-42"
        assert "pager went off" in sent.text

    def test_explicit_target_that_served_before_is_allowed(self, fleet: Fleet) -> None:
        first = fleet.to_production()
        fleet.to_production()
        fleet.to_production()

        entry = fleet.registry.rollback(reason="go back two", to_version=first)

        assert entry.to_version == first

    def test_explicit_target_that_never_served_and_failed_the_gate_is_refused(
        self, fleet: Fleet
    ) -> None:
        fleet.to_production()
        failed = fleet.register(gate="failed")

        with pytest.raises(RegistryError, match="never in production"):
            fleet.registry.rollback(reason="try", to_version=failed)

    def test_nothing_to_roll_back_to_without_production(self, fleet: Fleet) -> None:
        fleet.register()

        with pytest.raises(RegistryError, match=r"nothing to roll back to.*no production version"):
            fleet.registry.rollback(reason="?")

    def test_nothing_to_roll_back_to_from_the_first_production_version(self, fleet: Fleet) -> None:
        fleet.to_production()

        with pytest.raises(RegistryError, match=r"nothing to roll back to.*first production"):
            fleet.registry.rollback(reason="?")

    def test_a_target_that_no_longer_loads_is_refused_and_nothing_moves(
        self, fleet: Fleet, mlflow_server: MlflowServer
    ) -> None:
        first = fleet.to_production()
        second = fleet.to_production()
        model_id = fleet.registry.get_version(first).model_id
        [skops_file] = (mlflow_server.root / "mlartifacts").glob(f"*/models/{model_id}/**/*.skops")
        skops_file.write_bytes(b"corrupted")
        entries = len(fleet.registry.history())

        with pytest.raises(RegistryError, match="failed its load check"):
            fleet.registry.rollback(reason="bad")

        assert fleet.registry.current()["production"].version == second
        assert len(fleet.registry.history()) == entries


class Crash(BaseException):
    """Stands for the process dying between two writes."""


def crashing_registry(config: RetrainConfig, step: str) -> ModelRegistry:
    """A registry whose process 'dies' right before ``step`` of an audited move."""

    class CrashingAudit(AuditStore):
        def finish(self, entry: AuditEntry, state: str) -> AuditEntry:
            if step == "done":
                raise Crash
            return super().finish(entry, state)

    class CrashingMoves(AuditedMoves):
        def move_aliases(self, entry: AuditEntry, aliases: Any) -> None:
            if step == "move":
                raise Crash
            super().move_aliases(entry, aliases)

        def write_statuses(self, entry: AuditEntry) -> None:
            if step == "statuses":
                raise Crash
            super().write_statuses(entry)

    registry = ModelRegistry(config, actor="crashing")
    audit = CrashingAudit(registry._client, registry.audit_experiment_name)
    registry._moves = CrashingMoves(registry._client, registry._artifacts, audit)
    return registry


class TestCrashSafety:
    @pytest.mark.parametrize(
        "step",
        [
            pytest.param("move", id="a crash after recording, before the alias moves"),
            pytest.param("statuses", id="a crash after the alias moved, before the status tags"),
            pytest.param("done", id="a crash after the status tags, before marking done"),
        ],
    )
    def test_re_running_a_crashed_rollback_completes_it_once(
        self, fleet: Fleet, make_config: Callable[..., RetrainConfig], step: str
    ) -> None:
        first = fleet.to_production()
        second = fleet.to_production()

        with pytest.raises(Crash):
            crashing_registry(make_config(), step).rollback(reason="crashy")

        # Whatever moved is recorded: the newest entry is the pending rollback.
        newest = fleet.registry.history(limit=1)[0]
        assert (newest.op, newest.state, newest.to_version) == ("rollback", "pending", first)
        serving = fleet.registry.current()["production"].version
        assert serving == (second if step == "move" else first)

        entry = ModelRegistry(make_config(), actor="operator").rollback(reason="re-run")

        assert (entry.id, entry.state, entry.to_version) == (newest.id, "done", first)
        assert fleet.registry.current()["production"].version == first
        assert fleet.registry.get_version(second).status == "rolled_back"
        assert fleet.registry.get_version(first).status == "production"
        assert [e.state for e in fleet.registry.history()].count("pending") == 0

    def test_a_crashed_registration_is_announced_by_the_retry(
        self,
        make_config: Callable[..., RetrainConfig],
        fitted: Pipeline,
        example: pd.DataFrame,
    ) -> None:
        with pytest.raises(Crash):
            crashing_registry(make_config(), "move").register(
                fitted, input_example=example, record=record(), idempotency_key="retry-me"
            )
        registry = ModelRegistry(make_config())
        assert registry.get_version(1).status == "pending"
        assert registry.current() == {}

        info = registry.register(
            fitted, input_example=example, record=record(), idempotency_key="retry-me"
        )

        assert (info.version, info.status, info.created) == (1, "staging", False)
        assert len(registry.versions()) == 1

    def test_repair_completes_a_pending_move_without_another_operation(
        self, fleet: Fleet, make_config: Callable[..., RetrainConfig]
    ) -> None:
        fleet.register()
        version = fleet.register()
        with pytest.raises(Crash):
            crashing_registry(make_config(), "statuses").promote(version, "canary", reason="x")

        [entry] = fleet.registry.repair()

        assert (entry.op, entry.state) == ("promote", "done")
        assert fleet.registry.get_version(version).status == "canary"


# --- audit ---------------------------------------------------------------------------------------


class TestAudit:
    def test_lists_every_alias_move_newest_first_with_who_why_and_run(self, fleet: Fleet) -> None:
        first = fleet.register()
        fleet.registry.promote(first, "canary", reason="checks passed", run_id="run-9")

        newest, oldest = fleet.registry.history()

        assert (oldest.op, oldest.alias, oldest.from_version, oldest.to_version) == (
            "register",
            "staging",
            None,
            first,
        )
        assert (newest.alias, newest.from_version, newest.to_version) == ("canary", None, first)
        assert (newest.actor, newest.reason, newest.run_id) == ("tester", "checks passed", "run-9")
        assert [(m.alias, m.from_version, m.to_version) for m in newest.moves] == [
            ("canary", None, first),
            ("staging", first, None),
        ]
        assert newest.at > oldest.at
        assert fleet.registry.history(limit=1) == [newest]

    def _entry(self, registry: ModelRegistry, n: int) -> AuditEntry:
        from retrain.registry import AliasMove

        return AuditEntry.new(
            op="note",
            moves=(AliasMove("staging", None, None),),
            statuses={},
            reason=f"writer entry {n}",
            run_id=None,
            actor=registry.actor,
        )

    def test_concurrent_writers_lose_no_entry(self, fleet: Fleet) -> None:
        registry = fleet.registry
        fleet.register()
        threads, per_thread = 8, 10

        def write(worker: int) -> None:
            own = ModelRegistry(registry.config, actor=f"writer-{worker}")
            with own._client.calls("test write"):
                for n in range(per_thread):
                    entry = own._audit.write(self._entry(own, worker * per_thread + n))
                    own._audit.finish(entry, "done")

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(write, range(threads)))

        reasons = {e.reason for e in registry.history() if e.op == "note"}
        assert reasons == {f"writer entry {n}" for n in range(threads * per_thread)}

    def test_concurrent_writer_processes_lose_no_entry(self, fleet: Fleet) -> None:
        import multiprocessing

        fleet.register()
        config = fleet.registry.config.model_dump(mode="json", by_alias=True)
        context = multiprocessing.get_context("spawn")
        with context.Pool(3) as pool:
            pool.starmap(_write_entries_in_process, [(config, w, 10) for w in range(3)])

        reasons = {e.reason for e in fleet.registry.history() if e.op == "note"}
        assert reasons == {f"process {w} entry {n}" for w in range(3) for n in range(10)}

    @pytest.mark.slow
    def test_history_survives_a_server_restart(
        self, tmp_path: Path, fitted: Pipeline, example: pd.DataFrame
    ) -> None:
        port = free_port()
        data = config_dict(f"http://127.0.0.1:{port}", "restart-model")
        with MlflowServer(root=tmp_path / "srv", port=port):
            fleet = Fleet(ModelRegistry(parse_config(data), actor="a"), fitted, example)
            fleet.to_production()
            before = fleet.registry.history()

        with MlflowServer(root=tmp_path / "srv", port=port):
            after = ModelRegistry(parse_config(data), actor="b").history()

        assert after == before
        assert len(after) == 3


def _write_entries_in_process(config: dict[str, Any], worker: int, count: int) -> None:
    from retrain.registry import AliasMove

    registry = ModelRegistry(parse_config(config), actor=f"process-{worker}")
    with registry._client.calls("test write"):
        for n in range(count):
            entry = registry._audit.write(
                AuditEntry.new(
                    op="note",
                    moves=(AliasMove("staging", None, None),),
                    statuses={},
                    reason=f"process {worker} entry {n}",
                    run_id=None,
                    actor=registry.actor,
                )
            )
            registry._audit.finish(entry, "done")


# --- queries -------------------------------------------------------------------------------------


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The version numbers :meth:`ModelArtifacts.download` fetches, in order."""
    fetched: list[int] = []
    download = ModelArtifacts.download

    def counting(self: ModelArtifacts, mv: Any, *args: Any, **kwargs: Any) -> str:
        fetched.append(int(mv.version))
        return download(self, mv, *args, **kwargs)

    monkeypatch.setattr(ModelArtifacts, "download", counting)
    return fetched


class TestQueries:
    def test_current_versions_by_alias_with_records(self, fleet: Fleet) -> None:
        production = fleet.to_production(watermark="2024-02-01T00:00:00Z")
        canary = fleet.register()
        fleet.registry.promote(canary, "canary", reason="x")
        staging = fleet.register()

        current = fleet.registry.current()

        assert {a: i.version for a, i in current.items()} == {
            "staging": staging,
            "canary": canary,
            "production": production,
        }
        assert current["production"].record.metrics["accuracy"] == 0.913
        assert current["production"].age_seconds() >= 0

    def test_production_watermark_is_the_production_versions_newest_event_time(
        self, fleet: Fleet
    ) -> None:
        fleet.register()
        assert fleet.registry.production_watermark() is None
        fleet.to_production(watermark="2024-02-01T12:00:00+02:00")

        assert fleet.registry.production_watermark() == pd.Timestamp("2024-02-01T10:00:00Z")

    def test_versions_lists_newest_first_with_aliases(self, fleet: Fleet) -> None:
        first = fleet.register()
        second = fleet.register()

        listed = fleet.registry.versions()

        assert [(v.version, v.status, v.aliases) for v in listed] == [
            (second, "staging", ("staging",)),
            (first, "archived", ()),
        ]

    def test_load_model_by_version_number(self, fleet: Fleet, example: pd.DataFrame) -> None:
        version = fleet.register()

        model = fleet.registry.load_model(version)

        assert len(model.predict(example)) == len(example)

    def test_a_version_is_downloaded_once_per_process(
        self, fleet: Fleet, downloads: list[int]
    ) -> None:
        version = fleet.register()  # its load check leaves the loaded model in the cache
        downloads.clear()
        first = fleet.registry.load_model(version)
        fleet.registry.promote(version, "canary", reason="canary checks")
        fleet.registry.promote(version, "production", reason="checked at registration")

        assert fleet.registry.load_model("production") is first
        assert downloads == []

    def test_a_rollback_checks_its_target_again_even_when_recently_verified(
        self, fleet: Fleet, downloads: list[int]
    ) -> None:
        first = fleet.to_production()
        fleet.to_production()
        downloads.clear()
        fleet.registry.rollback(reason="operator")

        assert downloads == [first]


# --- errors --------------------------------------------------------------------------------------


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


class TestErrors:
    @pytest.mark.parametrize(
        "call",
        [
            pytest.param(lambda r: r.current(), id="reading the aliases"),
            pytest.param(lambda r: r.history(), id="reading the history"),
            pytest.param(lambda r: r.rollback(reason="x"), id="rolling back"),
        ],
    )
    def test_server_down_gives_a_clear_error_within_seconds(
        self, make_config: Callable[..., RetrainConfig], call: Callable[[ModelRegistry], Any]
    ) -> None:
        url = f"http://127.0.0.1:{free_port()}"
        registry = ModelRegistry(make_config(registry={"tracking_uri": url}))

        started = time.monotonic()
        with pytest.raises(RegistryError, match=rf"{url} is unreachable \(connection refused"):
            call(registry)

        assert time.monotonic() - started < 10

    def test_a_server_that_never_answers_times_out_within_the_configured_bound(
        self, make_config: Callable[..., RetrainConfig], silent_port: int
    ) -> None:
        url = f"http://127.0.0.1:{silent_port}"
        config = make_config(
            registry={"tracking_uri": url, "request_timeout_seconds": 1, "max_retries": 1}
        )

        started = time.monotonic()
        with pytest.raises(RegistryError, match=r"unreachable \(no answer within 1 s"):
            ModelRegistry(config).current()

        assert time.monotonic() - started < 10

    def test_client_settings_are_restored_after_a_call(
        self, registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "4")
        monkeypatch.delenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", raising=False)

        with pytest.raises(RegistryError):
            registry.history()

        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "4"
        assert "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR" not in os.environ

    def test_unknown_model_is_named(self, registry: ModelRegistry) -> None:
        with pytest.raises(UnknownModelError, match=rf"model '{registry.name}' is not registered"):
            registry.current()

    def test_unknown_version_is_named(self, fleet: Fleet) -> None:
        fleet.register()

        with pytest.raises(RegistryError, match="has no version 99"):
            fleet.registry.promote(99, "canary", reason="x")

    def test_a_reason_is_required(self, fleet: Fleet) -> None:
        with pytest.raises(ValueError, match="reason is required"):
            fleet.registry.rollback(reason=" ")


class TestImport:
    def test_importing_the_registry_modules_loads_no_heavy_library(self) -> None:
        import subprocess
        import sys

        heavy = ("airflow", "mlflow", "sklearn", "pandas", "skops")
        code = (
            "import sys, retrain.registry, retrain.notify, retrain.mlflow_server; "
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )

        assert result.stdout.strip() == ""
