"""Crash-repairable alias moves (retrain.registry.moves): a process dying between any two
writes leaves a recorded move that the next call completes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from retrain.config import RetrainConfig
from retrain.registry import AuditEntry, ModelRegistry
from retrain.registry.audit import AuditStore
from retrain.registry.moves import AuditedMoves
from tests.registry_builders import Fleet, record


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

    @pytest.mark.parametrize(
        "key",
        [
            pytest.param("dag/run-1", id="the retried task (same key)"),
            pytest.param("dag/run-2", id="a new rollback run after the crashed one"),
        ],
    )
    def test_a_keyed_rollback_after_a_crashed_one_completes_it_and_never_undoes_it(
        self, fleet: Fleet, make_config: Callable[..., RetrainConfig], key: str
    ) -> None:
        first = fleet.to_production()
        fleet.to_production()
        with pytest.raises(Crash):
            crashing_registry(make_config(), "statuses").rollback(
                reason="crashy", idempotency_key="dag/run-1"
            )

        registry = ModelRegistry(make_config(), actor="operator")
        entry = registry.rollback(reason="again", idempotency_key=key)
        again = registry.rollback(reason="again", idempotency_key="dag/run-1")

        assert (entry.idempotency_key, entry.state, entry.to_version) == (
            "dag/run-1",
            "done",
            first,
        )
        assert again.id == entry.id
        assert fleet.registry.current()["production"].version == first
        assert [e.op for e in fleet.registry.history()].count("rollback") == 1

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


class TestBatch:
    """Inside ``ModelRegistry.batch()`` pending entries are completed before the first mutating
    call, and again after any call that failed (it may have left one), not before every call."""

    @staticmethod
    def counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
        calls: list[int] = []
        reconcile = AuditedMoves.reconcile

        def counted(self: AuditedMoves) -> list[AuditEntry]:
            calls.append(1)
            return reconcile(self)

        monkeypatch.setattr(AuditedMoves, "reconcile", counted)
        return calls

    def test_reconciles_once_per_batch_and_before_every_call_outside(
        self, fleet: Fleet, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        calls = self.counting(monkeypatch)
        with fleet.registry.batch():
            version = fleet.register()
            fleet.registry.promote(version, "canary", reason="x")
            fleet.registry.promote(version, "production", reason="y")
        assert len(calls) == 1
        assert fleet.registry.current()["production"].version == version

        second = fleet.register()
        fleet.registry.promote(second, "canary", reason="x")
        assert len(calls) == 3

    def test_a_move_that_failed_inside_a_batch_is_completed_by_the_next_call(
        self, fleet: Fleet, make_config: Callable[..., RetrainConfig]
    ) -> None:
        version = fleet.register()
        registry = crashing_registry(make_config(), "statuses")
        with registry.batch():
            with pytest.raises(Crash):  # after the batch's reconcile: the entry stays pending
                registry.promote(version, "canary", reason="crashy")
            [pending] = registry.pending()
            # the process goes on (the failure was caught): its next call must complete it
            registry._moves = AuditedMoves(registry._client, registry._artifacts, registry._audit)
            entry = registry.promote(version, "canary", reason="again")

        assert (entry.id, entry.state) == (pending.id, "done")
        assert registry.pending() == []
        assert fleet.registry.get_version(version).status == "canary"
