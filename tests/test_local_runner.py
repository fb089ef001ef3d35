"""tools.local_runner: in-process DAG runs leave task logs the Airflow UI can show.

The end-to-end test runs a tiny DAG through :func:`tools.local_runner.run_dag` in a child
process with a throwaway ``AIRFLOW_HOME`` (own metadata DB, own DAGs folder), then reads each
task's log back through ``TaskLogReader.read_log_chunks``, the code path of the API server's
``GET .../taskInstances/{task_id}/logs/{try_number}``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tools import local_runner

REPO = Path(__file__).resolve().parents[1]

DAG_FILE = """
import logging
import warnings
from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="log_probe", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def log_probe():
    @task
    def work():
        print("work: 3 rows fitted")
        log = logging.getLogger("retrain.probe")
        log.info("progress %d%%", 50)
        log.debug("debug detail")
        log.warning("something to look at")
        return 3

    @task(retries=0)
    def boom(rows):
        print(f"boom: got {rows} rows")
        raise ValueError("kaput")

    boom(work())


log_probe()
"""

CHILD = """
import json
import sys

from airflow.utils.log.log_reader import TaskLogReader
from airflow.utils.session import create_session

from tools import local_runner

local_runner.migrate(pool=False)
run = local_runner.run_dag("log_probe", run_type="manual")
out = {"run_id": run.run_id, "tasks": {}}
reader = TaskLogReader()
with create_session() as session:
    for ti in run.get_task_instances(session=session):
        stream, _ = reader.read_log_chunks(ti, ti.try_number, metadata={})
        out["tasks"][ti.task_id] = {
            "state": str(ti.state),
            "try_number": ti.try_number,
            "messages": [message.model_dump(mode="json") for message in stream],
        }
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The ``log_probe`` DAG run in-process in a throwaway Airflow home, its logs read back."""
    root = tmp_path_factory.mktemp("local-runner")
    (root / "dags").mkdir()
    (root / "plugins").mkdir()
    (root / "dags" / "log_probe.py").write_text(DAG_FILE, encoding="utf-8")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(root / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",  # the demo's console level
    }
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return {
        "root": root,
        "stdout": done.stdout,
        **json.loads(result.removeprefix("RESULT ")),
    }


def events(task: dict[str, Any]) -> list[dict[str, Any]]:
    """The log lines of a task, without the reader's "Log message source details" group."""
    messages = task["messages"]
    end = next(i for i, m in enumerate(messages) if m["event"] == "::endgroup::")
    return list(messages[end + 1 :])


def sources(task: dict[str, Any]) -> list[str]:
    messages = task["messages"]
    end = next(i for i, m in enumerate(messages) if m["event"] == "::endgroup::")
    return [str(m["event"]) for m in messages[1:end]]


class TestInProcessTaskLogs:
    def test_the_airflow_log_reader_returns_what_the_task_printed_and_logged(
        self, probe: dict[str, Any]
    ) -> None:
        work = probe["tasks"]["work"]
        assert work["state"] == "success"
        expected = (
            probe["root"]
            / "airflow"
            / "logs"
            / "dag_id=log_probe"
            / f"run_id={probe['run_id']}"
            / "task_id=work"
            / "attempt=1.log"
        )
        assert sources(work) == [str(expected)], sources(work)  # not "Log file not found"
        assert expected.is_file()
        lines = [(m["level"], m["logger"], m["event"]) for m in events(work)]
        assert lines == [
            ("info", "task.stdout", "work: 3 rows fitted"),
            ("info", "retrain.probe", "progress 50%"),
            ("warning", "retrain.probe", "something to look at"),
        ]
        assert all(m["timestamp"] for m in events(work))
        # the raw file holds Airflow's JSON lines, one per event
        records = [json.loads(line) for line in expected.read_text().splitlines()]
        assert [r["event"] for r in records] == [event for _, _, event in lines]
        assert all(r["timestamp"].endswith("Z") for r in records)

    def test_a_failed_task_logs_its_exception(self, probe: dict[str, Any]) -> None:
        boom = probe["tasks"]["boom"]
        assert boom["state"] == "failed"
        found = events(boom)
        assert found[0]["event"] == "boom: got 3 rows"
        failure = next(m for m in found if m["event"] == "Task failed with exception")
        assert failure["level"] == "error"
        assert failure["exception"][0]["exc_type"] == "ValueError"
        assert failure["exception"][0]["exc_value"] == "kaput"

    def test_no_machinery_warnings_and_the_console_still_sees_the_prints(
        self, probe: dict[str, Any]
    ) -> None:
        for task in probe["tasks"].values():
            loggers = {m["logger"] for m in events(task)}
            assert loggers <= {"task", "task.stdout", "retrain.probe"}, loggers
        assert "work: 3 rows fitted" in probe["stdout"]


class TestTaskLog:
    def test_writes_the_templated_path_and_restores_stdout_and_logging(self) -> None:
        ti = SimpleNamespace(dag_id="d", run_id="manual__x", task_id="t", map_index=2, try_number=3)
        import airflow.sdk.log  # noqa: F401  (Airflow sets up logging when first imported)

        root = logging.getLogger()
        level, handlers, stdout = root.level, list(root.handlers), sys.stdout
        with pytest.raises(RuntimeError), local_runner.task_log(ti) as path:
            print("inside")
            logging.getLogger("retrain.unit").info("logged inside")
            raise RuntimeError("task failed")
        print("outside")
        logging.getLogger("retrain.unit").warning("logged outside")
        assert path.parts[-5:] == (
            "dag_id=d",
            "run_id=manual__x",
            "task_id=t",
            "map_index=2",
            "attempt=3.log",
        )
        records = [json.loads(line) for line in path.read_text().splitlines()]
        assert [(r["logger"], r["event"]) for r in records] == [
            ("task.stdout", "inside"),
            ("retrain.unit", "logged inside"),
        ]
        assert (root.level, root.handlers, sys.stdout) == (level, handlers, stdout)
