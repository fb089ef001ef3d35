"""The DAGs on real Airflow 3.3 (SQLite metadata DB) against a real MLflow server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from retrain.config import RetrainConfig
from retrain.log import LogStore
from retrain.registry import ModelRegistry
from tests import airflow_harness as af
from tests.helpers import churn_sections, production, write_config
from tools import local_runner
from tools.synthetic import StreamSpec, generate_week, write_stream

DAG_IDS = {
    "retrain_pipeline",
    "retrain_full_rebuild",
    "retrain_monitor",
    "retrain_rollback",
    "retrain_promote",
}
SPEC = StreamSpec(weeks=8, rows_per_week=2000, drift_week=5)
WEEK = timedelta(weeks=1)
HEAVY = ("pandas", "sklearn", "mlflow", "scipy", "pyarrow", "matplotlib", "numpy")


@pytest.fixture(scope="module")
def airflow_db() -> None:
    af.migrate()


@pytest.fixture
def churn_config(
    make_config: Callable[..., RetrainConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., RetrainConfig]:
    """Write a config for ``data`` and point ``$RETRAIN_CONFIG`` (what the DAGs read) at it."""

    def make(data: Path, **extra: Any) -> RetrainConfig:
        config = make_config(
            **churn_sections(
                data,
                params={"max_iter": 60},
                data={"training_window_days": 21},
                storage={"work_dir": str(tmp_path / "work")},
                triggers={"cooldown_hours": 0},
            ),
            **extra,
        )
        monkeypatch.setenv("RETRAIN_CONFIG", str(write_config(config, tmp_path / "c.yaml")))
        return config

    return make


@pytest.fixture
def bag(
    airflow_db: None, churn_config: Callable[..., RetrainConfig], tmp_path: Path
) -> Iterator[Any]:
    churn_config(tmp_path / "unused")  # the DAG files read a config at parse time
    yield af.dagbag()


class TestDagBag:
    def test_all_dags_load_without_errors_or_deprecations(self, bag: Any, tmp_path: Path) -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fresh = af.dagbag()
        assert fresh.import_errors == {}
        assert set(fresh.dag_ids) == DAG_IDS
        ours = [
            w
            for w in caught
            if str(af.REPO) in str(w.filename) and issubclass(w.category, DeprecationWarning)
        ]
        assert ours == []

    def test_dag_files_import_nothing_heavy_and_parse_fast(self, bag: Any) -> None:
        code = (
            "import sys, time, json\n"
            "from airflow.dag_processing.dagbag import DagBag\n"
            "import pathlib\n"
            f"times = {{}}\n"
            f"for f in sorted(pathlib.Path({str(af.DAGS)!r}).glob('*.py')):\n"
            "    t = time.perf_counter(); bag = DagBag(dag_folder=str(f)); "
            "times[f.name] = time.perf_counter() - t\n"
            "    assert not bag.import_errors, bag.import_errors\n"
            f"print(json.dumps({{'times': times, 'heavy': [m for m in {HEAVY!r} "
            "if m in sys.modules]}))\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        report = json.loads(result.stdout.strip().splitlines()[-1])
        assert report["heavy"] == [], "DAG files must not import heavy modules at parse time"
        assert set(report["times"]) == {f"{d}.py" for d in DAG_IDS | {"retrain_canary"}}

    def test_pipeline_shape(self, bag: Any) -> None:
        dag = bag.get_dag("retrain_pipeline")
        assert dag.max_active_runs == 1
        assert dag.get_task("finish").trigger_rule == "all_done"
        assert dag.get_task("deploy").pool == "retrain_registry"
        assert dag.get_task("extract").retries == 2
        assert dag.get_task("extract").retry_delay == timedelta(minutes=10)
        assert {
            "reason",
            "force",
            "skip_ab",
            "target_stage",
            "window_days",
            "as_of",
            "only_if_triggered",
            "mode",
        } <= set(dag.params)
        assert dag.get_task("start").pool == "retrain_registry"
        for task in dag.tasks:
            assert task.doc_md, f"task {task.task_id} has doc_md"
        assert dag.doc_md and "retrain_pipeline" in dag.doc_md

    def test_the_graph_reads_like_the_seeds_pipeline(self, bag: Any) -> None:
        """At most 14 edges (it had 34): each task depends on the step before it, not on
        ``check``, and ``finish`` waits for the leaves only."""
        dag = bag.get_dag("retrain_pipeline")
        edges = sum(len(task.downstream_task_ids) for task in dag.tasks)
        assert edges <= 14, edges
        assert dag.get_task("train").upstream_task_ids == {"validate"}
        assert len(dag.get_task("finish").upstream_task_ids) <= 3


class TestParams:
    @pytest.mark.parametrize(
        ("dag_id", "conf", "fragment"),
        [
            pytest.param(
                "retrain_pipeline", {"target_stage": "prod"}, "prod", id="unknown target stage"
            ),
            pytest.param(
                "retrain_pipeline", {"window_days": 0}, "window_days", id="zero-day window"
            ),
            pytest.param("retrain_pipeline", {"force": "yes"}, "force", id="force not a boolean"),
            pytest.param(
                "retrain_pipeline", {"as_of": "next tuesday"}, "as_of", id="as_of not a time"
            ),
            pytest.param(
                "retrain_pipeline", {"as_of": "2026-02-03T25:00"}, "as_of", id="as_of hour 25"
            ),
            pytest.param("retrain_pipeline", {"as_of": "2026-13-01"}, "as_of", id="as_of month 13"),
            pytest.param("retrain_monitor", {"as_of": "next tuesday"}, "as_of", id="monitor as_of"),
            pytest.param("retrain_pipeline", {"mode": "monthly"}, "mode", id="unknown mode"),
            pytest.param(
                "retrain_full_rebuild", {"mode": "nightly"}, "mode", id="rebuild unknown mode"
            ),
            pytest.param("retrain_rollback", {}, "reason", id="rollback without a reason"),
            pytest.param(
                "retrain_rollback",
                {"reason": "x", "to_version": 0},
                "reason",
                id="rollback reason too short and version zero",
            ),
        ],
    )
    def test_invalid_conf_is_rejected(
        self, bag: Any, dag_id: str, conf: dict[str, Any], fragment: str
    ) -> None:
        from airflow.sdk.exceptions import ParamValidationError

        with pytest.raises(ParamValidationError, match=fragment):
            af.get_dag(dag_id).test(run_conf=conf)


class TestFullRebuildDag:
    """``retrain_full_rebuild``: the pipeline's tasks, built by the same factory, in mode
    ``full_rebuild`` on ``schedule.full_rebuild``."""

    def test_the_same_step_graph_as_the_pipeline_on_its_own_schedule(self, bag: Any) -> None:
        weekly, rebuild = bag.get_dag("retrain_pipeline"), bag.get_dag("retrain_full_rebuild")
        assert set(rebuild.task_dict) == set(weekly.task_dict)
        for task_id, task in weekly.task_dict.items():
            other = rebuild.get_task(task_id)
            assert other.downstream_task_ids == task.downstream_task_ids, task_id
            assert (other.pool, other.trigger_rule) == (task.pool, task.trigger_rule)
        assert rebuild.max_active_runs == 1
        assert rebuild.timetable.expression == "0 20 * * 0#1"
        from airflow.serialization.encoders import coerce_to_core_timetable

        described = coerce_to_core_timetable(rebuild.timetable).description
        assert described == "At 20:00, on the first Sunday of the month"
        assert weekly.timetable.timetable.expression == "0 6 * * 1"
        assert not getattr(rebuild.timetable, "asset_condition", None), "no asset triggers"
        assert "full_rebuild" in rebuild.tags and "weekly" in weekly.tags
        assert rebuild.doc_md and "retrain_full_rebuild" in rebuild.doc_md

    def test_the_trigger_forms_offer_the_mode_defaulting_to_the_dags_schedule(
        self, bag: Any
    ) -> None:
        for dag_id, default in (
            ("retrain_pipeline", "weekly"),
            ("retrain_full_rebuild", "full_rebuild"),
        ):
            param = bag.get_dag(dag_id).params.get_param("mode")
            assert param.value == default
            assert param.schema["enum"] == ["weekly", "full_rebuild"]

    def test_the_factory_builds_both_from_one_code_path(self, bag: Any) -> None:
        from retrain_airflow.dags import all_dags, full_rebuild_dags, pipeline_dags

        assert set(full_rebuild_dags()) == {"retrain_full_rebuild"}
        assert {"retrain_pipeline", "retrain_full_rebuild"} <= set(all_dags())
        assert "retrain_full_rebuild" not in pipeline_dags()


# --- a weekly run and a full rebuild of one model never overlap ----------------------------------

RUNNER = """
import json, os, sys, time
from datetime import timedelta
from pathlib import Path
from tests import airflow_harness as af
af.configure_environment()
import retrain_airflow.runtime as runtime
runtime.WAIT_POLL = timedelta(seconds=1)
hold = os.environ.get("RETRAIN_TEST_HOLD")
if hold:  # the run stays active in extract until the test lets it go on
    real = runtime.run_step
    def held(config, name):
        if name == "extract":
            Path(hold, "entered").touch()
            deadline = time.monotonic() + 300
            while not Path(hold, "release").exists() and time.monotonic() < deadline:
                time.sleep(0.2)
        return real(config, name)
    runtime.run_step = held
