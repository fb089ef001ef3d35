"""The retraining pipeline as steps with small, JSON-serialisable inputs and outputs.

``start -> check -> extract -> validate -> train -> evaluate -> compare -> deploy | reject ->
finish``. Each step is a plain function of the config, the :class:`RunContext` and the previous
steps' outputs (paths and small dicts), so the Airflow DAG passes them through XCom and
:func:`run_pipeline` (``retrain run``) chains them in-process: both do exactly the same thing.

Every step is idempotent: re-running it with the same inputs rewrites the same files, finds the
same MLflow run and registered version, and skips promotions already done. :func:`finish` always
runs and writes the retraining log, also after a failure.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from retrain.config import RetrainConfig
from retrain.data import to_utc
from retrain.errors import ConfigError, DataError, RetrainError

__all__ = [
    "TRIGGERS",
    "RunContext",
    "check",
    "compare_step",
    "deploy_step",
    "evaluate_step",
    "extract_step",
    "finish",
    "reject_step",
    "run_pipeline",
    "should_deploy",
    "start",
    "train_step",
    "validate_step",
]

logger = logging.getLogger(__name__)

TRIGGERS = ("manual", "scheduled", "drift", "volume", "performance")
Stage = Literal["staging", "canary", "production"]
Progress = Callable[[str, str], None]
_RUN_KEY_TAG = "retrain.run_key"
_ID_TAG = "retrain.retraining_id"


@dataclass
class RunContext:
    """Identity and options of one retraining run; travels between DAG tasks as a dict."""

    retraining_id: str
    run_key: str
    trigger: str
    as_of: str
    started_at: str
    work_dir: str
    mlflow_run_id: str
    force: bool = False
    force_reason: str | None = None
    skip_ab: bool = False
    target_stage: Stage = "production"
    window_days: int | None = None
    trigger_reasons: list[str] = field(default_factory=list)
    approval: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunContext:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    @property
    def as_of_time(self) -> datetime:
        value = to_utc(self.as_of)
        assert value is not None
        return value


# --- helpers ------------------------------------------------------------------------------------


def _registry(config: RetrainConfig) -> Any:
    from retrain.notify import notifier_from_config
    from retrain.registry import ModelRegistry

    return ModelRegistry(config, notifier=notifier_from_config(config))


def _log_store(config: RetrainConfig) -> Any:
    from retrain.log import LogStore
    from retrain.tracking import tracking_client

    return LogStore(
        tracking_client(config), config.log_experiment_name, Path(config.storage.work_dir)
    )


def _mlflow(
    config: RetrainConfig,
    ctx: RunContext,
    *,
    params: Mapping[str, Any] | None = None,
    metrics: Mapping[str, float] | None = None,
    artifacts: list[str] | None = None,
    tags: Mapping[str, str] | None = None,
) -> None:
    """Record step results in the retraining's MLflow run (idempotent: same keys, same values)."""
    from mlflow.entities import Metric, Param, RunTag

    from retrain.tracking import bounded, tracking_client

    client = tracking_client(config)
    stamp = int(time.time() * 1000)
    with bounded(config, f"logging to MLflow run {ctx.mlflow_run_id}"):
        # params cannot be logged twice with another value: a re-run skips the ones it has
        existing = client.get_run(ctx.mlflow_run_id).data.params if params else {}
        fresh = {k: str(v)[:6000] for k, v in (params or {}).items() if k not in existing}
        client.log_batch(
            ctx.mlflow_run_id,
            metrics=[Metric(k, float(v), stamp, 0) for k, v in (metrics or {}).items()],
            params=[Param(k, v) for k, v in fresh.items()],
            tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
        )
        for path in artifacts or []:
            client.log_artifact(ctx.mlflow_run_id, path)


def _retraining_id(client: Any, experiment_id: str, as_of: datetime) -> str:
    day = f"{as_of:%Y%m%d}"
    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.`retrain.date` = '{day}'", max_results=1000
    )
    return f"retrain_{day}_{len(runs) + 1:03d}"


# --- steps --------------------------------------------------------------------------------------


