"""
### retrain_canary

The online canary judge of one model whose `deployment.promote_to_production` is `judge` (the
pipeline's deploy then stops at canary). On `schedule.canary` (default every 5 minutes) it reads
the predictions both arms served since the canary started and the labels that came back (the
prediction log `retrain serve` writes, `serving.prediction_log`), asks the anytime-valid judge
(`retrain.canary`), and acts:

* **promote**: production takes the canary through the checklist path of `retrain_promote`
  (with `deployment.require_approval` it waits for a human);
* **rollback**: the canary alias is removed and the version marked `rejected`; production is
  unchanged; the audit history holds the incident and the notification is CRITICAL;
* **continue**: nothing moves.

Every look is logged to the canary's MLflow run (`canary v<N>`: metrics over time, reasons, a
figure on a decision). Runs in the model's one-slot registry pool; a run without a canary is
skipped.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import CronTriggerTimetable, dag, get_current_context, task

from retrain_airflow.dags.params import as_of_param
from retrain_airflow.dags.targets import Target
from retrain_airflow.definitions import dag_options, with_params

__all__ = ["build"]


def build(target: Target) -> Any:
    """The canary-judge DAG of ``target``'s model."""
    config = target.config

    @dag(
        dag_id=target.dag_id("retrain_canary"),
        schedule=CronTriggerTimetable(config.schedule.canary, timezone=config.schedule.timezone),
        **dag_options(config, __doc__, retries=0),
    )
    def retrain_canary() -> None:
        @task(pool=target.pool, doc_md="Judge the canary on its labelled predictions; act.")
        def judge() -> dict[str, Any]:
            from airflow.sdk.exceptions import AirflowSkipException  # noqa: PLC0415

            from retrain.canary_watch import prediction_log, watch  # noqa: PLC0415
            from retrain.pipeline.codec import encode  # noqa: PLC0415
            from retrain_airflow.runtime import as_of, services  # noqa: PLC0415

            context = get_current_context()
            loaded = target.load()
            built = services(loaded)
            watched = watch(
                loaded,
                built.registry,
                prediction_log(loaded),
                now=as_of(context) if context["params"].get("as_of") else None,
                run_id=f"{context['dag_run'].dag_id}/{context['dag_run'].run_id}",
                lease=built.lease,
                client=built.client,
                sql_url=built.sql_url,  # labels from the event source (serving.entity_column)
            )
            print(watched.summary())
            if watched.evaluation is None:
                raise AirflowSkipException(watched.summary())
            encoded: dict[str, Any] = encode(watched)
            return encoded

        judge()

    return with_params(retrain_canary(), {"as_of": as_of_param("now")})
