"""Run DAG runs of any type in-process, the way the scheduler would (demo and tests).

``airflow dags test`` / ``DAG.test()`` only create *manual* runs. The demo and the tests also
need *scheduled* runs (a weekly run at a logical date) and *asset-triggered* runs (consuming the
asset events the monitor emitted). :func:`run_dag` creates such a run through Airflow's own
``create_dagrun`` and executes its tasks with the same in-process loop ``DAG.test()`` uses, so the
real DAG, the real metadata DB and the real asset events are exercised.

This is the one module that touches Airflow internals (``airflow.sdk.definitions.dag._run_task``
and the ORM models); keep version differences here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = [
    "asset_events",
    "create_pools",
    "durations",
    "get_dag",
    "migrate",
    "pause",
    "reserialize",
    "run_dag",
    "states",
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