def start(
    config: RetrainConfig,
    *,
    trigger: str,
    run_key: str | None = None,
    as_of: datetime | str | None = None,
    force: bool = False,
    force_reason: str | None = None,
    skip_ab: bool = False,
    target_stage: Stage = "production",
    window_days: int | None = None,
    trigger_reasons: list[str] | None = None,
) -> RunContext:
    """Open (or find again, by ``run_key``) the retraining's MLflow run and its work directory."""
    from retrain.tracking import bounded, ensure_experiment, find_run, tracking_client

    if trigger not in TRIGGERS:
        raise ValueError(f"trigger must be one of {', '.join(TRIGGERS)}, got {trigger!r}")
    if force and not (force_reason and force_reason.strip()):
        raise ValueError("--force needs --reason: a forced promotion must say why")
    if target_stage not in ("staging", "canary", "production"):
        raise ValueError(f"target_stage must be staging, canary or production: {target_stage!r}")
    as_of_time = to_utc(as_of) or datetime.now(UTC)
    run_key = run_key or f"cli-{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
    client = tracking_client(config)
    with bounded(config, "starting the retraining run"):
        experiment_id = ensure_experiment(client, config.experiment_name)
        run = find_run(client, experiment_id, _RUN_KEY_TAG, run_key)
        if run is not None:
            retraining_id = run.data.tags[_ID_TAG]
            run_id = run.info.run_id
            started = datetime.fromtimestamp(run.info.start_time / 1000, UTC)
        else:
            retraining_id = _retraining_id(client, experiment_id, as_of_time)
            tags = {
                _RUN_KEY_TAG: run_key,
                _ID_TAG: retraining_id,
                "retrain.trigger": trigger,
                "retrain.date": f"{as_of_time:%Y%m%d}",
                "retrain.as_of": as_of_time.isoformat(),
            }
            run = client.create_run(experiment_id, run_name=retraining_id, tags=tags)
            run_id = run.info.run_id
            started = datetime.now(UTC)
    work_dir = str(Path(config.storage.work_dir) / "runs" / retraining_id)
    Path(work_dir).mkdir(parents=True, exist_ok=True)
    return RunContext(
        retraining_id=retraining_id,
        run_key=run_key,
        trigger=trigger,
        as_of=as_of_time.isoformat(),
        started_at=started.isoformat(),
        work_dir=work_dir,
        mlflow_run_id=run_id,
        force=force,
        force_reason=force_reason,
        skip_ab=skip_ab,
        target_stage=target_stage,
        window_days=window_days,
        trigger_reasons=list(trigger_reasons or []),
    )


def check(config: RetrainConfig, ctx: RunContext, *, sql_url: str | None = None) -> dict[str, Any]:
    """Measure the live signals and decide whether this run retrains.

    Manual runs always proceed (an operator asked; the cooldown bypass is recorded). Runs started
    by a monitor asset event proceed on the event's reasons. Scheduled runs proceed only when the
    policy triggers, and never on zero new rows (retraining on the same data changes nothing).
    """
    from retrain.signals import compute_signals
    from retrain.triggers import TriggerPolicy

    live = compute_signals(
        config,
        registry=_registry(config),
        as_of=ctx.as_of_time,
        log=_log_store(config),
        report_dir=ctx.work_dir,
        sql_url=sql_url,
    )
    last = to_utc(live.last_triggered_at)
    manual = ctx.trigger == "manual"
    decision = TriggerPolicy(config).evaluate(
        live.signals,
        now=ctx.as_of_time,
        last_triggered_at=last,
        force=manual,
        force_reason=(ctx.force_reason or "manual run") if manual else None,
    )
    proceed, why = decision.triggered, list(decision.reasons)
    if ctx.trigger in {"drift", "volume", "performance"} and ctx.trigger_reasons:
        proceed, why = True, [f"{ctx.trigger} event: {r}" for r in ctx.trigger_reasons]
    new = live.signals.new_samples
    if proceed and not manual and not decision.bootstrap and not new:
        proceed = False
        why = ["no new rows since the production model's training data: nothing to learn"]
    days = ctx.window_days or config.data.training_window_days
    if proceed and not manual and days:
        from datetime import timedelta

        from retrain.data import count_rows

        start = ctx.as_of_time - timedelta(days=days)
        if count_rows(config, start=start, end=ctx.as_of_time, sql_url=sql_url) == 0:
            proceed = False
            why = [
                f"no rows in the {days}-day training window ending {ctx.as_of}: stale data, "
                "nothing to train on"
            ]
    if not proceed and why == ["no rule fired"]:
        why = [
            "no rule fired: "
            + "; ".join(
                f"{k}={'unknown' if v is None else f'{v:g}'}"
                for k, v in live.signals.as_dict().items()
                if v is not None
            )
            or "no signals"
        ]
    updated = RunContext.from_dict({**ctx.to_dict(), "trigger_reasons": ctx.trigger_reasons or why})
    result = {
        "proceed": proceed,
        "reasons": why,
        "decision": decision.to_dict(),
        "signals": live.to_dict(),
        "context": updated.to_dict(),
    }
    _mlflow(
        config,
        ctx,
        metrics={f"signal_{k}": v for k, v in live.signals.as_dict().items() if v is not None},
        tags={"retrain.decision": "retrain" if proceed else "skip"},
        artifacts=[p for p in [live.drift_report_path] if p],
    )
    return result


