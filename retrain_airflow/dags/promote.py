"""
### retrain_promote

The promotion path canary -> production for one model. Takes the version holding `canary` (or
the version given) to `production` once it is approved: by a human in the Airflow UI (an approval
task) when `deployment.require_approval` is on, otherwise by the operator who triggers this DAG.
The production checklist items are re-checked from the registry before the alias moves (gate
passed, canary in place, reference profile stored for monitoring, approval recorded). Runs in the
model's one-slot registry pool.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import dag, get_current_context, task

from retrain_airflow.dags.params import promote_params
from retrain_airflow.dags.targets import Target
from retrain_airflow.definitions import dag_options, with_params

__all__ = ["build"]


def build(target: Target) -> Any:
    """The promotion DAG of ``target``'s model."""
    config = target.config

    @dag(
        dag_id=target.dag_id("retrain_promote"),
        schedule=None,
        **dag_options(config, __doc__, retries=0),
    )
    def retrain_promote() -> None:
        @task(pool=target.pool, doc_md="Re-check the production checklist and move the alias.")
        def promote(approved_by: str) -> dict[str, Any]:
            from retrain.deploy import promote  # noqa: PLC0415
            from retrain.pipeline.codec import encode  # noqa: PLC0415
            from retrain_airflow.runtime import services  # noqa: PLC0415

            context = get_current_context()
            params = context["params"]
            current = target.load()
            built = services(current)
            result = promote(
                current,
                built.registry,
                to="production",
                reason=params["reason"],
                approval=approved_by,
                version=params.get("version"),
                run_id=f"{context['dag_run'].dag_id}/{context['dag_run'].run_id}",
                lease=built.lease,  # never interleaves with a run's deploy, even outside Airflow
            )
            print(f"v{result.version} -> production (was v{result.from_version}); {approved_by}")
            encoded: dict[str, Any] = encode(result)
            return encoded

        if config.deployment.require_approval:
            # the HITL operator lives in the standard provider; only configs that ask load it
            from airflow.providers.standard.operators.hitl import (  # noqa: PLC0415
                ApprovalOperator,
            )

            approval = ApprovalOperator(
                task_id="approve",
                subject=f"Promote the {config.model.name} canary to production?",
                body="The canary passed the gate and the A/B test. Approve to move the "
                "production alias; reject to leave production unchanged.",
                response_timeout=timedelta(days=3),
            )

            @task
            def approver() -> str:
                context = get_current_context()
                response = context["ti"].xcom_pull(task_ids="approve") or {}
                who = response.get("responded_by_user") or response.get("responded_by") or "a human"
                return f"human: {who}"

            approved: Any = approver()
            approval >> approved
            promote(approved)
        else:
            promote("operator-triggered (deployment.require_approval is false)")

    return with_params(retrain_promote(), promote_params())
