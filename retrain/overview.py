"""What an on-call person asks of a model, gathered in one place (the Airflow UI's Retraining view).

:func:`model_overview` reads the registry (versions, aliases, lineage, the audit history of
production) and the retraining log (runs with their gate, A/B, checklist, drift, canary
verdicts), and works out what a rollback would restore and when the schedules fire next.
:func:`models_overview` gives one row per model of a config directory. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from retrain.canary import CanaryEvaluation, Decision
from retrain.config import RetrainConfig
from retrain.constants import CANARY_RUN_TAG
from retrain.errors import RetrainError, UnknownModelError
from retrain.log import LogStore, RetrainingRecord
from retrain.registry import ModelRegistry
from retrain.tracking import find_run, tracking_client

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = [
    "CANARY_RUN_TAG",
    "DriftView",
    "ModelOverview",
    "ModelRow",
    "ProductionChange",
    "VersionRow",
    "canary_looks",
    "looks_of_run",
    "model_overview",
    "model_row",
]


@dataclass(frozen=True)
class VersionRow:
    """One registered version: aliases, lifecycle status and lineage."""

    version: int
    aliases: tuple[str, ...]
    status: str
    created_at: str
    data_version: str
    retraining_id: str
    git_commit: str
    gate: str
    metrics: Mapping[str, float]
    trigger_reasons: tuple[str, ...]
    run_id: str | None


@dataclass(frozen=True)
class ProductionChange:
    """One completed move of the production alias (audit history): who, when, why."""

    at: str
    op: str
    from_version: int | None
    to_version: int | None
    actor: str
    reason: str
    run_id: str | None


@dataclass(frozen=True)
class DriftView:
    """The newest drift measurement in the log: when, which run, per-feature severity."""

    retraining_id: str
    at: str
    drift_count: int | None
    drift_share: float | None
    severity: Mapping[str, str]
    mlflow_run_id: str | None


@dataclass(frozen=True)
class ModelOverview:
    """A model's page: what serves, what served, how the runs went, what drifted."""

    model: str
    production: int | None
    canary: int | None
    #: What a rollback without a version restores (``None``: nothing to roll back to, and why).
    rollback_to: int | None
    rollback_note: str
    versions: tuple[VersionRow, ...]
    #: Production alias moves, newest first.
    timeline: tuple[ProductionChange, ...]
    #: The retraining log, newest first, as listed: the seed's fields, reasons, mode and the
    #: canary's decision (gate, A/B and checklist are in the full record: ``LogStore.get``).
    records: tuple[RetrainingRecord, ...]
    drift: DriftView | None
    #: The newest online canary verdict in the log (``RetrainingRecord.online``), if any.
    canary_verdict: Mapping[str, Any] = field(default_factory=dict)
    #: The newest adaptive cadence decision (``RetrainingRecord.cadence``), if any.
    cadence: Mapping[str, Any] = field(default_factory=dict)
    #: Next fire times (ISO, ``schedule.timezone``) by DAG kind: ``weekly``, ``full_rebuild``.
    next_runs: Mapping[str, str] = field(default_factory=dict)
    #: Problems reading a part (e.g. a torn spool line); the rest is shown.
    problems: tuple[str, ...] = ()
    #: The online judge's looks at the canary (the current one, else the newest judged), oldest
    #: first: the confidence interval of the accuracy difference over time.
    canary_looks: tuple[CanaryEvaluation, ...] = ()
    #: The canary version the looks are of.
    canary_looks_version: int | None = None
    #: The full records (gate, A/B, checklist, drift, cadence) of the newest ``detailed`` runs.
    detailed: tuple[RetrainingRecord, ...] = ()

    @property
    def latest(self) -> RetrainingRecord | None:
        """The newest run's full record, if any."""
        return self.detailed[0] if self.detailed else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelRow:
    """A model in the list: production, canary and the newest run (or why it cannot be read)."""

    model: str
    production: int | None
    canary: int | None
    last_run: RetrainingRecord | None
    error: str | None = None


def _version_row(info: Any) -> VersionRow:
    record = info.record
    return VersionRow(
        version=info.version,
        aliases=tuple(info.aliases),
        status=info.status,
        created_at=info.created_at,
        data_version=record.training_data_version,
        retraining_id=record.retraining_id,
        git_commit=record.git_commit,
        gate=record.gate,
        metrics=dict(record.metrics),
        trigger_reasons=tuple(record.trigger_reasons),
        run_id=info.run_id,
    )


def _drift(records: tuple[RetrainingRecord, ...]) -> DriftView | None:
    for record in records:
        if record.drift:
            drift = record.drift
            return DriftView(
                retraining_id=record.retraining_id,
                at=record.as_of or record.start_time,
                drift_count=drift.get("drift_count"),
                drift_share=drift.get("drift_share"),
                severity=dict(drift.get("severity") or {}),
                mlflow_run_id=record.mlflow_run_id,
            )
    return None


def _next_runs(config: RetrainConfig, now: datetime) -> dict[str, str]:
    schedule = config.schedule
    return {
        mode: schedule.next_fires(mode, after=now, count=1)[0].isoformat()
        for mode in ("weekly", "full_rebuild")
    }


