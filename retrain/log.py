"""The retraining log: one structured record per run, stored in MLflow.

Each record is a run in the log experiment (``retrain/<model>/log`` by default) named after the
retraining id, so it is readable in the MLflow UI: the seed's fields as a JSON tag and as
metrics/tags for filtering, the full record (checklist, gate, A/B, drift) as a JSON artifact.
Writing is idempotent per retraining id.

Guarantees:

* Bounded: every MLflow call goes through :func:`retrain.tracking.bounded` (the config's
  ``registry.request_timeout_seconds`` and ``max_retries``), and once MLflow was found
  unreachable moments ago (:func:`retrain.tracking.unreachable`) a write goes straight to the
  spool instead of waiting on it again.
* No entry lost: if MLflow cannot be reached the record is appended to the local spool
  ``<storage.work_dir>/retraining_log.spool.jsonl`` (one JSON record a line, fsynced, each
  append starting on a new line so a line torn by a crash or a full disk spoils only itself),
  and flushed on the next successful write. A spooled record whose MLflow run could not be
  closed says so (``unclosed_run``); the flush closes it.
* A bad spool line is skipped and reported as ``<spool>:<line>``, never fatal; a flush moves it
  to ``<spool>.bad`` for a human.
* No secrets: records, tags and messages go through :func:`retrain.redact.redact`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, RunTag

from retrain.config import RegistrySettings, RetrainConfig
from retrain.errors import RegistryError, RegistryUnavailableError
from retrain.redact import redact
from retrain.tracking import (
    artifact_repository,
    bounded,
    ensure_experiment,
    find_run,
    tracking_client,
    unreachable,
)

__all__ = ["SEED_FIELDS", "SPOOL_NAME", "LogStore", "RetrainingRecord", "redacted"]

logger = logging.getLogger(__name__)

#: The seed's retraining-log fields, in the seed's order.
SEED_FIELDS = (
    "retraining_id",
    "trigger",
    "start_time",
    "end_time",
    "training_duration_minutes",
    "data_version",
    "new_samples",
    "model_version",
    "metrics",
    "baseline_metrics",
    "status",
    "notes",
)
_TAG_LIMIT = 7900
_RECORD_TAG = "retrain.record"
_ID_TAG = "retrain.retraining_id"
SPOOL_NAME = "retraining_log.spool.jsonl"
_UNCLOSED_NOTE = " [MLflow unreachable: run {run} left RUNNING; closed when the spool is flushed]"
_CLOSED_NOTE = " [MLflow was unreachable: run {run} closed when the spool was flushed]"
_REQUIRED = ("retraining_id", "trigger", "start_time")


@dataclass(frozen=True)
class RetrainingRecord:
    """One retraining run: the seed's fields plus what explains the outcome."""

    retraining_id: str
    trigger: str
    start_time: str
    end_time: str | None = None
    training_duration_minutes: float | None = None
    data_version: str | None = None
    new_samples: int | None = None
    model_version: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    baseline_metrics: dict[str, float] = field(default_factory=dict)
    status: str = "running"
    notes: str = ""
    trigger_reasons: list[str] = field(default_factory=list)
    as_of: str | None = None
    run_key: str | None = None
    mlflow_run_id: str | None = None
    forced: bool = False
    force_reason: str | None = None
    #: The production version the run compared against (pinned at ``check``).
    baseline_version: int | None = None
    drift: dict[str, Any] = field(default_factory=dict)
    gate: dict[str, Any] = field(default_factory=dict)
    ab_test: dict[str, Any] = field(default_factory=dict)
    checklist: list[dict[str, Any]] = field(default_factory=list)
    deployment: dict[str, Any] = field(default_factory=dict)
    cadence: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    failed_step: str | None = None
    #: Set on a spooled record whose MLflow run could not be closed (MLflow unreachable): the
    #: run is still RUNNING there, and the flush that writes this record closes it.
    unclosed_run: str | None = None
    #: Who started the run: the Airflow user who triggered it, ``$RETRAIN_ACTOR``, what started
    #: it (``airflow:scheduled``) or, on the CLI, the OS user.
    actor: str | None = None
    #: The online canary's verdict on this run's version (``retrain.canary_watch``): decision,
    #: action, accuracy difference with its interval, labels per arm, when, and why.
    online: dict[str, Any] = field(default_factory=dict)
    #: ``weekly`` or ``full_rebuild`` (``schedule.weekly`` / ``schedule.full_rebuild``, or the
    #: mode asked for); ``None`` in records written before runs had modes.
    mode: str | None = None
    #: A full rebuild's hyperparameter search (``model.search``): method, candidates, best and
    #: configured parameters and scores, which were fitted.
    search: dict[str, Any] = field(default_factory=dict)
    #: A full rebuild's comprehensive tests: each verdict with its figures.
    rebuild_tests: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"{self.retraining_id}: status={self.status} version={self.model_version} "
            f"notes={self.notes}"
        )

    def seed_view(self) -> dict[str, Any]:
        """Exactly the seed's fields, in the seed's order."""
        data = self.to_dict()
        return {key: data[key] for key in SEED_FIELDS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RetrainingRecord:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


def _compact(record: RetrainingRecord) -> str:
    """The seed's fields plus reasons, where the run ran (its Airflow run key and MLflow run)
    and the gate's status, as JSON that fits in one MLflow tag (what :meth:`LogStore.records`
    lists; the full record is :meth:`LogStore.get`'s)."""
    data = {
        **record.seed_view(),
        "trigger_reasons": record.trigger_reasons,
        "as_of": record.as_of,
        "error": record.error,
        "failed_step": record.failed_step,
        "actor": record.actor,
        "mode": record.mode,
        "run_key": record.run_key,
        "mlflow_run_id": record.mlflow_run_id,
        "gate": {"status": record.gate["status"]} if "status" in record.gate else {},
        "online": {k: record.online[k] for k in ("decision", "action") if k in record.online},
    }
    text = json.dumps(data, default=str)
    while len(text) > _TAG_LIMIT and (data["notes"] or data["trigger_reasons"]):
        data["notes"] = str(data["notes"])[: len(str(data["notes"])) // 2]
        data["trigger_reasons"] = data["trigger_reasons"][: len(data["trigger_reasons"]) // 2]
        text = json.dumps(data, default=str)
    return text


def redacted(record: RetrainingRecord) -> RetrainingRecord:
    """``record`` with every secret :func:`retrain.redact.redact` knows of masked."""
    return RetrainingRecord.from_dict(json.loads(redact(json.dumps(record.to_dict(), default=str))))


def _close_status(record: RetrainingRecord) -> str:
    return "FAILED" if record.status == "failed" else "FINISHED"


class LogStore:
    """Write and list retraining records in MLflow, with a local spool as a safety net."""

    def __init__(
        self,
        client: MlflowClient,
        experiment_name: str,
        spool_dir: str | Path,
        *,
        settings: RegistrySettings | None = None,
    ) -> None:
        self.client = client
        self.experiment_name = experiment_name
        self.spool = Path(spool_dir) / SPOOL_NAME
        #: Timeouts and retries of every MLflow call (default: the registry section's defaults).
        self.settings = settings or RegistrySettings(tracking_uri=str(client.tracking_uri))
        #: What the last read of the spool (or of the log) skipped, each ``<spool>:<line>: why``.
        self.problems: list[str] = []
        self._experiment_id: str | None = None
        self._missing = False

    @classmethod
    def of(cls, config: RetrainConfig, client: MlflowClient | None = None) -> LogStore:
        """The log of ``config``'s model: its log experiment, its work dir's spool, its
        registry settings (``client`` default: a bounded client for the config's server)."""
        return cls(
            client or tracking_client(config),
            config.log_experiment_name,
            config.storage.work_dir,
            settings=config.registry,
        )

    # --- MLflow -----------------------------------------------------------------------------

    def _experiment(self, *, create: bool) -> str | None:
        """The log experiment's id, remembered once known (``None``: it does not exist and
        ``create`` is false)."""
        if self._experiment_id is None:
            if create:
                self._experiment_id = ensure_experiment(
                    self.client, self.experiment_name, missing=self._missing
                )
            else:
                experiment = self.client.get_experiment_by_name(self.experiment_name)
                if experiment is not None:
                    self._experiment_id = str(experiment.experiment_id)
                else:
                    self._missing = True  # a write creates it without asking again
        return self._experiment_id

    def _find_run(self, experiment_id: str, retraining_id: str) -> str | None:
        run = find_run(self.client, experiment_id, _ID_TAG, retraining_id)
        return str(run.info.run_id) if run is not None else None

    def _write_mlflow(self, record: RetrainingRecord) -> str:
        """Insert or update ``record``'s run (call inside :func:`bounded`)."""
        experiment_id = self._experiment(create=True) or ""
        run = find_run(self.client, experiment_id, _ID_TAG, record.retraining_id)
        if run is None:
            run = self.client.create_run(
                experiment_id, run_name=record.retraining_id, tags={_ID_TAG: record.retraining_id}
            )
        run_id = run.info.run_id
        tags = {
            _RECORD_TAG: _compact(record),
            "retrain.status": record.status,
            "retrain.trigger": record.trigger,
            "retrain.model_version": record.model_version or "",
            "retrain.data_version": record.data_version or "",
            "mlflow.note.content": record.notes or "",
        }
        metrics = [Metric(f"candidate_{k}", float(v), 0, 0) for k, v in record.metrics.items()]
        metrics += [
            Metric(f"baseline_{k}", float(v), 0, 0) for k, v in record.baseline_metrics.items()
        ]
        if record.new_samples is not None:
            metrics.append(Metric("new_samples", float(record.new_samples), 0, 0))
        self.client.log_batch(
            run_id, metrics=metrics, tags=[RunTag(k, redact(v)) for k, v in tags.items()]
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "retraining_log.json"
            path.write_text(redact(json.dumps(record.to_dict(), indent=2, default=str)))
            if run.info.artifact_uri:  # known from the run just found or created
                uri = self.client.tracking_uri
                artifact_repository(run.info.artifact_uri, uri).log_artifact(str(path))
            else:
                self.client.log_artifact(run_id, str(path))
        status = "FINISHED" if record.status != "running" else "RUNNING"
        self.client.set_terminated(run_id, status=status if record.status != "failed" else "FAILED")
        return str(run_id)

    def _close(self, run_id: str, record: RetrainingRecord) -> None:
        """End the retraining's MLflow run (call inside :func:`bounded`); a run MLflow no longer
        knows is logged, not fatal."""
        try:
            with bounded(self.settings, f"closing MLflow run {run_id}"):
                self.client.set_terminated(run_id, status=_close_status(record))
        except RegistryUnavailableError:
            raise
        except RegistryError as exc:
            logger.warning("retraining %s: %s", record.retraining_id, exc)

    # --- writing ----------------------------------------------------------------------------

    def write(self, record: RetrainingRecord, *, close_run: str | None = None) -> str:
        """Store ``record`` (insert or update by retraining id) and end MLflow run ``close_run``
        (the retraining's own run) if given; returns where the record went.

        Returns the MLflow run id, or ``"spool:<path>"`` when MLflow was unreachable (then a
        ``close_run`` left open is named in the spooled record, and the flush closes it). Every
        call is bounded; MLflow found unreachable moments ago is not waited on again. Raises
        :class:`RegistryError` only when the record can be stored neither in MLflow nor in the
        spool.
        """
        record = redacted(record)
        if unreachable(self.settings):
            reason = f"MLflow at {redact(self.settings.tracking_uri)} was unreachable moments ago"
            return self._spool_record(record, close_run, reason)
        try:
            with bounded(self.settings, f"writing retraining log record {record.retraining_id}"):
                self.flush()
                run_id = self._write_mlflow(record)
                if close_run:
                    self._close(close_run, record)
        except Exception as exc:  # MLflow down or refusing: never lose the entry
            return self._spool_record(record, close_run, str(exc))
        return run_id

    def _spool_record(self, record: RetrainingRecord, close_run: str | None, reason: str) -> str:
        if close_run:
            record = dataclasses.replace(
                record,
                unclosed_run=close_run,
                notes=record.notes + _UNCLOSED_NOTE.format(run=close_run),
            )
        try:
            self._append(json.dumps(record.to_dict(), default=str))
        except OSError as exc:
            raise RegistryError(
                f"retraining log record {record.retraining_id} is lost: MLflow: {redact(reason)}; "
                f"spool {self.spool}: {exc.strerror or exc}"
            ) from exc
        logger.error(
            "retraining log %s spooled to %s: MLflow write failed: %s",
            record.retraining_id,
            self.spool,
            redact(reason),
        )
        return f"spool:{self.spool}"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The spool's lock (appends and flushes of several processes never interleave)."""
        self.spool.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{self.spool}.lock", "a", encoding="utf-8") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _append(self, line: str) -> None:
        """Append one line, fsynced, starting on a new line if the last one was torn."""
        data = line.encode("utf-8") + b"\n"
        with self._locked():
            created = not self.spool.exists()
            fd = os.open(self.spool, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    data = b"\n" + data  # a torn last line stays alone (and is reported)
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:  # the new file's name must survive a crash too
                directory = os.open(self.spool.parent, os.O_RDONLY)
                try:
                    os.fsync(directory)
                finally:
                    os.close(directory)

    def flush(self) -> int:
        """Write spooled records to MLflow (closing the runs they left open); returns how many.

        Bad lines are moved to ``<spool>.bad`` (with their line number and why) for a human. A
        record MLflow refuses (not unreachable: refused) goes there too, so one bad record never
        blocks the others. Raises on an unreachable MLflow, leaving the spool as it was.
        """
        if not self.spool.exists():
            return 0
        what = f"flushing the retraining log spool {self.spool}"
        with bounded(self.settings, what), self._locked():
            if not self.spool.exists():
                return 0
            records, bad = self._read_spool()
            written = 0
            for number, record in records:
                try:
                    self._flush_one(record)
                except RegistryUnavailableError:
                    raise
                except RegistryError as exc:
                    bad.append((number, json.dumps(record.to_dict(), default=str), str(exc)))
                    continue
                written += 1
            self._quarantine(bad)
            self.spool.unlink()
        return written

    def _flush_one(self, record: RetrainingRecord) -> None:
        if record.unclosed_run:
            self._close(record.unclosed_run, record)
            record = dataclasses.replace(
                record,
                unclosed_run=None,
                notes=record.notes.replace(
                    _UNCLOSED_NOTE.format(run=record.unclosed_run),
                    _CLOSED_NOTE.format(run=record.unclosed_run),
                ),
            )
        with bounded(
            self.settings, f"writing spooled retraining log record {record.retraining_id}"
        ):
            self._write_mlflow(record)

    def _quarantine(self, bad: list[tuple[int, str, str]]) -> None:
        if not bad:
            return
        target = Path(f"{self.spool}.bad")
        with target.open("a", encoding="utf-8") as fh:
            for number, text, why in bad:
                fh.write(f"# {self.spool} line {number}: {why}\n{text}\n")
            fh.flush()
            os.fsync(fh.fileno())
        for number, _, why in bad:
            logger.error(
                "%s:%d: %s; moved to %s for a human to look at", self.spool, number, why, target
            )

    # --- reading ----------------------------------------------------------------------------

    def _read_spool(self) -> tuple[list[tuple[int, RetrainingRecord]], list[tuple[int, str, str]]]:
        """The spool's good records and its bad lines (number, text, why), and
        :attr:`problems` naming each bad line as ``<spool>:<line>``."""
        good: list[tuple[int, RetrainingRecord]] = []
        bad: list[tuple[int, str, str]] = []
        self.problems = []
        if not self.spool.exists():
            return good, bad
        raw = self.spool.read_bytes().decode("utf-8", errors="replace")
        for number, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                if not isinstance(data, dict) or not all(
                    isinstance(data.get(k), str) for k in _REQUIRED
                ):
                    raise ValueError(f"not a retraining log record (needs {', '.join(_REQUIRED)})")
                good.append((number, RetrainingRecord.from_dict(data)))
            except (ValueError, TypeError) as exc:
                why = f"unreadable line skipped ({exc})"
                bad.append((number, line, why))
                self.problems.append(f"{self.spool}:{number}: {why}")
        for problem in self.problems:
            logger.warning("%s", problem)
        return good, bad

    def spooled(self) -> list[RetrainingRecord]:
        """The records waiting in the spool (read without MLflow; bad lines in :attr:`problems`)."""
        return [record for _, record in self._read_spool()[0]]

    def records(self, limit: int = 50) -> list[RetrainingRecord]:
        """Records newest first (by start time): MLflow's and the spool's. Unreadable spool
        lines are skipped and listed in :attr:`problems`."""
        pending = self.spooled()
        with bounded(self.settings, "listing the retraining log"):
            experiment_id = self._experiment(create=False)
            if experiment_id is None:
                return sorted(pending, key=lambda r: r.start_time, reverse=True)[:limit]
            runs = self.client.search_runs(
                [experiment_id],
                order_by=["attributes.start_time DESC"],
                max_results=limit,
            )
        records = list(pending)
        for run in runs:
            if _RECORD_TAG not in run.data.tags:
                continue
            try:
                records.append(RetrainingRecord.from_dict(json.loads(run.data.tags[_RECORD_TAG])))
            except (ValueError, TypeError) as exc:
                self.problems.append(f"MLflow run {run.info.run_id}: unreadable record ({exc})")
        records.sort(key=lambda r: r.start_time, reverse=True)
        return records[:limit]

    def get(self, retraining_id: str) -> RetrainingRecord | None:
        """The full record (from the JSON artifact) of one run, else a spooled one, or ``None``."""
        with bounded(self.settings, f"reading retraining log record {retraining_id}"):
            experiment_id = self._experiment(create=False)
            run_id = self._find_run(experiment_id, retraining_id) if experiment_id else None
            if run_id is not None:
                with tempfile.TemporaryDirectory() as tmp:
                    path = self.client.download_artifacts(run_id, "retraining_log.json", tmp)
                    return RetrainingRecord.from_dict(json.loads(Path(path).read_text()))
        spooled = [r for r in self.spooled() if r.retraining_id == retraining_id]
        return spooled[-1] if spooled else None
