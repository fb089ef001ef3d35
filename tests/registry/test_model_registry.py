"""The ModelRegistry facade (retrain.registry.model_registry): rollback and the queries, on a
real MLflow server."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from retrain.errors import RegistryError
from retrain.registry import ModelRegistry
from retrain.registry.artifacts import ModelArtifacts, load_and_predict
from retrain.registry.moves import plan_alias
from tests.registry_builders import Fleet, RecordingNotifier
from tools.http_calls import count_http_requests
from tools.mlflow_server import MlflowServer

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

    def test_a_key_returns_its_completed_rollback_without_moving_or_notifying(
        self, fleet: Fleet, notifier: RecordingNotifier
    ) -> None:
        first = fleet.to_production()
        fleet.to_production()
        done = fleet.registry.rollback(reason="errors up", idempotency_key="ticket-7")
        sent = len(notifier.sent)

        again = fleet.registry.rollback(reason="errors up", idempotency_key="ticket-7")

        assert again == done and again.idempotency_key == "ticket-7"
        assert fleet.registry.current()["production"].version == first
        assert len(notifier.sent) == sent
        # a new key is a new rollback: a rollback of the rollback, deliberately
        assert fleet.registry.rollback(reason="false alarm", idempotency_key="t-8").to_version != (
            first
        )

    @pytest.mark.parametrize(
        ("op", "state", "message"),
        [
            pytest.param("rollback", "failed", "ended failed", id="a rollback whose repair failed"),
            pytest.param("promote", "done", "not to a rollback", id="a key of another operation"),
        ],
    )
    def test_a_key_of_anything_but_a_completed_rollback_is_refused(
        self, fleet: Fleet, op: str, state: str, message: str
    ) -> None:
        fleet.to_production()
        second = fleet.to_production()
        aliases = fleet.registry._client.aliases()
        entry = fleet.registry._audit.write(
            plan_alias(
                aliases,
                second,
                "production",
                op=op,
                displaced="archived",
                reason="recorded",
                run_id=None,
                actor="tester",
                idempotency_key="k",
            )
        )
        fleet.registry._audit.finish(entry, state)

        with pytest.raises(RegistryError, match=message):
            fleet.registry.rollback(reason="again", idempotency_key="k")
        assert fleet.registry.current()["production"].version == second

    def test_expected_version_guards_the_move(self, fleet: Fleet) -> None:
        first = fleet.to_production()
        second = fleet.to_production()

        with pytest.raises(RegistryError, match=f"production is version {second}, not version"):
            fleet.registry.rollback(reason="x", expected_version=first)
        entry = fleet.registry.rollback(reason="x", expected_version=second)

        assert (entry.from_version, entry.to_version) == (second, first)

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


class TestRoundTrips:
    """What the queries send to the server (``count_http_requests``)."""

    def test_one_request_per_version_or_alias_and_none_for_known_files(
        self, fleet: Fleet, example: pd.DataFrame
    ) -> None:
        version = fleet.to_production(profile={"features": {}})
        registry = ModelRegistry(fleet.registry.config)
        uri = registry.tracking_uri

        with count_http_requests(uri) as calls:
            info = registry.get_version(version)
        assert (calls.total, info.status, info.aliases) == (1, "production", ("production",))

        with count_http_requests(uri) as calls:
            current = registry.current("production")
        assert calls.total == 1 and current["production"].version == version
        assert registry.current("canary") == {}

        # read above, so where its files are is known: no version lookup. The model is in the
        # process cache since its registration check; the profile file is fetched once.
        with count_http_requests(uri) as calls:
            model = registry.load_model(version)
            assert registry.reference_profile(version) == {"features": {}}
            assert registry.reference_profile(version) == {"features": {}}
        assert dict(calls.by_endpoint) == {"GET /api/2.0/mlflow-artifacts/artifacts/{file}": 1}
        assert len(model.predict(example)) == len(example)

    def test_a_model_download_fetches_only_what_loading_reads(
        self, fleet: Fleet, example: pd.DataFrame
    ) -> None:
        version = fleet.register()
        registry = ModelRegistry(fleet.registry.config)
        mv = registry._client.mlflow.get_model_version(registry.name, str(version))
        with tempfile.TemporaryDirectory() as tmp, count_http_requests(registry.tracking_uri) as c:
            local = registry._artifacts.download(mv, tmp)
            loaded = load_and_predict(local, "test")
            files = sorted(p.name for p in Path(local).iterdir())
        assert files == ["MLmodel", "input_example.json", "model.skops"]
        assert dict(c.by_endpoint) == {"GET /api/2.0/mlflow-artifacts/artifacts/{file}": 3}
        assert len(loaded.predict(example)) == len(example)
