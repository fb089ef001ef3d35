"""Task-side helpers: the pipeline graph's steps as Airflow task bodies.

Imported inside task functions only. Nothing here decides anything the library or the CLI does
not: it maps run type, params and asset events to :class:`~retrain.pipeline.RunOptions`, decodes
the inputs a step declares from XCom, runs the step the in-process runner runs, and encodes its
result back. A failing step records its error (for the always-running ``finish`` task) and is
retried by Airflow only when :func:`retrain.errors.is_retryable` says a retry may help, the same
policy that decides the CLI's exit code. A step that writes to the registry holds the model's
lease while it runs (:mod:`retrain.lease`, the one ``retrain run`` takes too: the pool covers
DAG tasks only), so a DAG run and a ``retrain run`` never interleave their registry writes.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Connection, get_current_context, timezone
from airflow.sdk.exceptions import AirflowFailException, AirflowRescheduleException

from retrain.config import RetrainConfig, SqlSource
from retrain.config.schema import Mode
from retrain.constants import ASSET_KINDS, RunStatus, Stage, Trigger
from retrain.errors import DataError, is_retryable
from retrain.pipeline.codec import decode, encode
from retrain.pipeline.context import RunContext, RunOptions, fallback_context
from retrain.pipeline.decision import event_reason
from retrain.pipeline.graph import CHECK, FINISH, GRAPH, START, STEPS, Gate, Results
from retrain.pipeline.runner import context_of, execute_held
from retrain.pipeline.services import Services
from retrain.pipeline.steps.finish import finish
from retrain.pipeline.steps.start import start
from retrain.pipeline.workdir import fetch, publish, snapshot
from retrain.times import parse_time, to_utc

__all__ = [
    "ERROR_KEY",
    "WAIT_POLL",
    "actor",
    "as_of",
    "asset_trigger",
    "finish_run",
    "holder",
    "run_gate",
    "run_options",
    "run_start",
    "run_step",
    "services",
    "sql_url",
]

ERROR_KEY = "retrain_error"

# skops resolves a function's module by probing every loaded module; in a task process Airflow's
# lazy deprecated-import shims answer each probe with a warning (about 1,160 lines in a train
# task's log). Process-wide and set when a task first imports this module, so no
# ``catch_warnings`` block elsewhere (another thread's included) can undo it.
warnings.filterwarnings("ignore", category=FutureWarning, module=r"skops\.")
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"skops\.")


def as_of(context: Mapping[str, Any]) -> datetime:
    """The time the run acts at.

    The ``as_of`` param; else, for a data-driven run, the time the monitor measured (the newest
    triggering event's ``as_of``); else the logical date; else the time the run was created.
    """
    params = context.get("params") or {}
    given = to_utc(params.get("as_of"), what="params.as_of")
    if given is not None:
        return given
    measured = [
        parse_time(event.extra["as_of"], what="asset event as_of")
        for events in (context.get("triggering_asset_events") or {}).values()
        for event in events
        if (event.extra or {}).get("as_of")
    ]
    if measured:
        return max(measured)
    dag_run = context["dag_run"]
    when = getattr(dag_run, "logical_date", None) or dag_run.run_after
    return parse_time(when, what="logical date")


def asset_trigger(context: Mapping[str, Any]) -> tuple[Trigger, list[str]] | None:
    """``(trigger, reasons)`` from the asset events that started this run, if any."""
    events = context.get("triggering_asset_events") or {}
    kinds: list[str] = []
    reasons: list[str] = []
    for _asset, asset_events in events.items():
        for event in asset_events:
            extra = dict(event.extra or {})
            kind = str(extra.get("trigger") or event.asset.uri.rsplit("/", 1)[-1])
            kinds.append(kind)
            for reason in extra.get("reasons") or [f"from {event.source_dag_id}"]:
                labelled = event_reason(kind, str(reason))  # each reason with its own kind
                if labelled not in reasons:
                    reasons.append(labelled)
    if not kinds:
        return None
    for kind in ASSET_KINDS:  # several coalesced events: strongest first
        if kind in kinds:
            return Trigger(kind), reasons
    return Trigger(kinds[0]), reasons


def run_options(context: Mapping[str, Any], *, mode: Mode = "weekly") -> RunOptions:
    """The :class:`RunOptions` of this DAG run (validated: bad params raise ``DataError``);
    ``mode``: the DAG's own, unless the ``mode`` param says otherwise."""
    dag_run = context["dag_run"]
    params = dict(context.get("params") or {})
    run_type = str(getattr(dag_run.run_type, "value", dag_run.run_type))
    from_assets = asset_trigger(context)
    reasons: list[str] = []
    if from_assets is not None:
        trigger, reasons = from_assets
    elif run_type == "scheduled" or params.get("only_if_triggered"):
        trigger = Trigger.SCHEDULED  # the rules decide, as on the time schedule
    else:
        trigger = Trigger.MANUAL
    force = bool(params.get("force"))
    reason = (params.get("reason") or "").strip() or None
    if trigger == Trigger.MANUAL and reason:
        reasons = [f"manual: {reason}"]
    return RunOptions(
        trigger=trigger,
        run_key=f"{dag_run.dag_id}/{dag_run.run_id}",
        as_of=as_of(context),
        force=force,
        force_reason=reason if force else None,
        skip_ab=bool(params.get("skip_ab")),
        target_stage=Stage(params.get("target_stage") or Stage.PRODUCTION),
        window_days=params.get("window_days"),
        trigger_reasons=tuple(reasons),
        mode=params.get("mode") or mode,  # validated by RunOptions
    )


def sql_url(config: RetrainConfig) -> str | None:
    """The SQLAlchemy URL of a ``data.source.conn_id`` Airflow connection (``None`` otherwise)."""
    source = config.data.source
    if not isinstance(source, SqlSource) or not source.conn_id:
        return None
    uri: str = Connection.get(source.conn_id).get_uri()
    return uri.replace("postgres://", "postgresql://", 1)


def actor(context: Mapping[str, Any]) -> str | None:
    """Who the audit history, the log and notifications name for this run: the Airflow user who
    triggered it (UI, REST), else ``$RETRAIN_ACTOR``, else what started it (``airflow:scheduled``,
    ``airflow:asset_triggered``); ``None`` outside a task (the OS user, as on the CLI)."""
    dag_run = context.get("dag_run")
    if dag_run is None:
        return None
    user = getattr(dag_run, "triggering_user_name", None)
    if user:
        return str(user)
    if os.environ.get("RETRAIN_ACTOR", "").strip():
        return None  # the registry's default reads it
    run_type = str(getattr(dag_run.run_type, "value", dag_run.run_type))
    return f"airflow:{run_type}"


def services(config: RetrainConfig) -> Services:
    """The task's collaborators (built once per task process), acting as :func:`actor`."""
    try:
        context: Mapping[str, Any] = get_current_context()
    except RuntimeError:  # not inside a running task (a test calling this directly)
        context = {}
    return Services.build(config, sql_url=sql_url(config), actor=actor(context))


@contextlib.contextmanager
def _handoff(task_services: Services, ctx: RunContext) -> Iterator[None]:
    """With ``storage.handoff: artifacts``: the run's files fetched from its MLflow artifacts
    before the block, what the block wrote published after it (a task on another worker needs
    them); with ``shared`` nothing (every worker mounts the work directory)."""
    if task_services.config.storage.handoff != "artifacts" or not ctx.mlflow_run_id:
        yield
        return
    fetched = fetch(task_services.client, ctx.mlflow_run_id, ctx.work_dir)
    if fetched:
        print(f"handoff: fetched {len(fetched)} file(s) from the run's artifacts")
    before = snapshot(ctx.work_dir)
    yield
    published = publish(task_services.client, ctx.mlflow_run_id, ctx.work_dir, before)
    if published:
        print(f"handoff: published {', '.join(published)}")


def _fail(name: str, exc: BaseException) -> None:
    """Record the error for ``finish``; turn a final one into a failure Airflow won't retry."""
    message = f"{type(exc).__name__}: {exc}"
    get_current_context()["ti"].xcom_push(key=ERROR_KEY, value=message)
    if not is_retryable(exc):
        raise AirflowFailException(message) from exc


def _pulled(ti: Any, names: tuple[str, ...]) -> tuple[RunContext | None, Results]:
    """The start context and the decoded results of ``names`` (the steps that pushed one)."""
    raw = ti.xcom_pull(task_ids=START)
    start_ctx = decode(RunContext, raw, what="start's XCom") if raw is not None else None
    results = Results()
    for name in names:
        value = ti.xcom_pull(task_ids=name)
        if value is not None:
            step = STEPS[name]
            results.put(name, decode(step.result_type(), value, what=f"{name}'s XCom"))
    return start_ctx, results


def _needs(node: Any) -> tuple[str, ...]:
    """What a task pulls: the node's declared inputs, and ``check`` for the pinned context."""
    return tuple(dict.fromkeys((*node.inputs, *(() if node is CHECK else (CHECK.name,)))))


#: How often a waiting ``start`` looks again whether the other mode's run has ended.
WAIT_POLL = timedelta(minutes=1)
#: Task states after which a run's ``finish`` no longer runs.
_ENDED = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})


