"""The canary's evidence from the prediction log, the judge's look at it, and what follows.

:func:`arm_stats` reads the predictions both arms served since the canary started (the
``retrain_predictions`` table ``retrain serve`` writes) and the labels that answer them
(``retrain_labels``: by request id, or by entity id for the newest prediction of that entity
before the label arrived), and counts per arm what :func:`retrain.canary.judge` needs.
:func:`watch` asks the judge and acts on its answer:

* **promote**: production takes the canary through :func:`retrain.deploy.promote`, the checklist
  path of ``retrain promote`` and the ``retrain_promote`` DAG (with
  ``deployment.require_approval`` it waits for a human: nothing moves);
* **rollback**: the canary alias is removed and the version marked ``rejected`` (it never served
  fully, so it is no rollback target), production unchanged; the audit history holds the
  incident and the notification is CRITICAL;
* **continue**: nothing moves.

Every look is logged to one MLflow run per canary version (``canary v<N>``: metrics over time,
the reasons, and on a decision the figure of ``D_hat`` with its interval).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from retrain.canary import ArmStats, CanaryEvaluation, Decision, judge
from retrain.constants import CANARY_RUN_TAG, RunStatus, Stage
from retrain.errors import ChecklistError, DataError
from retrain.times import parse_time, to_utc

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from retrain.config import RetrainConfig
    from retrain.lease import ModelLease
    from retrain.registry import ModelRegistry

__all__ = [
    "ARMS",
    "CanaryWatch",
    "arm_stats",
    "canary_start",
    "events_for_labels",
    "outcomes",
    "prediction_log",
    "record",
    "watch",
]

logger = logging.getLogger(__name__)

ARMS = ("production", "canary")
_RUN_TAG = CANARY_RUN_TAG


@dataclass(frozen=True)
class CanaryWatch:
    """One look at the canary: the versions, the evaluation and what was done."""

    model: str
    production_version: int | None
    canary_version: int | None
    evaluation: CanaryEvaluation | None
    action: str  # "promoted", "rolled back", "awaiting approval", "watching", "no canary"
    detail: str = ""

    def summary(self) -> str:
        if self.evaluation is None:
            return f"{self.model}: {self.action}"
        look = self.evaluation
        return (
            f"{self.model} canary v{self.canary_version} vs production v{self.production_version}:"
            f" {look.decision} -> {self.action}; D_hat {look.d_hat:+.4f} "
            f"[{look.lower:+.4f}, {look.upper:+.4f}] on {look.canary_labels} / "
            f"{look.production_labels} labels; {'; '.join(look.reasons)}"
            + (f" ({self.detail})" if self.detail else "")
        )


def prediction_log(config: RetrainConfig) -> sa.Engine:
    """The serving database of ``config`` (``serving.prediction_log``, else the SQLite file
    ``retrain serve`` writes by default), its tables created if absent."""
    from retrain.serving.tables import create_tables, default_log_url, open_engine  # noqa: PLC0415

    engine = open_engine(config.serving.prediction_log or default_log_url(config))
    create_tables(engine)
    return engine


def _decoded(values: pd.Series) -> list[Any]:
    out = []
    for value in values:
        try:
            out.append(json.loads(value))
        except (TypeError, ValueError):
            out.append(value)
    return out


def outcomes(
    engine: sa.Engine,
    model: str,
    versions: Mapping[str, int],
    *,
    since: datetime,
    until: datetime,
    events: pd.DataFrame | None = None,
    horizon: timedelta = timedelta(days=7),
) -> pd.DataFrame:
    """Predictions of ``versions`` (arm -> version) served in ``[since, until]``, one row each:
    ``arm``, ``latency_ms``, ``predicted_at``, ``correct`` (``NaN`` while unlabelled) and
    ``error`` (the model failed on the row: it counts as a request and an error, never as
    labelled).

    Labels come from ``/feedback`` (the labels table) and, for predictions still unlabelled,
    from ``events`` (columns ``entity_id``, ``event_time``, ``label``): the first event of the
    prediction's entity at or after it, within ``horizon``."""
    from retrain.serving.tables import LABELS, PREDICTIONS  # noqa: PLC0415

    arm_of = {int(v): arm for arm, v in versions.items()}
    p = PREDICTIONS.c
    query = sa.select(
        p.request_id, p.entity_id, p.version, p.prediction, p.latency_ms, p.predicted_at, p.error
    ).where(
        p.model == model,
        p.predicted_at >= since,
        p.predicted_at <= until,
        p.version.in_(list(arm_of)),
    )
    q = LABELS.c
    label_query = sa.select(q.request_id, q.entity_id, q.label, q.received_at).where(
        q.model == model, q.received_at >= since
    )
    with engine.connect() as connection:
        served = pd.DataFrame(connection.execute(query).mappings().all())
        labels = pd.DataFrame(connection.execute(label_query).mappings().all())
    columns = ["arm", "latency_ms", "predicted_at", "correct", "error"]
    if served.empty:
        return pd.DataFrame(columns=columns)
    served["arm"] = served["version"].map(arm_of)
    served["predicted_at"] = pd.to_datetime(served["predicted_at"], utc=True)
    served["label"] = None
    if not labels.empty:
        labels["received_at"] = pd.to_datetime(labels["received_at"], utc=True)
        by_request = labels.dropna(subset=["request_id"]).drop_duplicates("request_id", keep="last")
        served["label"] = served["request_id"].map(by_request.set_index("request_id")["label"])
        by_entity = labels[labels["request_id"].isna() & labels["entity_id"].notna()]
        if not by_entity.empty:
            served = _join_by_entity(served, by_entity)
    if events is not None and not events.empty:
        served = _join_events(served, events, horizon)
    labelled = served["label"].notna() & served["error"].isna()
    correct = np.full(len(served), np.nan)
    if labelled.any():
        predicted = _decoded(served.loc[labelled, "prediction"])
        actual = _decoded(served.loc[labelled, "label"])
        correct[labelled.to_numpy()] = [
            float(a == b) for a, b in zip(predicted, actual, strict=True)
        ]
    served["correct"] = correct
    return served[columns]


