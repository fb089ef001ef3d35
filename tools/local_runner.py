"""Run DAG runs of any type in-process, the way the scheduler would (demo and tests).

``airflow dags test`` / ``DAG.test()`` only create *manual* runs. The demo and the tests also
need *scheduled* runs (a weekly run at a logical date) and *asset-triggered* runs (consuming the
asset events the monitor emitted). :func:`run_dag` creates such a run through Airflow's own
``create_dagrun`` and executes its tasks with the same in-process loop ``DAG.test()`` uses, so the
real DAG, the real metadata DB and the real asset events are exercised.

Each task it runs leaves its log where a task process under the scheduler would have written it
(``$AIRFLOW_HOME/logs``, the configured ``log_filename_template``), as the JSON lines Airflow's log
reader parses: what the task printed, its ``logging`` records from INFO up (whatever the console
level) and its structlog events, so the Airflow UI shows in-process runs' logs like any others.

This is the one module that touches Airflow internals (``airflow.sdk.definitions.dag._run_task``,
the ORM models, the structlog set-up of task logs); keep version differences here.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

__all__ = [
    "TASK_LOG_LEVEL",
    "asset_events",
    "create_pools",
    "durations",
    "get_dag",
    "migrate",
    "pause",
    "reserialize",
    "run_dag",
    "states",
    "task_log",
    "unpause",
    "xcom",
]


def _airflow(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"airflow {' '.join(args)} failed:\n{result.stderr[-3000:]}")


def migrate(*, pool: bool = True) -> None:
    """``airflow db migrate`` and ``dags reserialize`` (the real CLI), then the registry pools
    of every model of ``$RETRAIN_CONFIG``."""
    _airflow("db", "migrate")
    reserialize()
    if pool:
        create_pools()


def reserialize() -> None:
    """``airflow dags reserialize``: the DAGs (and their assets) as the config now describes
    them, written once, so several ``DAG.test()`` processes started together need not race to."""
    _airflow("dags", "reserialize")


def create_pools(config: str | Path | None = None) -> list[str]:
    """Create (or reset to one slot) the registry pool of every model of ``config``."""
    from airflow.models.pool import Pool

    from retrain_airflow.dags import pools

    wanted = pools(config)
    for name, spec in wanted.items():
        Pool.create_or_update_pool(
            name,
            slots=spec["slots"],
            description=spec["description"],
            include_deferred=spec["include_deferred"],
        )
    return list(wanted)


def get_dag(dag_id: str, dags_folder: str | Path | None = None) -> Any:
    """A freshly parsed DAG (``DAG.test(run_conf=...)`` leaves the conf in the DAG's params)."""
    from airflow.configuration import conf
    from airflow.dag_processing.dagbag import DagBag

    folder = Path(dags_folder or conf.get("core", "dags_folder"))
    file = folder / f"{dag_id.split('__', 1)[0]}.py"  # retrain_pipeline__<model> too
    dag = DagBag(dag_folder=str(file if file.exists() else folder)).get_dag(dag_id)
    if dag is None:
        raise LookupError(f"DAG {dag_id!r} not found in {folder}")
    return dag


def _set_paused(dag_id: str, paused: bool) -> None:
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        session.execute(
            DagModel.__table__.update().where(DagModel.dag_id == dag_id).values(is_paused=paused)
        )


def unpause(dag_id: str) -> None:
    """Asset events are queued only for unpaused consumer DAGs."""
    _set_paused(dag_id, False)


def pause(dag_id: str) -> None:
    """Pause a DAG again (the scheduler then starts no run of it)."""
    _set_paused(dag_id, True)


def _queued_events(session: Any, dag_id: str) -> list[Any]:
    from airflow.models.asset import AssetDagRunQueue, AssetEvent, DagScheduleAssetReference
    from airflow.models.dagrun import DagRun
    from airflow.utils.types import DagRunType
    from sqlalchemy import select

    queued = session.scalars(
        select(AssetDagRunQueue).where(AssetDagRunQueue.target_dag_id == dag_id)
    ).all()
    if not queued:
        raise LookupError(f"no asset events are queued for {dag_id}")
    asset_ids = select(DagScheduleAssetReference.asset_id).where(
        DagScheduleAssetReference.dag_id == dag_id
    )
    previous = session.scalar(
        select(DagRun.run_after)
        .where(DagRun.dag_id == dag_id, DagRun.run_type == DagRunType.ASSET_TRIGGERED)
        .order_by(DagRun.run_after.desc())
        .limit(1)
    )
    query = select(AssetEvent).where(AssetEvent.asset_id.in_(asset_ids))
    if previous is not None:
        query = query.where(AssetEvent.timestamp > previous)
    return list(session.scalars(query.order_by(AssetEvent.timestamp)).all())


#: Level from which a task's ``logging`` records go to its log file (Airflow's default level;
#: the console keeps its own, the demo's is WARNING).
TASK_LOG_LEVEL = logging.INFO

#: Loggers of the in-process machinery (execution API server and client, ORM, DAG.test() loop),
#: not of the task: a task process under the scheduler does not log them into the task's file.
_MACHINERY = (
    "airflow",
    "alembic",
    "fastapi",
    "httpcore",
    "httpx",
    "sqlalchemy",
    "starlette",
    "supervisor",
    "uvicorn",
)
#: ... except the task's own (``self.log`` of an operator, the task runner's ``task.*``).
_TASK_LOGGERS = ("airflow.task", "task")


@functools.cache
def _machinery_dirs() -> tuple[str, ...]:
    """Warnings raised from these packages come from the machinery too (``py.warnings``)."""
    found: list[str] = []
    for package in ("airflow", "fastapi", "starlette", "httpx", "sqlalchemy"):
        with contextlib.suppress(ImportError, ValueError):
            spec = importlib.util.find_spec(package)
            if spec is not None and spec.submodule_search_locations:
                found += [os.path.join(d, "") for d in spec.submodule_search_locations]
    return tuple(found)


def _of_machinery(name: str, fields: dict[str, Any]) -> bool:
    if name == "py.warnings":
        return str(fields.get("filename", "")).startswith(_machinery_dirs())
    if any(name == task or name.startswith(f"{task}.") for task in _TASK_LOGGERS):
        return False
    return any(name == pkg or name.startswith(f"{pkg}.") for pkg in _MACHINERY)


#: structlog method name -> level (``log.exception`` logs at ERROR).
_LEVELS = {
    **{name.lower(): number for name, number in logging.getLevelNamesMapping().items()},
    "exception": logging.ERROR,
}


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _TaskLog:
    """The log file of the task running now (at most one: tasks run one after the other)."""

    lock = threading.RLock()
    sink: Any = None  # a structlog logger writing Airflow's JSON lines to the file, or None

    @classmethod
    def write(cls, level: int, event: str, **fields: Any) -> None:
        with cls.lock:
            if cls.sink is not None:
                cls.sink.log(level, event, **fields)

    @classmethod
    def close(cls) -> None:
        with cls.lock:
            cls.sink = None


class _LoggingToTaskLog(logging.Handler):
    """``logging`` records (from :data:`TASK_LOG_LEVEL`) into the task's log file."""

    def emit(self, record: logging.LogRecord) -> None:
        if _of_machinery(record.name, {}):
            return
        try:
            fields: dict[str, Any] = {"logger": record.name, "timestamp": _iso(record.created)}
            if record.exc_info:
                fields["exc_info"] = record.exc_info
            _TaskLog.write(record.levelno, record.getMessage(), **fields)
        except Exception:
            self.handleError(record)


def _structlog_to_task_log(logger: Any, method_name: str, event_dict: Any) -> Any:
    """First structlog processor: a copy of every event (the console's level passed it) that
    is the task's into the task's log file; the event goes on to the console unchanged."""
    if _TaskLog.sink is None:
        return event_dict
    fields = dict(event_dict)
    event = fields.pop("event", "")
    name = fields.pop("logger_name", None) or fields.pop("logger", None)
    name = str(name or getattr(logger, "name", None) or "task")
    level = _LEVELS.get(method_name, logging.INFO)
    if level >= TASK_LOG_LEVEL and not _of_machinery(name, fields):
        with contextlib.suppress(Exception):  # the console must get the event whatever happens
            _TaskLog.write(level, str(event), logger=name, **fields)
    return event_dict


class _StdoutToTaskLog(io.TextIOBase):
    """``sys.stdout`` while a task runs: to the console as before, and each line into the task's
    log file (``logger: task.stdout``, level info, as the supervisor forwards a task's stdout)."""

    def __init__(self, console: TextIO) -> None:
        self.console = console
        self.pending = ""
        self.finished = False

    def write(self, text: str) -> int:
        self.console.write(text)
        if not self.finished:  # (a stream handler set up during the task may keep this object)
            self.pending += text
            *lines, self.pending = self.pending.split("\n")
            for line in lines:
                _TaskLog.write(logging.INFO, line.rstrip(), logger="task.stdout")
        return len(text)

    def flush(self) -> None:
        self.console.flush()

    def finish(self) -> None:
        if self.pending:
            _TaskLog.write(logging.INFO, self.pending.rstrip(), logger="task.stdout")
            self.pending = ""
        self.finished = True

    def isatty(self) -> bool:
        return self.console.isatty()

    def fileno(self) -> int:
        return self.console.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self.console, "encoding", "utf-8"))


