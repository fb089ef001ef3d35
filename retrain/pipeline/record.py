"""The retraining log record of a run, from the typed results of the steps that ran."""

from __future__ import annotations

from datetime import datetime

from retrain.constants import RunStatus, Trigger
from retrain.log import RetrainingRecord
from retrain.pipeline.context import RunContext
from retrain.pipeline.graph import CHECK, COMPARE, DEPLOY, EVALUATE, EXTRACT, REJECT, Results

__all__ = ["build_record", "run_status"]


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


def _notes(status: RunStatus, results: Results, error: str | None) -> str:
    if status == RunStatus.FAILED:
        return f"failed: {error or 'a step ended without a result (see its task log)'}"
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
    checklist, drift, cadence, the baseline version, the error)."""
    status = run_status(results, error)
    checked = results.get(CHECK)
    extracted = results.get(EXTRACT)
    evaluated = results.get(EVALUATE)
    compared = results.get(COMPARE)
    deployed = results.get(DEPLOY)
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
        model_version=str(deployed.version) if deployed else None,
        metrics=dict(evaluated.candidate.metrics) if evaluated else {},
        baseline_metrics=(
            dict(evaluated.production.metrics) if evaluated and evaluated.production else {}
        ),
        status=status,
        notes=_notes(status, results, error),
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
        deployment=deployed.to_record() if deployed else {},
        cadence=checked.decision.cadence.to_dict() if checked else {},
        error=error,
        failed_step=failed_step,
    )