run = af.get_dag(sys.argv[1]).test(run_conf=json.loads(sys.argv[2]))
print("RESULT " + json.dumps({"state": str(run.state), "states": af.states(run),
    "start": af.xcom(run, "start"), "extract": af.xcom(run, "extract"),
    "evaluate": af.xcom(run, "evaluate"), "record": af.xcom(run, "finish")}, default=str))
"""


def run_in_process(dag_id: str, conf: dict[str, Any], hold: Path | None = None) -> dict[str, Any]:
    """``dag.test()`` of ``dag_id`` in its own process (held in ``extract`` with ``hold``)."""
    env = os.environ.copy()
    if hold is not None:
        env["RETRAIN_TEST_HOLD"] = str(hold)
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, dag_id, json.dumps(conf)],
        capture_output=True,
        text=True,
        cwd=af.REPO,
        env=env,
        timeout=600,
        check=False,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, f"{dag_id} printed no result:\n{result.stderr[-3000:]}"
    report: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    report["stdout"] = result.stdout
    report["stderr"] = result.stderr
    return report


def latest_ti(dag_id: str, task_id: str) -> tuple[Any, int]:
    """The task instance of ``dag_id``'s newest run and how often it was rescheduled."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.taskreschedule import TaskReschedule
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        run_id = session.scalar(
            select(DagRun.run_id).where(DagRun.dag_id == dag_id).order_by(DagRun.id.desc())
        )
        ti = session.scalar(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.run_id == run_id,
                TaskInstance.task_id == task_id,
            )
        )
        if ti is None:
            return None, 0
        count = session.scalar(
            select(func.count()).select_from(TaskReschedule).where(TaskReschedule.ti_id == ti.id)
        )
        session.expunge(ti)
        return ti, int(count or 0)


