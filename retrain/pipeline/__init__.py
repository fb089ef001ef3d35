"""The retraining pipeline: typed steps on one declared graph, run by ``retrain run`` or a DAG.

``start -> check -> extract -> validate -> train -> evaluate -> compare -> deploy | reject ->
finish``. Each step is ``fn(services, context, *inputs) -> result`` with frozen, typed results
(:mod:`~retrain.pipeline.results`); :mod:`~retrain.pipeline.graph` declares the order once;
:func:`run_pipeline` walks it in-process and the Airflow DAG turns it into tasks. Every step is
idempotent: re-running it with the same inputs rewrites the same files, finds the same MLflow
run and registered version, and skips promotions already done. ``finish`` always runs.

Names resolve lazily, so ``import retrain.pipeline`` loads nothing heavy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "GRAPH",
    "STEPS",
    "CheckResult",
    "Compared",
    "Deployed",
    "Evaluated",
    "Extracted",
    "Rejected",
    "Results",
    "RunContext",
    "RunOptions",
    "RunOutcome",
    "RunRecord",
    "Services",
    "Trained",
    "Validated",
    "assess",
    "check",
    "compare_step",
    "decide",
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

_WHERE: dict[str, str] = {
    "GRAPH": "graph",
    "STEPS": "graph",
    "Results": "graph",
    "CheckResult": "results",
    "Compared": "results",
    "Deployed": "results",
    "Evaluated": "results",
    "Extracted": "results",
    "Rejected": "results",
    "RunRecord": "results",
    "Trained": "results",
    "Validated": "results",
    "RunContext": "context",
    "RunOptions": "context",
    "Services": "services",
    "RunOutcome": "runner",
    "run_pipeline": "runner",
    "assess": "assess",
    "decide": "decision",
    "should_deploy": "gates",
    "start": "steps.start",
    "check": "steps.check",
    "extract_step": "steps.extract",
    "validate_step": "steps.validate",
    "train_step": "steps.train",
    "evaluate_step": "steps.evaluate",
    "compare_step": "steps.compare",
    "deploy_step": "steps.deploy",
    "reject_step": "steps.reject",
    "finish": "steps.finish",
}

if TYPE_CHECKING:
    from retrain.pipeline.assess import assess
    from retrain.pipeline.context import RunContext, RunOptions
    from retrain.pipeline.decision import decide
    from retrain.pipeline.gates import should_deploy
    from retrain.pipeline.graph import GRAPH, STEPS, Results
    from retrain.pipeline.results import (
        CheckResult,
        Compared,
        Deployed,
        Evaluated,
        Extracted,
        Rejected,
        RunRecord,
        Trained,
        Validated,
    )
    from retrain.pipeline.runner import RunOutcome, run_pipeline
    from retrain.pipeline.services import Services
    from retrain.pipeline.steps.check import check
    from retrain.pipeline.steps.compare import compare_step
    from retrain.pipeline.steps.deploy import deploy_step
    from retrain.pipeline.steps.evaluate import evaluate_step
    from retrain.pipeline.steps.extract import extract_step
    from retrain.pipeline.steps.finish import finish
    from retrain.pipeline.steps.reject import reject_step
    from retrain.pipeline.steps.start import start
    from retrain.pipeline.steps.train import train_step
    from retrain.pipeline.steps.validate import validate_step


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'retrain.pipeline' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"retrain.pipeline.{where}"), name)
    globals()[name] = value
    return value
