"""Monitor: measure the live signals, evaluate the rules, and say which data-driven runs to start.

Called by the ``retrain_monitor`` DAG on the monitor schedule (and usable from any scheduler).
Each check is logged to MLflow (experiment ``<experiment>/monitor``: one run per check with every
signal as a metric and the drift report as an artifact). A fired rule maps to the asset kind of the
signals it reads: drift (``drift_count``/``drift_share``), volume (``new_samples``) or
performance (accuracy, precision, recall, f1, roc_auc). Rules on ``days_since_training`` are left
to the time schedule. A first model (bootstrap) is a volume event.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from retrain.config import RetrainConfig

__all__ = ["SIGNAL_KINDS", "check_and_log", "new_rows"]

SIGNAL_KINDS = {
    "drift_count": "drift",
    "drift_share": "drift",
    "new_samples": "volume",
    "accuracy": "performance",
    "precision": "performance",
    "recall": "performance",
    "f1": "performance",
    "roc_auc": "performance",
}


def new_rows(config: RetrainConfig, *, as_of: datetime, sql_url: str | None = None) -> int:
    """Rows newer than the production watermark up to ``as_of`` (a cheap poke for sensors)."""
    from retrain.data import count_rows
    from retrain.registry import ModelRegistry
    from retrain.signals import production_version

    production = production_version(ModelRegistry(config))
    start = production.record.watermark_time if production else None
    return count_rows(config, start=start, end=as_of, sql_url=sql_url)


def _events(decision: Any) -> dict[str, list[str]]:
    events: dict[str, list[str]] = {}
    if not decision.triggered:
        return events
    if decision.bootstrap:
        events["volume"] = ["bootstrap: no trained model yet"]
    for fired in decision.fired:
        if fired.action not in {"retrain", "investigate_and_retrain"}:
            continue
        kinds = {SIGNAL_KINDS[s] for s in fired.observed if s in SIGNAL_KINDS}
        for kind in sorted(kinds):
            events.setdefault(kind, []).append(fired.reason)
    if decision.cadence.level == "immediate" and "performance" not in events:
        events["performance"] = [f"adaptive cadence immediate: {decision.cadence.reasons[0]}"]
    return events


def check_and_log(
    config: RetrainConfig,
    *,
    as_of: datetime,
    run_name: str | None = None,
    sql_url: str | None = None,
) -> dict[str, Any]:
    """Measure, decide and log one monitoring check; returns signals, decision and events."""
    import tempfile

    from retrain.data import to_utc
    from retrain.log import LogStore
    from retrain.notify import notifier_from_config
    from retrain.registry import ModelRegistry
    from retrain.signals import compute_signals
    from retrain.tracking import bounded, ensure_experiment, tracking_client
    from retrain.triggers import TriggerPolicy

    client = tracking_client(config)
    with tempfile.TemporaryDirectory(prefix="retrain-monitor-") as tmp:
        live = compute_signals(
            config,
            registry=ModelRegistry(config, notifier=notifier_from_config(config)),
            as_of=as_of,
            log=LogStore(client, config.log_experiment_name, config.storage.work_dir),
            report_dir=tmp,
            sql_url=sql_url,
        )
        decision = TriggerPolicy(config).evaluate(
            live.signals, now=to_utc(live.as_of), last_triggered_at=to_utc(live.last_triggered_at)
        )
        events = _events(decision)
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
            for name, value in live.signals.as_dict().items():
                if value is not None:
                    client.log_metric(run.info.run_id, name, float(value))
            if live.drift_report_path and Path(live.drift_report_path).exists():
                client.log_artifact(run.info.run_id, live.drift_report_path)
            client.set_terminated(run.info.run_id)
    return {
        "as_of": live.as_of,
        "signals": live.signals.as_dict(),
        "live": {k: v for k, v in live.to_dict().items() if k != "drift_report_path"},
        "triggered": decision.triggered,
        "reasons": decision.reasons,
        "notes": decision.notes + live.notes,
        "cadence": decision.cadence.to_dict(),
        "events": events,
        "mlflow_run_id": run.info.run_id,
    }
