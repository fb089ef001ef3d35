"""``compare``: the offline A/B test on the paired holdout predictions."""

from __future__ import annotations

from retrain.compare import compare_offline
from retrain.data import read_frame
from retrain.pipeline.context import RunContext
from retrain.pipeline.results import Compared, Evaluated
from retrain.pipeline.services import Services

__all__ = ["compare_step"]


def compare_step(services: Services, ctx: RunContext, evaluated: Evaluated) -> Compared:
    """McNemar + bootstrap CI of candidate vs baseline; skipped when asked or disabled."""
    config = services.config
    if ctx.skip_ab or not config.ab_test.enabled:
        why = "skipped by the run's skip_ab option" if ctx.skip_ab else "ab_test.enabled is false"
        return Compared(skipped=True, passed=True, reasons=(why,))
    predictions = read_frame(evaluated.predictions_path)
    current = predictions["production"].to_numpy() if "production" in predictions else None
    result = compare_offline(
        predictions["y_true"].to_numpy(),
        predictions["candidate"].to_numpy(),
        current,
        config.ab_test,
        seed=config.model.random_state,
    )
    figures = {
        "p_value": result.p_value,
        "difference": result.difference,
        "ci_low": result.ci_low,
        "ci_high": result.ci_high,
    }
    services.tracker(ctx.mlflow_run_id).log(
        metrics={f"ab_{k}": v for k, v in figures.items() if v is not None},
        tags={"retrain.ab_winner": result.winner},
    )
    return Compared(skipped=False, passed=result.passed, reasons=tuple(result.reasons), ab=result)