def extract_step(
    config: RetrainConfig, ctx: RunContext, *, sql_url: str | None = None
) -> dict[str, Any]:
    """Extract the training window ending at ``as_of``; new rows counted after the watermark."""
    from retrain.data import extract
    from retrain.signals import production_version

    production = production_version(_registry(config))
    watermark = production.record.watermark_time if production else None
    result = extract(
        config,
        out_dir=ctx.work_dir,
        as_of=ctx.as_of_time,
        watermark=watermark,
        window_days=ctx.window_days,
        sql_url=sql_url,
    ).to_dict()
    _mlflow(
        config,
        ctx,
        params={
            "data_version": result["data_version"],
            "rows": result["rows"],
            "window_start": result["window_start"],
        },
        metrics={"rows": result["rows"], "new_samples": result["new_samples"]},
    )
    return result


def validate_step(
    config: RetrainConfig, ctx: RunContext, extracted: Mapping[str, Any]
) -> dict[str, Any]:
    """Check the extracted data against the contract; :class:`DataError` names each problem."""
    from retrain.data import extracted_row_hashes, read_frame
    from retrain.validate import check_frame

    frame = read_frame(extracted["path"])
    report = check_frame(
        config,
        frame,
        known_categories=_known_categories(config),
        row_hashes=extracted_row_hashes(extracted["path"]),
    )
    _mlflow(config, ctx, tags={"retrain.validation": "passed" if report.ok else "failed"})
    if not report.ok:
        raise DataError(report.problems, source=f"validation of {extracted['data_version']}")
    return report.to_dict()


def _known_categories(config: RetrainConfig) -> dict[str, list[str]] | None:
    from retrain.drift import CategoricalProfile, ReferenceProfile
    from retrain.signals import production_version

    registry = _registry(config)
    production = production_version(registry)
    data = registry.reference_profile(production.version) if production else None
    if data is None:
        return None
    profile = ReferenceProfile.from_dict(data)
    return {
        name: [str(c) for c in p.categories]
        for name, p in profile.features.items()
        if isinstance(p, CategoricalProfile) and not p.truncated
    }


def train_step(
    config: RetrainConfig, ctx: RunContext, extracted: Mapping[str, Any]
) -> dict[str, Any]:
    """Fit the pipeline and build the drift reference profile of the training window."""
    from retrain.data import read_frame
    from retrain.drift import build_profile
    from retrain.train import train

    frame = read_frame(extracted["path"])
    result = train(config, frame, out_dir=ctx.work_dir).to_dict()
    features = config.model.features
    profile = build_profile(
        frame, numeric=features.numeric, categorical=features.categorical, settings=config.drift
    )
    result["profile_path"] = str(profile.save(Path(ctx.work_dir) / "reference_profile.json"))
    _mlflow(
        config,
        ctx,
        params={
            "algorithm": result["algorithm"],
            "train_rows": result["train_rows"],
            "holdout_rows": result["holdout_rows"],
            **{f"param_{k}": v for k, v in result["params"].items()},
        },
        metrics={"fit_seconds": result["fit_seconds"]},
    )
    return result


