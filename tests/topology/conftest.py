"""The production topology, up once for the suite: ``tools.topology`` with its own databases,
its own ``redis-server`` (so a test may restart it) and two Celery workers that each see their own
empty work directory (as on two machines: files between tasks go through the artifact store).

Cleaned up whatever happens: processes stopped, databases dropped, Redis emptied and stopped,
the state directory removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tools import standalone
from tools.airflow_rest import Deployment
from tools.mlflow_server import free_port
from tools.topology import Drill, Topology, down, read_record, up

REPO = Path(__file__).resolve().parents[2]
PIPELINE = "retrain_pipeline"

pytestmark = pytest.mark.topology


def _free_span() -> int:
    """An API port whose log and health neighbours are free too."""
    for _ in range(50):
        port = free_port()
        span = [port, port + 714, port + 715, port + 717, port + 894]
        if span[-1] < 65535 and all(standalone.port_free(p) for p in span):
            return port
    raise RuntimeError("no free port span")


@dataclass
class Redis:
    """A ``redis-server`` of our own (append-only file, so a restart keeps the queue)."""

    port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir"]
        argv += [str(self.folder), "--appendonly", "yes", "--appendfsync", "always", "--save", ""]
        with (self.folder / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ping = subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"],
                capture_output=True,
                text=True,
                check=False,
            )
            if ping.stdout.strip() == "PONG":
                return
            time.sleep(0.2)
        raise RuntimeError(f"redis-server on {self.port} did not answer")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
        self.process = None


@dataclass
class Harness:
    """The running topology and what the tests read and do with it."""

    topology: Topology
    rest: Deployment
    redis: Redis
    drill: Drill

    # --- REST -----------------------------------------------------------------------------------

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """A manual run of ``dag_id`` (unpaused first: a paused DAG's run stays queued)."""
        self.unpause(dag_id)
        run = self.rest.call(
            f"/api/v2/dags/{dag_id}/dagRuns",
            method="POST",
            body={"logical_date": None, "conf": dict(conf or {})},
        )
        return str(run["dag_run_id"])

    def unpause(self, dag_id: str, paused: bool = False) -> None:
        self.rest.call(f"/api/v2/dags/{dag_id}", method="PATCH", body={"is_paused": paused})

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.rest.call(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        return answer

    def wait(self, dag_id: str, run_id: str, timeout: float = 420) -> str:
        return self.rest.wait(dag_id, run_id, timeout=timeout)

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        answer = self.rest.call(f"/api/v2/dags/{dag_id}/dagRuns?limit=100&order_by=run_after")
        return list(answer["dag_runs"])

    def tasks(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        answer = self.rest.call(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return {ti["task_id"]: ti for ti in answer["task_instances"]}

    def wait_task(
        self, dag_id: str, run_id: str, task_id: str, states: set[str], timeout: float = 300
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ti = self.tasks(dag_id, run_id).get(task_id) or {}
            if ti.get("state") in states:
                return ti
            time.sleep(0.2)
        raise TimeoutError(f"{dag_id} {run_id} {task_id} never reached {states}")

    def idle(self, dag_id: str = PIPELINE, timeout: float = 420) -> None:
        """Wait until no run of ``dag_id`` is queued or running."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not [r for r in self.runs(dag_id) if r["state"] in {"queued", "running"}]:
                return
            time.sleep(1)
        raise TimeoutError(f"{dag_id} still has active runs")

    def logs(self, dag_id: str, run_id: str) -> dict[str, str]:
        root = self.topology.standalone.airflow_home / "logs" / f"dag_id={dag_id}"
        return {
            f"{p.parent.name.removeprefix('task_id=')}/{p.name}": p.read_text(errors="replace")
            for p in sorted((root / f"run_id={run_id}").glob("task_id=*/attempt=*.log"))
        }

    # --- the process table ----------------------------------------------------------------------

    def pid(self, name: str) -> int:
        return int(read_record(self.topology)["processes"][name]["pid"])

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid(name), sig)
        deadline = time.monotonic() + 30
        while standalone.alive(self.pid(name)) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(-self.pid(name), os.WNOHANG)
            time.sleep(0.1)

    # --- what retrain recorded ------------------------------------------------------------------

    def config(self) -> Any:
        from retrain.config import load_config

        return load_config(self.drill.config_file)

    def registry(self) -> Any:
        from retrain.registry import ModelRegistry

        return ModelRegistry(self.config())

    def records(self, run_id: str, dag_id: str = PIPELINE) -> list[Any]:
        from retrain.log import LogStore

        store = LogStore.of(self.config())
        listed = [r for r in store.records(limit=200) if r.run_key == f"{dag_id}/{run_id}"]
        return [store.get(r.retraining_id) or r for r in listed]  # the listing is compact

    def versions_of(self, retraining_id: str) -> list[int]:
        return [
            v.version for v in self.registry().versions() if v.record.retraining_id == retraining_id
        ]


@pytest.fixture(scope="session")
def topo() -> Iterator[Harness]:
    state = Path(tempfile.mkdtemp(prefix="retrain-topology-"))
    redis = Redis(port=free_port(), folder=state / "redis")
    drill = Drill(state=state).write(weekly="* * * * *")  # the timetable test's slot
    topology = Topology(
        state=state,
        port=_free_span(),
        mlflow_port=free_port(),
        config=drill.config_file,
        unpause=False,
        prefix=f"retrain_topo_{uuid.uuid4().hex[:8]}",
        redis=redis.url,
        redis_db=0,
        private_work_dirs=True,
        overrides={
            # a killed worker's task is failed (and retried) after 20 s instead of 60 s
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
        },
    )
    saved = dict(os.environ)
    # What this process needs to read the config (the topology's own processes get their own).
    os.environ.update({**drill.environ(topology), "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2"})
    redis.start()
    try:
        if up(topology) != 0:
            raise RuntimeError("the topology came up with DAG import errors (see the output)")
        settings = topology.standalone
        token = standalone.token(settings.airflow_url, standalone.admin_password(settings))
        yield Harness(topology=topology, rest=Deployment(settings, token), redis=redis, drill=drill)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        try:
            down(topology)
        finally:
            redis.stop()
            if os.environ.get("RETRAIN_KEEP_TOPOLOGY_STATE"):
                print(f"topology state kept in {state}")
            else:
                shutil.rmtree(state, ignore_errors=True)
