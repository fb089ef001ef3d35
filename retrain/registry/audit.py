"""The audit history: every alias move as one MLflow run, written before anything moves.

An :class:`AuditEntry` is stored as ONE run of the experiment ``<experiment>/audit``, created
with all its fields as tags in a single request; its state is the run's status (``pending`` =
``RUNNING``, ``done`` = ``FINISHED``). Concurrent writers create separate runs, so none can
overwrite another, and the server filters and pages the history. :class:`AuditStore` writes,
finishes and reads the entries of one model.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from retrain.registry.records import AliasMove, key_digest, optional_version, version_label

if TYPE_CHECKING:
    from retrain.registry.client import RegistryClient

__all__ = ["AuditEntry", "AuditStore", "new_entry_id"]

#: Audit entry state <-> status of the MLflow run that stores it.
_STATE_OF_RUN = {
    "RUNNING": "pending",
    "FINISHED": "done",
    "KILLED": "superseded",
    "FAILED": "failed",
}
_RUN_OF_STATE = {state: status for status, state in _STATE_OF_RUN.items()}
_REASON_LIMIT = 4000  # run tag values are capped at 8000 characters


class _EntryIds:
    lock = threading.Lock()
    last_ns = 0


def new_entry_id() -> str:
    """Sortable, unique audit id ``YYYYmmddTHHMMSS.ffffffZ.<8 hex>``, increasing per process."""
    with _EntryIds.lock:
        now = max(time.time_ns(), _EntryIds.last_ns + 1000)
        _EntryIds.last_ns = now
    stamp = datetime.fromtimestamp(now / 1e9, UTC)
    return f"{stamp:%Y%m%dT%H%M%S.%f}Z.{secrets.token_hex(4)}"


@dataclass(frozen=True)
class AuditEntry:
    """One recorded registry operation: its alias moves and the status tags it sets.

    ``alias``/``from_version``/``to_version`` repeat the primary move; ``moves`` lists all of them
    (e.g. promoting the canary to production also removes the ``canary`` alias). ``state`` is
    ``pending`` until every step is written, then ``done``; ``superseded`` if a later entry moved
    the same alias before a pending one was completed; ``failed`` if its repair was refused.
    ``audit_run_id`` is the MLflow run that stores the entry. ``idempotency_key``: the caller's
    key for the operation (a rollback with the key of a completed one returns that entry instead
    of moving again; the rollback DAG passes its run id).
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
    idempotency_key: str | None = None

    @classmethod
    def new(
        cls,
        *,
        op: str,
        moves: tuple[AliasMove, ...],
        statuses: Mapping[int, str],
        reason: str,
        run_id: str | None,
        actor: str,
        idempotency_key: str | None = None,
    ) -> AuditEntry:
        """A ``pending`` entry with a new id, stamped now; ``moves[0]`` is the primary move."""
        primary = moves[0]
        return cls(
            id=new_entry_id(),
            at=datetime.now(UTC).isoformat(),
            op=op,
            alias=primary.alias,
            from_version=primary.from_version,
            to_version=primary.to_version,
            actor=actor,
            reason=reason,
            run_id=run_id,
            state="pending",
            moves=moves,
            statuses=dict(statuses),
            idempotency_key=idempotency_key,
        )

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
            "retrain.idempotency_key": (self.idempotency_key or "")[:_REASON_LIMIT],
            "retrain.idempotency": key_digest(self.idempotency_key) if self.idempotency_key else "",
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
            idempotency_key=tags.get("retrain.idempotency_key") or None,
        )


class AuditStore:
    """The audit entries of ``client.name`` in the experiment ``experiment_name``."""

    def __init__(self, client: RegistryClient, experiment_name: str) -> None:
        self._client = client
        self.experiment_name = experiment_name
        self._experiment_id: str | None = None
        self._missing = False

    def _experiment(self, *, create: bool) -> str | None:
        """The audit experiment's id (remembered once known); ``None`` if it does not exist
        and ``create`` is false (reads need no experiment: nothing was ever recorded)."""
        if self._experiment_id is None:
            name = self.experiment_name
            if create:
                self._experiment_id = self._client.experiment_id(name, missing=self._missing)
            elif (experiment := self._client.mlflow.get_experiment_by_name(name)) is not None:
                self._experiment_id = str(experiment.experiment_id)
            else:
                self._missing = True  # a write creates it without asking again
        return self._experiment_id

    def entries(
        self, condition: str = "", *, oldest_first: bool = False, page_size: int = 100
    ) -> Iterator[AuditEntry]:
        """Entries of this model, newest first (pages fetched as they are consumed)."""
        experiment = self._experiment(create=False)
        if experiment is None:
            return
        query = f"tags.`retrain.model` = '{self._client.name}'"
        query += f" and {condition}" if condition else ""
        order = "ASC" if oldest_first else "DESC"
        token: str | None = None
        while True:
            page = self._client.mlflow.search_runs(
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

    def pending(self, *, oldest_first: bool = False) -> Iterator[AuditEntry]:
        """Entries a crash left ``pending``."""
        return self.entries("attributes.status = 'RUNNING'", oldest_first=oldest_first)

    def production_moves_to(self, version: int) -> Iterator[AuditEntry]:
        """Completed entries that moved ``production`` to ``version``, newest first."""
        return self.entries(
            f"tags.`retrain.production_to` = '{version}' and attributes.status = 'FINISHED'"
        )

    def with_key(self, idempotency_key: str) -> AuditEntry | None:
        """The newest entry written with ``idempotency_key``, if any (one search, by digest)."""
        digest = key_digest(idempotency_key)
        return next(self.entries(f"tags.`retrain.idempotency` = '{digest}'", page_size=1), None)

    def superseded(self, entry: AuditEntry) -> bool:
        """Whether a later entry (not itself superseded) moved one of ``entry``'s aliases."""
        touched: set[str] = set()
        for later in self.entries():  # newest first, down to this entry
            if later.id <= entry.id:
                break
            if later.state != "superseded":
                touched.update(m.alias for m in later.moves)
        return any(m.alias in touched for m in entry.moves)

    def write(self, entry: AuditEntry) -> AuditEntry:
        """Store a new entry as a run (state ``pending`` = run RUNNING), in one request."""
        started = int(datetime.fromisoformat(entry.at).timestamp() * 1000)
        run = self._client.mlflow.create_run(
            self._experiment(create=True) or "",
            start_time=started,
            tags=entry.to_tags(self._client.name),
        )
        return replace(entry, audit_run_id=run.info.run_id)

    def finish(self, entry: AuditEntry, state: str) -> AuditEntry:
        """Mark an entry ``done``/``superseded``/``failed`` (its only change after writing)."""
        self._client.mlflow.set_terminated(entry.audit_run_id, _RUN_OF_STATE[state])
        return replace(entry, state=state)
