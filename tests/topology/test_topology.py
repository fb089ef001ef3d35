"""retrain under the production topology: CeleryExecutor workers, PostgreSQL metadata, Redis
broker, MLflow on PostgreSQL, driven by the real scheduler (``tools.topology``).

The tests run in file order on one topology and build on each other's registry state: the
timetable's weekly run trains the first model, the monitor's drift event starts the second, and
so on. Each numbered case of issue 19 is one test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.topology.conftest import PIPELINE, Harness
from tools.mlflow_server import MlflowServer
from tools.topology import NEVER, restart_mlflow, start_process, wait_healthy

pytestmark = pytest.mark.topology

RETRAIN_RUN = [sys.executable, "-m", "retrain.cli", "run", "--trigger", "scheduled", "--json"]
FORCED = {"force": True, "reason": "topology test"}


def _succeeded(topo: Harness, run_id: str, dag_id: str = PIPELINE) -> Any:
    """The run's single retraining log record, after checking the run succeeded."""
    state = topo.wait(dag_id, run_id)
    states = {t: ti["state"] for t, ti in topo.tasks(dag_id, run_id).items()}
    assert state == "success", (run_id, states)
    records = topo.records(run_id, dag_id)
    assert len(records) == 1, [r.retraining_id for r in records]
    return records[0]


def _aliases(topo: Harness) -> dict[str, int]:
    return {alias: info.version for alias, info in topo.registry().current().items()}


# --- 1. runs the scheduler creates, and REST runs ----------------------------------------------


def test_the_timetable_creates_the_weekly_run(topo: Harness) -> None:
    topo.unpause(PIPELINE)
    deadline = time.monotonic() + 150
    scheduled: list[dict[str, Any]] = []
    while not scheduled and time.monotonic() < deadline:
        scheduled = [r for r in topo.runs(PIPELINE) if r["run_type"] == "scheduled"]
        time.sleep(2)
    assert scheduled, "no scheduled run within 150 s of unpausing (cron * * * * *)"
    # No second slot: the weekly cron moves to a date that never comes; the DAG processor
    # re-parses the config, and any slot created before that only checks the rules and skips.
    data = topo.drill.config()
    data["schedule"]["weekly"] = NEVER
    topo.drill.set_config(data)
    first = scheduled[0]
    record = _succeeded(topo, first["dag_run_id"])
    assert record.trigger.startswith("scheduled")  # scheduled:bootstrap, the first model
    assert record.status == "deployed", record.summary()
    assert _aliases(topo)["production"] == int(record.model_version)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        dag = topo.rest.call(f"/api/v2/dags/{PIPELINE}")
        if "29 2" in str(dag.get("timetable_summary")):
            break
        time.sleep(2)
    else:
        pytest.fail(f"the DAG processor kept the old cron: {dag.get('timetable_summary')}")
    topo.idle()


