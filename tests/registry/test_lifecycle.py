"""The lifecycle rules (retrain.registry.lifecycle): every status crossed with every operation,
on a real MLflow server (refusals change nothing), and the wording of a refusal."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from retrain.config import RetrainConfig, parse_config
from retrain.errors import RegistryError
from retrain.registry import (
    ALIASES,
    STATUSES,
    TRANSITIONS,
    AuditEntry,
    ModelRegistry,
    allowed_transition,
)
from retrain.registry.lifecycle import illegal_transition_message
from tests.registry_builders import Fleet, config_dict
from tools.mlflow_server import MlflowServer

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

    @pytest.mark.parametrize(
        ("current", "target", "message"),
        [
            pytest.param(
                "staging",
                "production",
                "illegal transition for version 3 of 'm': staging -> production by promote "
                "(canary is required: deployment.skip_canary is false); allowed from staging: "
                "archived by supersede; canary by promote; production by promote, rollback; "
                "rejected by reject",
                id="staging to production names the canary rule",
            ),
            pytest.param(
                "archived",
                "production",
                "illegal transition for version 3 of 'm': archived -> production by promote "
                "(use rollback --to 3); allowed from archived: production by rollback",
                id="a retired version points at rollback",
            ),
            pytest.param(
                "rejected",
                "canary",
                "illegal transition for version 3 of 'm': rejected -> canary by promote; "
                "allowed from rejected: none",
                id="a rejected version can go nowhere",
            ),
        ],
    )
    def test_a_refusal_names_the_change_a_hint_and_what_is_allowed(
        self, current: str, target: str, message: str
    ) -> None:
        assert illegal_transition_message("m", 3, current, target, "promote") == message
