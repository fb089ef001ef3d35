"""The model registry: versions with lineage, staging -> canary -> production, audit, rollback.

MLflow is the system of record. :class:`ModelRegistry` wraps ``mlflow.MlflowClient`` for one
registered model (``config.model.name``) and adds what MLflow lacks:

* **Records.** Each version carries the seed's version record (version id, timestamp, algorithm,
  training data version, metrics, features, status) plus lineage (retraining id, trigger reasons,
  gate result, training-data watermark, git commit, idempotency key) as ``retrain.*`` version tags.
* **Status flow.** Aliases ``staging``, ``canary`` and ``production`` point at versions; the tag
  ``retrain.status`` mirrors them (plus ``archived``, ``rolled_back``, ``rejected``). Allowed
  changes are the explicit :data:`TRANSITIONS`; anything else raises :class:`RegistryError`.
* **Audit history.** Every alias move is an :class:`AuditEntry`, stored as ONE MLflow run in the
  experiment ``<experiment>/audit`` (``retrain/<model>/audit``), created with all its fields as
  tags in a single request. Concurrent writers create separate rows, so none can overwrite
  another; the server filters and pages the history (reads cost what they return, not the whole
  log), and the MLflow UI shows it as a table. The entry's state is the run's status.
* **Crash safety.** A move is written as an entry in state ``pending`` (run ``RUNNING``) *before*
  any alias moves; then the aliases move, the status tags change, and the entry becomes ``done``
  (run ``FINISHED``; its only change). The next mutating call (or :meth:`ModelRegistry.repair`)
  completes pending entries, so a crash anywhere leaves either nothing changed or a recorded move
  that a re-run finishes; never a moved pointer without a record.

No Airflow import; mlflow, scikit-learn and pandas load inside the methods that need them.
Alias-moving calls for one model are expected to be serialised by the caller (the DAG runs with
``max_active_runs=1``); the audit log itself loses no entry under concurrency.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import json
import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from retrain.errors import RegistryError, UnknownModelError
from retrain.notify import LogNotifier, Notification, NotificationError, Notifier
from retrain.registry.lifecycle import (
    ALIASES,
    allowed_transition,
    illegal_transition_message,
    require_reason,
)
from retrain.registry.provenance import default_actor, git_commit, pinned_requirements
from retrain.registry.records import (
    STATUS_TAG,
    AliasMove,
    ModelVersionInfo,
    VersionRecord,
    alias_versions,
    optional_version,
    version_label,
)
from retrain.serialization import dumps_trusted, quiet_skops
from retrain.tracking import client_env

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion, RegisteredModel

    from retrain.config import RetrainConfig

__all__ = ["AuditEntry", "ModelRegistry"]

logger = logging.getLogger(__name__)

INPUT_EXAMPLE_ROWS = 10
PROFILE_FILE = "reference_profile.json"

#: Audit entry state <-> status of the MLflow run that stores it.
_STATE_OF_RUN = {
    "RUNNING": "pending",
    "FINISHED": "done",
    "KILLED": "superseded",
    "FAILED": "failed",
}
_RUN_OF_STATE = {state: status for status, state in _STATE_OF_RUN.items()}
_REASON_LIMIT = 4000  # run tag values are capped at 8000 characters


@dataclass(frozen=True)
class AuditEntry:
    """One recorded registry operation: its alias moves and the status tags it sets.

    ``alias``/``from_version``/``to_version`` repeat the primary move; ``moves`` lists all of them
    (e.g. promoting the canary to production also removes the ``canary`` alias). ``state`` is
    ``pending`` until every step is written, then ``done``; ``superseded`` if a later entry moved
    the same alias before a pending one was completed; ``failed`` if its repair was refused.
    ``audit_run_id`` is the MLflow run that stores the entry.
    """

    id: str
    at: str
    op: str
    alias: str
    from_version: int | None
    to_version: int | None
    actor: str
    reason: str
    run_id: str | None
    state: str
    moves: tuple[AliasMove, ...]
    statuses: Mapping[int, str] = field(default_factory=dict)
    audit_run_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["moves"] = [asdict(m) for m in self.moves]
        data["statuses"] = {str(k): v for k, v in self.statuses.items()}
        return data

    def to_tags(self, model: str) -> dict[str, str]:
        """Run tags storing the entry (one tag per field; searchable, visible in the UI)."""
        production = next((m for m in self.moves if m.alias == "production"), None)
        moves = " ".join(
            f"{m.alias}:{version_label(m.from_version)}->{version_label(m.to_version)}"
            for m in self.moves
        )
        return {
            "retrain.model": model,
            "retrain.audit_id": self.id,
            "retrain.at": self.at,
            "retrain.op": self.op,
            "retrain.alias": self.alias,
            "retrain.from_version": version_label(self.from_version),
            "retrain.to_version": version_label(self.to_version),
            "retrain.actor": self.actor,
            "retrain.reason": self.reason[:_REASON_LIMIT],
            "retrain.run_id": self.run_id or "",
            "retrain.moves": json.dumps([asdict(m) for m in self.moves]),
            "retrain.statuses": json.dumps({str(k): v for k, v in self.statuses.items()}),
            "retrain.production_to": version_label(production.to_version) if production else "",
            "mlflow.user": self.actor,
            "mlflow.runName": f"{self.op} {moves}"[:250],
        }

    @classmethod
    def from_run(cls, run: Any) -> AuditEntry:
        """Read an entry back from the MLflow run that stores it."""
        tags = run.data.tags
        moves = tuple(AliasMove.from_dict(m) for m in json.loads(tags.get("retrain.moves", "[]")))
        return cls(
            id=tags["retrain.audit_id"],
            at=tags.get("retrain.at", ""),
            op=tags.get("retrain.op", ""),
            alias=tags.get("retrain.alias", ""),
            from_version=optional_version(tags.get("retrain.from_version")),
            to_version=optional_version(tags.get("retrain.to_version")),
            actor=tags.get("retrain.actor", ""),
            reason=tags.get("retrain.reason", ""),
            run_id=tags.get("retrain.run_id") or None,
            state=_STATE_OF_RUN.get(run.info.status, "pending"),
            moves=moves,
            statuses={int(k): v for k, v in json.loads(tags.get("retrain.statuses", "{}")).items()},
            audit_run_id=run.info.run_id,
        )


# --- the registry --------------------------------------------------------------------------------


class _EntryIds:
    lock = threading.Lock()
    last_ns = 0


def _new_entry_id() -> str:
    """Sortable, unique audit id ``YYYYmmddTHHMMSS.ffffffZ.<8 hex>``, increasing per process."""
    with _EntryIds.lock:
        now = max(time.time_ns(), _EntryIds.last_ns + 1000)
        _EntryIds.last_ns = now
    stamp = datetime.fromtimestamp(now / 1e9, UTC)
    return f"{stamp:%Y%m%dT%H%M%S.%f}Z.{secrets.token_hex(4)}"


class _ModelCache:
    """Fitted models loaded in this process, by artifact location (immutable once logged).

    One retraining loads the production model for the signals and again for the evaluation,
    and registers a candidate that is checked, fingerprinted and promoted: each is downloaded
    and deserialised once. ``verified`` remembers a successful load-and-predict check for
    :data:`VERIFIED_FOR_SECONDS`; a rollback always checks again.
    """

    size = 4
    lock = threading.Lock()
    models: dict[tuple[str, str], Any] = {}
    verified: dict[tuple[str, str], float] = {}

    @classmethod
    def get(cls, key: tuple[str, str]) -> Any | None:
        with cls.lock:
            model = cls.models.pop(key, None)
            if model is not None:
                cls.models[key] = model  # most recently used last
            return model

    @classmethod
    def put(cls, key: tuple[str, str], model: Any, *, verified: bool = False) -> None:
        with cls.lock:
            cls.models.pop(key, None)
            cls.models[key] = model
            while len(cls.models) > cls.size:
                cls.models.pop(next(iter(cls.models)))
            if verified:
                cls.verified[key] = time.monotonic()

    @classmethod
    def is_verified(cls, key: tuple[str, str]) -> bool:
        with cls.lock:
            checked = cls.verified.get(key)
        return checked is not None and time.monotonic() - checked < VERIFIED_FOR_SECONDS


VERIFIED_FOR_SECONDS: Final = 600.0


@functools.lru_cache(maxsize=16)
def _artifact_text(tracking_uri: str, artifact_uri: str) -> str:
    """A small text artifact of a logged model (immutable once logged: read once per process)."""
    import mlflow

    with tempfile.TemporaryDirectory(prefix="retrain-artifact-") as tmp:
        # not mlflow.artifacts.load_text: it resolves against the global tracking URI
        path = mlflow.artifacts.download_artifacts(
            artifact_uri=artifact_uri, dst_path=tmp, tracking_uri=tracking_uri
        )
        return Path(path).read_text(encoding="utf-8")


class ModelRegistry:
    """The registered model ``config.model.name`` on ``config.registry.tracking_uri``."""

    def __init__(
        self,
        config: RetrainConfig,
        *,
        actor: str | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.config = config
        self.name = config.model.name
        self.settings = config.registry
        self.tracking_uri = config.registry.tracking_uri
        self.actor = actor or default_actor()
        self.notifier: Notifier = notifier or LogNotifier()
        self._client_instance: MlflowClient | None = None
        self._audit_experiment_id: str | None = None

    def __repr__(self) -> str:
        return f"ModelRegistry({self.name!r} at {self.tracking_uri})"

    # --- plumbing -----------------------------------------------------------------------------

    @property
    def _client(self) -> MlflowClient:
        if self._client_instance is None:
            from mlflow import MlflowClient

            self._client_instance = MlflowClient(
                tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri
            )
        return self._client_instance

    @contextlib.contextmanager
    def _calls(self, what: str) -> Iterator[None]:
        """Bounded HTTP settings, and mlflow/network errors turned into :class:`RegistryError`."""
        from mlflow.exceptions import MlflowException, RestException

        with client_env(self.settings):
            try:
                yield
            except RegistryError:
                raise
            except RestException as exc:
                if exc.error_code == "RESOURCE_DOES_NOT_EXIST" and "Registered Model" in str(exc):
                    raise UnknownModelError(
                        f"{what}: model {self.name!r} is not registered at {self.tracking_uri} "
                        "(no version has been registered yet)"
                    ) from exc
                raise RegistryError(f"{what}: MLflow refused: {exc.message}") from exc
            except MlflowException as exc:
                raise self._transport_error(what, exc.message) from exc
            except OSError as exc:
                raise self._transport_error(what, str(exc)) from exc

    def _transport_error(self, what: str, message: str) -> RegistryError:
        lowered = message.lower()
        if "api request to" not in lowered and "connection" not in lowered:
            return RegistryError(f"{what}: {message}")
        if "refused" in lowered:
            cause = "connection refused"
        elif "timed out" in lowered or "timeout" in lowered:
            cause = f"no answer within {self.settings.request_timeout_seconds:g} s"
        elif "name or service not known" in lowered or "resolve" in lowered:
            cause = "host name does not resolve"
        else:
            cause = message.splitlines()[0][-200:]
        return RegistryError(
            f"{what}: MLflow tracking server at {self.tracking_uri} is unreachable ({cause}, "
            f"{self.settings.max_retries} retr{'y' if self.settings.max_retries == 1 else 'ies'}); "
            "check registry.tracking_uri and that the server is running"
        )

    def _registered_model(self) -> RegisteredModel:
        return self._client.get_registered_model(self.name)

    def _ensure_registered_model(self) -> RegisteredModel:
        from mlflow.exceptions import RestException

        try:
            return self._registered_model()
        except RestException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
        with contextlib.suppress(RestException):  # lost a creation race: fine
            self._client.create_registered_model(
                self.name,
                tags={"retrain.managed": "true"},
                description=f"Managed by retrain (config model {self.name!r}).",
            )
        return self._registered_model()

    @staticmethod
    def _aliases(rm: RegisteredModel) -> dict[str, int]:
        return alias_versions(rm)

    def _mv(self, version: int | str) -> ModelVersion:
        from mlflow.exceptions import RestException

        try:
            return self._client.get_model_version(self.name, str(int(version)))
        except RestException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise RegistryError(
                    f"model {self.name!r} has no version {version} at {self.tracking_uri}"
                ) from exc
            raise
        except ValueError:
            raise RegistryError(f"not a version number: {version!r}") from None

    def _info(
        self, mv: ModelVersion, aliases: Mapping[str, int], created: bool = True
    ) -> ModelVersionInfo:
        return ModelVersionInfo.from_mlflow(self.name, mv, aliases, created=created)

    def _notify(self, notification: Notification) -> None:
        try:
            self.notifier.notify(notification)
        except (NotificationError, OSError, ValueError) as exc:
            logger.error("notification %r not delivered: %s", notification.title, exc)

    # --- queries ------------------------------------------------------------------------------

    def versions(self) -> list[ModelVersionInfo]:
        """Every version of the model, newest first."""
        with self._calls(f"listing versions of {self.name!r}"):
            aliases = self._aliases(self._registered_model())
            found: list[ModelVersion] = []
            token: str | None = None
            while True:
                page = self._client.search_model_versions(
                    f"name='{self.name}'", max_results=1000, page_token=token
                )
                found.extend(page)
                token = page.token
                if not token:
                    break
        infos = [self._info(mv, aliases) for mv in found]
        return sorted(infos, key=lambda i: i.version, reverse=True)

    def get_version(self, version: int | str) -> ModelVersionInfo:
        """One version with its record and aliases."""
        with self._calls(f"reading version {version} of {self.name!r}"):
            aliases = self._aliases(self._registered_model())
            return self._info(self._mv(version), aliases)

    def current(self) -> dict[str, ModelVersionInfo]:
        """Versions holding ``staging``/``canary``/``production``, by alias (absent if unset)."""
        with self._calls(f"reading aliases of {self.name!r}"):
            aliases = self._aliases(self._registered_model())
            return {a: self._info(self._mv(aliases[a]), aliases) for a in ALIASES if a in aliases}

    def production_watermark(self) -> datetime | None:
        """Training-data watermark of the production version; ``None`` without one."""
        production = self.current().get("production")
        return production.record.watermark_time if production else None

    def history(self, limit: int | None = None) -> list[AuditEntry]:
        """Audit entries, newest first."""
        with self._calls(f"reading the audit history of {self.name!r}"):
            self._registered_model()  # a clear error for an unknown model
            size = 1000 if limit is None else max(1, min(limit, 1000))
            return list(itertools.islice(self._iter_entries(page_size=size), limit))

    def load_model(self, version_or_alias: int | str) -> Any:
        """The fitted scikit-learn object of a version number or alias (``production``...)."""
        import mlflow

        with self._calls(f"loading {self.name!r} {version_or_alias}"):
            mv = self._mv(self._resolve(version_or_alias))
            key = self._cache_key(mv)
            cached = _ModelCache.get(key)
            if cached is not None:
                return cached
            with tempfile.TemporaryDirectory(prefix="retrain-model-") as tmp:
                local = self._download(mv, tmp)
                with _quiet_mlflow():
                    model = mlflow.sklearn.load_model(local)
            _ModelCache.put(key, model)
            return model

    def _cache_key(self, mv: ModelVersion) -> tuple[str, str]:
        """Where a version's artifacts live (unique per logged model), for :class:`_ModelCache`."""
        tags = mv.tags or {}
        where = tags.get("retrain.artifact_uri") or f"{mv.source}#{mv.creation_timestamp}"
        return (self.tracking_uri, where)

    def reference_profile(self, version: int | str) -> dict[str, Any] | None:
        """The drift reference profile stored with a version, or ``None`` if it has none."""
        with self._calls(f"reading the reference profile of {self.name!r} v{version}"):
            mv = self._mv(self._resolve(version))
            if mv.tags.get("retrain.reference_profile") != PROFILE_FILE:
                return None
            where = f"{self._artifact_uri(mv).rstrip('/')}/extra_files/{PROFILE_FILE}"
            text = _artifact_text(self.tracking_uri, where)
            profile: dict[str, Any] = json.loads(text)
            return profile

    def _resolve(self, version_or_alias: int | str) -> int:
        if isinstance(version_or_alias, int) or str(version_or_alias).isdigit():
            return int(version_or_alias)
        aliases = self._aliases(self._registered_model())
        if version_or_alias not in aliases:
            raise RegistryError(f"model {self.name!r} has no {version_or_alias!r} version")
        return aliases[str(version_or_alias)]

    def _artifact_uri(self, mv: ModelVersion) -> str:
        """Where a version's model files are: the location logged at registration, else MLflow's
        download URI (one more request, for versions retrain did not register)."""
        uri = (mv.tags or {}).get("retrain.artifact_uri")
        return uri or self._client.get_model_version_download_uri(self.name, str(mv.version))

    def _download(self, mv: ModelVersion, directory: str) -> str:
        import mlflow

        # mlflow-artifacts URI + explicit tracking_uri: a models:/ URI would be resolved against
        # the process-global registry (and silently create ./mlflow.db), not this server.
        path: str = mlflow.artifacts.download_artifacts(
            artifact_uri=self._artifact_uri(mv),
            dst_path=directory,
            tracking_uri=self.tracking_uri,
        )
        return path

    def _check_loads(
        self, version: int, what: str, mv: ModelVersion | None = None, *, fresh: bool = False
    ) -> None:
        """Download a version, load it and predict on its input example; raise if any step fails.

        A check that passed in this process less than :data:`VERIFIED_FOR_SECONDS` ago (the
        registration's own check) counts, unless ``fresh``.
        """
        mv = mv or self._mv(version)
        key = self._cache_key(mv)
        if not fresh and _ModelCache.is_verified(key):
            return
        with tempfile.TemporaryDirectory(prefix="retrain-check-") as tmp:
            local = self._download(mv, tmp)
            model = _load_and_predict(local, what)
        _ModelCache.put(key, model, verified=True)

    # --- registration ------------------------------------------------------------------------

    def register(
        self,
        model: Any,
        *,
        input_example: pd.DataFrame,
        record: VersionRecord | Mapping[str, Any],
        idempotency_key: str,
        reference_profile: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        artifacts: Mapping[str, str | os.PathLike[str]] | None = None,
        pip_requirements: Sequence[str] | None = None,
        trusted_types: Sequence[str] | None = None,
    ) -> ModelVersionInfo:
        """Log ``model`` (skops) and register it as a new version, announced as ``staging``.

        The model goes into ``run_id`` (the retraining's run) or a new run of
        ``config.experiment_name``, with a signature, the first rows of ``input_example``, pinned
        ``pip_requirements`` and ``reference_profile`` as ``extra_files/reference_profile.json``
        (``artifacts`` as ``extra_files/<name><suffix>``). It is downloaded, loaded and asked to
        predict on the example *before* a version exists: a model that fails gets no version.
        Registering again with the same ``idempotency_key`` returns the existing version
        (``created=False``) and finishes its announcement if a crash interrupted it.
        ``trusted_types``: the types skops must trust to load the model, when the caller already
        knows them (``TrainResult.trusted_types``); otherwise found by serialising it once more.
        A wrong list fails the load check, so it can cost a registration but never admit one.
        """
        if not idempotency_key or not idempotency_key.strip():
            raise ValueError("idempotency_key must be a non-empty string")
        rec = VersionRecord.from_value(record)
        example = _check_example(input_example)
        digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:32]
        with self._calls(f"registering a version of {self.name!r}"):
            self._ensure_registered_model()
            self._reconcile()
            existing = self._find_by_key(digest)
            if existing is not None:
                return self._finish_registration(existing, created=False, run_id=run_id)
            now = datetime.now(UTC)
            rec = replace(
                rec,
                version_id=rec.version_id or f"{self.name}-{now:%Y%m%dT%H%M%SZ}-{digest[:8]}",
                timestamp=rec.timestamp or now.isoformat().replace("+00:00", "Z"),
                git_commit=rec.git_commit or git_commit(),
                status="pending",
            )
            mv = self._log_and_register(
                model,
                example=example,
                rec=rec,
                key=idempotency_key,
                digest=digest,
                profile=reference_profile,
                run_id=run_id,
                artifacts=artifacts or {},
                requirements=list(pip_requirements or pinned_requirements()),
                trusted_types=trusted_types,
            )
            return self._finish_registration(mv, created=True, run_id=run_id)

    def _find_by_key(self, digest: str) -> ModelVersion | None:
        found = self._client.search_model_versions(
            f"name='{self.name}' and tags.`retrain.idempotency`='{digest}'"
        )
        return min(found, key=lambda mv: int(mv.version)) if found else None

    def _log_and_register(
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
    ) -> ModelVersion:
        from mlflow.entities import LoggedModelOutput, LoggedModelStatus

        client = self._client
        own_run = run_id is None
        if run_id is None:
            run = client.create_run(
                self._experiment(self.config.experiment_name),
                run_name=f"register-{rec.retraining_id}",
                tags={"retrain.retraining_id": rec.retraining_id, "retrain.idempotency": digest},
            )
        else:
            run = client.get_run(run_id)
        run_id, experiment_id = run.info.run_id, run.info.experiment_id
        lineage = {"retrain.idempotency": digest, "retrain.retraining_id": rec.retraining_id}
        logged = client.create_logged_model(
            experiment_id, name="model", source_run_id=run_id, tags=lineage, model_type="sklearn"
        )
        try:
            with tempfile.TemporaryDirectory(prefix="retrain-register-") as tmp:
                local = _save_model(
                    model,
                    example=example,
                    directory=Path(tmp),
                    logged=logged,
                    run_id=run_id,
                    profile=profile,
                    artifacts=artifacts,
                    requirements=requirements,
                    trusted_types=trusted_types,
                )
                client.log_model_artifacts(logged.model_id, local)
            self._check_artifacts(logged.artifact_location, f"the new model of {rec.retraining_id}")
        except BaseException as exc:
            with contextlib.suppress(Exception):
                client.set_logged_model_tags(
                    logged.model_id, {"retrain.load_check": str(exc)[:500]}
                )
                client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
                if own_run:
                    client.set_terminated(run_id, "FAILED")
            raise
        client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
        client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
        tags = {
            **rec.to_tags(),
            **lineage,
            "retrain.idempotency_key": key[:5000],
            "retrain.model_id": logged.model_id,
            "retrain.artifact_uri": logged.artifact_location,
            "retrain.reference_profile": PROFILE_FILE if profile is not None else "none",
            "retrain.artifacts": json.dumps(sorted(artifacts)),
        }
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in rec.metrics.items())
        mv = client.create_model_version(
            self.name,
            source=f"models:/{logged.model_id}",
            run_id=run_id,
            tags=tags,
            description=f"{rec.algorithm} from retraining {rec.retraining_id}: {metrics}",
            await_creation_for=0,
            model_id=logged.model_id,
        )
        if own_run:
            client.set_terminated(run_id, "FINISHED")
        # Two concurrent first attempts with one key: the lowest version wins, the other goes.
        winner = self._find_by_key(digest)
        if winner is not None and int(winner.version) != int(mv.version):
            client.delete_model_version(self.name, mv.version)
            return winner
        return mv

    def _check_artifacts(self, artifact_uri: str, what: str) -> None:
        import mlflow

        with tempfile.TemporaryDirectory(prefix="retrain-check-") as tmp:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=artifact_uri, dst_path=tmp, tracking_uri=self.tracking_uri
            )
            model = _load_and_predict(local, what)
        _ModelCache.put((self.tracking_uri, artifact_uri), model, verified=True)

    def _experiment(self, name: str) -> str:
        """Id of experiment ``name``, created if missing."""
        from mlflow.exceptions import RestException

        experiment = self._client.get_experiment_by_name(name)
        if experiment is not None:
            return str(experiment.experiment_id)
        try:
            return str(self._client.create_experiment(name))
        except RestException:  # created concurrently
            experiment = self._client.get_experiment_by_name(name)
            if experiment is None:
                raise
            return str(experiment.experiment_id)

    def _finish_registration(
        self, mv: ModelVersion, *, created: bool, run_id: str | None
    ) -> ModelVersionInfo:
        status = (mv.tags or {}).get(STATUS_TAG)
        if status == "pending":  # registered but never announced (new, or a crash in between)
            version = int(mv.version)
            rm = self._registered_model()
            record = VersionRecord.from_tags(mv.tags)
            entry = self._plan_alias(
                rm,
                version,
                "staging",
                op="register",
                displaced="archived",
                reason=f"registered from retraining {record.retraining_id}",
                run_id=run_id,
            )
            self._run_entry(entry, self._aliases(rm))
            mv = self._mv(version)
        return self._info(mv, self._aliases(self._registered_model()), created=created)

    # --- status flow -------------------------------------------------------------------------

    def promote(
        self, version: int | str, to: str, *, reason: str, run_id: str | None = None
    ) -> AuditEntry:
        """Move ``version`` to ``canary`` or ``production`` (audited).

        Staging -> production needs ``deployment.skip_canary``; the gate must have ``passed`` or
        been ``forced``; a production target must load and predict first. The previous
        production version becomes ``archived``. Re-running a promotion that a crash interrupted
        completes it and returns its entry.
        """
        if to not in ("canary", "production"):
            raise ValueError(f"promote to 'canary' or 'production', got {to!r}")
        require_reason(reason)
        with self._calls(f"promoting {self.name!r} v{version} to {to}"):
            rm = self._ensure_registered_model()
            repaired = self._reconcile()
            mv = self._mv(version)
            number = int(mv.version)
            for entry in repaired:
                if entry.op == "promote" and entry.alias == to and entry.to_version == number:
                    return entry
            rm = self._registered_model() if repaired else rm
            info = self._info(mv, self._aliases(rm))
            self._check_transition(info, to, "promote")
            if info.record.gate not in ("passed", "forced"):
                raise RegistryError(
                    f"version {number} of {self.name!r} cannot be promoted to {to}: its gate "
                    f"result is {info.record.gate or 'missing'!r} (needs 'passed' or 'forced')"
                )
            if to == "production":
                self._check_loads(number, f"version {number} of {self.name!r}", mv=mv)
            entry = self._plan_alias(
                rm, number, to, op="promote", displaced="archived", reason=reason, run_id=run_id
            )
            entry = self._run_entry(entry, self._aliases(rm))
        logger.info("promoted %s v%s to %s: %s", self.name, number, to, reason)
        if to == "production":
            self._notify(
                Notification(
                    event="promotion",
                    title=f"{self.name}: version {number} promoted to production",
                    text=f"{self.name} v{number} now serves production "
                    f"(was v{entry.from_version}); reason: {reason}",
                    details=_details(entry),
                )
            )
        return entry

    def reject(self, version: int | str, *, reason: str, run_id: str | None = None) -> AuditEntry:
        """Mark a staging or canary version ``rejected`` and remove its alias (audited)."""
        require_reason(reason)
        with self._calls(f"rejecting {self.name!r} v{version}"):
            rm = self._ensure_registered_model()
            repaired = self._reconcile()
            mv = self._mv(version)
            number = int(mv.version)
            for entry in repaired:
                if entry.op == "reject" and entry.statuses.get(number) == "rejected":
                    return entry
            rm = self._registered_model() if repaired else rm
            aliases = self._aliases(rm)
            info = self._info(mv, aliases)
            self._check_transition(info, "rejected", "reject")
            held = [a for a in ALIASES if aliases.get(a) == number]
            moves = tuple(AliasMove(a, number, None) for a in held)
            entry = self._entry(
                op="reject",
                moves=moves or (AliasMove(info.status, number, None),),
                statuses={number: "rejected"},
                reason=reason,
                run_id=run_id,
            )
            entry = self._run_entry(entry, aliases)
        logger.warning("rejected %s v%s: %s", self.name, number, reason)
        self._notify(
            Notification(
                event="rejection",
                title=f"{self.name}: version {number} rejected",
                text=f"{self.name} v{number} ({info.status}) was rejected; reason: {reason}",
                level="warning",
                details=_details(entry),
            )
        )
        return entry

    def rollback(
        self, *, reason: str, to_version: int | str | None = None, run_id: str | None = None
    ) -> AuditEntry:
        """Return ``production`` to the version that served before the current one.

        The default target comes from the audit history (the version the current production
        version replaced), so a rollback of a rollback returns to the version that was serving.
        An explicit ``to_version`` must have been in production before or have passed the gate.
        The target must load and predict on its input example before the alias moves. The
        demoted version becomes ``rolled_back``. Logged at CRITICAL and sent to the notifier.
        Re-running after an interrupted rollback completes that rollback instead of starting
        another.
        """
        require_reason(reason)
        with self._calls(f"rolling back {self.name!r}"):
            rm = self._ensure_registered_model()
            repaired = self._reconcile()
            for entry in repaired:
                if entry.op == "rollback" and (
                    to_version is None or entry.to_version == int(to_version)
                ):
                    self._announce_rollback(entry)
                    return entry
            rm = self._registered_model() if repaired else rm
            aliases = self._aliases(rm)
            current = aliases.get("production")
            if current is None:
                raise RegistryError(
                    f"nothing to roll back to: model {self.name!r} has no production version"
                )
            target = self._rollback_target(current, to_version)
            mv = self._mv(target)
            self._check_transition(self._info(mv, aliases), "production", "rollback")
            self._check_loads(
                target, f"rollback target version {target} of {self.name!r}", mv=mv, fresh=True
            )
            entry = self._plan_alias(
                rm,
                target,
                "production",
                op="rollback",
                displaced="rolled_back",
                reason=reason,
                run_id=run_id,
            )
            entry = self._run_entry(entry, aliases)
        self._announce_rollback(entry)
        return entry

    def _rollback_target(self, current: int, to_version: int | str | None) -> int:
        if to_version is None:
            latest = next(self._production_moves_to(current), None)
            if latest is None:
                raise RegistryError(
                    f"nothing to roll back to: the audit history of {self.name!r} does not say "
                    f"what served before version {current}; pass an explicit version (--to N)"
                )
            move = next(m for m in latest.moves if m.alias == "production")
            if move.from_version is None:
                raise RegistryError(
                    f"nothing to roll back to: version {current} of {self.name!r} is the first "
                    "production version"
                )
            return move.from_version
        target = int(to_version)
        if target == current:
            raise RegistryError(f"version {target} of {self.name!r} is already in production")
        info = self._info(self._mv(target), {})
        served = next(self._production_moves_to(target), None) is not None
        if not served and info.record.gate != "passed":
            raise RegistryError(
                f"cannot roll back {self.name!r} to version {target}: it was never in production "
                f"and its gate result is {info.record.gate or 'missing'!r}"
            )
        return target

    def _announce_rollback(self, entry: AuditEntry) -> None:
        logger.critical(
            "ROLLBACK %s: production v%s -> v%s by %s: %s",
            self.name,
            entry.from_version,
            entry.to_version,
            entry.actor,
            entry.reason,
        )
        self._notify(
            Notification(
                event="rollback",
                title=f"{self.name}: rolled back to version {entry.to_version}",
                text=f"{self.name} production moved from v{entry.from_version} back to "
                f"v{entry.to_version} by {entry.actor}; reason: {entry.reason}",
                level="critical",
                details=_details(entry),
            )
        )

    def _check_transition(self, info: ModelVersionInfo, target: str, operation: str) -> None:
        skip = self.config.deployment.skip_canary
        if not allowed_transition(info.status, target, operation, skip_canary=skip):
            raise RegistryError(
                illegal_transition_message(self.name, info.version, info.status, target, operation)
            )

    # --- audit store: one MLflow run per entry ------------------------------------------------

    @property
    def audit_experiment_name(self) -> str:
        """Experiment holding the audit entries: ``<experiment>/audit``."""
        return f"{self.config.experiment_name}/audit"

    def _audit_experiment(self, *, create: bool) -> str | None:
        if self._audit_experiment_id is None:
            name = self.audit_experiment_name
            if create:
                self._audit_experiment_id = self._experiment(name)
            elif (experiment := self._client.get_experiment_by_name(name)) is not None:
                self._audit_experiment_id = str(experiment.experiment_id)
        return self._audit_experiment_id

    def _iter_entries(
        self, condition: str = "", *, oldest_first: bool = False, page_size: int = 100
    ) -> Iterator[AuditEntry]:
        """Audit entries of this model, newest first (pages fetched as they are consumed)."""
        experiment = self._audit_experiment(create=False)
        if experiment is None:
            return
        query = f"tags.`retrain.model` = '{self.name}'" + (f" and {condition}" if condition else "")
        order = "ASC" if oldest_first else "DESC"
        token: str | None = None
        while True:
            page = self._client.search_runs(
                [experiment],
                query,
                max_results=page_size,
                order_by=[f"tags.`retrain.audit_id` {order}"],
                page_token=token,
            )
            for run in page:
                if "retrain.audit_id" in run.data.tags:
                    yield AuditEntry.from_run(run)
            token = page.token
            if not token:
                return

    def _production_moves_to(self, version: int) -> Iterator[AuditEntry]:
        """Completed entries that moved ``production`` to ``version``, newest first."""
        return self._iter_entries(
            f"tags.`retrain.production_to` = '{version}' and attributes.status = 'FINISHED'"
        )

    def _write_entry(self, entry: AuditEntry) -> AuditEntry:
        """Store a new entry as a run (state ``pending`` = run RUNNING), in one request."""
        started = int(datetime.fromisoformat(entry.at).timestamp() * 1000)
        run = self._client.create_run(
            self._audit_experiment(create=True) or "",
            start_time=started,
            tags=entry.to_tags(self.name),
        )
        return replace(entry, audit_run_id=run.info.run_id)

    def _finish_entry(self, entry: AuditEntry, state: str) -> AuditEntry:
        """Mark an entry ``done``/``superseded``/``failed`` (its only change after writing)."""
        self._client.set_terminated(entry.audit_run_id, _RUN_OF_STATE[state])
        return replace(entry, state=state)

    # --- audited moves -----------------------------------------------------------------------

    def _entry(
        self,
        *,
        op: str,
        moves: tuple[AliasMove, ...],
        statuses: Mapping[int, str],
        reason: str,
        run_id: str | None,
    ) -> AuditEntry:
        primary = moves[0]
        return AuditEntry(
            id=_new_entry_id(),
            at=datetime.now(UTC).isoformat(),
            op=op,
            alias=primary.alias,
            from_version=primary.from_version,
            to_version=primary.to_version,
            actor=self.actor,
            reason=reason,
            run_id=run_id,
            state="pending",
            moves=moves,
            statuses=dict(statuses),
        )

    def _plan_alias(
        self,
        rm: RegisteredModel,
        version: int,
        alias: str,
        *,
        op: str,
        displaced: str,
        reason: str,
        run_id: str | None,
    ) -> AuditEntry:
        """Entry moving ``alias`` to ``version``; the version leaves any other lifecycle alias."""
        aliases = self._aliases(rm)
        previous = aliases.get(alias)
        moves = [AliasMove(alias, previous, version)]
        moves += [
            AliasMove(a, version, None) for a in ALIASES if a != alias and aliases.get(a) == version
        ]
        statuses = {version: alias}
        if previous is not None and previous != version:
            statuses[previous] = displaced
        return self._entry(
            op=op, moves=tuple(moves), statuses=statuses, reason=reason, run_id=run_id
        )

    def _move_aliases(self, entry: AuditEntry, aliases: Mapping[str, int]) -> None:
        for move in entry.moves:
            current = aliases.get(move.alias)
            if move.to_version is None:
                if current is not None and current == move.from_version:
                    self._client.delete_registered_model_alias(self.name, move.alias)
            elif current != move.to_version:
                self._client.set_registered_model_alias(self.name, move.alias, str(move.to_version))

    def _write_statuses(self, entry: AuditEntry) -> None:
        for version, status in entry.statuses.items():
            self._client.set_model_version_tag(self.name, str(version), STATUS_TAG, status)

    def _run_entry(
        self, entry: AuditEntry, aliases: Mapping[str, int], *, recorded: bool = False
    ) -> AuditEntry:
        """Record first, then move, then mirror the status, then mark done (crash-safe order).

        Every step is idempotent, so completing a ``pending`` entry is running it again.
        """
        if not recorded:
            entry = self._write_entry(entry)
        self._move_aliases(entry, aliases)
        self._write_statuses(entry)
        return self._finish_entry(entry, "done")

    def _reconcile(self) -> list[AuditEntry]:
        """Complete entries left ``pending`` by a crash; returns the entries completed."""
        completed: list[AuditEntry] = []
        for entry in list(self._iter_entries("attributes.status = 'RUNNING'", oldest_first=True)):
            touched: set[str] = set()
            for later in self._iter_entries():  # newest first, down to this entry
                if later.id <= entry.id:
                    break
                if later.state != "superseded":
                    touched.update(m.alias for m in later.moves)
            if any(m.alias in touched for m in entry.moves):
                logger.warning("audit entry %s superseded before completion", entry.id)
                self._finish_entry(entry, "superseded")
                continue
            aliases = self._aliases(self._registered_model())
            production = next((m for m in entry.moves if m.alias == "production"), None)
            target = production.to_version if production else None
            if target is not None and aliases.get("production") != target:
                try:
                    self._check_loads(target, f"version {target} of {self.name!r}", fresh=True)
                except RegistryError as exc:
                    logger.error("not completing audit entry %s: %s", entry.id, exc)
                    self._finish_entry(entry, "failed")
                    continue
            logger.warning(
                "completing interrupted %s of %s (entry %s: %s v%s -> v%s)",
                entry.op,
                self.name,
                entry.id,
                entry.alias,
                entry.from_version,
                entry.to_version,
            )
            completed.append(self._run_entry(entry, aliases, recorded=True))
        return completed

    def pending(self) -> list[AuditEntry]:
        """Entries a crash left incomplete (the next promote/rollback/register completes them)."""
        with self._calls(f"reading pending moves of {self.name!r}"):
            return list(self._iter_entries("attributes.status = 'RUNNING'"))

    def repair(self) -> list[AuditEntry]:
        """Complete any move a crash interrupted; returns the entries completed."""
        with self._calls(f"repairing {self.name!r}"):
            return self._reconcile()


