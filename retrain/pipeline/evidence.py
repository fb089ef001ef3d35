"""The checklist's evidence from what a run measured (``deploy`` step)."""

from __future__ import annotations

from retrain.checklist import Evidence, monitoring_rules
from retrain.config import RetrainConfig
from retrain.data import ExtractResult
from retrain.pipeline.results import Compared, Evaluated, Trained
from retrain.validate import ValidationReport

__all__ = ["run_evidence"]


def run_evidence(
    config: RetrainConfig,
    *,
    extracted: ExtractResult,
    validated: ValidationReport,
    trained: Trained,
    evaluated: Evaluated,
    compared: Compared,
) -> Evidence:
    """Facts of this run; the registration facts are added once the version exists."""
    return Evidence(
        validation_ok=validated.ok,
        validation_problems=list(validated.problems),
        rows_extracted=extracted.rows,
        rows_trained=trained.fit.train_rows,
        rows_holdout=trained.fit.holdout_rows,
        fingerprint_trained=trained.fit.preprocessing_fingerprint,
        metrics=dict(evaluated.candidate.metrics),
        baseline_compared=evaluated.production is not None,
        first_model=evaluated.production is None,
        gate_status=evaluated.gate.status,
        ab_passed=compared.passed or evaluated.gate.forced,
        skip_canary=config.deployment.skip_canary,
        monitoring_rules=monitoring_rules(config),
        rows_sampled_from=extracted.sampled_from,
        rebuild_tests=evaluated.rebuild_tests.items() if evaluated.rebuild_tests else [],
    )
