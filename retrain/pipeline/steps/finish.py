"""``finish``: always runs; writes the retraining log record and closes the MLflow run, in bounded
time whatever state MLflow is in."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

from retrain.log import RetrainingRecord, redacted
from retrain.pipeline.context import RunContext
from retrain.pipeline.graph import Results
from retrain.pipeline.record import build_record
from retrain.pipeline.services import Services
from retrain.times import now_utc
from retrain.tracking import unreachable

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
    it was stored (an MLflow run id, or ``spool:<path>`` when MLflow was unreachable).

    Every MLflow call is bounded, and none is made once MLflow was found unreachable moments
    ago, so a run whose MLflow stopped or hung ends within one bounded call of the fault. Then
    the record is spooled naming the run it could not close, and the next successful write
    (the next run's ``start``, or any write of the log) closes that run.
    """
    built = build_record(ctx, results, end=now_utc(), error=error, failed_step=failed_step)
    record = redacted(replace(built, actor=services.registry.actor))
    local = Path(ctx.work_dir) / "retraining_log.json"
    try:
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(json.dumps(record.to_dict(), indent=2, default=str), encoding="utf-8")
    except OSError as exc:  # the record still goes to MLflow (or the spool)
        logger.error("could not write the local copy of the record to %s: %s", local, exc)
    settings = services.config.registry
    if ctx.mlflow_run_id and not unreachable(settings):  # "": start failed before the run
        try:
            services.flush()
        except Exception as exc:  # nothing may keep the record below from being written
            logger.error("could not log step results to MLflow run %s: %s", ctx.mlflow_run_id, exc)
    where = services.log.write(record, close_run=ctx.mlflow_run_id or None)
    return record, where
