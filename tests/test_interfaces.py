"""One path for every interface: each CLI command and its DAG task call the same library
function and reach the same decision on the same data (real Airflow, real MLflow server)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from retrain import deploy
from retrain.cli import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, main
from retrain.config import RetrainConfig
from retrain.errors import (
    ChecklistError,
    ConfigError,
    DataError,
    RegistryError,
    RegistryUnavailableError,
    exit_code,
    is_retryable,
)
from retrain.pipeline import decision, graph
from retrain.registry import ModelRegistry
from tests import airflow_harness as af
from tests.helpers import (
    LOGREG,
    churn_sections,
    merge_sections,
    production,
    run_record,
    write_config,
)
from tools.mlflow_server import free_port
from tools.synthetic import StreamSpec, write_stream

SPEC = StreamSpec(weeks=6, rows_per_week=1500, drift_week=None)
WEEK = timedelta(weeks=1)
AGE_ONLY = {"model_age": {"trigger": "model_age", "condition": "days_since_training > 60"}}
F1_ONLY = {"f1_drop": {"trigger": "f1_drop", "condition": "f1 < 0.8"}}


class Spy:
    """Wraps a library function and records that (and with what) it was called."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.calls: list[dict[str, Any]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return self.fn(*args, **kwargs)


@pytest.fixture(scope="module")
def airflow_db() -> None:
    af.migrate()


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("interfaces") / "events"
    write_stream(root, SPEC)
    return root


