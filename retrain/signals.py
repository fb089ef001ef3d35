"""Live trigger signals: what the monitor and the pipeline's first step measure.

* ``days_since_training``: days from the production model's training-data watermark to ``as_of``
  (``None`` without a production model: a bootstrap);
* ``new_samples``: labelled rows newer than that watermark, up to ``as_of``;
* ``accuracy``/``precision``/``recall``/``f1``/``roc_auc``: the production model on those rows;
* ``drift_count``/``drift_share``: those rows against the production model's reference profile.

Performance and drift need at least ``drift.min_samples`` new rows; below that they are unknown,
never "fine". The same function serves ``retrain check --config``, the monitoring DAG and the
pipeline, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from retrain.config import RetrainConfig
from retrain.constants import TRIGGERED_STATUSES, Stage
from retrain.data import count_rows, read_source
from retrain.drift import ReferenceProfile, check_drift
from retrain.errors import UnknownModelError
from retrain.evaluate import score_model
from retrain.registry.records import Baseline
from retrain.times import to_utc
from retrain.triggers import Signals

if TYPE_CHECKING:
    from retrain.log import LogStore
    from retrain.registry import ModelRegistry

__all__ = [
    "LiveSignals",
    "compute_signals",
    "last_triggered_at",
    "production_baseline",
]


def production_baseline(registry: ModelRegistry) -> Baseline | None:
    """The version holding ``production`` now; ``None`` if there is none or no model yet.

    One registry request. A pipeline run calls this once (in ``check``) and carries the answer.
    """
    try:
        production = registry.current(Stage.PRODUCTION).get(Stage.PRODUCTION)
    except UnknownModelError:
        return None
    return Baseline.of(production) if production is not None else None


@dataclass(frozen=True)
class LiveSignals:
    """Signal values with where they came from."""

    signals: Signals
    as_of: str
    production_version: int | None = None
    watermark: str | None = None
    last_triggered_at: str | None = None
    drift: dict[str, Any] = field(default_factory=dict)
    drift_report_path: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["signals"] = self.signals.as_dict()
        return data


def last_triggered_at(log: LogStore) -> datetime | None:
    """``as_of`` of the newest retraining run that was triggered (for the cooldown)."""
    for record in log.records(limit=50):
        if record.status in TRIGGERED_STATUSES:
            return to_utc(record.as_of or record.start_time)
    return None


def compute_signals(
    config: RetrainConfig,
    *,
    registry: ModelRegistry,
    baseline: Baseline | None,
    as_of: datetime,
    log: LogStore | None = None,
    report_dir: str | Path | None = None,
    sql_url: str | None = None,
) -> LiveSignals:
    """Measure every signal at ``as_of`` for ``baseline`` (the production version, resolved by
    the caller with :func:`production_baseline`) from the data source and the registry."""

    as_of_utc = to_utc(as_of)
    assert as_of_utc is not None
    last = last_triggered_at(log) if log is not None else None
    production = baseline
    notes: list[str] = []
    if production is None:
        notes.append("no production model: bootstrap")
        return LiveSignals(
            Signals(new_samples=count_rows(config, end=as_of_utc, sql_url=sql_url)),
            as_of_utc.isoformat(),
            last_triggered_at=last.isoformat() if last else None,
            notes=notes,
        )

    watermark = production.watermark
    table = read_source(config, start=watermark, end=as_of_utc, sql_url=sql_url)
    frame: pd.DataFrame = table.to_pandas()
    values: dict[str, float | None] = {"new_samples": float(len(frame))}
    if watermark is not None:
        values["days_since_training"] = max(0.0, (as_of_utc - watermark).total_seconds() / 86400)
    window = config.triggers.recent_window_days
    if window is not None and len(frame):
        time_col = config.data.source.event_time_column
        since = pd.Timestamp(as_of_utc - timedelta(days=window))
        recent = frame[frame[time_col] > since]
        table = table.filter(pa.array((frame[time_col] > since).to_numpy()))
        frame = recent.reset_index(drop=True)
        notes.append(
            f"drift and accuracy on the {len(frame)} new rows of the last {window:g} "
            "days (triggers.recent_window_days)"
        )
    minimum = config.drift.min_samples
    drift: dict[str, Any] = {}
    report_path: str | None = None
    if len(frame) < minimum:
        notes.append(
            f"{len(frame)} new rows < drift.min_samples {minimum}: performance and drift unknown"
        )
    else:
        values.update(_performance(config, registry, production.version, frame, notes))
        drift, report_path, signals = _drift(
            config, registry, production.version, table, notes=notes, report_dir=report_dir
        )
        values.update(signals)
    return LiveSignals(
        Signals.from_mapping(values),
        as_of_utc.isoformat(),
        production_version=production.version,
        watermark=watermark.isoformat() if watermark else None,
        last_triggered_at=last.isoformat() if last else None,
        drift=drift,
        drift_report_path=report_path,
        notes=notes,
    )


def _performance(
    config: RetrainConfig, registry: ModelRegistry, version: int, frame: Any, notes: list[str]
) -> dict[str, float]:
    """The production model's metrics on the labelled new rows (empty when not measurable)."""

    target = config.model.target
    labelled = frame[frame[target].notna()] if target in frame.columns else frame.iloc[:0]
    absent = [c for c in config.model.features.all if c not in frame.columns]
    if absent:
        notes.append(f"new data lacks feature columns {', '.join(absent)}: performance unknown")
        return {}
    if len(labelled) < config.drift.min_samples:
        notes.append(f"{len(labelled)} labelled new rows: performance unknown")
        return {}
    model = registry.load_model(version)
    labels = sorted(set(model.classes_) | set(labelled[target].unique()))
    scores, _ = score_model(
        model,
        labelled,
        features=config.model.features.all,
        target=target,
        labels=labels,
        average=config.evaluation.average,
    )
    return dict(scores.metrics)


def _drift(
    config: RetrainConfig,
    registry: ModelRegistry,
    version: int,
    table: Any,
    *,
    notes: list[str],
    report_dir: str | Path | None,
) -> tuple[dict[str, Any], str | None, dict[str, float]]:
    """Drift of the new rows against the version's reference profile: summary, report, signals."""

    profile_data = registry.reference_profile(version)
    if profile_data is None:
        notes.append(f"version {version} has no reference profile: drift unknown")
        return {}, None, {}
    profile = ReferenceProfile.from_dict(profile_data)
    report = check_drift(
        profile,
        table,
        settings=config.drift,
        columns=[c for c in config.model.features.all if c in profile.features],
    )
    summary = {
        "drift_count": report.drift_count,
        "drift_share": report.drift_share,
        "by_severity": report.by_severity,
        "drifted": [f.name for f in report.drifted],
        "severity": {f.name: str(f.severity) for f in report.features},
    }
    path = None
    if report_dir is not None:
        from retrain.reports import write_drift_report  # noqa: PLC0415 - matplotlib only for a page

        path = str(Path(report_dir) / "drift_report.html")
        write_drift_report(report, path)
    return summary, path, report.signals()
