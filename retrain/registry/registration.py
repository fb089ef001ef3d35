"""How a fitted model becomes a version: logged into a run, load-checked, then registered.

Registration is idempotent by key: a version carries the digest of its caller's idempotency key
(tag ``retrain.key_hash``; ``retrain.idempotency`` on versions registered before it), and the
lowest version with a digest is *the* version for that key, so two concurrent first attempts
leave one version. The model is logged and load-checked before the version is created: a model
that fails its check gets no version. The types skops must trust to load it are recorded with
the version (``trusted_types`` in ``retrain.record``): every later load trusts those and nothing
else (a model needing a type that runs code is refused here).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from retrain.redact import redact
from retrain.registry.artifacts import PROFILE_FILE, trusted_types_tag
from retrain.registry.records import KEY_TAG, LEGACY_KEY_TAG, key_digest
from retrain.serialization import dumps_trusted

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.entities.model_registry import ModelVersion

    from retrain.registry.artifacts import ModelArtifacts
    from retrain.registry.client import RegistryClient
    from retrain.registry.records import VersionRecord

__all__ = ["Registrar", "key_digest"]

#: Tag of the digest on a registration's run and logged model (versions: ``KEY_TAG``).
_IDEMPOTENCY_TAG = "retrain.idempotency"


class Registrar:
    """Creates the versions of ``client.name``; runs of its own go to ``experiment_name``."""

    def __init__(
        self, client: RegistryClient, artifacts: ModelArtifacts, experiment_name: str
    ) -> None:
        self._client = client
        self._artifacts = artifacts
        self.experiment_name = experiment_name

    def find(self, digest: str, *, legacy: bool = False) -> ModelVersion | None:
        """The version registered with the key of ``digest``, if any (the lowest one).

        ``legacy``: the model's newest version has the old tag layout
        (:func:`~retrain.registry.records.newest_has_legacy_tags`), so a version registered
        before the upgrade is looked up by its old digest tag too (a second search, only when
        the first finds none). Once a version with the new layout exists, a retry of a
        registration made before the upgrade is not matched.
        """
        found = self._client.versions_tagged(KEY_TAG, digest)
        if not found and legacy:
            found = self._client.versions_tagged(LEGACY_KEY_TAG, digest)
        return min(found, key=lambda mv: int(mv.version)) if found else None

    def create(
        self,
        model: Any,
        *,
        example: pd.DataFrame,
        rec: VersionRecord,
        key: str,
        digest: str,
        profile: Mapping[str, Any] | None,
        run_id: str | None,
        artifacts: Mapping[str, str | os.PathLike[str]],
        requirements: list[str],
        trusted_types: Sequence[str] | None,
        experiment_id: str | None = None,
        latest_before: int | None = None,
    ) -> tuple[ModelVersion, bool]:
        """Log ``model`` into ``run_id`` (or a run of its own, ended here) and register it with
        ``rec``, its lineage and where its files are as tags
        (:meth:`~retrain.registry.records.VersionRecord.to_tags`); returns the version and
        ``True``, or the winner of a race and ``False``.

        ``experiment_id``: the experiment of ``run_id`` if the caller knows it (else the run is
        read). ``latest_before``: the highest version number the model had when the caller read
        it, *before* :meth:`find` found no version for the key (``None``: no version, or not
        known). If the new version is the next number, no version was created between that
        read and this one, so any other version with this key would have been older than the
        read and found: the race check's search is skipped. Otherwise it runs.
        """
        name, client = self._client.name, self._client.mlflow
        trusted = list(trusted_types) if trusted_types is not None else dumps_trusted(model)[1]
        trusted_types_tag(trusted)  # refused before anything is written
        stored: dict[str, Any] = {
            "idempotency_key": key,
            "reference_profile": PROFILE_FILE if profile is not None else "none",
            "artifacts": sorted(artifacts),
            "trusted_types": sorted(trusted),
        }
        rec.to_tags(stored)  # a record too long for its tag is refused here too
        own_run = run_id is None
        if run_id is None:
            run = client.create_run(
                self._client.experiment_id(self.experiment_name),
                run_name=f"register-{rec.retraining_id}",
                tags={"retrain.retraining_id": rec.retraining_id, _IDEMPOTENCY_TAG: digest},
            )
            run_id, experiment_id = run.info.run_id, run.info.experiment_id
        elif experiment_id is None:
            experiment_id = client.get_run(run_id).info.experiment_id
        assert run_id is not None and experiment_id is not None
        lineage = {_IDEMPOTENCY_TAG: digest, "retrain.retraining_id": rec.retraining_id}
        logged = self._artifacts.log(
            model,
            example=example,
            experiment_id=experiment_id,
            run_id=run_id,
            tags=lineage,
            profile=profile,
            artifacts=artifacts,
            requirements=requirements,
            trusted_types=trusted,
            what=f"the new model of {rec.retraining_id}",
            end_run_on_failure=own_run,
        )
        location = logged.artifact_location
        stored |= {
            "model_id": logged.model_id,
            # a location holding a secret is not stored: reads ask MLflow for it instead
            "artifact_uri": location if redact(location) == location else None,
        }
        tags = {**rec.to_tags(stored), KEY_TAG: digest}
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in rec.metrics.items())
        mv = client.create_model_version(
            name,
            source=f"models:/{logged.model_id}",
            run_id=run_id,
            tags=tags,
            description=f"{rec.algorithm} from retraining {rec.retraining_id}: {metrics}",
            await_creation_for=0,
            model_id=logged.model_id,
        )
        if own_run:
            client.set_terminated(run_id, "FINISHED")
        if int(mv.version) == (latest_before or 0) + 1:
            return mv, True  # nothing was created in between (see above)
        # Two concurrent first attempts with one key: the lowest version wins, the other goes.
        winner = self.find(digest)
        if winner is not None and int(winner.version) != int(mv.version):
            self._client.delete_version(mv.version)
            return winner, False
        return mv, True
