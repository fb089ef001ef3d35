"""Benchmark: the pipeline and rollback DAGs under the real scheduler, per task, next to the same
runs in-process (goal on this machine: the rollback task < 1.5 s, a demo-size pipeline run
< 20 s).

    .venv/bin/python benchmarks/scheduler.py [--runs 3] [--workdir /tmp/scheduler-bench]
        [--importtime] [--skip-in-process]

**Under the scheduler**: an isolated ``airflow standalone`` (scheduler, DAG processor, triggerer,
API server; LocalExecutor on SQLite, one process per task) and an MLflow server on free ports, the
shipped config on a small synthetic stream (3,000 rows a week, four weeks), as ``make airflow``
runs them. ``--runs`` forced pipeline runs are triggered over REST one after the other, then a
rollback. Durations are Airflow's own (the REST API's start and end dates of each task instance
and of the DAG run). ``--importtime`` sets ``PYTHONPROFILEIMPORTTIME``: every task log then lists
the modules the task process imported (``imports in <task>`` prints the slowest).

**In-process**: the same DAG runs with ``tools.local_runner`` (``DAG.test()``'s loop, what
``make demo`` does) in a child process with its own Airflow home and MLflow server.

The first pipeline run registers the first model (bootstrap, no A/B); the later ones have a
production model to compare against. Figures are medians over those later runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.airflow_rest import Deployment, throwaway  # noqa: E402

PIPELINE = "retrain_pipeline"
ROLLBACK = "retrain_rollback"
IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( +)([\w.]+)")

IN_PROCESS = """
import json, os, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from tools import local_runner
from tools.mlflow_server import MlflowServer
from tools.standalone import Settings, ensure_data
root = Path({state!r})
settings = Settings(state=root, config=Path({config!r}))
ensure_data(settings)
with MlflowServer(root=root / "mlflow") as server:
    os.environ.update({{
        "AIRFLOW_HOME": str(root / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": {dags!r}, "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "RETRAIN_CONFIG": {config!r}, "RETRAIN_DATA_PATH": str(settings.data_dir),
        "RETRAIN_WORK_DIR": str(root / "work"), "RETRAIN_TRACKING_URI": server.url,
        "MLFLOW_TRACKING_URI": server.url, "MLFLOW_DISABLE_TELEMETRY": "true",
    }})
    local_runner.migrate()
    out = []
    for i in range({runs}):
        began = time.monotonic()
        run = local_runner.run_dag({pipeline!r}, run_type="manual",
                                   conf={{"force": True, "reason": f"bench {{i}}"}})
        out.append(("pipeline", time.monotonic() - began, local_runner.durations(run),
                    str(run.state)))
    began = time.monotonic()
    run = local_runner.run_dag({rollback!r}, run_type="manual", conf={{"reason": "bench"}})
    out.append(("rollback", time.monotonic() - began, local_runner.durations(run), str(run.state)))
print("RESULT " + json.dumps(out))
"""


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def scheduler_runs(workdir: Path, runs: int) -> tuple[list[dict[str, float]], dict[str, float]]:
    """Pipeline runs (each task's seconds and ``run``) and one rollback, under the scheduler."""
    with throwaway(workdir / "standalone") as deployment:
        pipelines = []
        for i in range(runs):
            run_id = deployment.trigger(PIPELINE, {"force": True, "reason": f"bench {i}"})
            state = deployment.wait(PIPELINE, run_id)
            if state != "success":
                raise SystemExit(f"{PIPELINE} {run_id} ended {state}")
            pipelines.append(deployment.timings(PIPELINE, run_id))
            print(f"  scheduler: pipeline run {i + 1}: {pipelines[-1]['run']:.1f} s", flush=True)
        run_id = deployment.trigger(ROLLBACK, {"reason": "bench"})
        if deployment.wait(ROLLBACK, run_id) != "success":
            raise SystemExit(f"{ROLLBACK} {run_id} failed")
        rollback = deployment.timings(ROLLBACK, run_id)
        if os.environ.get("PYTHONPROFILEIMPORTTIME"):
            print_imports(deployment, run_id, pipelines)
        return pipelines, rollback


def print_imports(deployment: Deployment, rollback_run: str, pipelines: list[Any]) -> None:
    """The slowest top-level imports of each task of the last pipeline run and the rollback."""
    last = deployment.runs(PIPELINE)[-1]["dag_run_id"]
    for dag_id, run_id in ((PIPELINE, last), (ROLLBACK, rollback_run)):
        for task_id, lines in deployment.task_logs(dag_id, run_id).items():
            own: dict[str, float] = defaultdict(float)
            total = 0.0
            for line in lines:
                found = IMPORT_LINE.search(line)
                if found and len(found.group(3)) == 1:  # imported by the task itself
                    own[found.group(4)] = int(found.group(2)) / 1e6
                    total += int(found.group(2)) / 1e6
            top = sorted(own.items(), key=lambda kv: -kv[1])[:8]
            listed = ", ".join(f"{name} {seconds:.2f}" for name, seconds in top)
            print(f"  imports in {dag_id}.{task_id}: {total:.2f} s ({listed})")


def in_process_runs(workdir: Path, runs: int, config: Path) -> list[Any]:
    """The same runs with ``tools.local_runner`` in a child process."""
    state = workdir / "in-process"
    state.mkdir(parents=True, exist_ok=True)
    code = IN_PROCESS.format(
        root=str(ROOT),
        state=str(state),
        config=str(config),
        dags=str(ROOT / "dags"),
        runs=runs,
        pipeline=PIPELINE,
        rollback=ROLLBACK,
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPROFILEIMPORTTIME"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return list(json.loads(line.removeprefix("RESULT ")))
    raise SystemExit(f"in-process runs failed:\n{done.stderr[-3000:]}")


def table(scheduled: list[dict[str, float]], in_process: list[dict[str, float]]) -> None:
    tasks = [name for name in scheduled[-1] if name != "run"]
    print(f"\n{'task':<10} {'scheduler':>10} {'in-process':>11}")
    for name in [*tasks, "run"]:
        under = _median([r[name] for r in scheduled if name in r])
        local = _median([r[name] for r in in_process if name in r])
        print(f"{name:<10} {under:>9.2f}s {local:>10.2f}s")
    waits = [r["run"] - sum(v for k, v in r.items() if k != "run") for r in scheduled]
    local_waits = [r["run"] - sum(v for k, v in r.items() if k != "run") for r in in_process]
    print(f"{'between':<10} {_median(waits):>9.2f}s {_median(local_waits):>10.2f}s  (run - tasks)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="pipeline runs (the first bootstraps)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--importtime", action="store_true", help="list each task's imports")
    parser.add_argument("--skip-in-process", action="store_true")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="scheduler-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if args.importtime:
        os.environ["PYTHONPROFILEIMPORTTIME"] = "1"
    began = time.monotonic()
    pipelines, rollback = scheduler_runs(workdir, args.runs)
    os.environ.pop("PYTHONPROFILEIMPORTTIME", None)
    local: list[Any] = []
    if not args.skip_in_process:
        local = in_process_runs(workdir, args.runs, workdir / "standalone" / "retraining.yaml")
    with_baseline = pipelines[1:] or pipelines
    local_pipelines = [
        {**durations, "run": seconds} for kind, seconds, durations, _ in local if kind == "pipeline"
    ]
    local_with_baseline = local_pipelines[1:] or local_pipelines
    print("\npipeline (runs with a production model to compare against; medians)")
    table(with_baseline, local_with_baseline)
    local_rollback = [{**d, "run": s} for kind, s, d, _ in local if kind == "rollback"]
    print("\nrollback")
    table([rollback], local_rollback)
    print(f"\nbootstrap pipeline run under the scheduler: {pipelines[0]['run']:.1f} s")
    print(f"total {time.monotonic() - began:.0f} s; state in {workdir}")
    summary = {"scheduler": {"pipelines": pipelines, "rollback": rollback}, "in_process": local}
    (workdir / "scheduler-bench.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
