"""``start``: open (or find again, by run key) the retraining's MLflow run and work directory."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from retrain.pipeline.context import RunContext, RunOptions
from retrain.pipeline.services import Services
from retrain.times import now_utc
from retrain.tracking import bounded, ensure_experiment, find_run

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = ["start"]

_RUN_KEY_TAG = "retrain.run_key"
_ID_TAG = "retrain.retraining_id"


def _retraining_id(client: MlflowClient, experiment_id: str, as_of: datetime) -> str:
    """The seed's ``retrain_<as-of day>_<n>``: runs of that day so far, plus one."""
    day = f"{as_of:%Y%m%d}"
    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.`retrain.date` = '{day}'", max_results=1000
    )
    return f"retrain_{day}_{len(runs) + 1:03d}"


def start(services: Services, options: RunOptions) -> RunContext:
    """The run's context. A run key seen before (a retried DAG task) finds the same MLflow run,
    retraining id and work directory; a new one creates them."""
    config = services.config
    client = services.client
    as_of = options.as_of or now_utc()
    run_key = options.run_key or f"cli-{now_utc():%Y%m%dT%H%M%S%f}"
    with bounded(config, "starting the retraining run"):
        experiment_id = ensure_experiment(client, config.experiment_name)
        run = find_run(client, experiment_id, _RUN_KEY_TAG, run_key)
        if run is not None:
            retraining_id = run.data.tags[_ID_TAG]
            run_id = run.info.run_id
            started = datetime.fromtimestamp(run.info.start_time / 1000, UTC)
        else:
            retraining_id = _retraining_id(client, experiment_id, as_of)
            tags = {
                _RUN_KEY_TAG: run_key,
                _ID_TAG: retraining_id,
                "retrain.trigger": str(options.trigger),
                "retrain.date": f"{as_of:%Y%m%d}",
                "retrain.as_of": as_of.isoformat(),
            }
            run = client.create_run(experiment_id, run_name=retraining_id, tags=tags)
            run_id = run.info.run_id
            started = now_utc()
    # the run as MLflow just returned it: its params, experiment and artifact location
    services.tracker(run_id).bind(run)
    work_dir = Path(config.storage.work_dir) / "runs" / retraining_id
    work_dir.mkdir(parents=True, exist_ok=True)
    return RunContext(
        retraining_id=retraining_id,
        run_key=run_key,
        trigger=options.trigger,
        as_of=as_of,
        started_at=started,
        work_dir=str(work_dir),
        mlflow_run_id=run_id,
        force=options.force,
        force_reason=options.force_reason,
        skip_ab=options.skip_ab,
        target_stage=options.target_stage,
        window_days=options.window_days,
        trigger_reasons=options.trigger_reasons,
        approval=options.approval,
    )