def _state(value: Any) -> str:
    """A state as its value (``running``): the Task SDK's enums print as ``DagRunState.RUNNING``."""
    return str(getattr(value, "value", value))


def holder(ti: Any, sibling: str) -> str | None:
    """The run of DAG ``sibling`` that holds the model (its ``start`` succeeded, its ``finish``
    has not ended, and the run is still running), if any.

    ``start`` runs in the model's one-slot pool, so two starts never decide at once: the first
    one's success is recorded before the other one looks.
    """
    states: Mapping[str, Mapping[str, Any]] = ti.get_task_states(
        dag_id=sibling, task_ids=[START, FINISH]
    )
    for run_id, tasks in states.items():
        if _state(tasks.get(START)) != "success" or _state(tasks.get(FINISH)) in _ENDED:
            continue
        if _state(ti.get_dagrun_state(dag_id=sibling, run_id=run_id)) == "running":
            return run_id
    return None


def run_start(config: RetrainConfig, *, mode: Mode = "weekly", sibling: str | None = None) -> Any:
    """The ``start`` task: the run context from the DAG run (in ``mode`` unless its ``mode``
    param says otherwise), as XCom. With ``sibling`` (the other mode's DAG of the model), it
    first waits, rescheduled and holding no worker, while that DAG has an active run: a weekly
    run and a full rebuild never overlap."""
    context = get_current_context()
    busy = holder(context["ti"], sibling) if sibling else None
    if busy is not None:
        message = (
            f"waiting: run {busy} of {sibling} is active on model {config.model.name} (a weekly "
            f"run and a full rebuild never overlap); looking again in "
            f"{WAIT_POLL.total_seconds():.0f} s"
        )
        print(message)
        raise AirflowRescheduleException(timezone.utcnow() + WAIT_POLL)  # type: ignore[no-untyped-call]
    try:
        task_services = services(config)
        ctx = start(task_services, run_options(context, mode=mode))
        if config.storage.handoff == "artifacts" and ctx.mlflow_run_id:
            publish(task_services.client, ctx.mlflow_run_id, ctx.work_dir, {})  # all start wrote
    except Exception as exc:
        _fail(START, exc)
        raise
    print(ctx.summary())
    return encode(ctx)


