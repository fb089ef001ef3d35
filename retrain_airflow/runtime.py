"""Task-side helpers: turn the Airflow context into the library's small inputs.

Imported inside task functions only (it is cheap anyway). Nothing here decides anything the
library or the CLI does not: it maps run type, params and asset events to ``pipeline.start``
options, and records step errors so the always-running log task can write them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from airflow.sdk import get_current_context
from airflow.sdk.exceptions import AirflowFailException

from retrain.errors import ConfigError, DataError

__all__ = ["ERROR_KEY", "as_of", "asset_trigger", "finish_run", "run_options", "sql_url", "step"]

ERROR_KEY = "retrain_error"
F = TypeVar("F", bound=Callable[..., Any])


def step(fn: F) -> F:
    """Record a step's error in XCom (for the log task); bad input fails without retries."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            get_current_context()["ti"].xcom_push(key=ERROR_KEY, value=message)
            if isinstance(exc, DataError | ConfigError | ValueError):
                raise AirflowFailException(message) from exc  # retrying cannot fix bad input
            raise

    return wrapper  # type: ignore[return-value]


def as_of(context: Mapping[str, Any]) -> datetime:
    """The time the run acts at.

    The ``as_of`` param; else, for a data-driven run, the time the monitor measured (the newest
    triggering event's ``as_of``); else the logical date; else the time the run was created.
    """
    from retrain.data import to_utc

    params = context.get("params") or {}
    if params.get("as_of"):
        value = to_utc(str(params["as_of"]))
        assert value is not None
        return value
    measured = [
        to_utc(str(event.extra["as_of"]))
        for events in (context.get("triggering_asset_events") or {}).values()
        for event in events
        if (event.extra or {}).get("as_of")
    ]
    if measured:
        return max(m for m in measured if m is not None)
    dag_run = context["dag_run"]
    when = getattr(dag_run, "logical_date", None) or dag_run.run_after
    result = to_utc(when)
    assert result is not None
    return result


def asset_trigger(context: Mapping[str, Any]) -> tuple[str, list[str]] | None:
    """``(trigger, reasons)`` from the asset events that started this run, if any."""
    events = context.get("triggering_asset_events") or {}
    kinds: list[str] = []
    reasons: list[str] = []
    for _asset, asset_events in events.items():
        for event in asset_events:
            extra = dict(event.extra or {})
            kind = str(extra.get("trigger") or event.asset.uri.rsplit("/", 1)[-1])
            kinds.append(kind)
            for reason in extra.get("reasons") or [f"{kind} event from {event.source_dag_id}"]:
                if reason not in reasons:
                    reasons.append(str(reason))
    if not kinds:
        return None
    for kind in ("drift", "performance", "volume"):  # several coalesced events: strongest first
        if kind in kinds:
            return kind, reasons
    return kinds[0], reasons


def run_options(context: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``retrain.pipeline.start`` for this DAG run."""
    dag_run = context["dag_run"]
    params = dict(context.get("params") or {})
    run_type = str(getattr(dag_run.run_type, "value", dag_run.run_type))
    from_assets = asset_trigger(context)
    reasons: list[str] = []
    if from_assets is not None:
        trigger, reasons = from_assets
    elif run_type == "scheduled" or params.get("only_if_triggered"):
        trigger = "scheduled"  # the rules decide, as on the time schedule
    else:
        trigger = "manual"
    force = bool(params.get("force"))
    reason = (params.get("reason") or "").strip() or None
    if force and reason is None:
        raise ValueError("params: 'reason' is required when force is true")
    if trigger == "manual" and reason:
        reasons = [f"manual: {reason}"]
    return {
        "trigger": trigger,
        "run_key": f"{dag_run.dag_id}/{dag_run.run_id}",
        "as_of": as_of(context),
        "force": force,
        "force_reason": reason if force else None,
        "skip_ab": bool(params.get("skip_ab")),
        "target_stage": params.get("target_stage") or "production",
        "window_days": params.get("window_days"),
        "trigger_reasons": reasons,
    }


def finish_run(config: Any, context: Mapping[str, Any], steps: tuple[str, ...]) -> dict[str, Any]:
    """Collect every step's output and error, write the retraining log, surface a failure.

    Runs as the pipeline's always-running last task. Raises ``AirflowFailException`` after the
    record is written when a step failed, so the DAG run ends ``failed``.
    """
    from datetime import UTC, datetime
    from pathlib import Path

    from retrain import pipeline

    ti = context["ti"]
    dag_run = context["dag_run"]
    results: dict[str, Any] = {}
    error: str | None = None
    failed: str | None = None
    for name in steps:
        value = ti.xcom_pull(task_ids=name)
        if value is not None:
            results[name] = value
        message = ti.xcom_pull(task_ids=name, key=ERROR_KEY)
        if message and error is None:
            error, failed = str(message), name
    if error is None:
        states = ti.get_task_states(dag_id=dag_run.dag_id, run_ids=[dag_run.run_id])
        by_task = states.get(dag_run.run_id, {})
        for name in steps:
            if str(by_task.get(name)) == "failed":
                error, failed = f"task {name} failed (see its log)", name
                break
    start = results.pop("start", None)
    if "check" in results:
        ctx = pipeline.RunContext.from_dict(results["check"]["context"])
    elif start is not None:
        ctx = pipeline.RunContext.from_dict(start)
    else:  # start itself failed: still leave a record (spooled locally if MLflow is down)
        now = datetime.now(UTC)
        run_id = "".join(c if c.isalnum() else "_" for c in dag_run.run_id)
        ctx = pipeline.RunContext(
            retraining_id=f"retrain_{now:%Y%m%d}_{run_id}"[:120],
            run_key=f"{dag_run.dag_id}/{dag_run.run_id}",
            trigger="manual",
            as_of=now.isoformat(),
            started_at=now.isoformat(),
            work_dir=str(Path(config.storage.work_dir) / "runs" / run_id),
            mlflow_run_id="",
        )
    record = pipeline.finish(config, ctx, results, error=error, failed_step=failed)
    print(
        f"retraining log {record['retraining_id']}: status={record['status']} "
        f"version={record['model_version']} notes={record['notes']}"
    )
    if error is not None:
        raise AirflowFailException(f"retraining {ctx.retraining_id} failed at {failed}: {error}")
    return record


def sql_url(config: Any) -> str | None:
    """The SQLAlchemy URL of a ``data.source.conn_id`` Airflow connection (``None`` otherwise)."""
    source = config.data.source
    if getattr(source, "kind", None) != "sql" or not getattr(source, "conn_id", None):
        return None
    from airflow.sdk import Connection

    uri: str = Connection.get(source.conn_id).get_uri()
    return uri.replace("postgres://", "postgresql://", 1)
