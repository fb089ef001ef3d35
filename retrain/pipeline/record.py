"""The retraining log record of a run, from the typed results of the steps that ran.

A ``deploy`` step that fails after registering its version returns no result, yet the version
exists: the step notes it (and how far it was promoted) in the run's work directory as it goes
(:func:`note_registered`, a :class:`~retrain.deploy.Deployment` through the step codec), and the
record of a run that failed at ``deploy`` carries that version and stage
(:func:`registered_before_failure`). The note is a file because the record is built in another
process in the DAG (the ``finish`` task), from the work directory the tasks share.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path

from retrain.constants import RunStatus, Trigger
from retrain.deploy import Deployment
from retrain.errors import DataError
from retrain.log import RetrainingRecord
from retrain.pipeline.codec import decode, encode
from retrain.pipeline.context import RunContext
from retrain.pipeline.graph import CHECK, COMPARE, DEPLOY, EVALUATE, EXTRACT, REJECT, TRAIN, Results

__all__ = [
    "REGISTERED_FILE",
    "build_record",
    "note_registered",
    "registered_before_failure",
    "run_status",
]

logger = logging.getLogger(__name__)

#: The deploy step's note of the version it registered and the stage it reached (work dir).
REGISTERED_FILE = "registered_version.json"


def note_registered(work_dir: str | Path, version: int, stage: str) -> None:
    """Note that this run registered ``version`` and promoted it to ``stage`` so far (called by
    the deploy step after registering and after each promotion). Never fails the step: a note
    that cannot be written is logged."""
    note = Deployment(version, stage, RunStatus.FAILED, approval=None)
    try:
        path = Path(work_dir) / REGISTERED_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(encode(note)), encoding="utf-8")
    except OSError as exc:
        logger.warning("could not note registered version %s in %s: %s", version, work_dir, exc)


def registered_before_failure(work_dir: str | Path) -> Deployment | None:
    """The version a failed ``deploy`` step registered and the stage it reached, if it noted
    one (``status`` is ``failed``); ``None`` otherwise."""
    path = Path(work_dir) / REGISTERED_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return decode(Deployment, data, what=str(path))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, DataError) as exc:
        logger.warning("ignoring the registered-version note %s: %s", path, exc)
        return None


def run_status(results: Results, error: str | None) -> RunStatus:
    """Failed, skipped, rejected, or where the deployment ended."""
    if error is not None:
        return RunStatus.FAILED
    checked = results.get(CHECK)
    if checked is not None and not checked.proceed:
        return RunStatus.SKIPPED
    if results.get(REJECT) is not None:
        return RunStatus.REJECTED
    deployed = results.get(DEPLOY)
    return deployed.status if deployed is not None else RunStatus.FAILED


def _notes(
    status: RunStatus, results: Results, error: str | None, registered: Deployment | None
) -> str:
    if status == RunStatus.FAILED:
        failure = f"failed: {error or 'a step ended without a result (see its task log)'}"
        if registered is not None:
            failure += (
                f"; version {registered.version} was registered and left in {registered.stage}"
            )
        return failure
    checked = results.get(CHECK)
    if status == RunStatus.SKIPPED:
        return "; ".join(checked.reasons if checked else ("nothing to do",))
    parts = []
    evaluated = results.get(EVALUATE)
    cand = evaluated.candidate.metrics if evaluated else {}
    base = evaluated.production.metrics if evaluated and evaluated.production else {}
    if "accuracy" in cand:
        text = f"accuracy {cand['accuracy']:.3f}"
        if "accuracy" in base:
            diff = cand["accuracy"] - base["accuracy"]
            text += f" vs production {base['accuracy']:.3f} ({diff:+.3f})"
        parts.append(text)
    compared = results.get(COMPARE)
    if compared is not None and compared.ab is not None and compared.ab.p_value is not None:
        ab = compared.ab
        parts.append(f"{ab.test} p={ab.p_value:.3g}, winner {ab.winner}")
    deployed = results.get(DEPLOY)
    if deployed is not None:
        parts.append(f"version {deployed.version} -> {deployed.stage}")
    if evaluated is not None and evaluated.gate.suspicions and deployed is not None:
        parts.append("held for a human approval: " + "; ".join(evaluated.gate.suspicions))
    rejected = results.get(REJECT)
    if rejected is not None:
        parts.append("rejected: " + "; ".join(rejected.reasons))
    return "; ".join(parts)


def build_record(
    ctx: RunContext,
    results: Results,
    *,
    end: datetime,
    error: str | None = None,
    failed_step: str | None = None,
) -> RetrainingRecord:
    """The record: the seed's fields plus what explains the outcome (reasons, gate, A/B,
    checklist, drift, cadence, the baseline version, the error). A run that failed at
    ``deploy`` after registering carries the version and the stage it reached."""
    status = run_status(results, error)
    checked = results.get(CHECK)
    extracted = results.get(EXTRACT)
    trained = results.get(TRAIN)
    evaluated = results.get(EVALUATE)
    compared = results.get(COMPARE)
    deployed = results.get(DEPLOY)
    registered = (
        registered_before_failure(ctx.work_dir)
        if deployed is None and failed_step == DEPLOY.name
        else None
    )
    known = deployed or registered
    rule = checked.decision.trigger if checked else "none"
    manual = ctx.trigger == Trigger.MANUAL
    trigger = str(ctx.trigger) if manual or rule == "none" else f"{ctx.trigger}:{rule}"
    new_samples = extracted.new_samples if extracted else None
    if new_samples is None and checked is not None:
        measured = checked.live.signals.new_samples
        new_samples = None if measured is None else int(measured)
    return RetrainingRecord(
        retraining_id=ctx.retraining_id,
        trigger=trigger,
        start_time=ctx.started_at.isoformat(),
        end_time=end.isoformat(),
        training_duration_minutes=round((end - ctx.started_at).total_seconds() / 60, 2),
        data_version=extracted.data_version if extracted else None,
        new_samples=new_samples,
        model_version=str(known.version) if known else None,
        metrics=dict(evaluated.candidate.metrics) if evaluated else {},
        baseline_metrics=(
            dict(evaluated.production.metrics) if evaluated and evaluated.production else {}
        ),
        status=status,
        notes=_notes(status, results, error, registered),
        trigger_reasons=list(ctx.trigger_reasons or (checked.reasons if checked else ())),
        as_of=ctx.as_of.isoformat(),
        run_key=ctx.run_key,
        mlflow_run_id=ctx.mlflow_run_id,
        forced=ctx.force,
        force_reason=ctx.force_reason,
        baseline_version=ctx.baseline_version,
        drift=dict(checked.live.drift) if checked else {},
        gate=evaluated.gate.to_dict() if evaluated else {},
        ab_test=compared.to_record() if compared else {},
        checklist=[item.to_dict() for item in deployed.checklist] if deployed else [],
        deployment=known.to_record() if known else {},
        cadence=checked.decision.cadence.to_dict() if checked else {},
        mode=ctx.mode,
        search=trained.fit.search.to_dict() if trained and trained.fit.search else {},
        rebuild_tests=(
            evaluated.rebuild_tests.to_record() if evaluated and evaluated.rebuild_tests else {}
        ),
        error=error,
        failed_step=failed_step,
    )