def test_tasks_spread_over_both_workers_and_hand_over_through_the_artifact_store(
    topo: Harness, tmp_path: Path
) -> None:
    run = next(r for r in topo.runs(PIPELINE) if r["run_type"] == "scheduled")
    tasks = topo.tasks(PIPELINE, run["dag_run_id"])
    ran = {t: ti for t, ti in tasks.items() if ti["state"] == "success"}
    hosts = {ti["hostname"] for ti in ran.values()}
    assert hosts == {"worker1", "worker2"}, {t: ti["hostname"] for t, ti in ran.items()}
    # Each worker has its own empty work directory: a task that ran on another worker than the
    # one before it fetched that task's files from the run's artifacts.
    logs = "\n".join(topo.logs(PIPELINE, run["dag_run_id"]).values())
    assert "handoff: fetched" in logs
    assert "handoff: published" in logs

    # The same run in-process (`retrain run`, one process, its own MLflow on SQLite) on the
    # same data and as-of gives the same model: same rows, same metrics.
    record = topo.records(run["dag_run_id"])[0]
    config = topo.drill.config()
    config["storage"] = {"work_dir": str(tmp_path / "work")}
    local_config = tmp_path / "retraining.yaml"
    local_config.write_text(yaml.safe_dump(config), encoding="utf-8")
    with MlflowServer(root=tmp_path / "mlflow") as server:
        env = {
            **os.environ,
            "RETRAIN_TRACKING_URI": server.url,
            "MLFLOW_TRACKING_URI": server.url,
        }
        answer = subprocess.run(
            [*RETRAIN_RUN, "--config", str(local_config), "--as-of", str(record.as_of)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    assert answer.returncode == 0, answer.stderr[-2000:]
    local = json.loads(answer.stdout)
    assert local["status"] == record.status
    assert local["data_version"] == record.data_version
    assert local["metrics"] == record.metrics


def _consumed(topo: Harness, run_id: str) -> set[str]:
    """URIs of the asset events that started ``run_id``."""
    answer = topo.rest.call(f"/api/v2/dags/{PIPELINE}/dagRuns/{run_id}/upstreamAssetEvents")
    return {event["uri"] for event in answer["asset_events"]}


def test_the_monitors_drift_event_starts_a_pipeline_run(topo: Harness) -> None:
    topo.drill.drift()  # the two drifted weeks arrive
    before = {r["dag_run_id"] for r in topo.runs(PIPELINE)}
    monitor = topo.trigger("retrain_monitor")
    assert topo.wait("retrain_monitor", monitor) == "success"
    tasks = topo.tasks("retrain_monitor", monitor)
    assert tasks["emit_drift"]["state"] == "success"  # 7 of 8 features drifted
    # Each fired rule's emit task sends its event; the scheduler starts a run per batch of
    # events it finds (one at a time: max_active_runs), so the drift event may start its own.
    deadline = time.monotonic() + 240
    by_drift: list[str] = []
    while not by_drift and time.monotonic() < deadline:
        started = [r for r in topo.runs(PIPELINE) if r["dag_run_id"] not in before]
        assert {r["run_type"] for r in started} <= {"asset_triggered"}, started
        by_drift = [
            r["dag_run_id"]
            for r in started
            if any(uri.endswith("/drift") for uri in _consumed(topo, r["dag_run_id"]))
        ]
        time.sleep(2)
    assert by_drift, "no pipeline run consumed the drift event"
    record = _succeeded(topo, by_drift[0])
    assert any(r.startswith("drift event:") for r in record.trigger_reasons), record.trigger_reasons
    topo.idle()


def test_a_manual_run_through_the_rest_api_takes_its_params(topo: Harness) -> None:
    run = topo.trigger(PIPELINE, {**FORCED, "reason": "manual run with params", "skip_ab": True})
    record = _succeeded(topo, run)
    seen = (record.summary(), record.trigger, record.forced, record.force_reason, record.ab_test)
    assert record.trigger == "manual", seen
    assert record.forced and record.force_reason == "manual run with params", seen
    assert record.ab_test.get("skipped") is True, seen
    assert _aliases(topo)["production"] == int(record.model_version), (_aliases(topo), seen)


def test_the_rollback_dag_from_the_rest_api(topo: Harness) -> None:
    registry = topo.registry()
    serving = _aliases(topo)["production"]
    target = registry.rollback_target()
    run = topo.trigger("retrain_rollback", {"reason": "topology test"})
    assert topo.wait("retrain_rollback", run) == "success"
    assert _aliases(topo)["production"] == target != serving
    latest = topo.registry().history(limit=1)[0]
    assert latest.op == "rollback" and latest.to_version == target


# --- 3. concurrency ----------------------------------------------------------------------------


def test_a_rollback_during_a_deploy_waits_for_it_and_two_runs_queue(topo: Harness) -> None:
    first = topo.trigger(PIPELINE, FORCED)
    second = topo.trigger(PIPELINE, FORCED)
    assert topo.run(PIPELINE, second)["state"] == "queued"  # max_active_runs=1
    topo.wait_task(PIPELINE, first, "deploy", {"running"})
    rollback = topo.trigger("retrain_rollback", {"reason": "during a deploy"})
    assert topo.wait("retrain_rollback", rollback) == "success"
    deployed = _succeeded(topo, first)
    _succeeded(topo, second)
    # the pool serialised them: the rollback's task started after the deploy ended
    deploy = topo.tasks(PIPELINE, first)["deploy"]
    roll = next(iter(topo.tasks("retrain_rollback", rollback).values()))
    assert roll["start_date"] >= deploy["end_date"]
    one, two = topo.run(PIPELINE, first), topo.run(PIPELINE, second)
    assert two["start_date"] >= one["end_date"]
    # both audited, in that order, and the aliases agree with the last move
    history = topo.registry().history(limit=10)
    roll_entry = next(e for e in history if e.op == "rollback")
    assert int(deployed.model_version) == roll_entry.from_version
    last_production = next(e for e in history if e.alias == "production")
    assert _aliases(topo)["production"] == last_production.to_version


# --- 4. faults ---------------------------------------------------------------------------------


def _versions_and_records(topo: Harness, run: str) -> tuple[Any, list[int]]:
    record = _succeeded(topo, run)
    return record, topo.versions_of(record.retraining_id)


def test_a_worker_killed_during_train_is_retried_elsewhere(topo: Harness) -> None:
    run = topo.trigger(PIPELINE, FORCED)
    ti = topo.wait_task(PIPELINE, run, "train", {"running"})
    victim = ti["hostname"]
    topo.kill(victim)  # SIGKILL to the whole worker: its task, its pool, its tmpfs
    start_process(topo.topology, victim)  # the machine comes back, empty
    record, versions = _versions_and_records(topo, run)
    assert topo.tasks(PIPELINE, run)["train"]["try_number"] >= 2
    assert record.status == "deployed"
    assert versions == [int(record.model_version)]


def test_mlflow_restarted_during_deploy(topo: Harness) -> None:
    run = topo.trigger(PIPELINE, FORCED)
    topo.wait_task(PIPELINE, run, "deploy", {"running"})
    topo.kill("mlflow", signal.SIGTERM)
    time.sleep(3)
    restart_mlflow(topo.topology)
    record, versions = _versions_and_records(topo, run)
    assert record.status == "deployed"
    assert versions == [int(record.model_version)]
    aliases = _aliases(topo)
    assert aliases["production"] == int(record.model_version)
    # no alias half-moved: nothing but production points at the new version
    assert [a for a, v in aliases.items() if v == int(record.model_version)] == ["production"]
    assert not topo.registry().pending()


def test_workers_reconnect_after_redis_restarts(topo: Harness) -> None:
    run = topo.trigger(PIPELINE, FORCED)
    topo.wait_task(PIPELINE, run, "extract", {"running", "success"})
    topo.redis.stop()
    time.sleep(2)
    topo.redis.start()
    record, versions = _versions_and_records(topo, run)
    assert record.status == "deployed" and len(versions) == 1
    wait_healthy(topo.topology, timeout=120)  # both workers answer again


def test_the_run_goes_on_after_the_scheduler_is_killed(topo: Harness) -> None:
    run = topo.trigger(PIPELINE, FORCED)
    topo.wait_task(PIPELINE, run, "validate", {"running", "success"})
    topo.kill("scheduler")
    time.sleep(2)
    start_process(topo.topology, "scheduler")
    record, versions = _versions_and_records(topo, run)
    assert record.status == "deployed" and len(versions) == 1
