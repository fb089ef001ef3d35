from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from retrain.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_REJECTED, EXIT_TRIGGERED, main
from retrain.config import RetrainConfig
from tests.helpers import LOGREG, churn_sections, write_config
from tools.synthetic import StreamSpec, write_stream

SPEC = StreamSpec(weeks=5, rows_per_week=1500, drift_week=None)


@pytest.fixture
def config_file(make_config: Callable[..., RetrainConfig], tmp_path: Path) -> Path:
    write_stream(tmp_path / "events", SPEC)
    config = make_config(
        **churn_sections(
            tmp_path / "events",
            estimator=LOGREG,
            params={"max_iter": 300},
            storage={"work_dir": str(tmp_path / "work")},
        )
    )
    return write_config(config, tmp_path / "retraining.yaml")


def as_of(weeks: float) -> str:
    return (SPEC.start + timedelta(weeks=weeks)).isoformat()


class TestRunCommand:
    def test_run_check_and_log(self, config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
        rc = main(
            [
                "run",
                "--config",
                str(config_file),
                "--trigger",
                "scheduled",
                "--as-of",
                as_of(3),
                "--json",
            ]
        )
        captured = capsys.readouterr()
        record = json.loads(captured.out)
        assert rc == EXIT_OK, captured.err
        assert record["status"] == "deployed" and record["model_version"] == "1"
        for step in ("check", "extract", "validate", "train", "evaluate", "compare", "deploy"):
            assert step in captured.err, f"progress shows step {step}"

        # live check a few days later: nothing fires, signals come from data + registry
        rc = main(["check", "--config", str(config_file), "--as-of", as_of(3.7), "--json"])
        decision = json.loads(capsys.readouterr().out)
        assert rc == EXIT_OK, decision["reasons"]
        assert decision["live"]["production_version"] == 1
        assert 900 < decision["signals"]["new_samples"] < 1200
        assert decision["signals"]["accuracy"] > 0.85
        assert decision["signals"]["drift_count"] == 0

        # scheduled run with nothing firing exits 0 and says why
        rc = main(
            ["run", "--config", str(config_file), "--trigger", "scheduled", "--as-of", as_of(3.7)]
        )
        out = capsys.readouterr().out
        assert rc == EXIT_OK and "skipped" in out

        # a forced check bypasses everything
        rc = main(
            [
                "check",
                "--config",
                str(config_file),
                "--as-of",
                as_of(3.7),
                "--force",
                "--reason",
                "test",
            ]
        )
        assert rc == EXIT_TRIGGERED
        capsys.readouterr()

        rc = main(["log", "--config", str(config_file), "--json"])
        records = json.loads(capsys.readouterr().out)
        assert [r["status"] for r in records] == ["skipped", "deployed"]

    def test_rejected_run_exits_3(
        self, config_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        data = yaml.safe_load(config_file.read_text())
        data["evaluation"]["thresholds"] = {"accuracy": 0.999}
        config_file.write_text(yaml.safe_dump(data))
        rc = main(["run", "--config", str(config_file), "--as-of", as_of(3), "--json"])
        record = json.loads(capsys.readouterr().out)
        assert rc == EXIT_REJECTED
        assert "threshold 0.999" in record["notes"]

    def test_force_needs_reason(
        self, config_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(["run", "--config", str(config_file), "--force"]) == EXIT_BAD_INPUT
        assert "a forced run needs a reason" in capsys.readouterr().err

    def test_invalid_data_exits_2(
        self, config_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        rc = main(["run", "--config", str(config_file), "--as-of", as_of(-1), "--json"])
        record = json.loads(capsys.readouterr().out)
        assert rc == EXIT_BAD_INPUT
        assert record["failed_step"] == "validate"


def windowed(config_file: Path, days: int) -> Path:
    """``config_file`` with ``data.training_window_days: days``."""
    data = yaml.safe_load(config_file.read_text())
    data["data"]["training_window_days"] = days
    config_file.write_text(yaml.safe_dump(data))
    return config_file


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    rc = main(["run", *argv, "--json"])
    captured = capsys.readouterr()
    return rc, json.loads(captured.out)


class TestRunModes:
    """``retrain run --mode weekly|full_rebuild``: the mode is carried to every step and recorded;
    a full rebuild takes all history up to ``--as-of`` whatever ``data.training_window_days``."""

    def test_a_full_rebuild_trains_on_all_history_and_its_run_records_the_mode(
        self, config_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        from mlflow import MlflowClient

        path = str(windowed(config_file, 7))
        rc, weekly = run_json(capsys, "--config", path, "--as-of", as_of(5))
        assert rc == EXIT_OK and weekly["status"] == "deployed"
        rc, rebuild = run_json(
            capsys, "--config", path, "--mode", "full_rebuild", "--as-of", as_of(5)
        )
        assert rc in (EXIT_OK, EXIT_REJECTED), rebuild
        assert rebuild["error"] is None

        client = MlflowClient()
        weekly_run = client.get_run(weekly["mlflow_run_id"])
        rebuild_run = client.get_run(rebuild["mlflow_run_id"])
        assert weekly_run.data.tags["retrain.mode"] == "weekly"
        assert rebuild_run.data.tags["retrain.mode"] == "full_rebuild"
        # the week-long window vs all five weeks of history
        weekly_rows = weekly_run.data.metrics["rows"]
        assert 1000 < weekly_rows < 2000
        assert rebuild_run.data.metrics["rows"] > 4 * weekly_rows
        assert weekly_run.data.params["window_start"] != "None"
        assert rebuild_run.data.params["window_start"] == "None"

    def test_the_retraining_log_record_carries_the_mode(
        self, config_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        rc, record = run_json(
            capsys, "--config", str(config_file), "--mode", "full_rebuild", "--as-of", as_of(3)
        )
        assert rc == EXIT_OK, record
        assert record["mode"] == "full_rebuild"

    @pytest.mark.parametrize(
        ("argv", "fragment"),
        [
            pytest.param(
                ["--mode", "full_rebuild", "--window-days", "7"],
                "a full rebuild trains on all history up to as_of",
                id="a full rebuild with a window",
            ),
            pytest.param(["--mode", "monthly"], "invalid choice: 'monthly'", id="unknown mode"),
        ],
    )
    def test_bad_modes_exit_2(
        self,
        config_file: Path,
        argv: list[str],
        fragment: str,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        try:
            rc = main(["run", "--config", str(config_file), *argv])
        except SystemExit as exc:  # argparse refuses an unknown choice
            rc = int(exc.code or 0)
        assert rc == EXIT_BAD_INPUT
        assert fragment in capsys.readouterr().err
