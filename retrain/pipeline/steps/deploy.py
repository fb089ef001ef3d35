"""``deploy``: register the candidate, then promote it as far as policy and checklist allow."""

from __future__ import annotations

import json
from pathlib import Path

from retrain.checklist import evaluate_checklist, require
from retrain.constants import Stage
from retrain.data import ExtractResult, read_frame
from retrain.deploy import AUTO_APPROVAL, Deployment, release
from retrain.pipeline.context import RunContext
from retrain.pipeline.evidence import run_evidence
from retrain.pipeline.record import note_registered
from retrain.pipeline.results import Compared, Evaluated, Trained
from retrain.pipeline.services import Services
from retrain.registry import VersionRecord
from retrain.train import load_trained, preprocessing_fingerprint
from retrain.validate import ValidationReport

__all__ = ["deploy_step"]


def _approval(services: Services, ctx: RunContext, evaluated: Evaluated) -> str | None:
    """Who approves production: a human's approval given to the run; else automatic, unless
    ``deployment.require_approval`` or the candidate looks too good to be true (leakage guard:
    then ``None``, and the candidate waits in canary for ``retrain_promote``); a forced run whose
    gate failed is approved by the operator who forced it."""
    if ctx.force and evaluated.gate.status == "forced":
        return f"forced by operator: {ctx.force_reason}"
    if ctx.approval:
        return ctx.approval
    for suspicion in evaluated.gate.suspicions:
        services.progress("deploy", f"held for a human approval: {suspicion}")
    held = services.config.deployment.require_approval or bool(evaluated.gate.suspicions)
    return None if held else AUTO_APPROVAL


_EXAMPLE_ROWS = 10


def deploy_step(
    services: Services,
    ctx: RunContext,
    extracted: ExtractResult,
    validated: ValidationReport,
    trained: Trained,
    evaluated: Evaluated,
    compared: Compared,
) -> Deployment:
    """Register -> staging, then canary and production as policy and checklist allow.

    Promotion stops at ``ctx.target_stage``; production also needs an approval (``auto`` unless
    ``deployment.require_approval``, then ``ctx.approval`` from a human) and
    ``deployment.promote_to_production: auto``. Steps already done are skipped. The version
    registered and each stage it reaches are noted in the work directory as they happen, so the
    record of a run whose promotion then fails still names the version
    (:func:`~retrain.pipeline.record.note_registered`).
    """
    config, registry = services.config, services.registry
    tell = services.progress
    evidence = run_evidence(
        config,
        extracted=extracted,
        validated=validated,
        trained=trained,
        evaluated=evaluated,
        compared=compared,
    )
    require(evaluate_checklist(evidence), Stage.STAGING)
    model = load_trained(trained.fit)
    features = config.model.features
    example = read_frame(trained.fit.holdout_path, columns=features.all).head(_EXAMPLE_ROWS)
    # numeric features as float in the signature: serving may send NaN for a missing value
    example = example.astype({c: "float64" for c in features.numeric})
    record = VersionRecord(
        algorithm=trained.fit.algorithm,
        training_data_version=extracted.data_version,
        metrics=evaluated.candidate.metrics,
        features=features.all,
        retraining_id=ctx.retraining_id,
        watermark=extracted.last_event or ctx.as_of.isoformat(),
        trigger_reasons=ctx.trigger_reasons,
        gate=evaluated.gate.status,
    )
    profile = json.loads(Path(trained.profile_path).read_text(encoding="utf-8"))
    tracker = services.tracker(ctx.mlflow_run_id)
    # one batch: pending audit entries are completed before registering, not before each move
    with registry.batch():
        info = registry.register(
            model,
            input_example=example,
            record=record,
            idempotency_key=f"{ctx.run_key}:register",
            reference_profile=profile,
            run_id=ctx.mlflow_run_id,
            artifacts={"evaluation_report": evaluated.report_path},
            trusted_types=trained.fit.trusted_types,
            experiment_id=tracker.experiment_id,
        )
        version = info.version
        note_registered(ctx.work_dir, version, info.status)
        tell("deploy", f"registered version {version} -> staging")
        evidence.version = str(version)
        evidence.load_check_ok = True  # register() loaded it back and predicted before announcing
        evidence.profile_stored = True
        evidence.fingerprint_registered = preprocessing_fingerprint(registry.load_model(version))
        approval = _approval(services, ctx, evaluated)
        result = release(
            config,
            registry,
            version=version,
            evidence=evidence,
            target_stage=ctx.target_stage,
            approval=approval,
            reason=f"retraining {ctx.retraining_id} ({ctx.trigger})",
            run_id=ctx.mlflow_run_id,
            say=tell,
            info=info,
            moved=lambda stage: note_registered(ctx.work_dir, version, stage),
        )
    services.tracker(ctx.mlflow_run_id).log(
        tags={"retrain.model_version": version, "retrain.stage": result.stage}
    )
    return result
