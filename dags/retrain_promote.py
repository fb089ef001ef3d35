"""
### retrain_promote

The promotion path canary -> production. Takes the version holding `canary` (or the version given)
to `production` once it is approved: by a human in the Airflow UI (an approval task) when
`deployment.require_approval` is on, otherwise by the operator who triggers this DAG. The
production checklist items are re-checked from the registry before the alias moves (gate passed,
canary in place, reference profile stored for monitoring, approval recorded). Runs in the one-slot
`retrain_registry` pool.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from retrain_airflow import POOL, dag_config, dag_options

CONFIG = dag_config()
NEEDS_APPROVAL = CONFIG.deployment.require_approval


@dag(
    dag_id="retrain_promote",
    schedule=None,
    **dag_options(CONFIG, __doc__, retries=0),
    params={
        "reason": Param(
            type="string",
            minLength=3,
            maxLength=500,
            title="Reason",
            description="Why the canary goes to production (audit history).",
        ),
        "version": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            title="Version",
            description="The canary version to promote; empty = whichever holds the canary alias.",
        ),
    },
)
def retrain_promote() -> None:
    @task(pool=POOL, doc_md="Re-check the production checklist and move the alias.")
    def promote(approved_by: str) -> dict[str, Any]:
        from retrain.deploy import promote
        from retrain.pipeline.codec import encode
        from retrain_airflow.runtime import services

        context = get_current_context()
        params = context["params"]
        config = dag_config()
        built = services(config)
        result = promote(
            config,
            built.registry,
            to="production",
            reason=params["reason"],
            approval=approved_by,
            version=params.get("version"),
            run_id=f"{context['dag_run'].dag_id}/{context['dag_run'].run_id}",
            lease=built.lease,  # never interleaves with a run's deploy, even outside Airflow
        )
        print(f"v{result.version} -> production (was v{result.from_version}); {approved_by}")
        return encode(result)

    if NEEDS_APPROVAL:
        from airflow.providers.standard.operators.hitl import ApprovalOperator

        approval = ApprovalOperator(
            task_id="approve",
            subject=f"Promote the {CONFIG.model.name} canary to production?",
            body="The canary passed the gate and the A/B test. Approve to move the production "
            "alias; reject to leave production unchanged.",
            response_timeout=timedelta(days=3),
        )

        @task
        def approver() -> str:
            context = get_current_context()
            response = context["ti"].xcom_pull(task_ids="approve") or {}
            who = response.get("responded_by_user") or response.get("responded_by") or "a human"
            return f"human: {who}"

        approved = approver()
        approval >> approved
        promote(approved)
    else:
        promote("operator-triggered (deployment.require_approval is false)")


retrain_promote()