def evaluate_step(
    config: RetrainConfig, ctx: RunContext, trained: Mapping[str, Any]
) -> dict[str, Any]:
    """Score candidate and production on the same holdout, apply the gate, write the report."""
    import pandas as pd

    from retrain.data import read_frame, write_frame
    from retrain.evaluate import gate, score_model
    from retrain.reports import evaluation_report_html
    from retrain.train import load_trained

    model = load_trained(trained)
    holdout = read_frame(trained["holdout_path"])
    features, target = config.model.features.all, config.model.target
    from retrain.signals import production_version

    registry = _registry(config)
    production = production_version(registry)
    prod_model = registry.load_model(production.version) if production else None
    labels = sorted(
        set(model.classes_)
        | set(holdout[target].unique())
        | (set(prod_model.classes_) if prod_model is not None else set())
    )
    average = config.evaluation.average
    cand, cand_pred = score_model(
        model, holdout, features=features, target=target, labels=labels, average=average
    )
    predictions = pd.DataFrame({"y_true": holdout[target].to_numpy(), "candidate": cand_pred})
    base = None
    if prod_model is not None:
        base, prod_pred = score_model(
            prod_model, holdout, features=features, target=target, labels=labels, average=average
        )
        predictions["production"] = prod_pred
    result = gate(
        cand.metrics,
        base.metrics if base else None,
        config.evaluation,
        force=ctx.force,
        force_reason=ctx.force_reason,
    )
    pred_path = Path(ctx.work_dir) / "predictions.parquet"
    write_frame(predictions, pred_path)
    report_path = Path(ctx.work_dir) / "evaluation.html"
    report_path.write_text(
        evaluation_report_html(
            cand, base, result, title=f"{config.model.name}: {ctx.retraining_id}"
        ),
        encoding="utf-8",
    )
    _mlflow(
        config,
        ctx,
        metrics={
            **{f"candidate_{k}": v for k, v in cand.metrics.items()},
            **({f"production_{k}": v for k, v in base.metrics.items()} if base else {}),
        },
        tags={"retrain.gate": result.status},
        artifacts=[str(report_path)],
    )
    return {
        "candidate": cand.to_dict(),
        "production": base.to_dict() if base else None,
        "production_version": production.version if production else None,
        "gate": result.to_dict(),
        "predictions_path": str(pred_path),
        "report_path": str(report_path),
    }


def compare_step(
    config: RetrainConfig, ctx: RunContext, evaluated: Mapping[str, Any]
) -> dict[str, Any]:
    """Offline A/B: McNemar + bootstrap CI on the paired holdout predictions."""
    from retrain.compare import compare_offline
    from retrain.data import read_frame

    if ctx.skip_ab or not config.ab_test.enabled:
        why = "skipped by the run's skip_ab option" if ctx.skip_ab else "ab_test.enabled is false"
        return {"skipped": True, "passed": True, "reasons": [why]}
    predictions = read_frame(evaluated["predictions_path"])
    current = predictions["production"].to_numpy() if "production" in predictions else None
    result = compare_offline(
        predictions["y_true"].to_numpy(),
        predictions["candidate"].to_numpy(),
        current,
        config.ab_test,
        seed=config.model.random_state,
    ).to_dict()
    metrics = {
        k: result[k]
        for k in ("p_value", "difference", "ci_low", "ci_high")
        if result[k] is not None
    }
    _mlflow(
        config,
        ctx,
        metrics={f"ab_{k}": v for k, v in metrics.items()},
        tags={"retrain.ab_winner": result["winner"]},
    )
    return {"skipped": False, **result}


def should_deploy(evaluated: Mapping[str, Any], compared: Mapping[str, Any]) -> bool:
    """The branch decision: gate passed (or forced) and A/B passed (or was skipped or forced)."""
    forced = bool(evaluated["gate"]["forced"])
    return bool(evaluated["gate"]["passed"]) and (bool(compared["passed"]) or forced)


def _evidence(
    config: RetrainConfig,
    *,
    extracted: Mapping[str, Any],
    validated: Mapping[str, Any],
    trained: Mapping[str, Any],
    evaluated: Mapping[str, Any],
    compared: Mapping[str, Any],
) -> Any:
    from retrain.checklist import Evidence

    drift_rules = [
        name
        for name, rule in config.retraining_rules.items()
        if rule.parsed.signals
        & {"drift_count", "drift_share", "accuracy", "precision", "recall", "f1", "roc_auc"}
    ]
    return Evidence(
        validation_ok=bool(validated.get("ok")),
        validation_problems=list(validated.get("problems", [])),
        rows_extracted=extracted["rows"],
        rows_trained=trained["train_rows"],
        rows_holdout=trained["holdout_rows"],
        fingerprint_trained=trained["preprocessing_fingerprint"],
        metrics=evaluated["candidate"]["metrics"],
        baseline_compared=evaluated["production"] is not None,
        first_model=evaluated["production"] is None,
        gate_status=evaluated["gate"]["status"],
        ab_passed=bool(compared["passed"]) or bool(evaluated["gate"]["forced"]),
        skip_canary=config.deployment.skip_canary,
        monitoring_rules=drift_rules,
    )


