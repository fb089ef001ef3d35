"""``evaluate``: candidate and baseline on the same holdout, the gate, the HTML report."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from retrain.data import read_frame, write_frame
from retrain.evaluate import gate, score_model, single_feature_accuracy, suspicions
from retrain.pipeline.context import RunContext
from retrain.pipeline.results import Evaluated, Trained
from retrain.pipeline.services import Services
from retrain.reports.evaluation import evaluation_report_html
from retrain.train import load_trained

__all__ = ["evaluate_step"]


def evaluate_step(services: Services, ctx: RunContext, trained: Trained) -> Evaluated:
    """Score the candidate and the pinned baseline version; apply the gate."""
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
    result = gate(
        cand.metrics,
        base.metrics if base else None,
        config.evaluation,
        force=ctx.force,
        force_reason=ctx.force_reason,
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
    report_path.write_text(evaluation_report_html(cand, base, result, title=title), "utf-8")
    services.tracker(ctx.mlflow_run_id).log(
        metrics={
            **{f"candidate_{k}": v for k, v in cand.metrics.items()},
            **({f"production_{k}": v for k, v in base.metrics.items()} if base else {}),
        },
        tags={"retrain.gate": result.status},
        artifacts=[str(report_path)],
    )
    return Evaluated(
        candidate=cand,
        production=base,
        production_version=baseline.version if baseline else None,
        gate=result,
        predictions_path=str(pred_path),
        report_path=str(report_path),
    )
