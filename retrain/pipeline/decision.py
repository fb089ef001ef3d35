"""Whether a run retrains: the trigger policy plus the run-level rules, in one function.

:func:`decide` is what ``check`` applies and what ``retrain check`` prints, so the two cannot
give different answers on the same data:

* a manual run always proceeds (an operator asked; a cooldown it bypasses is recorded);
* a run started by a monitor event proceeds on the event's reasons;
* a scheduled full rebuild (``schedule.full_rebuild``) proceeds whatever the rules say: the
  seed rebuilds monthly, and a rebuild from all history with a search can improve on the same
  rows, so zero new rows does not stop it either;
* any other run proceeds when the policy triggers;
* except that a non-manual run never retrains on zero new rows (the same data teaches nothing)
  nor on an empty training window (stale data).

It reads nothing: :func:`retrain.pipeline.assess.assess` measures what it needs (live signals,
rows in the window), and a signals file can stand in for them (``retrain check --signals``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from retrain.constants import ASSET_KINDS, Trigger
from retrain.triggers import Decision, Signals, TriggerPolicy

__all__ = ["RunDecision", "decide", "event_reason"]


@dataclass(frozen=True)
class RunDecision:
    """The policy's decision and what the run does about it."""

    proceed: bool
    reasons: tuple[str, ...]
    policy: Decision


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
    rebuild: bool = False,
) -> RunDecision:
    """Apply the policy and the run-level rules (see the module docstring).

    ``window_rows`` counts the rows in the training window ending ``now`` (``window_days``
    long; ``None``: all history); it is called only when a non-manual run would otherwise
    proceed (``None``: not checked). ``rebuild``: the run is a full rebuild.
    """
    manual = trigger is Trigger.MANUAL
    decision = policy.evaluate(
        signals,
        now=now,
        last_triggered_at=last_triggered_at,
        force=manual,
        force_reason=(force_reason or "an operator asked") if manual else None,
    )
    proceed, why = decision.triggered, list(decision.reasons)
    if manual:  # the policy's override, not a forced promotion: say what it was
        why = [
            f"manual: {r.removeprefix('forced: ')}" if r.startswith("forced: ") else r for r in why
        ]
    if trigger.from_event and event_reasons:
        proceed, why = True, [event_reason(str(trigger), r) for r in event_reasons]
    scheduled_rebuild = rebuild and trigger is Trigger.SCHEDULED
    if scheduled_rebuild:
        fired = why if decision.fired or decision.triggered else []
        proceed = True
        why = ["full rebuild: the monthly schedule, whatever the rules say", *fired]
    if (
        proceed
        and not manual
        and not scheduled_rebuild
        and not decision.bootstrap
        and signals.new_samples == 0
    ):
        proceed = False
        why = ["no new rows since the production model's training data: nothing to learn"]
    if proceed and not manual and window_rows is not None and window_rows() == 0:
        ending = f" ending {now.isoformat()}" if now else ""
        window = (
            f"{window_days}-day training window" if window_days else "training data (all history)"
        )
        proceed = False
        why = [f"no rows in the {window}{ending}: stale data, nothing to train on"]
    if not proceed and why == ["no rule fired"]:
        measured = [f"{k}={v:g}" for k, v in signals.as_dict().items() if v is not None]
        why = ["no rule fired: " + ("; ".join(measured) or "no signals")]
    return RunDecision(proceed, tuple(why), decision)


def event_reason(kind: str, reason: str) -> str:
    """``<kind> event: <reason>``; a reason already labelled with its kind is kept as it is
    (several coalesced events of different kinds start one run, each reason keeps its own)."""
    if any(reason.startswith(f"{known} event: ") for known in ASSET_KINDS):
        return reason
    return f"{kind} event: {reason}"