@pytest.fixture
def setup(
    airflow_db: None,
    events: Path,
    make_config: Callable[..., RetrainConfig],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., tuple[RetrainConfig, Path]]:
    """A config for the churn stream written where ``$RETRAIN_CONFIG`` (the DAGs) and
    ``--config`` (the CLI) both read it; calling it again rewrites the same file."""
    path = tmp_path / "retraining.yaml"

    def make(**extra: Any) -> tuple[RetrainConfig, Path]:
        sections = churn_sections(
            events,
            estimator=LOGREG,
            params={"max_iter": 300},
            data={"training_window_days": 21},
            storage={"work_dir": str(tmp_path / "work")},
            triggers={"cooldown_hours": 0},
            schedule={"retries": 2},
        )
        config = make_config(**merge_sections(sections, extra))
        write_config(config, path)
        monkeypatch.setenv("RETRAIN_CONFIG", str(path))
        return config, path

    return make


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    """Exit code, the JSON document on stdout (``None`` if empty) and stderr of a command."""
    capsys.readouterr()  # what earlier steps of the test printed is not this command's output
    code = main([*argv, "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err


class TestCheck:
    """``retrain check`` and the pipeline's ``check`` task: the same ``decide``, vetoes
    included, give the same answer at the same time on the same data."""

    @pytest.mark.parametrize(
        ("weeks", "proceed", "reason"),
        [
            pytest.param(4.3, False, "no rule fired", id="quiet week: nothing fires"),
            pytest.param(30.1, False, "stale data", id="stale window: the veto holds both back"),
        ],
    )
    def test_the_cli_and_the_dag_decide_alike(  # noqa: PLR0917 - fixtures and parameters
        self,
        setup: Callable[..., tuple[RetrainConfig, Path]],
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
        weeks: float,
        proceed: bool,
        reason: str,
    ) -> None:
        config, path = setup(cadence={"monthly_days": 7})
        assert run_record(config, as_of=SPEC.start + 4 * WEEK)["status"] == "deployed"
        spy = Spy(decision.decide)
        monkeypatch.setattr(decision, "decide", spy)
        when = SPEC.start + weeks * WEEK

        code, cli, _ = cli_json(capsys, "check", "--config", str(path), "--as-of", when.isoformat())
        run = af.run_dag(af.get_dag("retrain_pipeline"), run_type="scheduled", logical_date=when)
        dag = af.xcom(run, "check")

        assert [str(c["trigger"]) for c in spy.calls] == ["scheduled", "scheduled"]
        assert cli["proceed"] is dag["proceed"] is proceed
        assert code == EXIT_OK
        assert cli["run_reasons"] == dag["reasons"]
        assert reason in dag["reasons"][0]
        assert af.states(run)["extract"] == "skipped"


class TestPromote:
    """``retrain promote`` and ``retrain_promote``: the same ``deploy.promote``, the same
    checklist; a config whose only model rule is ``f1 < 0.8`` monitors the model on both."""

    def test_both_refuse_without_monitoring_and_both_promote_with_an_f1_rule(
        self,
        setup: Callable[..., tuple[RetrainConfig, Path]],
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        config, path = setup(retraining_rules=AGE_ONLY)
        first = run_record(config, as_of=SPEC.start + 4 * WEEK, target_stage="canary")
        assert first["status"] == "canary", first["notes"]
        spy = Spy(deploy.promote)
        monkeypatch.setattr(deploy, "promote", spy)
        promote_dag = af.get_dag("retrain_promote")

        # no rule watches the model: the production checklist refuses on both paths
        run = promote_dag.test(run_conf={"reason": "looks fine"})
        assert af.states(run)["promote"] == "failed"
        code, _, err = cli_json(
            capsys, "promote", "1", "--to", "production", "--reason", "x", "--config", str(path)
        )
        assert code == EXIT_FAILURE
        assert "checklist blocks promotion to production: Monitoring alerts configured" in err
        assert production(config) is None

        # the only model rule is f1 < 0.8: monitoring is configured on both paths
        config, path = setup(retraining_rules=F1_ONLY)
        run = promote_dag.test(run_conf={"reason": "f1 rule watches it"})
        assert str(run.state) == "success", af.states(run)
        assert production(config) == 1
        second = run_record(
            config,
            as_of=SPEC.start + 5 * WEEK,
            target_stage="canary",
            force=True,
            force_reason="second canary",
        )
        assert second["status"] == "canary", second["notes"]
        code, moved, _ = cli_json(
            capsys, "promote", "2", "--to", "production", "--reason", "ok", "--config", str(path)
        )
        assert code == EXIT_OK and (moved["from_version"], moved["to_version"]) == (1, 2)
        assert production(config) == 2
        assert [c["to"] for c in spy.calls] == ["production"] * 4


class TestRollback:
    def test_the_cli_and_the_dag_roll_back_through_the_same_function(
        self,
        setup: Callable[..., tuple[RetrainConfig, Path]],
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        config, path = setup()
        for weeks, reason in ((4, None), (5, "v2")):
            options = {"force": True, "force_reason": reason} if reason else {}
            assert run_record(config, as_of=SPEC.start + weeks * WEEK, **options)["status"] == (
                "deployed"
            )
        spy = Spy(deploy.rollback_with_report)
        monkeypatch.setattr(deploy, "rollback_with_report", spy)

        code, entry, _ = cli_json(capsys, "rollback", "--reason", "cli says back", "-c", str(path))
        assert code == EXIT_OK and (entry["from_version"], entry["to_version"]) == (2, 1)
        run = af.get_dag("retrain_rollback").test(run_conf={"reason": "dag says forward"})
        report = af.xcom(run, "rollback")

        assert (report["before"]["production"], report["after"]["production"]) == (1, 2)
        assert [c["reason"] for c in spy.calls] == ["cli says back", "dag says forward"]


class TestRun:
    """``retrain run`` and ``retrain_pipeline`` run the same step functions of the graph."""

    def test_the_same_steps_run_with_the_same_outcome(
        self,
        setup: Callable[..., tuple[RetrainConfig, Path]],
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
        model_name: str,
    ) -> None:
        ran: list[str] = []
        for step in graph.STEPS.values():
            module, _, name = step.function.partition(":")
            fn = graph.load(step.function)

            def spy(*args: Any, _fn: Any = fn, _name: str = step.name, **kwargs: Any) -> Any:
                ran.append(_name)
                return _fn(*args, **kwargs)

            monkeypatch.setattr(sys.modules[module], name, spy)
        when = (SPEC.start + 4 * WEEK).isoformat()

        _, path = setup(model={"name": f"{model_name}-cli"})
        code, cli, _ = cli_json(capsys, "run", "--config", str(path), "--as-of", when)
        cli_steps, ran[:] = list(ran), []
        setup(model={"name": f"{model_name}-dag"})
        run = af.get_dag("retrain_pipeline").test(run_conf={"as_of": when})
        dag = af.xcom(run, "finish")

        assert code == EXIT_OK
        expected = ["check", "extract", "validate", "train", "evaluate", "compare", "deploy"]
        assert cli_steps == ran == expected
        assert cli["status"] == dag["status"] == "deployed"
        assert cli["trigger"] == dag["trigger"] == "manual"
        assert cli["data_version"] == dag["data_version"]

    def test_run_json_is_json_on_stdout(
        self, setup: Callable[..., tuple[RetrainConfig, Path]], events: Path
    ) -> None:
        _, path = setup()
        retrain = Path(sys.executable).with_name("retrain")
        when = (SPEC.start + 4 * WEEK).isoformat()
        run = subprocess.run(
            [str(retrain), "run", "--config", str(path), "--as-of", when, "--json"],
            capture_output=True,
            text=True,
            check=False,
        )
        tool = subprocess.run(
            [sys.executable, "-m", "json.tool"],
            input=run.stdout,
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == EXIT_OK, run.stderr
        assert tool.returncode == 0, (run.stdout[:500], tool.stderr)
        assert json.loads(run.stdout)["status"] == "deployed"


class TestRetryability:
    @pytest.mark.parametrize(
        ("error", "retryable", "code"),
        [
            pytest.param(DataError(["column 'x': missing"]), False, EXIT_BAD_INPUT, id="data"),
            pytest.param(ConfigError(["model: required"]), False, EXIT_BAD_INPUT, id="config"),
            pytest.param(ChecklistError("production", []), False, EXIT_FAILURE, id="checklist"),
            pytest.param(RegistryError("illegal transition"), False, EXIT_FAILURE, id="refused"),
            pytest.param(RegistryUnavailableError("down"), True, EXIT_FAILURE, id="unreachable"),
            pytest.param(ValueError("bad"), False, EXIT_BAD_INPUT, id="a stray ValueError"),
            pytest.param(OSError("disk"), True, EXIT_FAILURE, id="an OSError"),
        ],
    )
    def test_one_policy_for_every_error(
        self, error: BaseException, retryable: bool, code: int
    ) -> None:
        assert is_retryable(error) is retryable
        assert exit_code(error) == code

    def test_an_unreachable_server_is_temporary_on_both_paths(
        self,
        make_config: Callable[..., RetrainConfig],
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        url = f"http://127.0.0.1:{free_port()}"
        config = make_config(registry={"tracking_uri": url})
        path = write_config(config, tmp_path / "down.yaml")

        with pytest.raises(RegistryUnavailableError, match="unreachable") as caught:
            ModelRegistry(config).current()
        code, _, err = cli_json(capsys, "status", "--config", str(path))

        assert is_retryable(caught.value), "a task failing on it is retried by Airflow"
        assert code == EXIT_FAILURE and "running again may succeed" in err

    def test_a_final_error_is_not_retried_under_airflow_and_fails_the_cli(
        self,
        setup: Callable[..., tuple[RetrainConfig, Path]],
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        bad = tmp_path / "bad"
        bad.mkdir()
        write_stream(bad, StreamSpec(weeks=4, rows_per_week=1500, drift_week=None))
        for part in bad.rglob("*.parquet"):
            pd.read_parquet(part).drop(columns=["tenure"]).to_parquet(part)
        _, path = setup()
        data = yaml.safe_load(path.read_text())
        data["data"]["source"]["path"] = str(bad)
        path.write_text(yaml.safe_dump(data))
        when = (SPEC.start + 4 * WEEK).isoformat()

        run = af.get_dag("retrain_pipeline").test(run_conf={"as_of": when})
        code, record, _ = cli_json(capsys, "run", "--config", str(path), "--as-of", when)

        states = af.states(run)
        assert states["validate"] == "failed", "schedule.retries is 2, but bad data is final"
        assert str(run.state) == "failed"
        assert code == EXIT_BAD_INPUT and record["failed_step"] == "validate"
