from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

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
