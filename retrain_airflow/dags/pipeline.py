"""
### retrain_pipeline

The seed's retraining pipeline for one model of `$RETRAIN_CONFIG` (a file, or a directory of
model files):

`start -> check -> proceed -> extract -> validate -> train -> evaluate -> compare -> decide ->
deploy | reject -> finish`

* **Scheduled** on `schedule.retrain` (default `@weekly`): `check` measures the live signals and
  evaluates the rules; when nothing fires the run short-circuits and the log says why.
* **Data-driven**: also scheduled on the `drift`, `volume` and `performance` assets that
  `retrain_monitor` updates; the run records the asset event (and its reasons) as its trigger.
* **Manual** from the trigger form: reason, only-if-a-rule-fires, force (needs a reason), skip
  A/B, target stage, training window, as-of time.

`finish` always runs (also after a failure) and writes the retraining log record to MLflow; a run
with a failed step still ends failed. `deploy` uses the model's one-slot registry pool
(`retrain_registry`, or `retrain_registry__<model>` for a config directory), so a deploy and a
rollback of one model never interleave while different models run in parallel. The tasks and
their order come from the step graph (`retrain.pipeline.graph`) that `retrain run` walks, and
each task runs the same step function.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, TriggerRule, dag, task

from retrain.pipeline.graph import FINISH, GRAPH, START, Gate, leaves
from retrain_airflow.dags.params import pipeline_params
from retrain_airflow.dags.targets import Target
from retrain_airflow.definitions import assets_for, dag_options, with_params

__all__ = ["build"]


def build(target: Target) -> Any:
    """The pipeline DAG of ``target``'s model."""
    config = target.config
    assets = assets_for(config)

    @dag(
        dag_id=target.dag_id("retrain_pipeline"),
        schedule=AssetOrTimeSchedule(
            timetable=CronTriggerTimetable(
                config.schedule.retrain, timezone=config.schedule.timezone
            ),
            assets=assets["drift"] | assets["volume"] | assets["performance"],
        ),
        **dag_options(config, __doc__),
    )
    def retrain_pipeline() -> None:
        # task bodies import the runtime when they run: at parse time nothing heavy loads
        def node_task(node: Any) -> Any:
            if isinstance(node, Gate):

                def decide() -> Any:
                    from retrain_airflow.runtime import run_gate  # noqa: PLC0415

                    return run_gate(node.name)

                if node.choices:
                    return task.branch(task_id=node.name, doc_md=node.doc)(decide)
                return task.short_circuit(
                    task_id=node.name, doc_md=node.doc, ignore_downstream_trigger_rules=False
                )(decide)

            def run() -> Any:
                from retrain_airflow.runtime import run_step  # noqa: PLC0415

                return run_step(target.load(), node.name)

            pool: dict[str, Any] = {"pool": target.pool} if node.registry_writes else {}
            return task(task_id=node.name, doc_md=node.doc, **pool)(run)

        @task(task_id=START, doc_md="Open the retraining's MLflow run; options from the run.")
        def start() -> Any:
            from retrain_airflow.runtime import run_start  # noqa: PLC0415

            return run_start(target.load())

        @task(
            task_id=FINISH,
            trigger_rule=TriggerRule.ALL_DONE,
            retries=0,
            doc_md="Always runs: write the retraining log record; fail the run if a step failed.",
        )
        def finish() -> Any:
            from retrain_airflow.runtime import finish_run  # noqa: PLC0415

            return finish_run(target.load())

        tasks = {START: start()}
        for node in GRAPH:
            tasks[node.name] = node_task(node)()
            tasks[node.after] >> tasks[node.name]
        [tasks[name] for name in leaves()] >> finish()

    return with_params(retrain_pipeline(), pipeline_params())
