"""retrain_airflow.preload: what the scheduler's forkserver imports before task processes fork."""

from __future__ import annotations

import json
import subprocess
import sys

from tools import standalone

PROBE = """
import json, sys, threading
import retrain_airflow.preload as preload
from retrain.pipeline.graph import STEPS
modules = [path.partition(":")[0] for s in STEPS.values() for path in (s.function, s.result)]
print(json.dumps({
    "failed": preload.FAILED,
    "threads": threading.active_count(),
    "missing": [m for m in [*preload.MODULES, *modules, "skops.io"] if m not in sys.modules],
}))
"""


def test_preload_imports_every_step_and_library_and_starts_no_thread() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=300
    )
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["failed"] == []
    assert found["missing"] == []
    assert found["threads"] == 1, "a thread alive at fork time would be copied half-way"
    assert "Warning" not in done.stderr, done.stderr[-2000:]


def test_make_airflow_starts_task_processes_from_the_preloaded_forkserver(tmp_path) -> None:
    env = standalone.airflow_env(standalone.Settings(state=tmp_path))
    assert env["AIRFLOW__SCHEDULER__MP_START_METHOD"] == "forkserver"
    assert "retrain_airflow.preload" in env["AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD"].split(",")
