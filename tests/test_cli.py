from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from retrain.cli import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, EXIT_TRIGGERED, main

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "config" / "retraining.yaml")
SIGNALS = REPO / "examples" / "signals"


class TestCheck:
    @pytest.mark.parametrize(
        ("signals_file", "code", "trigger"),
        [
            pytest.param("healthy.json", EXIT_OK, "none", id="healthy signals exit 0"),
            pytest.param(
                "degraded.json", EXIT_TRIGGERED, "high_data_drift", id="degraded signals exit 10"
            ),
            pytest.param("first_run.json", EXIT_TRIGGERED, "bootstrap", id="first run bootstraps"),
            pytest.param(
                "cooldown.json",
                EXIT_OK,
                "accuracy_drops_below_0.85",
                id="cooldown holds back a fired rule",
            ),
        ],
    )
    def test_exit_code_and_json(
        self, signals_file: str, code: int, trigger: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        rc = main(["check", "--config", CONFIG, "--signals", str(SIGNALS / signals_file), "--json"])
        out = json.loads(capsys.readouterr().out)
        assert rc == code
        assert out["trigger"] == trigger
        assert out["triggered"] is (code == EXIT_TRIGGERED)

    def test_table_output_lists_reasons(self, capsys: pytest.CaptureFixture[str]) -> None:
        main(["check", "--config", CONFIG, "--signals", str(SIGNALS / "degraded.json")])
        out = capsys.readouterr().out
        assert "RETRAIN" in out
        assert "accuracy_drops_below_0.85: accuracy 0.81 < 0.85" in out
        assert "Cadence: daily" in out

    def test_forced_check_records_reason(self, capsys: pytest.CaptureFixture[str]) -> None:
        rc = main(
            [
                "check",
                "--config",
                CONFIG,
                "--signals",
                str(SIGNALS / "healthy.json"),
                "--force",
                "--reason",
                "new feature",
                "--json",
            ]
        )
        assert rc == EXIT_TRIGGERED
        assert json.loads(capsys.readouterr().out)["force_reason"] == "new feature"

    @pytest.mark.parametrize(
        ("argv", "fragment"),
        [
            pytest.param(
                ["--signals", "missing.json"],
                "missing.json: file not found",
                id="missing signals file",
            ),
            pytest.param(
                ["--signals", str(SIGNALS / "healthy.json"), "--force"],
                "forced run needs a reason",
                id="force without reason",
            ),
        ],
    )
    def test_bad_input_exits_2(
        self, argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(["check", "--config", CONFIG, *argv]) == EXIT_BAD_INPUT
        assert fragment in capsys.readouterr().err

    def test_bad_signal_value_exits_2(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = tmp_path / "s.json"
        path.write_text('{"accuracy": 7}')
        assert main(["check", "--config", CONFIG, "--signals", str(path)]) == EXIT_BAD_INPUT
        assert "accuracy: 7 is out of range" in capsys.readouterr().err


class TestConfigValidate:
    def test_shipped_config_is_valid(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["config", "validate", CONFIG]) == EXIT_OK
        assert "OK" in capsys.readouterr().out

    def test_invalid_config_lists_problems(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = tmp_path / "c.yaml"
        path.write_text("model: {name: m}\n")
        assert main(["config", "validate", str(path)]) == EXIT_BAD_INPUT
        err = capsys.readouterr().err
        assert f"{path}: model.target: required key is missing" in err
        assert f"{path}: data: required key is missing" in err

    def test_config_from_environment(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("RETRAIN_CONFIG", CONFIG)
        assert main(["config", "validate", "--json"]) == EXIT_OK
        assert json.loads(capsys.readouterr().out)["config"]["model"]["name"] == "churn-classifier"


class TestConfigValidateSchedules:
    """``config validate`` shows the next fire times of both schedules, in their time zone."""

    @staticmethod
    def config(tmp_path: Path, schedule: dict[str, str]) -> Path:
        data = yaml.safe_load(Path(CONFIG).read_text(encoding="utf-8"))
        data["schedule"] = schedule
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return path

    def test_next_three_fires_of_each_schedule_with_utc_offsets(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = self.config(tmp_path, {"timezone": "Europe/Berlin"})
        assert main(["config", "validate", str(path)]) == EXIT_OK
        out = capsys.readouterr().out
        offset = r"\+0[12]:00"
        weekly = re.search(r"schedule\.weekly '0 6 \* \* 1' \(Europe/Berlin\): next (.*)", out)
        assert weekly, out
        assert re.fullmatch(
            rf"Mon \S+ 06:00 {offset}, Mon \S+ 06:00 {offset}, Mon \S+ 06:00 {offset}",
            weekly.group(1),
        )
        rebuild = re.search(
            r"schedule\.full_rebuild '0 20 \* \* 0#1' \(Europe/Berlin\): next (.*)", out
        )
        assert rebuild, out
        days = re.findall(rf"Sun \d{{4}}-\d\d-(\d\d) 20:00 {offset}", rebuild.group(1))
        assert len(days) == 3 and all(int(day) <= 7 for day in days)
        assert "deprecated" not in out and "note:" not in out

    def test_the_deprecated_retrain_key_loads_with_a_note(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = self.config(tmp_path, {"retrain": "0 3 * * 1"})
        assert main(["config", "validate", str(path)]) == EXIT_OK
        out = capsys.readouterr().out
        assert "schedule.weekly '0 3 * * 1' (UTC): next Mon" in out
        assert "deprecated: schedule.retrain is the old name of schedule.weekly" in out
        assert main(["config", "validate", "--json", str(path)]) == EXIT_OK
        data = json.loads(capsys.readouterr().out)
        assert data["schedules"]["weekly"]["cron"] == "0 3 * * 1"
        assert len(data["schedules"]["full_rebuild"]["next"]) == 3
        assert data["deprecations"] and "schedule.retrain" in data["deprecations"][0]

    def test_retrain_and_weekly_that_differ_exit_2_naming_both(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = self.config(tmp_path, {"retrain": "@weekly", "weekly": "0 6 * * 1"})
        assert main(["config", "validate", str(path)]) == EXIT_BAD_INPUT
        err = capsys.readouterr().err
        assert "schedule.retrain ('@weekly') and schedule.weekly ('0 6 * * 1')" in err

    def test_a_cron_with_both_day_fields_gets_a_note(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = self.config(tmp_path, {"full_rebuild": "0 20 1-7 * 0"})
        assert main(["config", "validate", str(path)]) == EXIT_OK
        out = capsys.readouterr().out
        assert "note: schedule.full_rebuild '0 20 1-7 * 0' restricts both" in out
        assert "EITHER" in out


class TestSecretsAreNotPrinted:
    """URL passwords and secret ``${VAR}`` values never reach stdout or stderr."""

    def test_validate_json_masks_a_sql_url_password_and_a_tracking_uri_password(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("WAREHOUSE_PASSWORD", "w4rehouse-pw")
        text = Path(CONFIG).read_text(encoding="utf-8")
        text = text.replace(
            "  source:\n    kind: parquet\n"
            "    path: ${RETRAIN_DATA_PATH:-../.state/demo/data/events}\n",
            "  source:\n    kind: sql\n"
            "    url: postgresql://etl:${WAREHOUSE_PASSWORD}@db:5432/events\n"
            "    table: events\n",
        ).replace(
            "${RETRAIN_TRACKING_URI:-http://127.0.0.1:5000}", "http://ops:mlfl0w-pw@mlflow:5000"
        )
        path = tmp_path / "sql.yaml"
        path.write_text(text, encoding="utf-8")
        assert main(["config", "validate", "--json", str(path)]) == EXIT_OK
        out, err = capsys.readouterr()
        document = json.loads(out)
        assert document["config"]["data"]["source"]["url"] == "postgresql://etl:***@db:5432/events"
        assert document["config"]["registry"]["tracking_uri"] == "http://ops:***@mlflow:5000"
        assert "w4rehouse-pw" not in out + err and "mlfl0w-pw" not in out + err

    def test_a_slack_webhook_is_masked(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        hook = "https://hooks.slack.example/services/T000/B000/XyZsecretPart"
        text = Path(CONFIG).read_text(encoding="utf-8")
        text += f"\nnotifications:\n  kind: slack\n  slack_webhook_url: {hook}\n"
        path = tmp_path / "slack.yaml"
        path.write_text(text, encoding="utf-8")
        assert main(["config", "validate", "--json", str(path)]) == EXIT_OK
        out = capsys.readouterr().out
        assert json.loads(out)["config"]["notifications"]["slack_webhook_url"] == "***"
        assert "XyZsecretPart" not in out

    def test_console_output_is_redacted(self, capsys: pytest.CaptureFixture[str]) -> None:
        from retrain.cli.output import console

        console().print("server http://u:pa55word@mlflow:5000 is up")
        console(stderr=True).print("and http://u:pa55word@mlflow:5000 too")
        out, err = capsys.readouterr()
        assert out.strip() == "server http://u:***@mlflow:5000 is up"
        assert err.strip() == "and http://u:***@mlflow:5000 too"

    def test_an_unexpected_error_prints_a_redacted_traceback_and_exits_1(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        import retrain.cli.config as config_command

        def crash(path: object) -> None:
            raise RuntimeError("lost http://u:pa55word@mlflow:5000")

        monkeypatch.setattr(config_command, "load_config", crash)
        assert main(["config", "validate", CONFIG]) == EXIT_FAILURE
        err = capsys.readouterr().err
        assert "Traceback" in err and "RuntimeError: lost http://u:***@mlflow:5000" in err
        assert "pa55word" not in err


class TestConsoleScript:
    def test_help_lists_commands(self) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "retrain.cli", "--help"],
            capture_output=True,
            text=True,
            check=True,
        )
        for command in ("check", "config"):
            assert command in result.stdout

    def test_installed_entry_point_exit_code(self) -> None:
        exe = Path(sys.executable).with_name("retrain")
        result = subprocess.run(
            [
                str(exe),
                "check",
                "--config",
                CONFIG,
                "--signals",
                str(SIGNALS / "degraded.json"),
                "--json",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == EXIT_TRIGGERED, result.stderr
