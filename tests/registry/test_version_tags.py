"""The tags of a version on a real MLflow server: few and short, and versions registered with the
old one-tag-per-field layout still read, load, serve a rollback and match their key."""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd
from mlflow import MlflowClient
from sklearn.pipeline import Pipeline

from retrain.registry import ModelRegistry, VersionRecord
from retrain.registry.artifacts import _ModelCache
from retrain.registry.records import RECORD_TAG, TAG_VALUE_LIMIT, key_digest, stored_fields
from tests.registry.test_records import old_tags
from tests.registry_builders import Fleet, Majority, make_pipeline_model, record


def mlflow_client(registry: ModelRegistry) -> MlflowClient:
    return MlflowClient(tracking_uri=registry.tracking_uri, registry_uri=registry.tracking_uri)


def retrain_tags(registry: ModelRegistry, version: int) -> dict[str, str]:
    mv = mlflow_client(registry).get_model_version(registry.name, str(version))
    return {k: v for k, v in mv.tags.items() if k.startswith("retrain.")}


def plant_old_version(
    registry: ModelRegistry, like: int, *, status: str, key: str, retraining_id: str
) -> int:
    """A version as the code before ``retrain.record`` registered it: the files of version
    ``like``, its record and lineage as one ``retrain.<field>`` tag each."""
    client = mlflow_client(registry)
    mv = client.get_model_version(registry.name, str(like))
    info = registry.get_version(like)
    rec = replace(info.record, status=status, retraining_id=retraining_id)
    stored = {**stored_fields(mv.tags), "idempotency_key": key}
    tags = old_tags(rec, stored, key_digest(key))
    assert len(tags) == 19 and RECORD_TAG not in tags
    old = client.create_model_version(
        registry.name, source=mv.source, run_id=mv.run_id, tags=tags, model_id=info.model_id
    )
    return int(old.version)


class TestNewLayout:
    def test_a_registered_version_carries_at_most_six_short_tags(self, fleet: Fleet) -> None:
        version = fleet.to_production(profile={"features": {}})

        tags = retrain_tags(fleet.registry, version)

        assert len(tags) <= 6, sorted(tags)
        assert all(len(key) <= 16 for key in tags), sorted(tags)
        assert sorted(tags) == [
            "retrain.data",
            "retrain.gate",
            "retrain.key_hash",
            "retrain.record",
            "retrain.status",
            "retrain.training",
        ]
        assert (tags["retrain.status"], tags["retrain.gate"]) == ("production", "passed")
        data = json.loads(tags[RECORD_TAG])
        assert data["reference_profile"] == "reference_profile.json"
        assert data["model_id"] == fleet.registry.get_version(version).model_id
        assert fleet.registry.reference_profile(version) == {"features": {}}

    def test_a_huge_record_is_shortened_and_its_key_still_finds_it(
        self, registry: ModelRegistry, fitted: Pipeline, example: pd.DataFrame
    ) -> None:
        features = [f"feature_with_a_long_name_{i:05d}" for i in range(2000)]
        reasons = [f"drift: feature_{i} psi {'9' * 300}" for i in range(50)]
        key = "k" * 6000
        big = record(features=features, trigger_reasons=reasons)

        info = registry.register(fitted, input_example=example, record=big, idempotency_key=key)

        tags = retrain_tags(registry, info.version)
        assert len(tags) == 6 and len(tags[RECORD_TAG]) <= TAG_VALUE_LIMIT
        assert "features" in json.loads(tags[RECORD_TAG])["truncated"]
        read = registry.get_version(info.version)
        assert (read.status, read.record.retraining_id, read.record.gate) == (
            "staging",
            "retrain_20240115_001",
            "passed",
        )
        again = registry.register(fitted, input_example=example, record=big, idempotency_key=key)
        assert (again.version, again.created) == (info.version, False)


class TestOldLayout:
    def test_an_old_version_reads_back_identically_loads_and_serves_a_rollback(
        self, fleet: Fleet
    ) -> None:
        # Majority must be trusted explicitly: loading the old version needs its trusted types
        new = fleet.to_production(model=make_pipeline_model(Majority()), profile={"features": {}})
        registry = fleet.registry
        key = registry.get_version(new).idempotency_key
        assert key is not None
        rid = registry.get_version(new).record.retraining_id
        old = plant_old_version(registry, new, status="archived", key=key, retraining_id=rid)

        a, b = registry.get_version(new), registry.get_version(old)

        assert b.status == "archived"
        assert replace(b.record, status="-") == replace(a.record, status="-")
        assert (b.model_id, b.idempotency_key) == (a.model_id, a.idempotency_key)
        mv_a, mv_b = (registry._client.model_version(v) for v in (new, old))
        trusted = ["tests.registry_builders.Majority"]
        assert registry._artifacts.trusted_types(mv_b, "old") == trusted
        assert registry._artifacts.trusted_types(mv_a, "new") == trusted
        assert registry._artifacts.artifact_uri(mv_b) == registry._artifacts.artifact_uri(mv_a)
        assert registry.reference_profile(old) == {"features": {}}

        entry = ModelRegistry(registry.config).rollback(reason="back to v-old", to_version=old)

        assert (entry.from_version, entry.to_version) == (new, old)
        assert registry.current()["production"].version == old
        assert registry.get_version(old).status == "production"
        _ModelCache.models.clear()  # as a new process would: download and deserialise
        loaded = ModelRegistry(registry.config).load_model(old)
        assert type(loaded[-1]).__name__ == "Majority"

    def test_a_key_registered_by_the_old_code_returns_its_version(
        self, fleet: Fleet, fitted: Pipeline, example: pd.DataFrame
    ) -> None:
        """A registration interrupted before the upgrade, retried after it, finds its version by
        the old digest tag and announces it."""
        registry = fleet.registry
        first = fleet.register()
        old = plant_old_version(
            registry, first, status="pending", key="old-run:register", retraining_id="retrain_9"
        )

        info = registry.register(
            fitted,
            input_example=example,
            record=record("retrain_9"),
            idempotency_key="old-run:register",
        )

        assert (info.version, info.created, info.status) == (old, False, "staging")
        assert [v.version for v in registry.versions()] == [old, first]
        assert VersionRecord.from_tags(retrain_tags(registry, old)).status == "staging"
