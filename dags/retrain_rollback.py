"""
### retrain_rollback

Return `production` to the version that was serving before the current one (read from the audit
history, not "version minus one"), or to an explicit version that was in production before or
passed its gate. The target must load and predict on its input example before the alias moves;
the demoted version becomes `rolled_back`; the move is written to the audit history, logged at
CRITICAL and sent to the configured notifier. Runs in the one-slot `retrain_registry` pool, so it
never interleaves with a deploy. The task log shows the aliases before and after.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from retrain_airflow import POOL, dag_config, dag_options

CONFIG = dag_config()


@dag(
    dag_id="retrain_rollback",
    schedule=None,
    **dag_options(CONFIG, __doc__, retries=0),
    params={
        "reason": Param(
            type="string",
            minLength=3,
            maxLength=500,
            title="Reason",
            description="Why production is rolled back (required; goes into the "
            "audit history and the notification).",
        ),
        "to_version": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            title="Target version",
            description="Explicit version to restore; empty = the version that "
            "served before the current one.",
        ),
    },
)
def retrain_rollback() -> None:
    @task(pool=POOL, doc_md="Check the target, move the alias, write the audit entry, notify.")
    def rollback() -> dict[str, Any]:
        from retrain.deploy import rollback_with_report
        from retrain.pipeline.codec import encode
        from retrain_airflow.runtime import services

        context = get_current_context()
        params = context["params"]
        config = dag_config()
        report = rollback_with_report(
            config,
            services(config).registry,
            reason=params["reason"],
            to_version=params.get("to_version"),
            run_id=f"{context['dag_run'].dag_id}/{context['dag_run'].run_id}",
        )
        for line in report.lines:
            print(line)
        return encode(report)

    rollback()


retrain_rollback()
