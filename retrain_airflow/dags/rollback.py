"""
### retrain_rollback

Return `production` to the version that was serving before the current one (read from the audit
history, not "version minus one"), or to an explicit version that was in production before or
passed its gate. The target must load and predict on its input example before the alias moves;
the demoted version becomes `rolled_back`; the move is written to the audit history, logged at
CRITICAL and sent to the configured notifier. Runs in the model's one-slot registry pool, so it
never interleaves with a deploy of the same model. The task log shows the aliases before and
after.

A repeat never rolls back twice: the task passes its DAG run id as the rollback's idempotency
key, so a retried or cleared task of the same run returns the rollback it already made instead of
undoing it; `expected_version` (optional) refuses, nothing moved, unless production is that
version when the task runs.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, get_current_context, task

from retrain_airflow.dags.params import rollback_params
from retrain_airflow.dags.targets import Target
from retrain_airflow.definitions import dag_options, with_params

__all__ = ["build"]


def build(target: Target) -> Any:
    """The rollback DAG of ``target``'s model."""

    @dag(
        dag_id=target.dag_id("retrain_rollback"),
        schedule=None,
        **dag_options(target.config, __doc__, retries=0),
    )
    def retrain_rollback() -> None:
        @task(
            pool=target.pool,
            doc_md="Check the target, move the alias, write the audit entry, notify.",
        )
        def rollback() -> dict[str, Any]:
            from retrain.deploy import rollback_with_report  # noqa: PLC0415
            from retrain.pipeline.codec import encode  # noqa: PLC0415
            from retrain_airflow.runtime import services  # noqa: PLC0415

            context = get_current_context()
            params = context["params"]
            config = target.load()
            run_id = f"{context['dag_run'].dag_id}/{context['dag_run'].run_id}"
            built = services(config)
            report = rollback_with_report(
                config,
                built.registry,
                reason=params["reason"],
                to_version=params.get("to_version"),
                run_id=run_id,
                expected_version=params.get("expected_version"),
                idempotency_key=run_id,  # a retried task never rolls back twice
                lease=built.lease,  # never interleaves with a run's deploy, even outside Airflow
            )
            for line in report.lines:
                print(line)
            encoded: dict[str, Any] = encode(report)
            return encoded

        rollback()

    return with_params(retrain_rollback(), rollback_params())
