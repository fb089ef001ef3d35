"""``evaluate``: candidate and baseline on the same holdout, the gate, the HTML report."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from retrain.data import read_frame, write_frame
from retrain.evaluate import gate, score_model, single_feature_accuracy, suspicions
from retrain.pipeline.context import RunContext
from retrain.pipeline.rebuild import RebuildTests, run_rebuild_tests
from retrain.pipeline.results import Evaluated, Extracted, Trained
from retrain.pipeline.services import Services
from retrain.reports.evaluation import evaluation_report_html
from retrain.reports.rebuild import rebuild_checks_html, search_html
from retrain.train import load_trained

__all__ = ["evaluate_step"]


def evaluate_step(
    services: Services, ctx: RunContext, trained: Trained, extracted: Extracted
) -> Evaluated:
    """Score the candidate and the pinned baseline version (a full rebuild: run the
    comprehensive tests too); apply the gate."""
    config = services.config
    model = load_trained(trained.fit)
    holdout = read_frame(trained.fit.holdout_path)
    features, target = config.model.features.all, config.model.target
    baseline = ctx.pinned_baseline()
    prod_model = services.registry.load_model(baseline.version) if baseline else None
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
    tests = None
    if ctx.mode == "full_rebuild" and config.full_rebuild.checks.enabled:
        tests = run_rebuild_tests(
            config, model, prod_model, extracted=read_frame(extracted.path), holdout=holdout
        )
    result = gate(
        cand.metrics,
        base.metrics if base else None,
        config.evaluation,
        force=ctx.force,
        force_reason=ctx.force_reason,
        tests=tests.items() if tests else (),
    )
    held = suspicions(
        cand.metrics,
        base.metrics if base else None,
        single_feature_accuracy(holdout, features, target),
        config.evaluation.leakage,
        compare=list(config.evaluation.compare_metrics),
        target=target,
    )
    result = dataclasses.replace(result, suspicions=held)
    pred_path = Path(ctx.work_dir) / "predictions.parquet"
    write_frame(predictions, pred_path)
    report_path = Path(ctx.work_dir) / "evaluation.html"
    title = f"{config.model.name}: {ctx.retraining_id}"
    more = _tests_html(tests, trained) if tests or trained.fit.search else ""
    report_path.write_text(
        evaluation_report_html(cand, base, result, title=title, more=more), "utf-8"
    )
    services.tracker(ctx.mlflow_run_id).log(
        metrics={
            **{f"candidate_{k}": v for k, v in cand.metrics.items()},
            **({f"production_{k}": v for k, v in base.metrics.items()} if base else {}),
            **(_tests_metrics(tests) if tests else {}),
        },
        tags={
            "retrain.gate": result.status,
            **({"retrain.rebuild_tests": "passed" if tests.passed else "failed"} if tests else {}),
        },
        artifacts=[str(report_path)],
    )
    return Evaluated(
        candidate=cand,
        production=base,
        production_version=baseline.version if baseline else None,
        gate=result,
        predictions_path=str(pred_path),
        report_path=str(report_path),
        rebuild_tests=tests,
    )


def _tests_html(tests: RebuildTests | None, trained: Trained) -> str:
    """The search and the comprehensive tests as sections of the evaluation report."""
    parts = []
    if trained.fit.search is not None:
        parts.append(search_html(trained.fit.search))
    if tests is not None:
        parts.append(
            rebuild_checks_html(
                cross_validation=tests.cross_validation,
                slices=tests.slices,
                calibration=tests.calibration,
                robustness=tests.robustness,
                latency=tests.latency,
                not_run=tests.not_run,
            )
        )
    return "\n".join(parts)


def _tests_metrics(tests: RebuildTests) -> dict[str, float]:
    """The tests' headline figures as MLflow metrics (``rebuild_*``)."""
    out: dict[str, float] = {}
    if tests.cross_validation is not None:
        for m in tests.cross_validation.metrics:
            out[f"rebuild_cv_{m.metric}_candidate"] = m.candidate.mean
            out[f"rebuild_cv_{m.metric}_production"] = m.production.mean
            out[f"rebuild_cv_{m.metric}_difference_low"] = m.difference.low
    if tests.slices is not None:
        out["rebuild_slice_regressions"] = float(len(tests.slices.regressions))
    if tests.calibration is not None:
        out["rebuild_brier_candidate"] = tests.calibration.candidate.brier
        out["rebuild_ece_candidate"] = tests.calibration.candidate.ece
    out["rebuild_robustness_failures"] = float(len(tests.robustness.failures))
    if tests.latency is not None:
        out["rebuild_latency_ratio"] = tests.latency.latency_ratio
        out["rebuild_size_ratio"] = tests.latency.size_ratio
    return out