def _install_structlog_tee() -> None:
    import structlog

    processors = structlog.get_config()["processors"]
    if _structlog_to_task_log in processors:
        return
    if isinstance(processors, list):
        # in place: loggers already bound (and cached) share this list with the configuration
        processors.insert(0, _structlog_to_task_log)
    else:
        structlog.configure(processors=[_structlog_to_task_log, *processors])


@contextlib.contextmanager
def _console_for_new_structlog_loggers(console: TextIO) -> Iterator[None]:
    """Structlog loggers first used during the task write to the console they would write to
    outside it (Airflow's logger factory defaults to ``sys.stdout`` as of binding), not to the
    task's captured stdout."""
    import structlog

    factory = structlog.get_config()["logger_factory"]
    if getattr(factory, "io", "") is not None:
        yield
        return
    factory.io = console
    try:
        yield
    finally:
        factory.io = None


@contextlib.contextmanager
def _root_logger_passes(level: int) -> Iterator[None]:
    """Let records from ``level`` reach the root logger's handlers; the handlers it had keep
    showing only what they showed before (the console stays as quiet as configured)."""
    root = logging.getLogger()
    with contextlib.ExitStack() as undo:
        if root.level > level:
            for existing in list(root.handlers):
                if existing.level < root.level:
                    undo.callback(existing.setLevel, existing.level)
                    existing.setLevel(root.level)
            undo.callback(root.setLevel, root.level)
            root.setLevel(level)
        yield


