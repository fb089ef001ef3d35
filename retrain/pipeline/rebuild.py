"""The full rebuild's comprehensive tests, configured (``full_rebuild.checks``), run by
``evaluate`` on its candidate and the pinned production model.

* cross-validated metrics: the candidate's parameters refitted per fold over every extracted
  row, production scored on the same held-out folds;
* slices, calibration, robustness, latency and size: both fitted models on the holdout, which
  the candidate never saw.

Without a production model (the first one) only robustness runs; the others are recorded as
not applicable. Each test is a checklist item; a failing one fails the gate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sklearn.base import clone

from retrain.config import RetrainConfig
from retrain.rebuild_checks import (
    CalibrationResult,
    ChecklistItem,
    CrossValidation,
    LatencyAndSize,
    RobustnessResult,
    SliceReport,
    calibration,
    cross_validated,
    latency_and_size,
    robustness,
    slice_report,
)
from retrain.search import scorer, scorer_name

__all__ = ["RebuildTests", "run_rebuild_tests"]

log = logging.getLogger(__name__)
FIRST_MODEL = "no production model to compare against (first model)"


@dataclass(frozen=True)
class RebuildTests:
    """The tests that ran (``None``: not run, see ``not_run``) and their checklist items."""

    robustness: RobustnessResult
    cross_validation: CrossValidation | None = None
    slices: SliceReport | None = None
    calibration: CalibrationResult | None = None
    latency: LatencyAndSize | None = None
    #: Tests that did not run, each ``name: why``.
    not_run: tuple[str, ...] = field(default=())

    def results(self) -> dict[str, Any]:
        """The tests that ran by checklist name, in the one fixed order of items, log and report."""
        ran = {
            "cross_validated": self.cross_validation,
            "slices": self.slices,
            "calibration": self.calibration,
            "robustness": self.robustness,
            "latency_and_size": self.latency,
        }
        return {name: test for name, test in ran.items() if test is not None}

    def items(self) -> list[ChecklistItem]:
        """``(name, passed, detail)`` of every test that ran, in :meth:`results`' order."""
        return [test.checklist_item() for test in self.results().values()]

    @property
    def passed(self) -> bool:
        return all(passed for _, passed, _ in self.items())

    def summary(self) -> str:
        items = self.items()
        failed = [name for name, passed, _ in items if not passed]
        head = f"{len(items) - len(failed)} of {len(items)} comprehensive tests passed"
        return head + (f"; failed: {', '.join(failed)}" if failed else "")

    def to_record(self) -> dict[str, Any]:
        """The retraining log's ``rebuild_tests``: each test's verdict and figures."""
        return {
            "passed": self.passed,
            "items": [{"name": n, "passed": p, "detail": d} for n, p, d in self.items()],
            "results": {name: test.to_dict() for name, test in self.results().items()},
            "not_run": list(self.not_run),
        }


def _split(config: RetrainConfig) -> tuple[list[str], list[str]]:
    """The (categorical, numeric) features the slices cut by."""
    chosen = config.full_rebuild.checks.slice_features
    features = config.model.features
    wanted = set(features.all if chosen is None else chosen)
    return (
        [f for f in features.categorical if f in wanted],
        [f for f in features.numeric if f in wanted],
    )


def run_rebuild_tests(
    config: RetrainConfig,
    candidate: Any,
    production: Any | None,
    *,
    extracted: pd.DataFrame,
    holdout: pd.DataFrame,
) -> RebuildTests:
    """Run every configured test; ``candidate`` and ``production`` are fitted pipelines."""
    settings = config.full_rebuild.checks
    features, target = config.model.features.all, config.model.target
    log.info("rebuild tests: robustness on %d rows", min(settings.robustness_rows, len(holdout)))
    robust = robustness(
        candidate,
        holdout,
        features,
        categorical=list(config.model.features.categorical),
        rows=settings.robustness_rows,
    )
    if production is None:
        others = ("cross_validated", "slices", "calibration", "latency_and_size")
        return RebuildTests(robust, not_run=tuple(f"{name}: {FIRST_MODEL}" for name in others))
    classes = list(candidate.classes_)
    # keyed by the scorer's plain name (a metric key in MLflow), scored as the evaluation scores
    metrics = {
        scorer_name(metric, config.evaluation.average, len(classes)): scorer(
            metric, config.evaluation.average, classes
        )[1]
        for metric in ("accuracy", "f1")
    }
    log.info(
        "rebuild tests: %d-fold cross-validation on %d rows", settings.cv_folds, len(extracted)
    )
    cv = cross_validated(
        clone(candidate),
        production,
        extracted,
        target,
        features=features,
        metrics=metrics,
        folds=settings.cv_folds,
        seed=config.model.random_state,
        confidence=settings.confidence,
        margin=settings.cv_margin,
    )
    categorical, numeric = _split(config)
    log.info("rebuild tests: slices, calibration, latency and size on %d rows", len(holdout))
    slices = slice_report(
        candidate,
        production,
        holdout,
        target,
        categorical=categorical,
        numeric=numeric,
        features=features,
        bins=settings.slice_bins,
        min_slice_rows=settings.min_slice_rows,
        slice_margin=settings.slice_margin,
    )
    calibrated = None
    not_run: tuple[str, ...] = ()
    if hasattr(candidate, "predict_proba") and hasattr(production, "predict_proba"):
        calibrated = calibration(
            candidate,
            production,
            holdout,
            target,
            features=features,
            brier_margin=settings.brier_margin,
            ece_margin=settings.ece_margin,
        )
    else:
        not_run = ("calibration: a model has no predict_proba",)
    cost = latency_and_size(
        candidate,
        production,
        holdout,
        features=features,
        max_latency_ratio=settings.max_latency_ratio,
        max_size_ratio=settings.max_size_ratio,
    )
    return RebuildTests(robust, cv, slices, calibrated, cost, not_run)
