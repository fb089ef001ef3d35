from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from retrain.config import RetrainConfig
from retrain.deploy import promote, rollback_with_report
from retrain.errors import RegistryError
from retrain.pipeline.record import REGISTERED_FILE, note_registered, registered_before_failure
from retrain.registry import ModelRegistry
from tests.helpers import LOGREG, churn_sections, run_record
from tools.synthetic import StreamSpec, write_stream

SPEC = StreamSpec(weeks=3, rows_per_week=1500, drift_week=None)


@pytest.fixture
def config(make_config: Callable[..., RetrainConfig], tmp_path: Path) -> RetrainConfig:
    write_stream(tmp_path / "events", SPEC)
    return make_config(
        **churn_sections(
            tmp_path / "events",
            estimator=LOGREG,
            params={"max_iter": 300},
            storage={"work_dir": str(tmp_path / "work")},
            deployment={"require_approval": True},
        )
    )


class TestApprovalPath:
    def test_candidate_waits_in_canary_until_approved(self, config: RetrainConfig) -> None:
        record = run_record(config, as_of=SPEC.start + timedelta(weeks=3))
        assert record["status"] == "awaiting_approval"
        approval = next(c for c in record["checklist"] if c["key"] == "deployment_approved")
        assert not approval["passed"] and approval["evidence"] == "awaiting approval"
        registry = ModelRegistry(config)
        assert registry.current()["canary"].version == 1
        assert "production" not in registry.current()

        result = promote(
            config, registry, to="production", reason="reviewed metrics", approval="human: alice"
        )
        assert result.version == 1 and result.status == "deployed"
        assert all(item.passed for item in result.checklist)
        assert registry.current()["production"].version == 1
        assert "canary" not in registry.current()

        with pytest.raises(RegistryError, match="is not the canary"):
            promote(config, registry, to="production", reason="again", approval="human: alice")

    def test_rollback_report_shows_aliases_before_and_after(self, config: RetrainConfig) -> None:
        config = config.model_copy(
            update={"deployment": config.deployment.model_copy(update={"require_approval": False})}
        )
        for weeks in (2, 3):
            record = run_record(config, as_of=SPEC.start + timedelta(weeks=weeks))
            assert record["status"] == "deployed", record["notes"]
        report = rollback_with_report(config, ModelRegistry(config), reason="bad feedback")
        assert report.before == {"production": 2}
        assert report.after == {"production": 1}
        assert "production v2 -> v1" in report.lines[2]
        assert report.seconds < 10


class TestRegisteredNote:
    """The deploy step's note of the version it registered (read when deploy fails later)."""

    def test_the_note_round_trips_typed(self, tmp_path: Path) -> None:
        note_registered(tmp_path, 3, "canary")
        found = registered_before_failure(tmp_path)
        assert found is not None
        assert (found.version, found.stage, found.status) == (3, "canary", "failed")

    def test_no_note_or_an_unreadable_one_is_nothing(self, tmp_path: Path) -> None:
        assert registered_before_failure(tmp_path) is None
        (tmp_path / REGISTERED_FILE).write_text("{not json", encoding="utf-8")
        assert registered_before_failure(tmp_path) is None
        (tmp_path / REGISTERED_FILE).write_text('{"version": "x"}', encoding="utf-8")
        assert registered_before_failure(tmp_path) is None
