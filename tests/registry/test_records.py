"""Version records (retrain.registry.records): validation and the tag codec."""

from __future__ import annotations

import pytest

from retrain.registry import VersionRecord
from tests.registry_builders import record


class TestVersionRecord:
    def test_round_trips_through_tags(self) -> None:
        rec = VersionRecord.from_value(record(version_id="v1", timestamp="2024-01-15T04:30:00"))

        assert VersionRecord.from_tags(rec.to_tags()) == rec
        assert rec.timestamp == "2024-01-15T04:30:00Z"

    def test_reports_every_problem_at_once(self) -> None:
        with pytest.raises(ValueError) as caught:
            VersionRecord.from_value(record(gate="x", watermark=None, algorithm=""))

        assert str(caught.value).count(";") == 2