def run_step(config: RetrainConfig, name: str) -> Any:
    """A step's task: its declared inputs from XCom, the step, its result as XCom."""
    step = STEPS[name]
    ti = get_current_context()["ti"]
    try:
        start_ctx, results = _pulled(ti, _needs(step))
        if start_ctx is None:
            raise DataError([f"{name}: the start task left no run context"])
        task_services = services(config)
        with _handoff(task_services, start_ctx):
            result = execute_held(step, task_services, start_ctx, results)
            task_services.flush()
    except Exception as exc:
        _fail(name, exc)
        raise
    print(f"{name}: {result.summary()}")
    return encode(result)


def run_gate(name: str) -> Any:
    """A gate's task: ``True``/``False`` (short-circuit) or the task id that runs next."""
    gate = next(n for n in GRAPH if isinstance(n, Gate) and n.name == name)
    try:
        _, results = _pulled(get_current_context()["ti"], gate.inputs)
        return gate.run()(*(results.named(n) for n in gate.inputs))
    except Exception as exc:
        _fail(name, exc)
        raise


def finish_run(config: RetrainConfig) -> Any:
    """The always-running last task: every step's output and error -> the retraining log.

    Raises ``AirflowFailException`` after the record is written when a step failed, so the DAG
    run ends ``failed``.
    """
    context = get_current_context()
    ti, dag_run = context["ti"], context["dag_run"]
    error: str | None = None
    failed: str | None = None
    names = [START, *(node.name for node in GRAPH)]
    for name in names:
        message = ti.xcom_pull(task_ids=name, key=ERROR_KEY)
        if message and error is None:
            error, failed = str(message), name
    if error is None:
        states = ti.get_task_states(dag_id=dag_run.dag_id, run_ids=[dag_run.run_id])
        by_task = states.get(dag_run.run_id, {})
        for name in names:
            if str(by_task.get(name)) == "failed":
                error, failed = f"task {name} failed (see its log)", name
                break
    start_ctx, results = _pulled(ti, tuple(STEPS))
    if start_ctx is None:  # start itself failed: still leave a record (spooled if MLflow is down)
        start_ctx = fallback_context(
            config.storage.work_dir,
            run_key=f"{dag_run.dag_id}/{dag_run.run_id}",
            trigger=Trigger.MANUAL,
        )
    ctx = context_of(start_ctx, results)
    task_services = services(config)
    with _handoff(task_services, ctx):
        record, where = finish(task_services, ctx, results, error=error, failed_step=failed)
    print(f"retraining log {record.summary()} (stored in {where})")
    if record.status == RunStatus.FAILED:
        raise AirflowFailException(f"retraining {ctx.retraining_id} failed at {failed}: {error}")
    return encode(record)
