"""The retraining log: one structured record per run, stored in MLflow.

Each record is a run in the log experiment (``retrain/<model>/log`` by default) named after the
retraining id, so it is readable in the MLflow UI: the seed's fields as a JSON tag and as
metrics/tags for filtering, the full record (checklist, gate, A/B, drift) as a JSON artifact.
Writing is idempotent per retraining id. If MLflow cannot be reached the record is appended to a
local spool file and flushed on the next successful write, so no entry is lost.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, RunTag

from retrain.errors import RegistryError
from retrain.tracking import artifact_repository, ensure_experiment, find_run

__all__ = ["SEED_FIELDS", "LogStore", "RetrainingRecord"]

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
    """The seed's fields plus reasons as JSON that fits in one MLflow tag."""
    data = {
        **record.seed_view(),
        "trigger_reasons": record.trigger_reasons,
        "as_of": record.as_of,
        "error": record.error,
        "failed_step": record.failed_step,
    }
    text = json.dumps(data, default=str)
    while len(text) > _TAG_LIMIT and (data["notes"] or data["trigger_reasons"]):
        data["notes"] = str(data["notes"])[: len(str(data["notes"])) // 2]
        data["trigger_reasons"] = data["trigger_reasons"][: len(data["trigger_reasons"]) // 2]
        text = json.dumps(data, default=str)
    return text


class LogStore:
    """Write and list retraining records in MLflow, with a local spool as a safety net."""

    def __init__(self, client: MlflowClient, experiment_name: str, spool_dir: str | Path) -> None:
        self.client = client
        self.experiment_name = experiment_name
        self.spool = Path(spool_dir) / "retraining_log.spool.jsonl"
        self._experiment_id: str | None = None
        self._missing = False

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
        self.client.log_batch(run_id, metrics=metrics, tags=[RunTag(k, v) for k, v in tags.items()])
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "retraining_log.json"
            path.write_text(json.dumps(record.to_dict(), indent=2, default=str))
            if run.info.artifact_uri:  # known from the run just found or created
                uri = self.client.tracking_uri
                artifact_repository(run.info.artifact_uri, uri).log_artifact(str(path))
            else:
                self.client.log_artifact(run_id, str(path))
        status = "FINISHED" if record.status != "running" else "RUNNING"
        self.client.set_terminated(run_id, status=status if record.status != "failed" else "FAILED")
        return str(run_id)

    def write(self, record: RetrainingRecord) -> str:
        """Store ``record`` (insert or update by retraining id); returns where it went.

        Returns the MLflow run id, or ``"spool:<path>"`` when MLflow was unreachable.
        """
        try:
            self.flush()
            return self._write_mlflow(record)
        except Exception as exc:  # MLflow down or refusing: never lose the entry
            self.spool.parent.mkdir(parents=True, exist_ok=True)
            with self.spool.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record.to_dict(), default=str) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            logger.error(
                "retraining log %s spooled to %s: MLflow write failed: %s",
                record.retraining_id,
                self.spool,
                exc,
            )
            return f"spool:{self.spool}"

    def flush(self) -> int:
        """Write spooled records to MLflow; returns how many were flushed."""
        if not self.spool.exists():
            return 0
        lines = [ln for ln in self.spool.read_text(encoding="utf-8").splitlines() if ln.strip()]
        for line in lines:
            self._write_mlflow(RetrainingRecord.from_dict(json.loads(line)))
        self.spool.unlink()
        return len(lines)

    def records(self, limit: int = 50) -> list[RetrainingRecord]:
        """Records newest first (by start time)."""
        experiment_id = self._experiment(create=False)
        pending = self._spooled()
        if experiment_id is None:
            return pending[:limit]
        try:
            runs = self.client.search_runs(
                [experiment_id],
                order_by=["attributes.start_time DESC"],
                max_results=limit,
            )
        except Exception as exc:
            raise RegistryError(f"cannot list the retraining log: {exc}") from exc
        records = pending + [
            RetrainingRecord.from_dict(json.loads(run.data.tags[_RECORD_TAG]))
            for run in runs
            if _RECORD_TAG in run.data.tags
        ]
        records.sort(key=lambda r: r.start_time, reverse=True)
        return records[:limit]

    def get(self, retraining_id: str) -> RetrainingRecord | None:
        """The full record (from the JSON artifact) of one run, or ``None``."""
        experiment_id = self._experiment(create=False)
        if experiment_id is None:
            return None
        run_id = self._find_run(experiment_id, retraining_id)
        if run_id is None:
            return None
        with tempfile.TemporaryDirectory() as tmp:
            path = self.client.download_artifacts(run_id, "retraining_log.json", tmp)
            return RetrainingRecord.from_dict(json.loads(Path(path).read_text()))

    def _spooled(self) -> list[RetrainingRecord]:
        if not self.spool.exists():
            return []
        return [
            RetrainingRecord.from_dict(json.loads(line))
            for line in self.spool.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
