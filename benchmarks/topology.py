"""Benchmark: the production topology (CeleryExecutor, two workers, PostgreSQL, Redis, MLflow on
PostgreSQL) under the real scheduler: from the monitor's drift asset event to the production
alias move, next to the fit time of the same data; and each task's time under Celery next to the
same DAG run in-process.

    .venv/bin/python benchmarks/topology.py [--runs 3] [--workdir DIR] [--redis-db 13]
        [--skip-in-process]

``tools.topology`` brings the topology up on free ports with its own databases (dropped at the
end) and Redis database ``--redis-db`` of the local server (emptied at the end); each worker has
its own empty work directory, so files go from task to task through the artifact store, as on
separate machines (``tools.topology.Drill``: 6,000 rows a week; the drifted weeks arrive later).

1. A forced manual run trains the first model on the clean weeks (bootstrap, not timed).
2. ``--runs`` forced manual runs: each task's duration (the REST API's task-instance dates).
3. The drifted weeks arrive; a manual ``retrain_monitor`` run measures the drift and emits the
   drift asset event (with the volume one: one emit task per fired rule); the scheduler starts
   the pipeline run at the first event. Timed from the first event the run consumed and from the
   drift event (the emit task's end): the run's creation and the production alias move in the
   audit history (its ``at``); next to the fit time of the same data (the train task's log).
4. In-process (unless skipped): the same forced runs with ``tools.local_runner`` (``DAG.test()``,
   one process) on a copy of the same data and config, through ``benchmarks/scheduler.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.scheduler import in_process_runs, table  # noqa: E402
from tools import standalone  # noqa: E402
from tools.airflow_rest import Deployment  # noqa: E402
from tools.mlflow_server import free_port  # noqa: E402
from tools.topology import Drill, Topology, down, up  # noqa: E402

PIPELINE = "retrain_pipeline"
MONITOR = "retrain_monitor"


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _wait_new_run(rest: Deployment, before: set[str], timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fresh = [r for r in rest.runs(PIPELINE) if r["dag_run_id"] not in before]
        if fresh:
            return fresh[0]
        time.sleep(0.5)
    raise SystemExit("no pipeline run after the drift event")


def measure(workdir: Path, runs: int, redis_db: int) -> dict[str, Any]:
    drill = Drill(state=workdir / "topology").write()
    topology = Topology(
        state=drill.state,
        port=free_port(),
        mlflow_port=free_port(),
        config=drill.config_file,
        unpause=False,
        prefix=f"retrain_bench_{uuid.uuid4().hex[:8]}",
        redis_db=redis_db,
        private_work_dirs=True,
    )
    os.environ.update(drill.environ(topology))
    began = time.monotonic()
    try:
        if up(topology) != 0:
            raise SystemExit("DAG import errors")
        up_seconds = time.monotonic() - began
        settings = topology.standalone
        rest = Deployment(
            settings, standalone.token(settings.airflow_url, standalone.admin_password(settings))
        )
        forced = {"force": True, "reason": "benchmark"}
        timings: list[dict[str, float]] = []
        for i in range(runs + 1):
            run_id = rest.trigger(PIPELINE, forced)
            if rest.wait(PIPELINE, run_id) != "success":
                raise SystemExit(f"{PIPELINE} {run_id} failed")
            timings.append(rest.timings(PIPELINE, run_id))
            print(f"  celery: pipeline run {i + 1}: {timings[-1]['run']:.1f} s", flush=True)
        drill.drift()
        before = {r["dag_run_id"] for r in rest.runs(PIPELINE)}
        monitor = rest.trigger(MONITOR, {})
        if rest.wait(MONITOR, monitor) != "success":
            raise SystemExit("monitor failed")
        emit = next(
            ti
            for ti in rest.call(f"/api/v2/dags/{MONITOR}/dagRuns/{monitor}/taskInstances")[
                "task_instances"
            ]
            if ti["task_id"] == "emit_drift"
        )
        if emit["state"] != "success":
            raise SystemExit(f"no drift event: emit_drift {emit['state']}")
        # The fired rules' events (volume, performance, drift: one emit task each) start the
        # first run at once; that run's check sees every rule that fired, the drift one included.
        started = _wait_new_run(rest, before)
        if rest.wait(PIPELINE, started["dag_run_id"]) != "success":
            raise SystemExit("the drift-triggered run failed")
        run_id = started["dag_run_id"]
        consumed = rest.call(f"/api/v2/dags/{PIPELINE}/dagRuns/{run_id}/upstreamAssetEvents")
        first_event = min(_at(e["timestamp"]) for e in consumed["asset_events"])
        tasks = rest.call(f"/api/v2/dags/{PIPELINE}/dagRuns/{run_id}/taskInstances")
        deploy = next(ti for ti in tasks["task_instances"] if ti["task_id"] == "deploy")
        train_log = "\n".join(
            path.read_text(errors="replace")
            for path in (settings.airflow_home / "logs").glob(
                f"dag_id={PIPELINE}/run_id={run_id}/task_id=train/attempt=*.log"
            )
        )
        fitted = re.search(r"rows fitted in ([0-9.]+)s", train_log)
        from retrain.config import load_config
        from retrain.log import LogStore
        from retrain.registry import ModelRegistry

        config = load_config(drill.config_file)
        move = next(e for e in ModelRegistry(config).history(limit=5) if e.alias == "production")
        record = next(
            r
            for r in LogStore.of(config).records(limit=20)
            if r.run_key == f"{PIPELINE}/{started['dag_run_id']}"
        )
        event = _at(emit["end_date"])
        drift = {
            "first_event_to_drift_event_s": (event - first_event).total_seconds(),
            "first_event_to_run_created_s": (
                _at(started["queued_at"]) - first_event
            ).total_seconds(),
            "first_event_to_alias_move_s": (_at(move.at) - first_event).total_seconds(),
            "drift_event_to_alias_move_s": (_at(move.at) - event).total_seconds(),
            "deploy_end_to_alias_move_s": (_at(move.at) - _at(deploy["end_date"])).total_seconds(),
            "fit_s": float(fitted.group(1)) if fitted else float("nan"),
            "run_s": rest.timings(PIPELINE, started["dag_run_id"])["run"],
            "trigger": record.trigger,
            "status": record.status,
        }
        return {"up_s": up_seconds, "celery": timings, "drift": drift, "drill": drill}
    finally:
        down(topology)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="timed forced runs after the first")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--redis-db", type=int, default=13)
    parser.add_argument("--skip-in-process", action="store_true")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="topology-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    result = measure(workdir, args.runs, args.redis_db)
    drill: Drill = result.pop("drill")
    local: list[Any] = []
    if not args.skip_in_process:
        copy = workdir / "in-process" / "data" / "events"
        shutil.copytree(drill.data_dir, copy, dirs_exist_ok=True)
        config = drill.config()
        config["storage"] = {"work_dir": "${RETRAIN_WORK_DIR}"}  # one process: one disk
        local_config = workdir / "in-process.yaml"
        local_config.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
        local = in_process_runs(workdir, args.runs + 1, local_config)
    celery = result["celery"][1:]
    local_runs = [{**d, "run": s} for kind, s, d, _ in local if kind == "pipeline"][1:]
    print(f"\ntopology up and healthy: {result['up_s']:.0f} s")
    print("\npipeline, forced runs with a production model (medians)")
    print("          celery = 2 workers, private disks, artifact handoff; in-process = DAG.test()")
    table(celery, local_runs or celery)
    tasks = [t for t in celery[-1] if t != "run"]
    if local_runs:
        extra = [
            statistics.median([r[t] for r in celery])
            - statistics.median([r[t] for r in local_runs])
            for t in tasks
            if all(t in r for r in local_runs)
        ]
        print(f"per-task overhead under Celery: {statistics.median(extra):.2f} s median")
    drift = result["drift"]
    print(
        f"\nmonitor's first event -> run created {drift['first_event_to_run_created_s']:.1f} s, "
        f"-> production alias moved {drift['first_event_to_alias_move_s']:.1f} s (from the drift "
        f"event, {drift['first_event_to_drift_event_s']:.1f} s after the first: "
        f"{drift['drift_event_to_alias_move_s']:.1f} s); the run {drift['run_s']:.1f} s, its fit "
        f"{drift['fit_s']:.1f} s ({drift['trigger']}, {drift['status']})"
    )
    result["in_process"] = local
    (workdir / "topology-bench.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(f"results: {workdir / 'topology-bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
