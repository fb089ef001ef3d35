"""
### retrain_pipeline

The seed's retraining pipeline for one model of `$RETRAIN_CONFIG` (a file, or a directory of
model files), in **weekly** mode:

`start -> check -> proceed -> extract -> validate -> train -> evaluate -> compare -> decide ->
deploy | reject -> finish`

* **Scheduled** on `schedule.weekly` (default Monday 06:00, `0 6 * * 1`, in
  `schedule.timezone`): `check` measures the live signals and evaluates the rules; when nothing
  fires the run short-circuits and the log says why.
* **Data-driven**: also scheduled on the `drift`, `volume` and `performance` assets that
  `retrain_monitor` updates; the run records the asset event (and its reasons) as its trigger.
* **Manual** from the trigger form: mode, reason, only-if-a-rule-fires, force (needs a reason),
  skip A/B, target stage, training window, as-of time.

The monthly **full rebuild** is `retrain_full_rebuild`: the same tasks built by the same code,
in mode `full_rebuild`. A weekly run and a full rebuild of one model never overlap: `start`
waits (up for reschedule, holding no worker) while the other DAG's run of the model is active.

`finish` always runs (also after a failure) and writes the retraining log record to MLflow; a run
with a failed step still ends failed. `start` and `deploy` use the model's one-slot registry pool
(`retrain_registry`, or `retrain_registry__<model>` for a config directory), so a deploy and a
rollback of one model never interleave while different models run in parallel. The tasks and
their order come from the step graph (`retrain.pipeline.graph`) that `retrain run` walks, and
each task runs the same step function.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, TriggerRule, dag, task

from retrain.config.schema import Mode
from retrain.pipeline.graph import FINISH, GRAPH, START, Gate, leaves
from retrain_airflow.dags.params import pipeline_params
from retrain_airflow.dags.targets import Target
from retrain_airflow.definitions import assets_for, dag_options, with_params

__all__ = ["DAG_BASES", "FULL_REBUILD_DOC", "build"]

#: The DAG (id before ``__<model>``) each mode's schedule fires.
DAG_BASES: dict[Mode, str] = {"weekly": "retrain_pipeline", "full_rebuild": "retrain_full_rebuild"}

FULL_REBUILD_DOC = """
### retrain_full_rebuild

The monthly **full rebuild** of one model of `$RETRAIN_CONFIG`: the pipeline of
`retrain_pipeline` (the same tasks, built by the same code) in mode `full_rebuild`, which trains
on all history up to the run's time (`data.training_window_days` does not apply; at most
`full_rebuild.max_rows`, sampled), runs the `model.search` in `train`, and in `evaluate` the
comprehensive tests against production (cross-validated intervals, slices, calibration,
robustness, latency and size), each a checklist item and a gate check.

* **Scheduled** on `schedule.full_rebuild` (default the first Sunday of each month at 20:00,
  `0 20 * * 0#1`, in `schedule.timezone`); no asset triggers (drift starts weekly-mode runs).
* **Manual** from the trigger form (mode `full_rebuild` preselected).

A scheduled rebuild proceeds whatever the retraining rules say (only an empty history stops
it); the gate, A/B test and canary are those of any run.

A full rebuild and a weekly run of one model never overlap: `start` waits (up for reschedule,
holding no worker) while a `retrain_pipeline` run of the model is active, and a weekly run
waits for an active rebuild the same way. The run's mode is in its MLflow run (tag
`retrain.mode`) and its retraining log record.
"""


def build(target: Target, mode: Mode = "weekly") -> Any:
    """The pipeline DAG of ``target``'s model in ``mode``: ``retrain_pipeline`` (weekly, on
    ``schedule.weekly`` and the monitor's assets) or ``retrain_full_rebuild`` (on
    ``schedule.full_rebuild``)."""
    config = target.config
    other: Mode = "full_rebuild" if mode == "weekly" else "weekly"
    sibling = target.dag_id(DAG_BASES[other])
    cron = config.schedule.weekly if mode == "weekly" else config.schedule.full_rebuild
    timetable = CronTriggerTimetable(cron, timezone=config.schedule.timezone)
    schedule: Any = timetable
    if mode == "weekly":
        assets = assets_for(config)
        schedule = AssetOrTimeSchedule(
            timetable=timetable,
            assets=assets["drift"] | assets["volume"] | assets["performance"],
        )
    options = dag_options(config, __doc__ if mode == "weekly" else FULL_REBUILD_DOC)
    options["tags"] = [*options["tags"], mode]

    @dag(dag_id=target.dag_id(DAG_BASES[mode]), schedule=schedule, **options)
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

        @task(
            task_id=START,
            pool=target.pool,
            doc_md=f"Wait while `{sibling}` has an active run of this model (a weekly run and a "
            "full rebuild never overlap), then open the retraining's MLflow run; options and "
            "mode from the run.",
        )
        def start() -> Any:
            from retrain_airflow.runtime import run_start  # noqa: PLC0415

            return run_start(target.load(), mode=mode, sibling=sibling)

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

    return with_params(retrain_pipeline(), pipeline_params(mode))
