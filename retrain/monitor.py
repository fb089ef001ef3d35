"""Monitor: measure the live signals, evaluate the rules, and say which data-driven runs to start.

Called by the ``retrain_monitor`` DAG on the monitor schedule (and usable from any scheduler).
Each check is logged to MLflow (experiment ``<experiment>/monitor``: one run per check with every
signal as a metric and the drift report as an artifact). A fired rule maps to the asset kind of the
signals it reads (:data:`retrain.constants.SIGNAL_ASSETS`): drift, volume or performance. Rules on
``days_since_training`` are left to the time schedule. A first model (bootstrap) is a volume event.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from mlflow.entities import Metric

from retrain.cadence import CadenceDecision
from retrain.constants import SIGNAL_ASSETS, Action, AssetKind
from retrain.data import count_rows
from retrain.pipeline.services import Services
from retrain.signals import compute_signals, production_baseline
from retrain.times import to_utc
from retrain.tracking import bounded, ensure_experiment
from retrain.triggers import Decision, TriggerPolicy

__all__ = ["MonitorCheck", "check_and_log", "events_of", "new_rows"]


@dataclass(frozen=True)
class MonitorCheck:
    """One monitoring check: signals, the policy's decision and the asset events it asks for."""

    as_of: str
    signals: dict[str, float | None]
    production_version: int | None
    triggered: bool
    reasons: tuple[str, ...]
    notes: tuple[str, ...]
    cadence: CadenceDecision
    #: asset kind -> the reasons of the rules that ask for a data-driven run of that kind
    events: dict[str, list[str]]
    drift: dict[str, object]
    mlflow_run_id: str
    #: When a cooldown held back rules that fired: the time a triggered run is allowed again.
    cooldown_until: str | None = None

    def summary(self) -> str:
        """What was decided and why: the events emitted, or why none was."""
        fired = "; ".join(self.reasons)
        if self.events:
            return f"events {', '.join(sorted(self.events))}: {fired}"
        if self.cooldown_until:
            return f"no event: cooldown until {self.cooldown_until} (rules that fired: {fired})"
        if self.triggered:
            return (
                f"no event: the rules that fired watch no data-driven signal ({fired}); "
                "the time schedule retrains for them"
            )
        return f"no event: {fired}"


def new_rows(services: Services, *, as_of: datetime) -> int:
    """Rows newer than the production watermark up to ``as_of`` (a cheap poke for sensors)."""
    baseline = production_baseline(services.registry)
    start = baseline.watermark if baseline else None
    return count_rows(services.config, start=start, end=as_of, sql_url=services.sql_url)


def events_of(decision: Decision) -> dict[str, list[str]]:
    """The asset events a decision asks for, with the reasons of the rules behind each."""
    events: dict[str, list[str]] = {}
    if not decision.triggered:
        return events
    if decision.bootstrap:
        events[AssetKind.VOLUME] = ["bootstrap: no trained model yet"]
    for fired in decision.fired:
        if not Action(fired.action).retrains:
            continue
        kinds = {SIGNAL_ASSETS[s] for s in fired.observed if s in SIGNAL_ASSETS}
        for kind in sorted(kinds):
            events.setdefault(kind, []).append(fired.reason)
    if decision.cadence.level == "immediate" and AssetKind.PERFORMANCE not in events:
        reason = f"adaptive cadence immediate: {decision.cadence.reasons[0]}"
        events[AssetKind.PERFORMANCE] = [reason]
    return {str(kind): reasons for kind, reasons in events.items()}


def check_and_log(
    services: Services, *, as_of: datetime, run_name: str | None = None
) -> MonitorCheck:
    """Measure, decide and log one monitoring check; returns signals, decision and events."""
    config, client = services.config, services.client
    with tempfile.TemporaryDirectory(prefix="retrain-monitor-") as tmp:
        live = compute_signals(
            config,
            registry=services.registry,
            baseline=production_baseline(services.registry),
            as_of=as_of,
            log=services.log,
            report_dir=tmp,
            sql_url=services.sql_url,
        )
        decision = TriggerPolicy(config).evaluate(
            live.signals, now=to_utc(live.as_of), last_triggered_at=to_utc(live.last_triggered_at)
        )
        events = events_of(decision)
        stamp = int(datetime.now().timestamp() * 1000)
        with bounded(config, "logging the monitoring check"):
            experiment = ensure_experiment(client, f"{config.experiment_name}/monitor")
            run = client.create_run(
                experiment,
                run_name=run_name or f"monitor {live.as_of}",
                tags={
                    "retrain.as_of": live.as_of,
                    "retrain.triggered": str(decision.triggered),
                    "retrain.events": ",".join(sorted(events)) or "none",
                },
            )
            metrics = [
                Metric(name, float(value), stamp, 0)
                for name, value in live.signals.as_dict().items()
                if value is not None
            ]
            client.log_batch(run.info.run_id, metrics=metrics)
            if live.drift_report_path and Path(live.drift_report_path).exists():
                client.log_artifact(run.info.run_id, live.drift_report_path)
            client.set_terminated(run.info.run_id)
    return MonitorCheck(
        as_of=live.as_of,
        signals=live.signals.as_dict(),
        production_version=live.production_version,
        triggered=decision.triggered,
        reasons=tuple(decision.reasons),
        notes=tuple(decision.notes + live.notes),
        cadence=decision.cadence,
        events=events,
        drift=dict(live.drift),
        mlflow_run_id=run.info.run_id,
        cooldown_until=decision.next_allowed_at if decision.cooldown_active else None,
    )
