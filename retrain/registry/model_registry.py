"""The :class:`ModelRegistry` facade: the lifecycle of one registered model.

Register -> ``staging`` -> ``canary`` -> ``production``, reject, roll back, repair, and the
queries. Each operation checks the lifecycle rules (:mod:`~retrain.registry.lifecycle`), then
runs its alias moves through :class:`~retrain.registry.moves.AuditedMoves` (record the entry,
move the aliases, mirror the status tags, mark the entry done), completing any move a crash
interrupted first. Storage lives in the collaborators: MLflow requests and their errors in
:class:`~retrain.registry.client.RegistryClient`, new versions in
:class:`~retrain.registry.registration.Registrar`, model files and load checks in
:class:`~retrain.registry.artifacts.ModelArtifacts`, the history in
:class:`~retrain.registry.audit.AuditStore`. Announcements go to the injected ``Notifier``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from retrain.errors import DataError, RegistryError
from retrain.notify import Level, LogNotifier, Notification, NotificationError, Notifier
from retrain.registry.artifacts import ModelArtifacts, artifact_text, check_example, read_flavor
from retrain.registry.audit import AuditEntry, AuditStore
from retrain.registry.client import RegistryClient
from retrain.registry.lifecycle import (
    ALIASES,
    STATUSES,
    allowed_transition,
    illegal_transition_message,
    require_reason,
)
from retrain.registry.moves import AuditedMoves, aliases_after, plan_alias
from retrain.registry.provenance import default_actor, git_commit, pinned_requirements
from retrain.registry.records import (
    STATUS_TAG,
    AliasMove,
    ModelVersionInfo,
    VersionRecord,
    alias_versions,
    latest_version,
    newest_has_legacy_tags,
)
from retrain.registry.registration import Registrar, key_digest

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.entities.model_registry import ModelVersion

    from retrain.config import RetrainConfig

__all__ = ["ModelRegistry"]

logger = logging.getLogger(__name__)


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
        self._client = RegistryClient(self.name, self.settings)
        self._artifacts = ModelArtifacts(self._client)
        self._audit = AuditStore(self._client, self.audit_experiment_name)
        self._moves = AuditedMoves(self._client, self._artifacts, self._audit)
        self._registrar = Registrar(self._client, self._artifacts, config.experiment_name)
        #: Versions read or written through this instance, for their files only (a version's
        #: artifact location and files never change); status and aliases are always read.
        self._files: dict[int, ModelVersion] = {}
        #: Inside :meth:`batch`: the state of the versions this instance just wrote, and whether
        #: no pending audit entry can exist since the batch's reconcile.
        self._batch_depth = 0
        self._reconciled = False
        self._written: dict[int, ModelVersionInfo] = {}

    def __repr__(self) -> str:
        return f"ModelRegistry({self.name!r} at {self._client.shown_uri})"

    @property
    def audit_experiment_name(self) -> str:
        """Experiment holding the audit entries: ``<experiment>/audit``."""
        return f"{self.config.experiment_name}/audit"

    # --- queries ------------------------------------------------------------------------------

    def versions(self) -> list[ModelVersionInfo]:
        """Every version of the model, newest first."""
        with self._client.calls(f"listing versions of {self.name!r}"):
            aliases = self._client.aliases()
            found = self._client.all_versions()
        infos = [self._info(mv, aliases) for mv in found]
        return sorted(infos, key=lambda i: i.version, reverse=True)

    def get_version(self, version: int | str) -> ModelVersionInfo:
        """One version with its record and aliases (one request: a version knows its aliases)."""
        with self._client.calls(f"reading version {version} of {self.name!r}"):
            return self._own_info(self._remember(self._client.model_version(version)))

    def current(self, *only: str) -> dict[str, ModelVersionInfo]:
        """Versions holding ``staging``/``canary``/``production``, by alias (absent if unset).

        ``only``: just these aliases, one request each (``current("production")``: one request);
        without it, the aliases are read once and each aliased version once.
        """
        with self._client.calls(f"reading aliases of {self.name!r}"):
            if only:
                found = {a: self._client.version_by_alias(a) for a in only}
                return {a: self._own_info(self._remember(mv)) for a, mv in found.items() if mv}
            aliases = self._client.aliases()
            return {
                a: self._info(self._remember(self._client.model_version(aliases[a])), aliases)
                for a in ALIASES
                if a in aliases
            }

    def production_watermark(self) -> datetime | None:
        """Training-data watermark of the production version; ``None`` without one."""
        production = self.current("production").get("production")
        return production.record.watermark_time if production else None

    def history(self, limit: int | None = None) -> list[AuditEntry]:
        """Audit entries, newest first: the newest ``limit`` (``None``: all; ``0``: none)."""
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise DataError([f"limit must be a whole number >= 0 (or None for all), got {limit!r}"])
        with self._client.calls(f"reading the audit history of {self.name!r}"):
            self._client.registered_model()  # a clear error for an unknown model
            size = 1000 if limit is None else max(1, min(limit, 1000))
            return list(itertools.islice(self._audit.entries(page_size=size), limit))

    def pending(self) -> list[AuditEntry]:
        """Entries a crash left incomplete (the next promote/rollback/register or
        :meth:`repair` completes them)."""
        with self._client.calls(f"reading pending moves of {self.name!r}"):
            return list(self._audit.pending())

    def unannounced(self) -> list[ModelVersionInfo]:
        """Versions registered but never announced as ``staging`` (status ``pending``), oldest
        first: a registration a crash interrupted between creating the version and announcing
        it, or one in progress right now (one request). :meth:`repair` settles them, as does
        registering again with the same idempotency key."""
        with self._client.calls(f"reading unannounced versions of {self.name!r}"):
            found = self._client.versions_tagged(STATUS_TAG, "pending")
        return sorted((self._own_info(mv) for mv in found), key=lambda i: i.version)

    def load_model(self, version_or_alias: int | str) -> Any:
        """The fitted scikit-learn object of a version number or alias (``production``...).

        An alias is resolved now (one request); a version this instance has read before needs
        no request to find its files (and a model loaded before in this process, no download).
        """
        with self._client.calls(f"loading {self.name!r} {version_or_alias}"):
            return self._artifacts.load(self._version_files(version_or_alias))

    def load_checked(self, version: int | str) -> Any:
        """:meth:`load_model` of a version number, after the load check a promotion runs: the
        version is downloaded, loaded and must predict on its own input example (a check that
        passed in this process moments ago counts). What serves traffic comes through here, so
        a version moved by hand (the MLflow UI's alias editor) that fails it is never served."""
        with self._client.calls(f"checking {self.name!r} v{version}"):
            files = self._version_files(int(version))
            self._artifacts.check_loads(files, f"version {int(version)} of {self.name!r}")
            return self._artifacts.load(files)

    def reference_profile(self, version: int | str) -> dict[str, Any] | None:
        """The drift reference profile stored with a version, or ``None`` if it has none (read
        once per process; a version this instance has read before needs no request)."""
        with self._client.calls(f"reading the reference profile of {self.name!r} v{version}"):
            return self._artifacts.reference_profile(self._version_files(version))

    def input_example(self, version: int | str) -> pd.DataFrame | None:
        """The input example stored with a version (the rows its load check predicts on) as
        MLflow reads it (a DataFrame, typed by the version's signature); ``None`` if it has none
        or it is not a table. Two small JSON files (``MLmodel``, the example) are read; never
        the model file, nothing unpickled. A version whose ``MLmodel`` retrain
        would not load is refused (:class:`RegistryError`), as by :meth:`load_checked`."""
        # loaded already by the artifacts module; imported here, where they are used
        import pandas as pd  # noqa: PLC0415
        from mlflow.models import Model  # noqa: PLC0415
        from mlflow.utils.proto_json_utils import dataframe_from_parsed_json  # noqa: PLC0415

        with self._client.calls(f"reading the input example of {self.name!r} v{version}"):
            mv = self._version_files(version)
            where = self._artifacts.artifact_uri(mv).rstrip("/")
            text = artifact_text(self.tracking_uri, where, "MLmodel")
            with tempfile.TemporaryDirectory(prefix="retrain-mlmodel-") as tmp:
                with open(os.path.join(tmp, "MLmodel"), "w", encoding="utf-8") as out:
                    out.write(text)
                meta = read_flavor(tmp, self._artifacts.what(mv))  # checks the example's path
            info = meta.get("saved_input_example_info")
            name = info.get("artifact_path") if isinstance(info, dict) else None
            if not isinstance(info, dict) or not name or info.get("type") != "dataframe":
                return None
            example = json.loads(artifact_text(self.tracking_uri, where, str(name)))
        if info.get("params") and isinstance(example, dict):  # saved with params: {"inputs": ...}
            example = example.get("inputs")
        signature = Model.from_dict(meta).signature
        schema = signature.inputs if signature is not None else None
        found = dataframe_from_parsed_json(  # type: ignore[no-untyped-call]
            example, pandas_orient="split", schema=schema
        )
        return found if isinstance(found, pd.DataFrame) else None

    def _version_files(self, version_or_alias: int | str) -> ModelVersion:
        """The version whose files to read: remembered, or read now (an alias always is)."""
        if isinstance(version_or_alias, int) or str(version_or_alias).isdigit():
            known = self._files.get(int(version_or_alias))
            if known is not None:
                return known
            return self._remember(self._client.model_version(version_or_alias))
        mv = self._client.version_by_alias(str(version_or_alias))
        if mv is None:
            raise RegistryError(f"model {self.name!r} has no {version_or_alias!r} version")
        return self._remember(mv)

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
        experiment_id: str | None = None,
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
        ``experiment_id``: the experiment of ``run_id`` when the caller knows it (saves reading
        the run).
        """
        if not idempotency_key or not idempotency_key.strip():
            raise DataError(["idempotency_key must be a non-empty string"])
        rec = VersionRecord.from_value(record)
        example = check_example(input_example)
        digest = key_digest(idempotency_key)
        with self._mutating(f"registering a version of {self.name!r}"):
            model_before = self._client.registered_model(create=True)
            if self._reconcile():
                model_before = self._client.registered_model()
            aliases = alias_versions(model_before)
            existing = self._registrar.find(digest, legacy=newest_has_legacy_tags(model_before))
            if existing is not None:
                return self._finish_registration(
                    existing, aliases, created=False, run_id=run_id, fresh=False
                )
            now = datetime.now(UTC)
            rec = replace(
                rec,
                version_id=rec.version_id or f"{self.name}-{now:%Y%m%dT%H%M%SZ}-{digest[:8]}",
                timestamp=rec.timestamp or now.isoformat().replace("+00:00", "Z"),
                git_commit=rec.git_commit or git_commit(),
                status="pending",
            )
            mv, won = self._registrar.create(
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
                experiment_id=experiment_id,
                latest_before=latest_version(model_before),
            )
            # lost a race to a concurrent first attempt: its version, as it is now
            return self._finish_registration(mv, aliases, created=won, run_id=run_id, fresh=won)

    def _finish_registration(
        self,
        mv: ModelVersion,
        aliases: dict[str, int],
        *,
        created: bool,
        run_id: str | None,
        fresh: bool,
    ) -> ModelVersionInfo:
        """Announce a version as ``staging`` unless it was; its info, from what was written.

        ``aliases``: read at the start of this registration (the operation's one read of them,
        as a promotion plans from the read at its start). ``fresh``: ``mv`` was just created; a
        version found by its key is read again for its current status and aliases.
        """
        self._remember(mv)
        if not fresh:
            mv = self._client.model_version(mv.version)
            aliases = self._client.aliases()
        status = (mv.tags or {}).get(STATUS_TAG)
        info = self._info(mv, aliases, created=created)
        if status == "pending":  # registered but never announced (new, or a crash in between)
            entry = plan_alias(
                aliases,
                info.version,
                "staging",
                op="register",
                displaced="archived",
                reason=f"registered from retraining {info.record.retraining_id}",
                run_id=run_id,
                actor=self.actor,
            )
            entry = self._moves.run(entry, aliases)
            info = _moved(info, entry, aliases)
        return self._wrote(info)

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
            raise DataError([f"promote to 'canary' or 'production', got {to!r}"])
        require_reason(reason)
        with self._mutating(f"promoting {self.name!r} v{version} to {to}"):
            aliases = self._client.aliases(create=True)
            repaired = self._reconcile()
            info = self._known(version, aliases) if not repaired else None
            if info is None:
                mv = self._remember(self._client.model_version(version))
                number = int(mv.version)
                for entry in repaired:
                    if entry.op == "promote" and entry.alias == to and entry.to_version == number:
                        return entry
                aliases = self._client.aliases() if repaired else aliases
                info = self._info(mv, aliases)
            number = info.version
            self.check_transition(info, to, "promote")
            if info.record.gate not in ("passed", "forced"):
                raise RegistryError(
                    f"version {number} of {self.name!r} cannot be promoted to {to}: its gate "
                    f"result is {info.record.gate or 'missing'!r} (needs 'passed' or 'forced')"
                )
            if to == "production":
                what = f"version {number} of {self.name!r}"
                self._artifacts.check_loads(self._files[number], what)
            entry = plan_alias(
                aliases,
                number,
                to,
                op="promote",
                displaced="archived",
                reason=reason,
                run_id=run_id,
                actor=self.actor,
            )
            entry = self._moves.run(entry, aliases)
            self._wrote(_moved(info, entry, aliases))
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

    def reject(
        self,
        version: int | str,
        *,
        reason: str,
        run_id: str | None = None,
        level: Level = "warning",
    ) -> AuditEntry:
        """Mark a staging or canary version ``rejected`` and remove its alias (audited).

        ``level``: of the notification (``critical`` for a canary the online judge rolled back).
        """
        require_reason(reason)
        with self._mutating(f"rejecting {self.name!r} v{version}"):
            aliases = self._client.aliases(create=True)
            repaired = self._reconcile()
            mv = self._client.model_version(version)
            number = int(mv.version)
            for entry in repaired:
                if entry.op == "reject" and entry.statuses.get(number) == "rejected":
                    return entry
            aliases = self._client.aliases() if repaired else aliases
            info = self._info(mv, aliases)
            self.check_transition(info, "rejected", "reject")
            held = [a for a in ALIASES if aliases.get(a) == number]
            moves = tuple(AliasMove(a, number, None) for a in held)
            entry = AuditEntry.new(
                op="reject",
                moves=moves or (AliasMove(info.status, number, None),),
                statuses={number: "rejected"},
                reason=reason,
                run_id=run_id,
                actor=self.actor,
            )
            entry = self._moves.run(entry, aliases)
        logger.warning("rejected %s v%s: %s", self.name, number, reason)
        self._notify(
            Notification(
                event="rejection",
                title=f"{self.name}: version {number} rejected",
                text=f"{self.name} v{number} ({info.status}) was rejected; reason: {reason}",
                level=level,
                details=_details(entry),
            )
        )
        return entry

    def rollback(
        self,
        *,
        reason: str,
        to_version: int | str | None = None,
        run_id: str | None = None,
        expected_version: int | str | None = None,
        idempotency_key: str | None = None,
    ) -> AuditEntry:
        """Return ``production`` to the version that served before the current one.

        The default target comes from the audit history (the version the current production
        version replaced), so a rollback of a rollback returns to the version that was serving.
        An explicit ``to_version`` must have been in production before or have passed the gate.
        The target must load and predict on its input example before the alias moves. The
        demoted version becomes ``rolled_back``. Logged at CRITICAL and sent to the notifier.
        Re-running after an interrupted rollback completes that rollback instead of starting
        another (whatever key either has).

        A repeat must not undo the first rollback (a client retrying after a timeout, a task
        retried), so two guards:

        * ``idempotency_key``: a rollback with the key of a completed rollback returns that
          entry and moves nothing (the rollback DAG passes its run id). The same key with
          another ``to_version``, or for an entry that did not complete, is refused.
        * ``expected_version`` (``retrain rollback --from N``): refused, nothing moved, unless
          production is that version when the rollback starts.
        """
        require_reason(reason)
        key = _optional_key(idempotency_key)
        expected = _optional_version(expected_version, "expected_version")
        target_given = _optional_version(to_version, "to_version")
        with self._mutating(f"rolling back {self.name!r}"):
            aliases = self._client.aliases(create=True)
            repaired = self._reconcile()
            for entry in repaired:
                # whatever its key: starting another rollback right after completing one
                # would undo it (a new DAG run after one that crashed mid-move)
                if entry.op == "rollback" and (
                    target_given is None or entry.to_version == target_given
                ):
                    self._announce_rollback(entry)
                    return entry
            if key is not None:
                earlier = self._audit.with_key(key)
                if earlier is not None:
                    return self._repeated_rollback(earlier, key, target_given)
            aliases = self._client.aliases() if repaired else aliases
            current = aliases.get("production")
            if expected is not None and current != expected:
                serving = f"version {current}" if current is not None else "no version"
                raise RegistryError(
                    f"not rolling back {self.name!r}: production is {serving}, not version "
                    f"{expected} as expected (--from / expected_version): it moved since it was "
                    "read, so nothing moved (see `retrain history`)"
                )
            if current is None:
                raise RegistryError(
                    f"nothing to roll back to: model {self.name!r} has no production version"
                )
            target = self._rollback_target(current, target_given)
            mv = self._client.model_version(target)
            self.check_transition(self._info(mv, aliases), "production", "rollback")
            what = f"rollback target version {target} of {self.name!r}"
            self._artifacts.check_loads(mv, what, fresh=True)
            entry = plan_alias(
                aliases,
                target,
                "production",
                op="rollback",
                displaced="rolled_back",
                reason=reason,
                run_id=run_id,
                actor=self.actor,
                idempotency_key=key,
            )
            entry = self._moves.run(entry, aliases)
        self._announce_rollback(entry)
        return entry

    def _repeated_rollback(self, earlier: AuditEntry, key: str, target: int | None) -> AuditEntry:
        """The completed rollback ``earlier`` recorded with ``key``, asked for again: returned
        as it is (nothing moves), unless it is not the same request."""
        moved = f"production v{earlier.from_version} -> v{earlier.to_version}"
        if earlier.op != "rollback":
            raise RegistryError(
                f"idempotency key {key!r} belongs to the {earlier.op} of audit entry "
                f"{earlier.id}, not to a rollback: nothing moved; use another key"
            )
        if earlier.state != "done":
            raise RegistryError(
                f"the rollback with idempotency key {key!r} ({moved}, audit entry {earlier.id}) "
                f"ended {earlier.state}, so it is not repeated: nothing moved; use a new key"
            )
        if target is not None and earlier.to_version != target:
            raise RegistryError(
                f"idempotency key {key!r} was used by the rollback of audit entry {earlier.id} "
                f"({moved}), not to version {target}: nothing moved; use a new key for a new "
                "rollback"
            )
        logger.info(
            "rollback of %s with idempotency key %r already done (audit entry %s: %s)",
            self.name,
            key,
            earlier.id,
            moved,
        )
        return earlier

    def rollback_target(self) -> int:
        """The version a rollback without ``to_version`` would restore now (reads only): what
        served before the current production version. :class:`RegistryError` says why there
        is none (nothing in production, the first production version, no audit history)."""
        with self._client.calls(f"reading what served before production of {self.name!r}"):
            current = self._client.aliases().get("production")
            if current is None:
                raise RegistryError(f"nothing to roll back to: {self.name!r} has no production")
            return self._rollback_target(current, None)

    def _rollback_target(self, current: int, to_version: int | None) -> int:
        if to_version is None:
            latest = next(self._audit.production_moves_to(current), None)
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
        target = to_version
        if target == current:
            raise RegistryError(f"version {target} of {self.name!r} is already in production")
        info = self._info(self._client.model_version(target), {})
        served = next(self._audit.production_moves_to(target), None) is not None
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

    def check_transition(self, info: ModelVersionInfo, target: str, operation: str) -> None:
        """Raise :class:`RegistryError` (naming what is allowed) unless ``operation`` may move
        ``info`` to ``target``; nothing is read or written."""
        skip = self.config.deployment.skip_canary
        if not allowed_transition(info.status, target, operation, skip_canary=skip):
            raise RegistryError(
                illegal_transition_message(self.name, info.version, info.status, target, operation)
            )

    # --- crash repair -------------------------------------------------------------------------

    def repair(self) -> list[AuditEntry]:
        """Finish what crashes left behind; returns the entries completed or written (always
        reads, inside a batch too).

        1. Audit entries left ``pending`` are completed (as the next mutating call would).
        2. Versions left ``pending`` (created, never announced: :meth:`unannounced`) are
           settled: the newest, if no version was announced after it, is announced as
           ``staging``, as its registration would have done; every other one is ``rejected``
           (a newer version superseded it before it was announced). Both are audited.

        Run it when no deploy is registering a version of this model (alias moves for one model
        are serialised: the DAGs share the one-slot registry pool); a version being registered
        right now would be announced twice, harmlessly.
        """
        with self._mutating(f"repairing {self.name!r}"):
            completed = self._moves.reconcile()
            completed += self._settle_unannounced()
            self._reconciled = bool(self._batch_depth)
            self._written.clear()
            return completed

    def _settle_unannounced(self) -> list[AuditEntry]:
        """Announce or reject the versions a crash left ``pending`` (see :meth:`repair`)."""
        stuck = sorted(
            self._client.versions_tagged(STATUS_TAG, "pending"), key=lambda mv: int(mv.version)
        )
        if not stuck:
            return []
        aliases = self._client.aliases()
        settled = {s for s in STATUSES if s != "pending"}
        announced = [
            int(mv.version)
            for mv in self._client.all_versions()
            if (mv.tags or {}).get(STATUS_TAG) in settled
        ]
        newest_announced = max(announced, default=0)
        newest = int(stuck[-1].version)
        written: list[AuditEntry] = []
        for mv in stuck:
            info = self._info(self._remember(mv), aliases)
            number, origin = info.version, info.record.retraining_id or "an unknown retraining"
            if number == newest and number > newest_announced:
                entry = plan_alias(
                    aliases,
                    number,
                    "staging",
                    op="register",
                    displaced="archived",
                    reason=f"announced by repair: the registration of version {number} "
                    f"(retraining {origin}) was interrupted before it was announced",
                    run_id=None,
                    actor=self.actor,
                )
            else:
                later = max(newest_announced, newest)
                self.check_transition(info, "rejected", "reject")
                entry = AuditEntry.new(
                    op="reject",
                    moves=(AliasMove(info.status, number, None),),
                    statuses={number: "rejected"},
                    reason=f"rejected by repair: the registration of version {number} "
                    f"(retraining {origin}) was interrupted before it was announced, and "
                    f"v{later} was registered after it",
                    run_id=None,
                    actor=self.actor,
                )
            entry = self._moves.run(entry, aliases)
            aliases = aliases_after(aliases, entry)
            logger.warning("repair of %s: %s", self.name, entry.reason)
            written.append(entry)
        return written

    @contextlib.contextmanager
    def batch(self) -> Iterator[ModelRegistry]:
        """Mutating calls made back to back by one caller (the deploy step: register, then
        promote to canary and production).

        Outside a batch every mutating call first completes the audit entries a crash left
        pending (one search). Inside, the first one does, and the others skip it until one of
        them fails: a pending entry is written only by a move that then raises or by a process
        that dies, so after a clean reconcile and calls that all returned, the only writer that
        could leave one is another process moving this model's aliases at the same time, which
        the caller rules out (alias moves for one model are serialised; the DAG runs with
        ``max_active_runs=1``). Likewise a promotion inside a batch starts from the state of
        the version this instance just wrote, when the aliases it reads agree with it.
        """
        if self._batch_depth == 0:
            self._reconciled = False
            self._written.clear()
        self._batch_depth += 1
        try:
            yield self
        finally:
            self._batch_depth -= 1
            if self._batch_depth == 0:
                self._reconciled = False
                self._written.clear()

    # --- plumbing -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _mutating(self, what: str) -> Iterator[None]:
        """:meth:`RegistryClient.calls` for a mutating call: a failure (which may leave an entry
        pending) makes the next call of a batch reconcile again."""
        try:
            with self._client.calls(what):
                yield
        except BaseException:
            self._reconciled = False
            self._written.clear()
            raise

    def _reconcile(self) -> list[AuditEntry]:
        """Complete pending entries, unless this batch already did and nothing failed since."""
        if self._batch_depth and self._reconciled:
            return []
        completed = self._moves.reconcile()
        self._reconciled = bool(self._batch_depth)
        if completed:
            self._written.clear()
        return completed

    def _known(self, version: int | str, aliases: Mapping[str, int]) -> ModelVersionInfo | None:
        """Inside a batch: the version as this instance last wrote it, if ``aliases`` (just
        read) agree with it (it holds exactly the lifecycle aliases it had); else ``None``."""
        try:
            info = self._written.get(int(version)) if self._batch_depth else None
        except ValueError:
            return None
        if info is None:
            return None
        held = tuple(a for a in ALIASES if aliases.get(a) == info.version)
        if held != tuple(a for a in info.aliases if a in ALIASES):
            return None
        return info

    def _wrote(self, info: ModelVersionInfo) -> ModelVersionInfo:
        if self._batch_depth:
            self._written[info.version] = info
        return info

    def _remember(self, mv: ModelVersion) -> ModelVersion:
        self._files[int(mv.version)] = mv
        return mv

    def _own_info(self, mv: ModelVersion) -> ModelVersionInfo:
        """Info of a version from its own alias list (what a single-version read returns)."""
        return self._info(mv, {a: int(mv.version) for a in mv.aliases or []})

    def _info(
        self, mv: ModelVersion, aliases: Mapping[str, int], created: bool = True
    ) -> ModelVersionInfo:
        return ModelVersionInfo.from_mlflow(self.name, mv, aliases, created=created)

    def _notify(self, notification: Notification) -> None:
        try:
            self.notifier.notify(notification)
        except (NotificationError, OSError, ValueError) as exc:
            logger.error("notification %r not delivered: %s", notification.title, exc)


def _optional_key(key: str | None) -> str | None:
    """An idempotency key as given, ``None`` for none; a blank one is refused."""
    if key is None:
        return None
    if not isinstance(key, str) or not key.strip():
        raise DataError([f"idempotency_key must be a non-empty string, got {key!r}"])
    return key


def _optional_version(value: int | str | None, what: str) -> int | None:
    """A version number argument (``None`` for none): a positive integer, else refused."""
    if value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if isinstance(value, bool) or number < 1:
        raise DataError([f"{what} must be a version number >= 1, got {value!r}"])
    return number


def _moved(
    info: ModelVersionInfo, entry: AuditEntry, aliases: Mapping[str, int]
) -> ModelVersionInfo:
    """``info`` once ``entry`` ran: its status tag and aliases as the moves left them."""
    after = aliases_after(aliases, entry)
    status = entry.statuses.get(info.version, info.status)
    held = {a: v for a, v in after.items() if v == info.version}
    moved = ModelVersionInfo.from_aliases(info, held)
    return replace(moved, status=status, record=replace(moved.record, status=status))


def _details(entry: AuditEntry) -> dict[str, Any]:
    """What a notification says about an audited move."""
    return {
        "alias": entry.alias,
        "from_version": entry.from_version,
        "to_version": entry.to_version,
        "actor": entry.actor,
        "run_id": entry.run_id,
        "audit_id": entry.id,
    }
