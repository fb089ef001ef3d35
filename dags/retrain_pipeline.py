"""
### retrain_pipeline

The seed's retraining pipeline for the model in `config/retraining.yaml` (or `$RETRAIN_CONFIG`):

`start -> check -> proceed -> extract -> validate -> train -> evaluate -> compare -> decide ->
deploy | reject -> finish`

* **Scheduled** on `schedule.retrain` (default `@weekly`): `check` measures the live signals and
  evaluates the rules; when nothing fires the run short-circuits and the log says why.
* **Data-driven**: also scheduled on the `drift`, `volume` and `performance` assets that
  `retrain_monitor` updates; the run records the asset event (and its reasons) as its trigger.
* **Manual** from the trigger form: reason, only-if-a-rule-fires, force (needs a reason), skip
  A/B, target stage, training window, as-of time.

`finish` always runs (also after a failure) and writes the retraining log record to MLflow; a run
with a failed step still ends failed. `deploy` uses the one-slot `retrain_registry` pool, so a
deploy and a rollback never interleave. The tasks and their order come from the step graph
(`retrain.pipeline.graph`) that `retrain run` walks, and each task runs the same step function.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, TriggerRule, dag, task

from retrain.pipeline.graph import FINISH, GRAPH, START, Gate, leaves
from retrain_airflow import POOL, assets_for, dag_config, dag_options

CONFIG = dag_config()
ASSETS = assets_for(CONFIG)


@dag(
    dag_id="retrain_pipeline",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(CONFIG.schedule.retrain, timezone=CONFIG.schedule.timezone),
        assets=ASSETS["drift"] | ASSETS["volume"] | ASSETS["performance"],
    ),
    **dag_options(CONFIG, __doc__),
    params={
        "reason": Param(
            None,
            type=["null", "string"],
            maxLength=500,
            title="Reason",
            description="Why this run is started by hand. Required when force is on; "
            "recorded in the retraining log and the audit history.",
        ),
        "only_if_triggered": Param(
            False,
            type="boolean",
            title="Only if a rule fires",
            description="Evaluate the trigger rules first and retrain only "
            "if one fires, exactly like a scheduled run.",
        ),
        "force": Param(
            False,
            type="boolean",
            title="Force promotion",
            description="Promote even if the gate or the A/B test fails (recorded as "
            "forced; needs a reason).",
        ),
        "skip_ab": Param(
            False,
            type="boolean",
            title="Skip A/B test",
            description="Skip the offline A/B comparison with production.",
        ),
        "target_stage": Param(
            "production",
            type="string",
            enum=["staging", "canary", "production"],
            title="Target stage",
            description="Promote the candidate no further than this stage.",
        ),
        "window_days": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            maximum=3650,
            title="Training window (days)",
            description="Train on the last N days of event time; empty = the "
            "config's data.training_window_days.",
        ),
        "as_of": Param(
            None,
            type=["null", "string"],
            format="date-time",
            title="As of",
            description="Act as if at this ISO-8601 time (replays, demos); empty = "
            "the run's logical date.",
        ),
    },
)
def retrain_pipeline() -> None:
    # task bodies import the runtime when they run: at parse time nothing heavy loads
    def node_task(node: Any) -> Any:
        if isinstance(node, Gate):

            def decide() -> Any:
                from retrain_airflow.runtime import run_gate

                return run_gate(node.name)

            if node.choices:
                return task.branch(task_id=node.name, doc_md=node.doc)(decide)
            return task.short_circuit(
                task_id=node.name, doc_md=node.doc, ignore_downstream_trigger_rules=False
            )(decide)

        def run() -> Any:
            from retrain_airflow.runtime import run_step

            return run_step(dag_config(), node.name)

        pool = {"pool": POOL} if node.registry_writes else {}
        return task(task_id=node.name, doc_md=node.doc, **pool)(run)

    @task(task_id=START, doc_md="Open the retraining's MLflow run; options from the run.")
    def start() -> Any:
        from retrain_airflow.runtime import run_start

        return run_start(dag_config())

    @task(
        task_id=FINISH,
        trigger_rule=TriggerRule.ALL_DONE,
        retries=0,
        doc_md="Always runs: write the retraining log record; fail the run if a step failed.",
    )
    def finish() -> Any:
        from retrain_airflow.runtime import finish_run

        return finish_run(dag_config())

    tasks = {START: start()}
    for node in GRAPH:
        tasks[node.name] = node_task(node)()
        tasks[node.after] >> tasks[node.name]
    [tasks[name] for name in leaves()] >> finish()


retrain_pipeline()
