"""Measure what a run decides on: live signals for the baseline, rows in the training window.

:func:`assess` is what the ``check`` step and ``retrain check`` (without ``--signals``) call;
the decision itself is :func:`retrain.pipeline.decision.decide`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from retrain.constants import Trigger
from retrain.data import count_rows
from retrain.pipeline import decision
from retrain.pipeline.decision import RunDecision
from retrain.pipeline.services import Services
from retrain.registry.records import Baseline
from retrain.signals import LiveSignals, compute_signals
from retrain.times import to_utc
from retrain.triggers import TriggerPolicy

__all__ = ["Assessment", "assess"]


@dataclass(frozen=True)
class Assessment:
    """Live signals measured for a baseline, and the decision on them."""

    live: LiveSignals
    decision: RunDecision


def assess(
    services: Services,
    *,
    as_of: datetime,
    baseline: Baseline | None,
    trigger: Trigger,
    event_reasons: tuple[str, ...] = (),
    force_reason: str | None = None,
    window_days: int | None = None,
    all_history: bool = False,
    report_dir: str | Path | None = None,
) -> Assessment:
    """Measure the live signals for ``baseline`` at ``as_of`` and decide on them (through the
    module, so that every caller reaches the one ``decide``). The training window is
    ``window_days``, else ``data.training_window_days``, else (or with ``all_history``, a full
    rebuild's) all history up to ``as_of``."""
    config = services.config
    live = compute_signals(
        config,
        registry=services.registry,
        baseline=baseline,
        as_of=as_of,
        log=services.log,
        report_dir=report_dir,
        sql_url=services.sql_url,
    )
    days = None if all_history else (window_days or config.data.training_window_days)

    def rows_in_window() -> int:
        start = as_of - timedelta(days=days) if days else None  # None: all history
        return count_rows(config, start=start, end=as_of, sql_url=services.sql_url)

    decided = decision.decide(
        TriggerPolicy(config),
        live.signals,
        trigger=trigger,
        now=to_utc(live.as_of),
        last_triggered_at=to_utc(live.last_triggered_at),
        event_reasons=event_reasons,
        force_reason=force_reason,
        window_days=days,
        window_rows=rows_in_window,
        rebuild=all_history,
    )
    return Assessment(live, decided)
