"""
### retrain_monitor

Runs on `schedule.monitor` (default hourly) for one model. A sensor in **reschedule** mode waits
(without holding a worker slot) until new rows have arrived since the production model's training
data; then `measure` computes the live signals (drift of the new rows against the production
model's reference profile, new labelled samples, production accuracy on them, days since
training), evaluates the trigger rules and logs the check to MLflow. When a drift, volume or
performance rule fires, the matching asset event (`retrain://<model>/<kind>`) is emitted with the
reasons in its `extra`, which starts a data-driven run of the same model's pipeline.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import CronTriggerTimetable, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from retrain_airflow.dags.params import as_of_param
from retrain_airflow.dags.targets import Target
from retrain_airflow.definitions import assets_for, dag_options, with_params
from retrain_airflow.sensors import NewDataSensor

__all__ = ["build"]


def build(target: Target) -> Any:
    """The monitor DAG of ``target``'s model."""
    config = target.config
    assets = assets_for(config)

    @dag(
        dag_id=target.dag_id("retrain_monitor"),
        schedule=CronTriggerTimetable(config.schedule.monitor, timezone=config.schedule.timezone),
        **dag_options(config, __doc__, retries=1),
    )
    def retrain_monitor() -> None:
        new_data = NewDataSensor(
            task_id="new_data",
            config_path=target.path,
            model=target.model,
            poke_interval=300,
            timeout=50 * 60,
            mode="reschedule",
            soft_fail=True,
            doc_md="Wait (rescheduling, no worker held) for rows newer than the "
            "production model's training data.",
        )

        @task(doc_md="Measure the signals, evaluate the rules, log the check to MLflow.")
        def measure(rows: Any) -> dict[str, Any]:  # the sensor's row count
            from retrain.monitor import check_and_log  # noqa: PLC0415
            from retrain.pipeline.codec import encode  # noqa: PLC0415
            from retrain_airflow.runtime import as_of, services  # noqa: PLC0415

            context = get_current_context()
            result = check_and_log(
                services(target.load()),
                as_of=as_of(context),
                run_name=f"monitor {context['dag_run'].run_id}",
            )
            print("signals:", result.signals)
            print("check:", result.summary())
            for note in result.notes:
                print("note:", note)
            encoded: dict[str, Any] = encode(result)
            return encoded

        def emitter(kind: str) -> Any:
            asset = assets[kind]

            @task(
                task_id=f"emit_{kind}",
                outlets=[asset],
                doc_md=f"Emit the `{kind}` asset event when a {kind} rule fired.",
            )
            def emit(measured: dict[str, Any]) -> list[str]:
                from retrain.monitor import MonitorCheck  # noqa: PLC0415
                from retrain.pipeline.codec import decode  # noqa: PLC0415

                result = decode(MonitorCheck, measured, what="measure's XCom")
                reasons = result.events.get(kind)
                if not reasons:
                    raise AirflowSkipException(f"no {kind} rule fired")
                context = get_current_context()
                extra: dict[str, Any] = {
                    "trigger": kind,
                    "reasons": reasons,
                    "as_of": result.as_of,
                    "signals": result.signals,
                }
                context["outlet_events"][asset].extra = extra
                print(f"{kind} event:", reasons)
                return list(reasons)

            return emit

        measured = measure(new_data.output)
        for kind in assets:
            emitter(kind)(measured)

    return with_params(retrain_monitor(), {"as_of": as_of_param("the run's logical date")})