# --- module helpers ------------------------------------------------------------------------------


def _details(entry: AuditEntry) -> dict[str, Any]:
    return {
        "alias": entry.alias,
        "from_version": entry.from_version,
        "to_version": entry.to_version,
        "actor": entry.actor,
        "run_id": entry.run_id,
        "audit_id": entry.id,
    }


def _check_example(input_example: Any) -> pd.DataFrame:
    import pandas as pd

    if not isinstance(input_example, pd.DataFrame):
        raise ValueError(
            f"input_example must be a pandas DataFrame, got {type(input_example).__name__}"
        )
    if input_example.empty:
        raise ValueError("input_example must have at least one row")
    return input_example.head(INPUT_EXAMPLE_ROWS).reset_index(drop=True)


@contextlib.contextmanager
def _no_requirement_check() -> Iterator[None]:
    """Skip mlflow's check of the pip requirements against the installed distributions.

    The check only warns, and its first call in a process scans every installed distribution
    (0.7 s here, in every Airflow deploy task). Requirements from :func:`pinned_requirements`
    are read from those same distributions, so it cannot find a mismatch. If mlflow moves the
    function, the check simply runs.
    """
    from mlflow.utils import environment

    name = "warn_dependency_requirement_mismatches"
    original = getattr(environment, name, None)
    if original is None:
        yield
        return
    setattr(environment, name, lambda requirements: None)
    try:
        yield
    finally:
        setattr(environment, name, original)


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """Hide warnings that are noise here.

    mlflow 3.17 raises a pandas 3 deprecation warning on every DataFrame input example; skops
    resolves function names by probing every loaded module, which makes Airflow's lazy
    deprecated-import shims warn hundreds of times when the registry runs inside a task.
    """
    with warnings.catch_warnings(), quiet_skops():
        warnings.filterwarnings("ignore", message="Operation with range is deprecated")
        yield


