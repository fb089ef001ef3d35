"""
### retrain_monitor

Runs on `schedule.monitor` (default hourly). A sensor in **reschedule** mode waits (without holding
a worker slot) until new rows have arrived since the production model's training data; then
`measure` computes the live signals (drift of the new rows against the production model's
reference profile, new labelled samples, production accuracy on them, days since training),
evaluates the trigger rules and logs the check to MLflow. When a drift, volume or performance rule
fires, the matching asset event is emitted with the reasons in its `extra`, which starts a
data-driven `retrain_pipeline` run.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import CronTriggerTimetable, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from retrain_airflow import assets_for, dag_config, dag_options
from retrain_airflow.sensors import NewDataSensor

CONFIG = dag_config()
ASSETS = assets_for(CONFIG)


@dag(
    dag_id="retrain_monitor",
    schedule=CronTriggerTimetable(CONFIG.schedule.monitor, timezone=CONFIG.schedule.timezone),
    **dag_options(CONFIG, __doc__, retries=1),
)
def retrain_monitor() -> None:
    new_data = NewDataSensor(
        task_id="new_data",
        poke_interval=300,
        timeout=50 * 60,
        mode="reschedule",
        soft_fail=True,
        doc_md="Wait (rescheduling, no worker held) for rows newer than the "
        "production model's training data.",
    )

    @task(doc_md="Measure the signals, evaluate the rules, log the check to MLflow.")
    def measure(rows: int) -> dict[str, Any]:
        from retrain.monitor import check_and_log
        from retrain.pipeline.codec import encode
        from retrain_airflow.runtime import as_of, services

        context = get_current_context()
        result = check_and_log(
            services(dag_config()),
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
        asset = ASSETS[kind]

        @task(
            task_id=f"emit_{kind}",
            outlets=[asset],
            doc_md=f"Emit the `{kind}` asset event when a {kind} rule fired.",
        )
        def emit(measured: dict[str, Any]) -> list[str]:
            from retrain.monitor import MonitorCheck
            from retrain.pipeline.codec import decode

            result = decode(MonitorCheck, measured, what="measure's XCom")
            reasons = result.events.get(kind)
            if not reasons:
                raise AirflowSkipException(f"no {kind} rule fired")
            context = get_current_context()
            context["outlet_events"][asset].extra = {
                "trigger": kind,
                "reasons": reasons,
                "as_of": result.as_of,
                "signals": result.signals,
            }
            print(f"{kind} event:", reasons)
            return list(reasons)

        return emit

    measured = measure(new_data.output)
    for kind in ASSETS:
        emitter(kind)(measured)


retrain_monitor()
