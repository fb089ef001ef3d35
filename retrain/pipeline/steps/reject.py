"""``reject``: say why the candidate is not deployed; nothing is registered, nothing moves."""

from __future__ import annotations

from retrain.pipeline.context import RunContext
from retrain.pipeline.results import Compared, Evaluated, Rejected
from retrain.pipeline.services import Services

__all__ = ["reject_step"]


def reject_step(
    services: Services, ctx: RunContext, evaluated: Evaluated, compared: Compared
) -> Rejected:
    """The failing gate checks and the A/B verdict, as reasons."""
    gate = evaluated.gate
    reasons: list[str] = []
    if not gate.passed:
        reasons += [
            r for r, c in zip(gate.reasons, gate.checks, strict=False) if not c["passed"]
        ] or list(gate.reasons)
    if not compared.passed:
        reasons += list(compared.reasons)[-1:]
    services.tracker(ctx.mlflow_run_id).log(tags={"retrain.stage": "rejected"})
    return Rejected(tuple(reasons) or ("rejected",))
