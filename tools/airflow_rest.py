"""A small client of Airflow's REST API (v2) for tests and benchmarks that drive a standalone.

It triggers runs as a named user, waits for them, and reads what an operator would read: run and
task timings, task log files. :func:`throwaway` starts an isolated ``airflow standalone`` + MLflow
on free ports in a directory of its own (the shipped config, with weekly and full-rebuild slots
that never tick, so unpausing a DAG does not start a scheduled run; DAGs stay paused until a test
triggers one).
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from tools import standalone

__all__ = ["Deployment", "free_port", "throwaway"]

#: Airflow's log servers sit this far above the API port (standalone.airflow_env).
_LOG_PORT_OFFSETS = (713, 714)


def free_port() -> int:
    """A free port whose log-server neighbours (``+713``, ``+714``) are free too."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        span = [port, *(port + offset for offset in _LOG_PORT_OFFSETS)]
        if span[-1] < 65535 and all(standalone.port_free(p) for p in span):
            return port
    raise RuntimeError("no free port")


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


@dataclass
class Deployment:
    """A running standalone and a bearer token of its admin user."""

    settings: standalone.Settings
    token: str

    def call(self, path: str, *, method: str = "GET", body: Any = None) -> Any:
        request = urllib.request.Request(
            f"{self.settings.airflow_url}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read() or b"null")

    def trigger(self, dag_id: str, conf: Mapping[str, Any]) -> str:
        """Unpause ``dag_id`` and create a run with ``conf``; its run id."""
        self.call(f"/api/v2/dags/{dag_id}", method="PATCH", body={"is_paused": False})
        run = self.call(
            f"/api/v2/dags/{dag_id}/dagRuns",
            method="POST",
            body={"logical_date": None, "conf": dict(conf)},
        )
        return str(run["dag_run_id"])

    def wait(self, dag_id: str, run_id: str, timeout: float = 420) -> str:
        """The run's final state (``success`` / ``failed``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = str(self.call(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"])
            if state in {"success", "failed"}:
                return state
            time.sleep(1)
        raise TimeoutError(f"{dag_id} {run_id} still running after {timeout:g} s")

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(self.call(f"/api/v2/dags/{dag_id}/dagRuns")["dag_runs"])

    def timings(self, dag_id: str, run_id: str) -> dict[str, float]:
        """Seconds of the DAG run (``run``) and of each task that ran (not skipped), from the
        REST API."""
        run = self.call(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        tasks = self.call(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        out = {"run": _seconds(run["start_date"], run["end_date"])}
        for ti in sorted(tasks["task_instances"], key=lambda t: t.get("start_date") or ""):
            if ti.get("start_date") and ti.get("end_date") and ti.get("state") != "skipped":
                out[ti["task_id"]] = _seconds(ti["start_date"], ti["end_date"])
        return out

    def task_logs(self, dag_id: str, run_id: str) -> dict[str, list[str]]:
        """Each task's log lines (the files the task processes wrote)."""
        root = self.settings.airflow_home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
        return {
            path.parent.name.removeprefix("task_id="): path.read_text(errors="replace").splitlines()
            for path in sorted(root.glob("task_id=*/attempt=*.log"))
        }


@contextlib.contextmanager
def throwaway(state: Path, *, repo: Path = standalone.REPO) -> Iterator[Deployment]:
    """An isolated standalone in ``state`` (stopped on exit) with the shipped config."""
    state.mkdir(parents=True, exist_ok=True)
    data = yaml.safe_load((repo / "config" / "retraining.yaml").read_text(encoding="utf-8"))
    never = "0 0 29 2 *"  # 29 February: no slot since the DAGs' start date
    data["schedule"] = {**data.get("schedule", {}), "weekly": never, "full_rebuild": never}
    config = state / "retraining.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    (state / "data").mkdir(exist_ok=True)
    settings = standalone.Settings(
        state=state, port=free_port(), mlflow_port=free_port(), config=config, unpause=False
    )
    try:
        if standalone.start(settings) != 0:
            raise standalone.StandaloneError("import errors (see the output above)")
        token = standalone.token(settings.airflow_url, standalone.admin_password(settings))
        yield Deployment(settings, token)
    finally:
        standalone.stop(settings)
