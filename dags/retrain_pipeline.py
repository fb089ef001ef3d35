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
deploy and a rollback never interleave. Every task calls the same `retrain.pipeline` function as
`retrain run`.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import (
    AssetOrTimeSchedule,
    CronTriggerTimetable,
    Param,
    TriggerRule,
    dag,
    get_current_context,
    task,
)

from retrain_airflow import POOL, assets_for, dag_config, dag_options
from retrain_airflow.runtime import step

CONFIG = dag_config()
ASSETS = assets_for(CONFIG)
STEPS = (
    "start",
    "check",
    "extract",
    "validate",
    "train",
    "evaluate",
    "compare",
    "deploy",
    "reject",
)


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
    from retrain import pipeline as lib

    def ctx_of(run: dict[str, Any]) -> lib.RunContext:
        return lib.RunContext.from_dict(run)

    @task(doc_md="Open the retraining's MLflow run; derive trigger and options from the run.")
    @step
    def start() -> dict[str, Any]:
        from retrain_airflow.runtime import run_options

        return lib.start(dag_config(), **run_options(get_current_context())).to_dict()

    @task(doc_md="Measure live signals (drift, volume, accuracy, age) and apply the rules.")
    @step
    def check(run: dict[str, Any]) -> dict[str, Any]:
        from retrain_airflow.runtime import sql_url

        config = dag_config()
        result = lib.check(config, ctx_of(run), sql_url=sql_url(config))
        print("decision:", "RETRAIN" if result["proceed"] else "SKIP", result["reasons"])
        return result

    @task.short_circuit(
        ignore_downstream_trigger_rules=False,
        doc_md="Stop here (cleanly) when nothing triggered the run.",
    )
    def proceed(checked: dict[str, Any]) -> bool:
        return bool(checked["proceed"])

    @task(doc_md="Read the training window and count new rows since the production watermark.")
    @step
    def extract(checked: dict[str, Any]) -> dict[str, Any]:
        from retrain_airflow.runtime import sql_url

        config = dag_config()
        return lib.extract_step(config, ctx_of(checked["context"]), sql_url=sql_url(config))

    @task(doc_md="Check the data contract; fails (no retry) naming every problem.")
    @step
    def validate(checked: dict[str, Any], extracted: dict[str, Any]) -> dict[str, Any]:
        return lib.validate_step(dag_config(), ctx_of(checked["context"]), extracted)

    @task(doc_md="Fit the preprocessing + estimator pipeline; build the drift reference profile.")
    @step
    def train(checked: dict[str, Any], extracted: dict[str, Any]) -> dict[str, Any]:
        return lib.train_step(dag_config(), ctx_of(checked["context"]), extracted)

    @task(doc_md="Score candidate and production on the same holdout; apply the gate.")
    @step
    def evaluate(checked: dict[str, Any], trained: dict[str, Any]) -> dict[str, Any]:
        return lib.evaluate_step(dag_config(), ctx_of(checked["context"]), trained)

    @task(doc_md="Offline A/B: McNemar test and bootstrap CI of the accuracy difference.")
    @step
    def compare(checked: dict[str, Any], evaluated: dict[str, Any]) -> dict[str, Any]:
        return lib.compare_step(dag_config(), ctx_of(checked["context"]), evaluated)

    @task.branch(doc_md="Deploy when gate and A/B pass (or the run is forced), else reject.")
    def decide(evaluated: dict[str, Any], compared: dict[str, Any]) -> str:
        return "deploy" if lib.should_deploy(evaluated, compared) else "reject"

    @task(pool=POOL, doc_md="Register -> staging -> canary -> production, checklist enforced.")
    @step
    def deploy(
        checked: dict[str, Any],
        extracted: dict[str, Any],
        validated: dict[str, Any],
        trained: dict[str, Any],
        evaluated: dict[str, Any],
        compared: dict[str, Any],
    ) -> dict[str, Any]:
        return lib.deploy_step(
            dag_config(),
            ctx_of(checked["context"]),
            extracted=extracted,
            validated=validated,
            trained=trained,
            evaluated=evaluated,
            compared=compared,
        )

    @task(doc_md="Record why the candidate is not deployed; nothing moves.")
    @step
    def reject(
        checked: dict[str, Any], evaluated: dict[str, Any], compared: dict[str, Any]
    ) -> dict[str, Any]:
        return lib.reject_step(dag_config(), ctx_of(checked["context"]), evaluated, compared)

    @task(
        trigger_rule=TriggerRule.ALL_DONE,
        retries=0,
        doc_md="Always runs: write the retraining log record; fail the run if a step failed.",
    )
    def finish() -> dict[str, Any]:
        from retrain_airflow.runtime import finish_run

        return finish_run(dag_config(), get_current_context(), STEPS)

    run = start()
    checked = check(run)
    extracted = extract(checked)
    validated = validate(checked, extracted)
    trained = train(checked, extracted)
    evaluated = evaluate(checked, trained)
    compared = compare(checked, evaluated)
    branch = decide(evaluated, compared)
    deployed = deploy(checked, extracted, validated, trained, evaluated, compared)
    rejected = reject(checked, evaluated, compared)
    proceed(checked) >> extracted
    validated >> trained
    branch >> [deployed, rejected]
    [run, checked, deployed, rejected, validated, trained, evaluated, compared] >> finish()


retrain_pipeline()
