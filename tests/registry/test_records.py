"""Version records (retrain.registry.records): validation and the tag codec."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from retrain.errors import RegistryError
from retrain.redact import register_secret
from retrain.registry import VersionRecord
from retrain.registry.records import RECORD_TAG, TAG_VALUE_LIMIT, stored_fields
from tests.registry_builders import record

#: What registration stores besides the record (as it passes it to ``to_tags``).
STORED: dict[str, Any] = {
    "idempotency_key": "run-1:register",
    "model_id": "m-0123",
    "artifact_uri": "mlflow-artifacts:/1/models/m-0123/artifacts",
    "reference_profile": "reference_profile.json",
    "artifacts": ["evaluation"],
    "trusted_types": ["tests.registry_builders.Majority"],
}


def old_tags(rec: VersionRecord, stored: dict[str, Any], digest: str) -> dict[str, str]:
    """The tags retrain wrote before ``retrain.record``: one ``retrain.<field>`` per field, lists
    and mappings as JSON (the old ``VersionRecord.to_tags`` and registration, verbatim)."""
    tags: dict[str, str] = {}
    for key, value in rec.to_dict().items():
        if isinstance(value, dict | list | tuple):
            tags["retrain." + key] = json.dumps(value, sort_keys=True)
        else:
            tags["retrain." + key] = str(value)
    tags |= {
        "retrain.idempotency": digest,
        "retrain.idempotency_key": stored["idempotency_key"][:5000],
        "retrain.model_id": stored["model_id"],
        "retrain.artifact_uri": stored["artifact_uri"],
        "retrain.reference_profile": stored["reference_profile"],
        "retrain.artifacts": json.dumps(sorted(stored["artifacts"])),
        "retrain.trusted_types": json.dumps(sorted(stored["trusted_types"])),
    }
    return tags


class TestVersionRecord:
    def test_round_trips_through_tags(self) -> None:
        rec = VersionRecord.from_value(record(version_id="v1", timestamp="2024-01-15T04:30:00"))

        assert VersionRecord.from_tags(rec.to_tags()) == rec
        assert rec.timestamp == "2024-01-15T04:30:00Z"

    def test_reports_every_problem_at_once(self) -> None:
        with pytest.raises(ValueError) as caught:
            VersionRecord.from_value(record(gate="x", watermark=None, algorithm=""))

        assert str(caught.value).count(";") == 2


class TestTagLayout:
    def test_a_version_gets_six_short_tags_and_the_rest_as_one_json_value(self) -> None:
        rec = VersionRecord.from_value(record(version_id="v1", git_commit="abc"))

        tags = rec.to_tags(STORED)

        assert len(tags) <= 5 and all(len(k) <= 16 and k.startswith("retrain.") for k in tags)
        assert tags["retrain.status"] == "pending" and tags["retrain.gate"] == "passed"
        assert tags["retrain.training"] == "retrain_20240115_001"
        assert tags["retrain.data"] == "2024-01-15"
        assert json.loads(tags[RECORD_TAG])["trusted_types"] == STORED["trusted_types"]
        assert stored_fields(tags) == {**rec.to_dict(), **STORED}

    def test_old_style_tags_read_back_identically(self) -> None:
        rec = VersionRecord.from_value(record(version_id="v1", git_commit="abc"))

        old, new = old_tags(rec, STORED, "d" * 32), rec.to_tags(STORED)

        assert len(old) == 19
        assert VersionRecord.from_tags(old) == VersionRecord.from_tags(new) == rec
        assert stored_fields(old) == stored_fields(new)

    def test_an_old_style_tag_overrides_the_record(self) -> None:
        tags = VersionRecord.from_value(record()).to_tags(STORED)
        tags["retrain.trusted_types"] = '["a.B"]'  # what an operator may set

        assert stored_fields(tags)["trusted_types"] == ["a.B"]

    def test_a_foreign_version_reads_as_unmanaged_and_a_broken_record_as_empty(self) -> None:
        assert VersionRecord.from_tags({}).status == "unmanaged"
        broken = VersionRecord.from_tags({RECORD_TAG: "{not json", "retrain.status": "staging"})
        assert (broken.status, broken.features, broken.algorithm) == ("staging", (), "")

    def test_a_huge_record_is_shortened_to_fit_keeping_status_and_lineage(self) -> None:
        features = [f"feature_with_a_long_name_{i:05d}" for i in range(2000)]
        reasons = [f"drift: feature_{i} psi {'9' * 300}" for i in range(50)]
        rec = VersionRecord.from_value(record(features=features, trigger_reasons=reasons))

        tags = rec.to_tags({**STORED, "idempotency_key": "k" * 6000})

        assert len(tags[RECORD_TAG]) <= TAG_VALUE_LIMIT
        data = json.loads(tags[RECORD_TAG])
        assert data["truncated"] == ["features", "idempotency_key", "trigger_reasons"]
        kept = len(data["features"])
        assert 0 < kept < 2000 and data["features"] == features[:kept]
        assert data["trigger_reasons"] and all(len(r) <= 200 for r in data["trigger_reasons"])
        assert data["trusted_types"] == STORED["trusted_types"]
        assert data["artifact_uri"] == STORED["artifact_uri"]
        back = VersionRecord.from_tags(tags)
        assert (back.status, back.gate, back.retraining_id, back.training_data_version) == (
            "pending",
            "passed",
            "retrain_20240115_001",
            "2024-01-15",
        )
        assert (back.metrics, back.watermark) == (rec.metrics, rec.watermark)

    def test_a_record_that_cannot_be_shortened_enough_is_refused(self) -> None:
        metrics = {f"metric_with_a_long_name_{i:04d}": 0.5 for i in range(400)}
        rec = VersionRecord.from_value(record(metrics=metrics))

        with pytest.raises(RegistryError, match=rf"version tag holds \({TAG_VALUE_LIMIT}\)"):
            rec.to_tags(STORED)

    def test_secrets_never_reach_a_tag(self) -> None:
        secret = f"s3cr3t-{uuid.uuid4().hex}"
        register_secret(secret)
        rec = VersionRecord.from_value(
            record(trigger_reasons=[f"drift seen at https://u:{secret}@host/x"])
        )

        tags = rec.to_tags({**STORED, "idempotency_key": f"run?token={secret}"})

        assert not any(secret in value for value in tags.values())
        assert "***" in tags[RECORD_TAG]
