"""``start``: open (or find again, by run key) the retraining's MLflow run and work directory."""

from __future__ import annotations

import contextlib
import logging
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mlflow.entities import RunTag, ViewType

from retrain.errors import ConfigError, RetrainError
from retrain.pipeline.context import RunContext, RunOptions
from retrain.pipeline.services import Services
from retrain.times import now_utc
from retrain.tracking import bounded, ensure_experiment, find_run, unreachable

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = ["start"]

logger = logging.getLogger(__name__)

_RUN_KEY_TAG = "retrain.run_key"
_ID_TAG = "retrain.retraining_id"


def _retraining_id(client: MlflowClient, experiment_id: str, as_of: datetime) -> str:
    """The seed's ``retrain_<as-of day>_<n>``: one above the highest ``n`` of that day so far
    (deleted runs included, so a number is never given twice in sequence). Runs started at the
    same moment may pick the same one: :func:`_claim` settles that."""
    day = f"{as_of:%Y%m%d}"
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`retrain.date` = '{day}'",
        max_results=1000,
        run_view_type=ViewType.ALL,
    )
    pattern = re.compile(rf"^retrain_{day}_(\d+)")
    taken = [
        int(found.group(1))
        for run in runs
        if (found := pattern.match(run.data.tags.get(_ID_TAG, "")))
    ]
    return f"retrain_{day}_{max(taken, default=0) + 1:03d}"


def _claim(client: MlflowClient, experiment_id: str, run_id: str, retraining_id: str) -> str:
    """``retraining_id`` if no other run has it, else ``<id>-<6 hex of this run's id>``.

    Every run checks after it was created. Of two runs created with the same id, the one that
    checks second sees the other (it checks after both exist), so at least one of them takes
    the suffixed id, unique by its run id: ids are unique without a lock, and keep the seed's
    ``retrain_YYYYMMDD_NNN`` shape whenever runs do not start at the same moment.
    """
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{_ID_TAG}` = '{retraining_id}'",
        max_results=10,
        run_view_type=ViewType.ALL,
    )
    if all(run.info.run_id == run_id for run in runs):
        return retraining_id
    claimed = f"{retraining_id}-{run_id[:6]}"
    client.log_batch(run_id, tags=[RunTag(_ID_TAG, claimed), RunTag("mlflow.runName", claimed)])
    logger.info(
        "retraining id %s was taken at the same moment: this run is %s", retraining_id, claimed
    )
    return claimed


def _usable_work_root(root: Path) -> Path:
    """``<work_dir>/runs``, created and writable, or a :class:`ConfigError` naming the path."""
    runs = root / "runs"
    try:
        runs.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=runs, prefix=".probe-"):
            pass
    except OSError as exc:
        raise ConfigError(
            [
                f"storage.work_dir: {root} is not a usable directory "
                f"({exc.strerror or exc}: {exc.filename or runs})"
            ]
        ) from exc
    return runs


def start(services: Services, options: RunOptions) -> RunContext:
    """The run's context. A run key seen before (a retried DAG task) finds the same MLflow run,
    retraining id and work directory; a new one creates them, with a retraining id no
    concurrent start shares (:func:`_claim`).

    Records spooled while MLflow was down are flushed first (closing the runs they left open).
    An unusable work directory is a :class:`ConfigError` naming it, raised before any MLflow
    run exists; a start that fails after creating its run ends it: no RUNNING run is left.
    """
    config = services.config
    client = services.client
    as_of = options.as_of or now_utc()
    run_key = options.run_key or f"cli-{now_utc():%Y%m%dT%H%M%S%f}"
    runs_root = _usable_work_root(Path(config.storage.work_dir))
    with bounded(config, "starting the retraining run"):
        services.log.flush()
        experiment_id = ensure_experiment(client, config.experiment_name)
        run_id = ""
        try:
            # a key made up just now cannot have a run yet: no need to look for it
            run = (
                find_run(client, experiment_id, _RUN_KEY_TAG, run_key) if options.run_key else None
            )
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
                    "retrain.mode": options.mode,
                }
                run = client.create_run(experiment_id, run_name=retraining_id, tags=tags)
                run_id = run.info.run_id
                started = now_utc()
                retraining_id = _claim(client, experiment_id, run_id, retraining_id)
            work_dir = runs_root / retraining_id
            try:
                work_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    [f"storage.work_dir: cannot create {work_dir} ({exc.strerror or exc})"]
                ) from exc
        except BaseException:
            _abandon(services, run_id)
            raise
    # the run as MLflow just returned it: its params, experiment and artifact location
    services.tracker(run_id).bind(run)
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
        mode=options.mode,
    )


def _abandon(services: Services, run_id: str) -> None:
    """A start that failed after creating its MLflow run: end the run (best effort, bounded)."""
    if not run_id or unreachable(services.config.registry):
        return  # not waited on again
    with contextlib.suppress(RetrainError), bounded(services.config, "ending the failed start"):
        services.client.set_terminated(run_id, status="FAILED")
