"""Real Airflow 3.3 for tests: a migrated SQLite metadata DB, the repo's ``dags/``, the pool.

``configure_environment()`` must run before anything imports ``airflow`` (conftest calls it at
import time). ``run_dag`` creates a DAG run of any run type (scheduled, asset-triggered) and runs
its tasks in-process with the same loop ``dag.test()`` uses, which only creates manual runs; for
asset-triggered runs it consumes the queued asset events like the scheduler does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"


def configure_environment() -> Path:
    """Point Airflow at a private home and the repo's dags folder (idempotent per process)."""
    home = os.environ.get("RETRAIN_TEST_AIRFLOW_HOME")
    if not home:
        home = tempfile.mkdtemp(prefix="retrain-airflow-")
        os.environ["RETRAIN_TEST_AIRFLOW_HOME"] = home
    os.environ["AIRFLOW_HOME"] = home
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO / "plugins")
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    return Path(home)


def migrate() -> None:
    """``airflow db migrate`` in a subprocess (the real CLI), then the registry pool."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
        timeout=300,
    )
    from airflow.models.pool import Pool

    from retrain_airflow import POOL

    Pool.create_or_update_pool(
        POOL, slots=1, description="retrain registry writes", include_deferred=False
    )


def dagbag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def get_dag(dag_id: str) -> Any:
    """A freshly parsed DAG (``dag.test(run_conf=...)`` leaves the conf in the DAG's params)."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS / f"{dag_id}.py")).get_dag(dag_id)


def unpause(dag_id: str) -> None:
    """Asset events are queued only for unpaused consumer DAGs."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        session.execute(
            DagModel.__table__.update().where(DagModel.dag_id == dag_id).values(is_paused=False)
        )


def run_dag(
    dag: Any, *, run_type: str, logical_date: datetime | None = None, timeout: float = 300
) -> Any:
    """Create a ``scheduled`` or ``asset_triggered`` run of ``dag`` and run it to completion."""
    from airflow.models.asset import AssetDagRunQueue, AssetEvent, DagScheduleAssetReference
    from airflow.models.dagbag import DBDagBag
    from airflow.models.dagrun import DagRun
    from airflow.sdk import timezone
    from airflow.sdk.definitions.dag import _run_task
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType
    from sqlalchemy import delete, select

    kind = DagRunType(run_type)
    dag = get_dag(dag.dag_id)
    with create_session() as session:
        serialized = DBDagBag().get_latest_version_of_dag(dag.dag_id, session=session)
        run_after = logical_date or timezone.utcnow()
        events: list[Any] = []
        if kind == DagRunType.ASSET_TRIGGERED:
            queued = session.scalars(
                select(AssetDagRunQueue).where(AssetDagRunQueue.target_dag_id == dag.dag_id)
            ).all()
            assert queued, f"no asset events queued for {dag.dag_id}"
            asset_ids = select(DagScheduleAssetReference.asset_id).where(
                DagScheduleAssetReference.dag_id == dag.dag_id
            )
            previous = session.scalar(
                select(DagRun.run_after)
                .where(DagRun.dag_id == dag.dag_id, DagRun.run_type == DagRunType.ASSET_TRIGGERED)
                .order_by(DagRun.run_after.desc())
                .limit(1)
            )
            query = select(AssetEvent).where(AssetEvent.asset_id.in_(asset_ids))
            if previous is not None:
                query = query.where(AssetEvent.timestamp > previous)
            events = list(session.scalars(query.order_by(AssetEvent.timestamp)).all())
        interval = None
        if logical_date is not None:
            from airflow.serialization.encoders import coerce_to_core_timetable

            timetable = coerce_to_core_timetable(dag.timetable)
            interval = timetable.infer_manual_data_interval(run_after=logical_date)
        run = serialized.create_dagrun(
            run_id=DagRun.generate_run_id(
                run_type=kind, logical_date=logical_date, run_after=run_after
            ),
            logical_date=logical_date,
            data_interval=interval,
            run_after=run_after,
            run_type=kind,
            triggered_by=(
                DagRunTriggeredByType.ASSET if events else DagRunTriggeredByType.TIMETABLE
            ),
            state=DagRunState.RUNNING,
            start_date=timezone.utcnow(),
            session=session,
        )
        if events:
            run.consumed_asset_events.extend(events)
            session.execute(
                delete(AssetDagRunQueue).where(AssetDagRunQueue.target_dag_id == dag.dag_id)
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
            select(DagRun).where(DagRun.dag_id == dag.dag_id, DagRun.run_id == run_id)
        )
        session.expunge(found)
        return found


def states(run: Any) -> dict[str, str]:
    """Task id -> final state of a run."""
    from airflow.utils.session import create_session

    with create_session() as session:
        return {ti.task_id: str(ti.state) for ti in run.get_task_instances(session=session)}


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
    """(asset name, extra) of the events a run emitted."""
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
