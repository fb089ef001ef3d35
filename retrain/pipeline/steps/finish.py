"""``finish``: always runs; writes the retraining log record and closes the MLflow run."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from retrain.constants import RunStatus
from retrain.errors import RetrainError
from retrain.log import RetrainingRecord
from retrain.pipeline.context import RunContext
from retrain.pipeline.graph import Results
from retrain.pipeline.record import build_record
from retrain.pipeline.services import Services
from retrain.times import now_utc
from retrain.tracking import bounded

__all__ = ["finish"]

logger = logging.getLogger(__name__)


def finish(
    services: Services,
    ctx: RunContext,
    results: Results,
    *,
    error: str | None = None,
    failed_step: str | None = None,
) -> tuple[RetrainingRecord, str]:
    """Write the record (also after a failure) and close the run; returns the record and where
    it was stored (an MLflow run id, or ``spool:<path>`` when MLflow was unreachable)."""
    record = build_record(ctx, results, end=now_utc(), error=error, failed_step=failed_step)
    work_dir = Path(ctx.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / "retraining_log.json").write_text(
        json.dumps(record.to_dict(), indent=2, default=str), encoding="utf-8"
    )
    try:
        services.flush()
    except Exception as exc:  # nothing may keep the record below from being written
        logger.error("could not log step results to MLflow run %s: %s", ctx.mlflow_run_id, exc)
    where = services.log.write(record)
    if ctx.mlflow_run_id:
        try:
            with bounded(services.config, "closing the retraining run"):
                failed = record.status == RunStatus.FAILED
                services.client.set_terminated(
                    ctx.mlflow_run_id, status="FAILED" if failed else "FINISHED"
                )
        except RetrainError as exc:
            logger.error("could not close MLflow run %s: %s", ctx.mlflow_run_id, exc)
    return record, where