def wait_until(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


class TestNoOverlap:
    def test_a_rebuild_requested_while_a_weekly_run_is_active_waits(
        self, bag: Any, churn_config: Callable[..., RetrainConfig], tmp_path: Path
    ) -> None:
        data = tmp_path / "events"
        write_stream(data, StreamSpec(weeks=4, rows_per_week=1500, drift_week=None))
        config = churn_config(data, schedule={"retries": 0})
        local_runner.reserialize()  # both DAGs on this config before two processes run them
        hold = tmp_path / "hold"
        hold.mkdir()
        at = (SPEC.start + 4 * WEEK).isoformat()

        with ThreadPoolExecutor(2) as pool:
            weekly = pool.submit(
                run_in_process,
                "retrain_pipeline",
                {"force": True, "reason": "first model", "as_of": at},
                hold,
            )
            try:
                wait_until("the weekly run to reach extract", (hold / "entered").exists, 300)
                rebuild = pool.submit(run_in_process, "retrain_full_rebuild", {"as_of": at})
                # the rebuild's start is put off (rescheduled, no worker held) again and again
                wait_until("the rebuild to wait", lambda: latest_ti(*REBUILD_START)[1] >= 3, 180)
                assert latest_ti("retrain_full_rebuild", "check")[0].state is None
                assert latest_ti("retrain_pipeline", "extract")[0].state == "running"
            finally:
                (hold / "release").touch()
            weekly_report, rebuild_report = weekly.result(), rebuild.result()

        assert weekly_report["state"] == "success", weekly_report["states"]
        assert rebuild_report["state"] == "success", rebuild_report["states"]
        assert weekly_report["record"]["status"] == "deployed"
        assert "waiting: run manual__" in rebuild_report["stdout"]
        # the rebuild began only once the weekly run had finished
        weekly_finish = latest_ti("retrain_pipeline", "finish")[0]
        rebuild_start, reschedules = latest_ti(*REBUILD_START)
        rebuild_check = latest_ti("retrain_full_rebuild", "check")[0]
        assert reschedules >= 3
        assert rebuild_start.end_date >= weekly_finish.end_date
        assert rebuild_check.start_date >= weekly_finish.end_date
        # each run carries its mode; the rebuild extracts all history, the weekly run its window
        assert weekly_report["start"]["mode"] == "weekly"
        assert rebuild_report["start"]["mode"] == "full_rebuild"
        assert weekly_report["extract"]["window_start"] is not None
        assert rebuild_report["extract"]["window_start"] is None
        assert rebuild_report["extract"]["rows"] > weekly_report["extract"]["rows"]
        assert production(config) >= 1
        # the rebuild's evaluate ran the comprehensive tests against production, through XCom
        assert weekly_report["evaluate"]["rebuild_tests"] is None
        tests = rebuild_report["evaluate"]["rebuild_tests"]
        assert tests["robustness"]["passed"] is True and tests["slices"] is not None
        logged = rebuild_report["record"]["rebuild_tests"]
        assert logged["items"][0]["name"] == "cross_validated"


REBUILD_START = ("retrain_full_rebuild", "start")


def log_records(config: RetrainConfig) -> list[Any]:
    return LogStore.of(config).records()


class TestPipelineStory:
    """Manual forced run -> quiet scheduled run -> monitor drift event -> asset-triggered run ->
    rollback, on one model."""

    def test_story(
        self, bag: Any, churn_config: Callable[..., RetrainConfig], tmp_path: Path
    ) -> None:
        data = tmp_path / "events"
        write_stream(data, SPEC)
        config = churn_config(data, schedule={"retries": 0})
        pipeline = af.get_dag("retrain_pipeline")

        # manual forced run -> a new production version
        run = pipeline.test(
            run_conf={
                "force": True,
                "reason": "first model",
                "as_of": (SPEC.start + 4 * WEEK).isoformat(),
            }
        )
        assert str(run.state) == "success", af.states(run)
        record = af.xcom(run, "finish")
        assert record["status"] == "deployed" and record["trigger"] == "manual"
        assert record["forced"] is True
        assert production(config) == 1

        # a scheduled run with nothing triggered short-circuits cleanly and says why
        run = af.run_dag(
            pipeline, run_type="scheduled", logical_date=SPEC.start + 4 * WEEK + timedelta(days=3)
        )
        states = af.states(run)
        assert str(run.state) == "success", states
        assert states["extract"] == "skipped" and states["deploy"] == "skipped"
        assert states["finish"] == "success"
        record = af.xcom(run, "finish")
        assert record["status"] == "skipped"
        assert record["notes"].startswith("no rule fired")
        assert production(config) == 1

        # the monitor sees the drift weeks and emits the drift asset event with reasons
        monitor = af.get_dag("retrain_monitor")
        af.unpause("retrain_pipeline")
        run = monitor.test(logical_date=SPEC.start + 7 * WEEK)
        states = af.states(run)
        assert states["emit_drift"] == "success", states
        assert states["emit_volume"] == "skipped"
        events = dict(af.asset_events("retrain_monitor", run.run_id))
        drift_extra = events[f"retrain.{config.model.name}.drift"]
        assert drift_extra["trigger"] == "drift"
        assert any("drift_count" in r for r in drift_extra["reasons"])

        # the asset-triggered run records drift as its trigger and deploys v2
        run = af.run_dag(pipeline, run_type="asset_triggered")
        assert str(run.state) == "success", af.states(run)
        record = af.xcom(run, "finish")
        assert record["trigger"].startswith("drift"), record["trigger"]
        assert any("drift_count" in r for r in record["trigger_reasons"])
        assert record["status"] == "deployed", (record["notes"], af.xcom(run, "check"))
        assert record["model_version"] == "2"
        assert production(config) == 2

        # rollback DAG: the previous version is back with an audit entry
        run = af.get_dag("retrain_rollback").test(run_conf={"reason": "bad canary feedback"})
        assert str(run.state) == "success", af.states(run)
        report = af.xcom(run, "rollback")
        assert report["before"]["production"] == 2 and report["after"]["production"] == 1
        assert production(config) == 1
        entry = ModelRegistry(config).history()[0]
        assert (entry.op, entry.from_version, entry.to_version) == ("rollback", 2, 1)
        assert entry.reason == "bad canary feedback"

        assert [r.status for r in log_records(config)] == ["deployed", "skipped", "deployed"]


class TestPromote:
    def test_the_canary_goes_to_production_through_the_promote_dag(
        self, bag: Any, churn_config: Callable[..., RetrainConfig], tmp_path: Path
    ) -> None:
        data = tmp_path / "events"
        write_stream(data, StreamSpec(weeks=3, rows_per_week=1500, drift_week=None))
        config = churn_config(data, schedule={"retries": 0})
        run = af.get_dag("retrain_pipeline").test(
            run_conf={
                "force": True,
                "reason": "first model",
                "target_stage": "canary",
                "as_of": (SPEC.start + 3 * WEEK).isoformat(),
            }
        )
        assert str(run.state) == "success", af.states(run)
        assert af.xcom(run, "finish")["status"] == "canary"
        current = ModelRegistry(config).current()
        assert current["canary"].version == 1 and "production" not in current

        run = af.get_dag("retrain_promote").test(run_conf={"reason": "canary looked healthy"})

        assert str(run.state) == "success", af.states(run)
        assert production(config) == 1
        assert "canary" not in ModelRegistry(config).current()
        entry = ModelRegistry(config).history()[0]
        assert (entry.op, entry.alias, entry.to_version) == ("promote", "production", 1)
        assert entry.reason == "canary looked healthy"


class TestInvalidData:
    def test_validation_fails_log_is_written_production_unchanged(
        self, bag: Any, churn_config: Callable[..., RetrainConfig], tmp_path: Path
    ) -> None:
        good = tmp_path / "good"
        write_stream(good, StreamSpec(weeks=3, rows_per_week=1500, drift_week=None))
        config = churn_config(good, schedule={"retries": 0})
        run = af.get_dag("retrain_pipeline").test(
            run_conf={"as_of": (SPEC.start + 3 * WEEK).isoformat()}
        )
        assert str(run.state) == "success", af.states(run)
        assert production(config) == 1

        bad = tmp_path / "bad"
        bad.mkdir()
        generate_week(SPEC, 3).drop(columns=["tenure"]).to_parquet(bad / "w.parquet")
        assert churn_config(bad, schedule={"retries": 0}).model.name == config.model.name
        run = af.get_dag("retrain_pipeline").test(
            run_conf={"as_of": (SPEC.start + 4 * WEEK).isoformat()}
        )
        states = af.states(run)
        assert str(run.state) == "failed"
        assert states["validate"] == "failed"
        assert states["finish"] == "failed", "finish writes the log, then fails the run"
        assert states["deploy"] == "upstream_failed"
        records = log_records(config)
        assert records[0].status == "failed"
        assert "column 'tenure': required but missing" in (records[0].error or "")
        assert records[0].failed_step == "validate"
        assert production(config) == 1
        assert len(ModelRegistry(config).versions()) == 1


class TestActor:
    """Who the audit history names for a DAG run (``retrain_airflow.runtime.actor``)."""

    @staticmethod
    def run(user: str | None, run_type: str) -> dict[str, Any]:
        from types import SimpleNamespace

        return {"dag_run": SimpleNamespace(triggering_user_name=user, run_type=run_type)}

    def test_the_triggering_user_wins(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from retrain_airflow.runtime import actor

        monkeypatch.setenv("RETRAIN_ACTOR", "ops-bot")
        assert actor(self.run("alice", "manual")) == "alice"

    def test_without_a_user_retrain_actor_then_what_started_the_run(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from retrain_airflow.runtime import actor

        monkeypatch.setenv("RETRAIN_ACTOR", "ops-bot")
        assert actor(self.run(None, "scheduled")) is None, "the registry reads RETRAIN_ACTOR"
        monkeypatch.delenv("RETRAIN_ACTOR")
        assert actor(self.run(None, "scheduled")) == "airflow:scheduled"
        assert actor(self.run(None, "asset_triggered")) == "airflow:asset_triggered"
        assert actor({}) is None, "outside a task: the OS user, as on the CLI"


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("2026-02-01", True),
        ("2026-02-01T03:00:00+00:00", True),
        ("2026-02-01 03:00Z", True),
        ("2026-12-31T23:59:59.5-0500", True),
        ("2026-02-03T25:00", False),
        ("2026-13-01", False),
        ("2026-02-00", False),
        ("2026-02-01T03:60", False),
        ("next tuesday", False),
    ],
)
def test_the_as_of_pattern_takes_iso_times_only(value: str, valid: bool) -> None:
    import re

    from retrain_airflow.dags.params import AS_OF_PATTERN

    assert bool(re.match(AS_OF_PATTERN, value)) is valid