def deploy_step(
    config: RetrainConfig,
    ctx: RunContext,
    *,
    extracted: Mapping[str, Any],
    validated: Mapping[str, Any],
    trained: Mapping[str, Any],
    evaluated: Mapping[str, Any],
    compared: Mapping[str, Any],
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Register -> staging, then canary and production as policy and checklist allow.

    Promotion stops at ``ctx.target_stage``; production also needs an approval (``auto`` unless
    ``deployment.require_approval``, then ``ctx.approval`` from a human) and
    ``deployment.promote_to_production: auto``. Steps already done are skipped.
    """
    from retrain.checklist import evaluate_checklist, require
    from retrain.data import read_frame
    from retrain.deploy import AUTO_APPROVAL, release
    from retrain.registry import VersionRecord
    from retrain.train import load_trained, preprocessing_fingerprint

    say = progress or (lambda step, text: logger.info("%s: %s", step, text))
    registry = _registry(config)
    evidence = _evidence(
        config,
        extracted=extracted,
        validated=validated,
        trained=trained,
        evaluated=evaluated,
        compared=compared,
    )
    require(evaluate_checklist(evidence), "staging")
    model = load_trained(trained)
    example = read_frame(trained["holdout_path"], columns=config.model.features.all).head(10)
    # numeric features as float in the signature: serving may send NaN for a missing value
    example = example.astype({c: "float64" for c in config.model.features.numeric})
    record = VersionRecord(
        algorithm=trained["algorithm"],
        training_data_version=extracted["data_version"],
        metrics=evaluated["candidate"]["metrics"],
        features=config.model.features.all,
        retraining_id=ctx.retraining_id,
        watermark=extracted["last_event"] or ctx.as_of,
        trigger_reasons=ctx.trigger_reasons,
        gate=evaluated["gate"]["status"],
    )
    profile = json.loads(Path(trained["profile_path"]).read_text(encoding="utf-8"))
    info = registry.register(
        model,
        input_example=example,
        record=record,
        idempotency_key=f"{ctx.run_key}:register",
        reference_profile=profile,
        run_id=ctx.mlflow_run_id,
        artifacts={"evaluation_report": evaluated["report_path"]},
        trusted_types=trained["trusted_types"],
    )
    version = info.version
    say("deploy", f"registered version {version} -> staging")
    evidence.version = str(version)
    evidence.load_check_ok = True  # register() loaded it back and predicted before announcing
    evidence.profile_stored = True
    evidence.fingerprint_registered = preprocessing_fingerprint(registry.load_model(version))
    approval = ctx.approval or (None if config.deployment.require_approval else AUTO_APPROVAL)
    if ctx.force and evaluated["gate"]["status"] == "forced":
        approval = f"forced by operator: {ctx.force_reason}"
    result = release(
        config,
        registry,
        version=version,
        evidence=evidence,
        target_stage=ctx.target_stage,
        approval=approval,
        reason=f"retraining {ctx.retraining_id} ({ctx.trigger})",
        run_id=ctx.mlflow_run_id,
        say=say,
    )
    _mlflow(
        config, ctx, tags={"retrain.model_version": str(version), "retrain.stage": result["stage"]}
    )
    return result


def reject_step(
    config: RetrainConfig,
    ctx: RunContext,
    evaluated: Mapping[str, Any],
    compared: Mapping[str, Any],
) -> dict[str, Any]:
    """Record why the candidate is not deployed; nothing is registered and no alias moves."""
    reasons: list[str] = []
    if not evaluated["gate"]["passed"]:
        reasons += [
            r
            for r, c in zip(evaluated["gate"]["reasons"], evaluated["gate"]["checks"], strict=False)
            if not c["passed"]
        ] or evaluated["gate"]["reasons"]
    if not compared["passed"]:
        reasons += compared.get("reasons", [])[-1:]
    _mlflow(config, ctx, tags={"retrain.stage": "rejected"})
    return {"status": "rejected", "reasons": reasons or ["rejected"]}


# --- the log ------------------------------------------------------------------------------------


def _notes(status: str, results: Mapping[str, Any], error: str | None) -> str:
    evaluated = results.get("evaluate") or {}
    cand = (evaluated.get("candidate") or {}).get("metrics", {})
    base = (evaluated.get("production") or {}) or {}
    base_metrics = base.get("metrics", {}) if base else {}
    if status == "failed":
        return f"failed: {error}"
    if status == "skipped":
        return "; ".join((results.get("check") or {}).get("reasons", ["nothing to do"]))
    parts = []
    if "accuracy" in cand:
        text = f"accuracy {cand['accuracy']:.3f}"
        if "accuracy" in base_metrics:
            diff = cand["accuracy"] - base_metrics["accuracy"]
            text += f" vs production {base_metrics['accuracy']:.3f} ({diff:+.3f})"
        parts.append(text)
    compared = results.get("compare") or {}
    if compared.get("p_value") is not None:
        parts.append(f"{compared['test']} p={compared['p_value']:.3g}, winner {compared['winner']}")
    deployed = results.get("deploy") or {}
    if deployed:
        parts.append(f"version {deployed['version']} -> {deployed['stage']}")
    rejected = results.get("reject") or {}
    if rejected:
        parts.append("rejected: " + "; ".join(rejected["reasons"]))
    return "; ".join(parts)


def _status(results: Mapping[str, Any], error: str | None) -> str:
    if error is not None:
        return "failed"
    if results.get("check") is not None and not results["check"]["proceed"]:
        return "skipped"
    if results.get("reject"):
        return "rejected"
    if results.get("deploy"):
        return str(results["deploy"]["status"])
    return "failed"


def finish(
    config: RetrainConfig,
    ctx: RunContext,
    results: Mapping[str, Any],
    *,
    error: str | None = None,
    failed_step: str | None = None,
) -> dict[str, Any]:
    """Write the retraining log record (always; also after a failure) and close the MLflow run."""
    from retrain.log import RetrainingRecord

    status = _status(results, error)
    end = datetime.now(UTC)
    started = to_utc(ctx.started_at) or end
    check_result = results.get("check") or {}
    decision = check_result.get("decision") or {}
    extracted = results.get("extract") or {}
    evaluated = results.get("evaluate") or {}
    deployed = results.get("deploy") or {}
    signals = check_result.get("signals") or {}
    rule = decision.get("trigger") or "none"
    trigger = ctx.trigger if ctx.trigger == "manual" or rule == "none" else f"{ctx.trigger}:{rule}"
    record = RetrainingRecord(
        retraining_id=ctx.retraining_id,
        trigger=trigger,
        start_time=started.isoformat(),
        end_time=end.isoformat(),
        training_duration_minutes=round((end - started).total_seconds() / 60, 2),
        data_version=extracted.get("data_version"),
        new_samples=extracted.get("new_samples", (signals.get("signals") or {}).get("new_samples")),
        model_version=str(deployed["version"]) if deployed else None,
        metrics=(evaluated.get("candidate") or {}).get("metrics", {}),
        baseline_metrics=((evaluated.get("production") or {}) or {}).get("metrics", {}),
        status=status,
        notes=_notes(status, results, error),
        trigger_reasons=list(ctx.trigger_reasons or check_result.get("reasons", [])),
        as_of=ctx.as_of,
        run_key=ctx.run_key,
        mlflow_run_id=ctx.mlflow_run_id,
        forced=ctx.force,
        force_reason=ctx.force_reason,
        drift=signals.get("drift") or {},
        gate=evaluated.get("gate") or {},
        ab_test=dict(results.get("compare") or {}),
        checklist=list(deployed.get("checklist", [])),
        deployment={k: v for k, v in deployed.items() if k != "checklist"},
        cadence=decision.get("cadence") or {},
        error=error,
        failed_step=failed_step,
    )
    if not record.trigger_reasons:
        record.trigger_reasons = list(check_result.get("reasons", []))
    Path(ctx.work_dir).mkdir(parents=True, exist_ok=True)
    (Path(ctx.work_dir) / "retraining_log.json").write_text(
        json.dumps(record.to_dict(), indent=2, default=str), encoding="utf-8"
    )
    where = _log_store(config).write(record)
    try:
        from retrain.tracking import bounded, tracking_client

        with bounded(config, "closing the retraining run"):
            tracking_client(config).set_terminated(
                ctx.mlflow_run_id, status="FAILED" if status == "failed" else "FINISHED"
            )
    except RetrainError as exc:
        logger.error("could not close MLflow run %s: %s", ctx.mlflow_run_id, exc)
    return {**record.to_dict(), "stored_in": where}


# --- in-process runner --------------------------------------------------------------------------


def run_pipeline(
    config: RetrainConfig,
    *,
    trigger: str = "manual",
    progress: Progress | None = None,
    sql_url: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Run every step in-process (``retrain run``); returns the retraining log record.

    The steps still write their files, but each hands what it wrote to the next in memory
    (:mod:`retrain.handoff`) instead of the next decoding it again. ``options`` go to
    :func:`start` (``run_key``, ``as_of``, ``force``, ``force_reason``, ``skip_ab``,
    ``target_stage``, ``window_days``, ``trigger_reasons``).
    """
    from retrain.handoff import shared_outputs

    with shared_outputs():
        return _run_steps(config, trigger=trigger, progress=progress, sql_url=sql_url, **options)


def _run_steps(
    config: RetrainConfig,
    *,
    trigger: str,
    progress: Progress | None,
    sql_url: str | None,
    **options: Any,
) -> dict[str, Any]:
    say = progress or (lambda step, text: logger.info("%s: %s", step, text))
    approval = options.pop("approval", None)
    ctx = start(config, trigger=trigger, **options)
    ctx.approval = approval
    say("start", f"{ctx.retraining_id} (trigger {trigger}, as of {ctx.as_of})")
    results: dict[str, Any] = {}
    step = "check"
    try:
        results["check"] = check(config, ctx, sql_url=sql_url)
        say("check", "; ".join(results["check"]["reasons"]))
        ctx = RunContext.from_dict(results["check"]["context"])
        if not results["check"]["proceed"]:
            return finish(config, ctx, results)
        step = "extract"
        results["extract"] = extract_step(config, ctx, sql_url=sql_url)
        ex = results["extract"]
        say("extract", f"{ex['rows']} rows ({ex['new_samples']} new), {ex['data_version']}")
        step = "validate"
        results["validate"] = validate_step(config, ctx, ex)
        say("validate", f"{results['validate']['rows']} rows passed the contract")
        step = "train"
        results["train"] = train_step(config, ctx, ex)
        tr = results["train"]
        say(
            "train",
            f"{tr['train_rows']} rows fitted in {tr['fit_seconds']:.1f}s; holdout "
            f"{tr['holdout_rows']}",
        )
        step = "evaluate"
        results["evaluate"] = evaluate_step(config, ctx, tr)
        say(
            "evaluate",
            "gate "
            + results["evaluate"]["gate"]["status"]
            + ": "
            + "; ".join(results["evaluate"]["gate"]["reasons"]),
        )
        step = "compare"
        results["compare"] = compare_step(config, ctx, results["evaluate"])
        say("compare", "; ".join(results["compare"]["reasons"]))
        if should_deploy(results["evaluate"], results["compare"]):
            step = "deploy"
            results["deploy"] = deploy_step(
                config,
                ctx,
                extracted=ex,
                validated=results["validate"],
                trained=tr,
                evaluated=results["evaluate"],
                compared=results["compare"],
                progress=say,
            )
        else:
            step = "reject"
            results["reject"] = reject_step(config, ctx, results["evaluate"], results["compare"])
            say("reject", "; ".join(results["reject"]["reasons"]))
    except Exception as exc:
        if not isinstance(exc, DataError | ConfigError | RetrainError | ValueError):
            logger.error("step %s crashed:\n%s", step, traceback.format_exc())
        say(step, f"FAILED: {type(exc).__name__}: {exc}")
        return finish(config, ctx, results, error=f"{type(exc).__name__}: {exc}", failed_step=step)
    return finish(config, ctx, results)
