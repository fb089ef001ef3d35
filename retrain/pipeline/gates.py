"""The decisions between steps (:class:`~retrain.pipeline.graph.Gate` functions).

Pure functions of earlier results: the DAG's short-circuit and branch tasks and the in-process
runner call the same ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from retrain.pipeline.graph import DEPLOY, REJECT

if TYPE_CHECKING:
    from retrain.pipeline.results import CheckResult, Compared, Evaluated

__all__ = ["proceed", "release_or_reject", "should_deploy"]


def proceed(checked: CheckResult) -> bool:
    """Whether the run goes on past ``check``."""
    return checked.proceed


def should_deploy(evaluated: Evaluated, compared: Compared) -> bool:
    """Gate passed (or forced) and A/B passed (or was skipped or forced)."""
    return evaluated.gate.passed and (compared.passed or evaluated.gate.forced)


def release_or_reject(evaluated: Evaluated, compared: Compared) -> str:
    """The step that follows ``decide``: ``deploy`` or ``reject``."""
    return DEPLOY.name if should_deploy(evaluated, compared) else REJECT.name