def model_overview(
    config: RetrainConfig,
    *,
    registry: ModelRegistry,
    log: LogStore,
    records: int = 50,
    history: int = 100,
    detailed: int = 5,
    now: datetime | None = None,
) -> ModelOverview:
    """Read ``config``'s model: versions (newest first), production's audit history (the
    newest ``history`` entries), the newest ``records`` log records, of which the newest
    ``detailed`` in full (drift, canary verdict and cadence come from those). A model nothing was
    registered for yet has no versions; an unreachable MLflow raises its
    :class:`~retrain.errors.RetrainError` (the caller shows it)."""
    try:
        versions = tuple(
            _version_row(v)
            for v in registry.versions()  # newest first
        )
        entries = registry.history(limit=history)
    except UnknownModelError:
        versions, entries = (), []
    held = {alias: row.version for row in versions for alias in row.aliases}
    timeline = tuple(
        ProductionChange(
            at=e.at,
            op=e.op,
            from_version=move.from_version,
            to_version=move.to_version,
            actor=e.actor,
            reason=e.reason,
            run_id=e.run_id,
        )
        for e in entries
        if e.state == "done"
        for move in e.moves
        if move.alias == "production"
    )
    rollback_to, note = _rollback(registry, held.get("production"))
    logged = tuple(log.records(limit=records))
    full = _full_records(log, logged, detailed)
    judged = next((r for r in full if r.online), None)
    verdict = judged.online if judged else {}
    watched = held.get("canary") or (_version(judged.model_version) if judged else None)
    looks = canary_looks(tracking_client(config), config, watched) if watched else ()
    cadence = next((r.cadence for r in full if r.cadence), {})
    return ModelOverview(
        model=config.model.name,
        production=held.get("production"),
        canary=held.get("canary"),
        rollback_to=rollback_to,
        rollback_note=note,
        versions=versions,
        timeline=timeline,
        records=logged,
        drift=_drift(full),
        canary_verdict=dict(verdict),
        cadence=dict(cadence),
        next_runs=_next_runs(config, now or datetime.now(UTC)),
        problems=tuple(log.problems),
        detailed=full,
        canary_looks=looks,
        canary_looks_version=watched,
    )


def _version(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


_LOOK_METRICS = ("d_hat", "lower", "upper", "production_labels", "canary_labels", "decision")


def canary_looks(
    client: MlflowClient, config: RetrainConfig, version: int
) -> tuple[CanaryEvaluation, ...]:
    """The judge's looks at canary ``version`` of ``config``'s model, oldest first (none when
    it was never judged)."""
    experiment = client.get_experiment_by_name(config.experiment_name)
    if experiment is None:
        return ()
    key = f"{config.model.name}/v{version}"
    run = find_run(client, str(experiment.experiment_id), CANARY_RUN_TAG, key)
    if run is None:
        return ()
    return looks_of_run(client, str(run.info.run_id), config.canary.margin)


def looks_of_run(client: MlflowClient, run_id: str, margin: float) -> tuple[CanaryEvaluation, ...]:
    """A canary run's looks rebuilt from its metric history (one point per look)."""
    by_time: dict[int, dict[str, float]] = {}
    for name in _LOOK_METRICS:
        for metric in client.get_metric_history(run_id, f"canary_{name}"):
            by_time.setdefault(metric.timestamp, {})[name] = metric.value
    codes = {decision.code: decision for decision in Decision}
    return tuple(
        CanaryEvaluation(
            decision=codes.get(int(v.get("decision", 0)), Decision.CONTINUE),
            d_hat=v.get("d_hat", 0.0),
            lower=v.get("lower", -1.0),
            upper=v.get("upper", 1.0),
            production_labels=int(v.get("production_labels", 0)),
            canary_labels=int(v.get("canary_labels", 0)),
            reasons=(),
            at=datetime.fromtimestamp(stamp / 1000, tz=UTC),
            elapsed_minutes=0.0,
            margin=margin,
        )
        for stamp, v in sorted(by_time.items())
    )


def _full_records(
    log: LogStore, listed: tuple[RetrainingRecord, ...], count: int
) -> tuple[RetrainingRecord, ...]:
    """The full records of the newest ``count`` listed runs (one artifact read each)."""
    full = []
    for record in listed[:count]:
        found = log.get(record.retraining_id)
        full.append(found if found is not None else record)
    return tuple(full)


def _rollback(registry: ModelRegistry, production: int | None) -> tuple[int | None, str]:
    """What a default rollback restores, or why there is none."""
    if production is None:
        return None, "no version is in production"
    try:
        return registry.rollback_target(), ""
    except RetrainError as exc:
        return None, str(exc)


def model_row(config: RetrainConfig, *, registry: ModelRegistry, log: LogStore) -> ModelRow:
    """One row of the model list; a model whose registry or log cannot be read says why."""
    try:
        current = registry.current("production", "canary")
    except UnknownModelError:
        current = {}
    except RetrainError as exc:
        return ModelRow(config.model.name, None, None, None, error=str(exc))
    try:
        newest = log.records(limit=1)
    except RetrainError as exc:
        return ModelRow(config.model.name, None, None, None, error=str(exc))
    return ModelRow(
        model=config.model.name,
        production=current["production"].version if "production" in current else None,
        canary=current["canary"].version if "canary" in current else None,
        last_run=newest[0] if newest else None,
    )