def _open_rows(served: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``served`` numbered by row (``_row``), and its unlabelled rows that name an entity."""
    keyed = served.reset_index(drop=True).assign(_row=lambda f: range(len(f)))
    return keyed, keyed[keyed["label"].isna() & keyed["entity_id"].notna()]


def _labelled(keyed: pd.DataFrame, matched: pd.DataFrame) -> pd.DataFrame:
    """``keyed`` with the ``label`` of each ``matched`` row (by ``_row``), unnumbered again."""
    keyed.loc[matched["_row"].astype(int).to_numpy(), "label"] = matched["label"].to_numpy()
    return keyed.drop(columns="_row")


def _join_by_entity(served: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Labels sent by entity id answer the newest prediction of that entity before them."""
    keyed, candidates = _open_rows(served)
    if candidates.empty:
        return served
    matched = pd.merge_asof(
        labels.sort_values("received_at")[["entity_id", "label", "received_at"]],
        candidates.sort_values("predicted_at")[["entity_id", "predicted_at", "_row"]],
        left_on="received_at",
        right_on="predicted_at",
        by="entity_id",
        direction="backward",
    ).dropna(subset=["_row"])
    return _labelled(keyed, matched.drop_duplicates("_row", keep="last"))


def _join_events(served: pd.DataFrame, events: pd.DataFrame, horizon: timedelta) -> pd.DataFrame:
    """Unlabelled predictions take the label of their entity's first event at or after them."""
    keyed, open_rows = _open_rows(served)
    if open_rows.empty:
        return served
    found = events.dropna(subset=["entity_id", "event_time", "label"]).assign(
        entity_id=lambda f: f["entity_id"].astype(str),
        event_time=lambda f: pd.to_datetime(f["event_time"], utc=True),
        label=lambda f: [json.dumps(v.item() if hasattr(v, "item") else v) for v in f["label"]],
    )
    matched = pd.merge_asof(
        open_rows.sort_values("predicted_at")[["entity_id", "predicted_at", "_row"]],
        found.sort_values("event_time")[["entity_id", "event_time", "label"]],
        left_on="predicted_at",
        right_on="event_time",
        by="entity_id",
        direction="forward",
        tolerance=pd.Timedelta(horizon),
    ).dropna(subset=["label"])
    return _labelled(keyed, matched)


def events_for_labels(
    config: RetrainConfig, *, since: datetime, until: datetime, sql_url: str | None = None
) -> pd.DataFrame | None:
    """The event source's ``entity_id``, ``event_time`` and ``label`` (the target) from
    ``since`` to ``until`` plus the label horizon, when ``serving.entity_column`` is set."""
    from retrain.data import read_source  # noqa: PLC0415

    column = config.serving.entity_column
    if column is None:
        return None
    time_column, target = config.data.source.event_time_column, config.model.target
    end = until + timedelta(hours=config.serving.label_horizon_hours)
    table = read_source(
        config, start=since, end=end, sql_url=sql_url, columns=[time_column, column, target]
    )
    missing = [c for c in (time_column, column, target) if c not in table.column_names]
    if missing:
        raise DataError(
            [f"serving.entity_column: the event source has no column {', '.join(missing)}"]
        )
    frame: pd.DataFrame = table.to_pandas()
    return frame.rename(columns={column: "entity_id", time_column: "event_time", target: "label"})


def arm_stats(
    frame: pd.DataFrame, *, since: datetime, until: datetime, window_minutes: float
) -> dict[str, ArmStats]:
    """Per arm: labelled and correct counts, requests, and the p95 latency of each complete
    window of ``window_minutes`` (windows where both arms served, oldest first)."""
    window = pd.Timedelta(minutes=window_minutes)
    complete = int((until - since) / window)
    p95: dict[str, pd.Series] = {}
    for arm in ARMS:
        rows = frame[frame["arm"] == arm]
        index = ((rows["predicted_at"] - pd.Timestamp(since)) // window).astype("int64")
        in_complete = rows[(index < complete).to_numpy()]
        p95[arm] = in_complete.groupby(index[index < complete])["latency_ms"].quantile(0.95)
    shared = sorted(set(p95["production"].index) & set(p95["canary"].index))
    stats = {}
    for arm in ARMS:
        rows = frame[frame["arm"] == arm]
        labelled = rows["correct"].notna()
        stats[arm] = ArmStats(
            labelled=int(labelled.sum()),
            correct=int(rows.loc[labelled, "correct"].sum()),
            requests=len(rows),
            errors=int(rows["error"].notna().sum()),
            latency_p95_ms=tuple(float(p95[arm][w]) for w in shared),
        )
    return stats


def canary_start(registry: ModelRegistry, version: int) -> datetime:
    """When ``version`` took the canary alias (its newest audit entry that moved it there)."""
    for entry in registry.history(limit=200):
        if entry.to_version == version and any(
            move.alias == Stage.CANARY and move.to_version == version for move in entry.moves
        ):
            return parse_time(entry.at, what="audit entry time")
    raise DataError([f"no audit entry moves canary to version {version} (in the last 200)"])


def watch(
    config: RetrainConfig,
    registry: ModelRegistry,
    engine: sa.Engine,
    *,
    now: datetime | None = None,
    run_id: str | None = None,
    lease: ModelLease | None = None,
    client: MlflowClient | None = None,
    sql_url: str | None = None,
) -> CanaryWatch:
    """Judge the model's canary at ``now`` and act on the decision (see the module doc)."""
    from retrain import deploy  # noqa: PLC0415

    name = config.model.name
    at = to_utc(now, what="now") or datetime.now(UTC)
    current = registry.current()
    production, canary = current.get(Stage.PRODUCTION), current.get(Stage.CANARY)
    if canary is None:
        serving = production.version if production is not None else None
        return CanaryWatch(name, serving, None, None, "no canary")
    if production is None:
        return CanaryWatch(name, None, canary.version, None, "no canary", "no production model")
    started = canary_start(registry, canary.version)
    versions = {"production": production.version, "canary": canary.version}
    events = events_for_labels(config, since=started, until=at, sql_url=sql_url)
    frame = outcomes(
        engine,
        name,
        versions,
        since=started,
        until=at,
        events=events,
        horizon=timedelta(hours=config.serving.label_horizon_hours),
    )
    settings = config.canary
    stats = arm_stats(
        frame, since=started, until=at, window_minutes=settings.latency_window_minutes
    )
    look = judge(stats["production"], stats["canary"], settings, started_at=started, now=at)
    why = "; ".join(look.reasons)
    action, detail = "watching", ""
    if look.decision is Decision.PROMOTE:
        approval = None if config.deployment.require_approval else "canary judge"
        try:
            deploy.promote(
                config,
                registry,
                to=Stage.PRODUCTION,
                reason=f"canary judge: {why}",
                approval=approval,
                version=canary.version,
                run_id=run_id,
                lease=lease,
            )
            action = "promoted"
        except ChecklistError as exc:  # an item not met (e.g. no approval yet): nothing moved
            action, detail = "awaiting approval", str(exc)
    elif look.decision is Decision.ROLLBACK:
        registry.reject(
            canary.version, reason=f"canary judge: {why}", run_id=run_id, level="critical"
        )
        action = "rolled back"
    watched = CanaryWatch(name, production.version, canary.version, look, action, detail)
    if client is not None:
        record(client, config, watched)
        if action in ("promoted", "rolled back"):
            _note_in_log(config, client, canary.record.retraining_id, watched)
    logger.info("%s", watched.summary())
    return watched


def _note_in_log(
    config: RetrainConfig, client: MlflowClient, retraining_id: str, watched: CanaryWatch
) -> None:
    """The verdict into the retraining log record of the run that made the canary: its
    ``online`` field, its status (``deployed`` or ``rejected``) and a note."""
    from retrain.log import LogStore  # noqa: PLC0415

    look = watched.evaluation
    store = LogStore.of(config, client)
    found = store.get(retraining_id) if retraining_id else None
    if found is None or look is None:
        logger.warning("no retraining log record %r to note the canary verdict in", retraining_id)
        return
    online = {
        "decision": str(look.decision),
        "action": watched.action,
        "d_hat": look.d_hat,
        "interval": [look.lower, look.upper],
        "canary_labels": look.canary_labels,
        "production_labels": look.production_labels,
        "production_version": watched.production_version,
        "at": look.at.isoformat(),
        "reasons": list(look.reasons),
    }
    status = RunStatus.DEPLOYED if watched.action == "promoted" else RunStatus.REJECTED
    note = f"canary judge: {watched.action} ({'; '.join(look.reasons)})"
    notes = f"{found.notes}; {note}" if found.notes else note
    store.write(dataclasses.replace(found, online=online, status=str(status), notes=notes))


def record(client: MlflowClient, config: RetrainConfig, watched: CanaryWatch) -> str:
    """Log the look to the canary's MLflow run (made on its first look); its run id."""
    from retrain.tracking import ensure_experiment, find_run  # noqa: PLC0415

    look = watched.evaluation
    if look is None:
        raise DataError(["nothing to record: no evaluation"])
    experiment = ensure_experiment(client, config.experiment_name)
    key = f"{watched.model}/v{watched.canary_version}"
    run = find_run(client, experiment, _RUN_TAG, key)
    if run is None:
        run = client.create_run(
            experiment,
            run_name=f"canary v{watched.canary_version}",
            tags={_RUN_TAG: key, "retrain.model": watched.model},
        )
    run_id = str(run.info.run_id)
    stamp = int(look.at.timestamp() * 1000)
    step = int(look.elapsed_minutes)
    for metric, value in look.metrics().items():
        client.log_metric(run_id, f"canary_{metric}", value, timestamp=stamp, step=step)
    client.set_tag(run_id, "retrain.canary_decision", str(look.decision))
    client.set_tag(run_id, "retrain.canary_action", watched.action)
    client.set_tag(run_id, "retrain.canary_reasons", "; ".join(look.reasons)[:4000])
    if watched.action in ("promoted", "rolled back"):
        _log_figure(client, run_id, look.margin)
        client.set_terminated(run_id)
    return run_id


def _log_figure(client: MlflowClient, run_id: str, margin: float) -> None:
    """The figure of every look so far (rebuilt from the run's metric history) as ``canary.png``."""
    import tempfile  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from retrain.overview import looks_of_run  # noqa: PLC0415 - MLflow reads, on a verdict only
    from retrain.reports.canary import evaluations_figure  # noqa: PLC0415

    looks = list(looks_of_run(client, run_id, margin))
    figure = evaluations_figure(looks)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "canary.png"
        figure.savefig(path, dpi=100)
        client.log_artifact(run_id, str(path))
