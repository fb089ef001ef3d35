"""``check``: measure the live signals, decide, and pin the production version as baseline."""

from __future__ import annotations

from retrain.pipeline.assess import assess
from retrain.pipeline.context import RunContext
from retrain.pipeline.results import CheckResult
from retrain.pipeline.services import Services
from retrain.signals import production_baseline

__all__ = ["check"]


def check(services: Services, ctx: RunContext) -> CheckResult:
    """Resolve production once (every later step compares against it), measure, decide.

    See :func:`retrain.pipeline.decision.decide` for when a run proceeds.
    """
    baseline = production_baseline(services.registry)
    assessment = assess(
        services,
        as_of=ctx.as_of,
        baseline=baseline,
        trigger=ctx.trigger,
        event_reasons=ctx.trigger_reasons,
        force_reason=ctx.force_reason,
        window_days=ctx.window_days,
        all_history=ctx.mode == "full_rebuild",
        report_dir=ctx.work_dir,
    )
    live, decision = assessment.live, assessment.decision
    services.tracker(ctx.mlflow_run_id).log(
        metrics={f"signal_{k}": v for k, v in live.signals.as_dict().items() if v is not None},
        tags={
            "retrain.decision": "retrain" if decision.proceed else "skip",
            "retrain.baseline_version": baseline.version if baseline else "none",
        },
        artifacts=[p for p in [live.drift_report_path] if p],
    )
    return CheckResult(
        proceed=decision.proceed,
        reasons=decision.reasons,
        decision=decision.policy,
        live=live,
        context=ctx.pin(baseline, reasons=decision.reasons),
    )