@contextlib.contextmanager
def task_log(ti: Any) -> Iterator[Path]:
    """While one task instance runs in-process, write its log file as its task process would.

    The path is the one the executor hands a task process (``log_filename_template`` rendered
    for ``ti`` at its try number, under ``[logging] base_log_folder``); the lines are the JSON
    lines of the supervisor's file logger (same structlog processors, secrets masked), appended
    (a deferred task resumes into the same file). Yields the file's path.
    """
    import structlog
    from airflow.sdk.log import init_log_file, logging_processors
    from airflow.utils.helpers import log_filename_template_renderer

    path = init_log_file(log_filename_template_renderer()(ti=ti))
    root = logging.getLogger()
    handler = _LoggingToTaskLog(TASK_LOG_LEVEL)
    console = sys.stdout
    stdout = _StdoutToTaskLog(console)
    with path.open("ab") as file, contextlib.ExitStack() as stack:
        sink = structlog.wrap_logger(
            structlog.BytesLogger(file),
            processors=list(logging_processors(json_output=True)),
            wrapper_class=structlog.make_filtering_bound_logger(logging.NOTSET),
        )
        _install_structlog_tee()
        with _TaskLog.lock:
            _TaskLog.sink = sink
        stack.callback(_TaskLog.close)
        stack.enter_context(_root_logger_passes(TASK_LOG_LEVEL))
        root.addHandler(handler)
        stack.callback(root.removeHandler, handler)
        stack.enter_context(_console_for_new_structlog_loggers(console))
        stack.enter_context(contextlib.redirect_stdout(stdout))
        stack.callback(stdout.finish)
        yield path