def _load_and_predict(local: str, what: str) -> Any:
    """Load an MLflow sklearn model directory, predict on its stored input example and return
    the loaded model."""
    import mlflow
    from mlflow.models import Model

    try:
        with _quiet_mlflow():
            model = mlflow.sklearn.load_model(local)
            example = Model.load(local).load_input_example(local)
        if example is None:
            raise ValueError("the model has no stored input example")
        predictions = model.predict(example)
        if len(predictions) != len(example):
            raise ValueError(f"{len(predictions)} predictions for {len(example)} example rows")
    except Exception as exc:
        raise RegistryError(f"{what} failed its load check: {type(exc).__name__}: {exc}") from exc
    return model


def _save_model(
    model: Any,
    *,
    example: pd.DataFrame,
    directory: Path,
    logged: Any,
    run_id: str,
    profile: Mapping[str, Any] | None,
    artifacts: Mapping[str, str | os.PathLike[str]],
    requirements: list[str],
    trusted_types: Sequence[str] | None = None,
) -> str:
    """Save ``model`` as an MLflow sklearn model (skops) under ``directory``; returns its path.

    Equivalent to ``mlflow.sklearn.log_model(name="model", ...)`` but bound to an explicit
    client and run instead of the process-global tracking URI and active run.
    """
    import mlflow
    from mlflow.models import Model, infer_signature

    try:
        predictions = model.predict(example)
    except Exception as exc:
        raise RegistryError(
            f"the model cannot predict on its input example: {type(exc).__name__}: {exc}"
        ) from exc
    extra: list[str] = []
    staging = directory / "extra"
    staging.mkdir()
    if profile is not None:
        path = staging / PROFILE_FILE
        path.write_text(json.dumps(profile, sort_keys=True, default=str), encoding="utf-8")
        extra.append(str(path))
    for name, given in sorted(artifacts.items()):
        source = Path(given)
        if not source.is_file():
            raise ValueError(f"artifact {name!r}: {source} is not a file")
        target = staging / f"{name}{source.suffix}"
        shutil.copyfile(source, target)
        extra.append(str(target))
    local = directory / "model"
    pinned_here = requirements == pinned_requirements()
    skip = _no_requirement_check() if pinned_here else contextlib.nullcontext()
    with _quiet_mlflow(), skip:
        trusted = list(trusted_types) if trusted_types is not None else dumps_trusted(model)[1]
        mlflow.sklearn.save_model(
            model,
            str(local),
            mlflow_model=Model(
                artifact_path=logged.artifact_location,
                model_uuid=logged.model_id,
                run_id=run_id,
                model_id=logged.model_id,
            ),
            serialization_format="skops",
            skops_trusted_types=trusted,
            signature=infer_signature(example, predictions),
            input_example=example,
            pip_requirements=requirements,
            extra_files=extra or None,
        )
    return str(local)
