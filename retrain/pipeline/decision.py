"""Whether a run retrains: the trigger policy plus the run-level rules, in one function.

:func:`decide` is what ``check`` applies and what ``retrain check`` prints, so the two cannot
give different answers on the same data:

* a manual run always proceeds (an operator asked; a cooldown it bypasses is recorded);
* a run started by a monitor event proceeds on the event's reasons;
* any other run proceeds when the policy triggers;
* except that a non-manual run never retrains on zero new rows (the same data teaches nothing)
  nor on an empty training window (stale data).

:func:`assess` measures what :func:`decide` needs (live signals, rows in the window).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from retrain.constants import Trigger
from retrain.data import count_rows
from retrain.signals import Baseline, LiveSignals, compute_signals
from retrain.times import to_utc
from retrain.triggers import Decision, Signals, TriggerPolicy

if TYPE_CHECKING:
    from retrain.pipeline.services import Services

__all__ = ["Assessment", "RunDecision", "assess", "decide"]


@dataclass(frozen=True)
class RunDecision:
    """The policy's decision and what the run does about it."""

    proceed: bool
    reasons: tuple[str, ...]
    policy: Decision


@dataclass(frozen=True)
class Assessment:
    """Live signals measured for a baseline, and the decision on them."""

    live: LiveSignals
    decision: RunDecision


def decide(
    policy: TriggerPolicy,
    signals: Signals,
    *,
    trigger: Trigger,
    now: datetime | None = None,
    last_triggered_at: datetime | None = None,
    event_reasons: tuple[str, ...] = (),
    force_reason: str | None = None,
    window_days: int | None = None,
    window_rows: Callable[[], int] | None = None,
) -> RunDecision:
    """Apply the policy and the run-level rules (see the module docstring).

    ``window_rows`` counts the rows in the ``window_days``-day training window ending ``now``;
    it is called only when a non-manual run would otherwise proceed (``None``: not checked).
    """
    manual = trigger is Trigger.MANUAL
    decision = policy.evaluate(
        signals,
        now=now,
        last_triggered_at=last_triggered_at,
        force=manual,
        force_reason=(force_reason or "manual run") if manual else None,
    )
    proceed, why = decision.triggered, list(decision.reasons)
    if trigger.from_event and event_reasons:
        proceed, why = True, [f"{trigger} event: {r}" for r in event_reasons]
    if proceed and not manual and not decision.bootstrap and signals.new_samples == 0:
        proceed = False
        why = ["no new rows since the production model's training data: nothing to learn"]
    if proceed and not manual and window_days and window_rows and window_rows() == 0:
        ending = f" ending {now.isoformat()}" if now else ""
        proceed = False
        why = [
            f"no rows in the {window_days}-day training window{ending}: stale data, "
            "nothing to train on"
        ]
    if not proceed and why == ["no rule fired"]:
        measured = [f"{k}={v:g}" for k, v in signals.as_dict().items() if v is not None]
        why = ["no rule fired: " + ("; ".join(measured) or "no signals")]
    return RunDecision(proceed, tuple(why), decision)


def assess(
    services: Services,
    *,
    as_of: datetime,
    baseline: Baseline | None,
    trigger: Trigger,
    event_reasons: tuple[str, ...] = (),
    force_reason: str | None = None,
    window_days: int | None = None,
    report_dir: str | Path | None = None,
) -> Assessment:
    """Measure the live signals for ``baseline`` at ``as_of`` and :func:`decide` on them."""
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
    days = window_days or config.data.training_window_days

    def rows_in_window() -> int:
        start = as_of - timedelta(days=days or 0)
        return count_rows(config, start=start, end=as_of, sql_url=services.sql_url)

    decision = decide(
        TriggerPolicy(config),
        live.signals,
        trigger=trigger,
        now=to_utc(live.as_of),
        last_triggered_at=to_utc(live.last_triggered_at),
        event_reasons=event_reasons,
        force_reason=force_reason,
        window_days=days,
        window_rows=rows_in_window,
    )
    return Assessment(live, decision)