def run_dag(
    dag_id: str,
    *,
    run_type: str,
    logical_date: datetime | None = None,
    conf: dict[str, Any] | None = None,
    timeout: float = 600,
) -> Any:
    """Create a run of ``run_type`` (``scheduled``, ``asset_triggered``, ``manual``) and run it.

    An asset-triggered run consumes the asset events queued for the DAG, as the scheduler does.
    Returns the finished ``DagRun``.
    """
    from airflow.models.asset import AssetDagRunQueue
    from airflow.models.dagbag import DBDagBag
    from airflow.models.dagrun import DagRun
    from airflow.sdk import timezone
    from airflow.sdk.definitions.dag import _run_task
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType
    from sqlalchemy import delete, select

    dag = get_dag(dag_id)
    kind = DagRunType(run_type)
    with create_session() as session:
        serialized = DBDagBag().get_latest_version_of_dag(dag_id, session=session)
        if serialized is None:
            raise LookupError(f"DAG {dag_id!r} is not in the metadata DB: call migrate() first")
        events = _queued_events(session, dag_id) if kind == DagRunType.ASSET_TRIGGERED else []
        run_after = logical_date or timezone.utcnow()
        interval = None
        if logical_date is not None:
            timetable = coerce_to_core_timetable(dag.timetable)
            interval = timetable.infer_manual_data_interval(run_after=logical_date)
        triggered_by = {
            DagRunType.ASSET_TRIGGERED: DagRunTriggeredByType.ASSET,
            DagRunType.SCHEDULED: DagRunTriggeredByType.TIMETABLE,
        }.get(kind, DagRunTriggeredByType.CLI)
        run = serialized.create_dagrun(
            run_id=DagRun.generate_run_id(
                run_type=kind, logical_date=logical_date, run_after=run_after
            ),
            logical_date=logical_date,
            data_interval=interval,
            run_after=run_after,
            run_type=kind,
            triggered_by=triggered_by,
            conf=conf,
            state=DagRunState.RUNNING,
            start_date=timezone.utcnow(),
            session=session,
        )
        if events:
            run.consumed_asset_events.extend(events)
            session.execute(
                delete(AssetDagRunQueue).where(AssetDagRunQueue.target_dag_id == dag_id)
            )
        session.commit()
        run.dag = serialized
        deadline = time.monotonic() + timeout
        while run.state == DagRunState.RUNNING and time.monotonic() < deadline:
            session.expire_all()
            schedulable, _ = run.update_state(session=session)
            for ti in schedulable:
                if ti.state != TaskInstanceState.UP_FOR_RESCHEDULE:
                    ti.try_number += 1
                ti.state = TaskInstanceState.SCHEDULED
            session.commit()
            todo = [
                ti
                for ti in run.get_task_instances(session=session)
                if ti.state == TaskInstanceState.SCHEDULED
            ]
            if not todo:
                time.sleep(0.2)
            for ti in todo:
                with task_log(ti):
                    _run_task(ti=ti, task=dag.task_dict[ti.task_id], run_triggerer=True)
        run_id = run.run_id
    with create_session() as session:
        found = session.scalar(
            select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
        )
        session.expunge(found)
        return found


def states(run: Any) -> dict[str, str]:
    """Task id -> final state of a run."""
    from airflow.utils.session import create_session

    with create_session() as session:
        return {ti.task_id: str(ti.state) for ti in run.get_task_instances(session=session)}


def durations(run: Any) -> dict[str, float]:
    """Task id -> seconds the task ran (tasks that did not run are left out)."""
    from airflow.utils.session import create_session

    with create_session() as session:
        return {
            ti.task_id: float(ti.duration)
            for ti in run.get_task_instances(session=session)
            if ti.duration is not None
        }


def xcom(run: Any, task_id: str, key: str = "return_value") -> Any:
    """One XCom value of a run, or ``None``."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == run.dag_id,
                XComModel.run_id == run.run_id,
                XComModel.task_id == task_id,
                XComModel.key == key,
            )
        ).first()
        return XComModel.deserialize_value(row) if row is not None else None


def asset_events(source_dag_id: str, run_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(asset name, extra) of the asset events a run emitted."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetEvent, AssetModel)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetEvent.source_dag_id == source_dag_id, AssetEvent.source_run_id == run_id)
        ).all()
        return [(asset.name, dict(event.extra or {})) for event, asset in rows]
