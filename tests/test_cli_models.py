"""``--model`` and config directories on the command line, against a real MLflow server.

The directory holds ``defaults.yaml`` (every section but ``model``, from the fixtures' single-file
config), two model files (``a.yaml``, ``b.yaml``: the same ``model`` section under two names) and
``broken.yaml`` (a model whose registry timeout is out of range).
"""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from sklearn.pipeline import Pipeline

from retrain.cli import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, EXIT_TRIGGERED, build_parser, main
from retrain.config import RetrainConfig, load_model_config
from retrain.log import RetrainingRecord
from retrain.pipeline.services import Services
from retrain.registry import ModelRegistry
from tests.helpers import write_config
from tests.registry_builders import Fleet, make_data, make_pipeline_model

BROKEN_KEY = "registry.request_timeout_seconds"
SIGNALS = Path(__file__).resolve().parents[1] / "examples" / "signals"


@pytest.fixture(scope="module")
def fitted() -> Pipeline:
    return make_pipeline_model()


@pytest.fixture
def names() -> tuple[str, str]:
    """Registered-model names of models a and b, unique to the test (short: they fit a table)."""
    prefix = f"cm-{uuid.uuid4().hex[:8]}"
    return f"{prefix}-a", f"{prefix}-b"


@pytest.fixture
def models_dir(
    make_config: Callable[..., RetrainConfig], names: tuple[str, str], tmp_path: Path
) -> Path:
    data = make_config().model_dump(mode="json", by_alias=True, exclude={"source_path"})
    model = data.pop("model")
    model.pop("name")
    root = tmp_path / "models"
    root.mkdir()
    (root / "defaults.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    for stem, name in zip(("a", "b"), names, strict=True):
        text = yaml.safe_dump({"model": {**model, "name": name}})
        (root / f"{stem}.yaml").write_text(text, encoding="utf-8")
    broken = {"model": {**model, "name": f"{names[0]}-c"}, "registry": {BROKEN_KEY[9:]: -1}}
    (root / "broken.yaml").write_text(yaml.safe_dump(broken), encoding="utf-8")
    return root


@pytest.fixture
def config_file(make_config: Callable[..., RetrainConfig], tmp_path: Path) -> Path:
    return write_config(make_config(), tmp_path / "retraining.yaml")


def fleet_of(path: Path, model: str | None, fitted: Pipeline) -> Fleet:
    registry = ModelRegistry(load_model_config(path, model), actor="setup")
    return Fleet(registry, fitted, make_data(10, seed=3)[0])


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str, code: int = EXIT_OK) -> Any:
    got, out, err = run(capsys, *argv, "--json")
    assert got == code, err
    return json.loads(out)


class TestModelOption:
    def test_model_selects_that_model_of_the_directory(
        self,
        models_dir: Path,
        names: tuple[str, str],
        fitted: Pipeline,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        a, b = names
        version = fleet_of(models_dir, a, fitted).to_production()

        data = run_json(capsys, "status", "--config", str(models_dir), "--model", a)
        code, _, err = run(capsys, "status", "--config", str(models_dir), "--model", b)

        assert data["model"] == a
        assert data["aliases"]["production"]["version"] == version
        assert code == EXIT_FAILURE  # b is a valid model with nothing registered yet
        assert f"model {b!r} is not registered" in err

    def test_model_defaults_to_retrain_model(
        self,
        models_dir: Path,
        names: tuple[str, str],
        fitted: Pipeline,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        a, _ = names
        fleet_of(models_dir, a, fitted).register()
        monkeypatch.setenv("RETRAIN_MODEL", a)

        data = run_json(capsys, "status", "--config", str(models_dir))

        assert data["model"] == a
        assert list(data["aliases"]) == ["staging"]

    def test_an_unknown_model_exits_2_naming_the_directory_and_its_models(
        self, models_dir: Path, names: tuple[str, str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, out, err = run(capsys, "history", "--config", str(models_dir), "--model", "x")

        assert (code, out) == (EXIT_BAD_INPUT, "")
        assert f"{models_dir}: no model 'x' here" in err
        assert f"({names[0]}, {names[1]}; broken files: broken.yaml)" in err

    def test_a_command_of_one_model_without_model_on_a_directory_exits_2(
        self, models_dir: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, _, err = run(capsys, "history", "--config", str(models_dir))

        assert code == EXIT_BAD_INPUT
        assert "choose one with --model NAME" in err

    def test_a_model_other_than_a_single_files_own_exits_2(
        self, config_file: Path, model_name: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, _, err = run(capsys, "status", "--config", str(config_file), "--model", "other")

        assert code == EXIT_BAD_INPUT
        assert f"model.name is {model_name!r}, not 'other' (--model)" in err

    def test_a_single_files_own_model_is_accepted(
        self,
        config_file: Path,
        model_name: str,
        fitted: Pipeline,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        version = fleet_of(config_file, None, fitted).to_production()

        data = run_json(capsys, "status", "--config", str(config_file), "--model", model_name)

        assert data["model"] == model_name
        assert data["aliases"]["production"]["version"] == version


class TestEveryCommand:
    def test_every_command_that_takes_config_takes_model(self) -> None:
        def options(parser: argparse.ArgumentParser) -> dict[str, set[str]]:
            found: dict[str, set[str]] = {}
            for action in parser._actions:
                if isinstance(action, argparse._SubParsersAction):
                    for name, sub in action.choices.items():
                        found |= {f"{name} {k}".strip(): v for k, v in options(sub).items()}
            found[""] = {flag for action in parser._actions for flag in action.option_strings}
            return found

        with_config = {
            name: flags for name, flags in options(build_parser()).items() if "--config" in flags
        }

        assert {"status", "check", "run", "drift", "config validate"} <= set(with_config)
        assert [name for name, flags in with_config.items() if "--model" not in flags] == []

    def test_check_takes_the_policy_of_the_model_it_names(
        self, models_dir: Path, names: tuple[str, str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = models_dir / "b.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data["retraining_rules"] = {  # merged over the defaults' rules: b tolerates much more
            "performance_based": {"condition": "accuracy < 0.5"},
            "data_based": {"condition": "new_samples > 1000000"},
            "drift_based": {"condition": "drift_count > 50"},
        }
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        signals = str(SIGNALS / "degraded.json")
        argv = ("check", "--signals", signals, "--config", str(models_dir))

        a = run_json(capsys, *argv, "--model", names[0], code=EXIT_TRIGGERED)
        b = run_json(capsys, *argv, "--model", names[1], code=EXIT_TRIGGERED)  # by its cadence
        code, _, err = run(capsys, *argv)

        assert a["trigger"] == "high_data_drift" and a["fired"] != []
        assert b["trigger"] != "high_data_drift" and b["fired"] == []
        assert code == EXIT_BAD_INPUT and "choose one with --model NAME" in err


class TestStatusOfEveryModel:
    def test_json_lists_each_model_and_the_broken_file_and_exits_2(
        self,
        models_dir: Path,
        names: tuple[str, str],
        fitted: Pipeline,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        a, b = names
        fleet = fleet_of(models_dir, a, fitted)
        production = fleet.to_production()
        canary = fleet.register()
        fleet.registry.promote(canary, "canary", reason="checks")
        record = RetrainingRecord(
            retraining_id="retrain_20260101_001",
            trigger="manual",
            start_time="2026-01-01T03:00:00+00:00",
            end_time="2026-01-01T03:05:00+00:00",
            status="deployed",
        )
        written = Services.build(fleet.registry.config).log.write(record)
        assert not written.startswith("spool:"), written

        data = run_json(capsys, "status", "--config", str(models_dir), code=EXIT_BAD_INPUT)

        assert data["models"] == [
            {
                "model": a,
                "production": production,
                "canary": canary,
                "last_run": {
                    "retraining_id": "retrain_20260101_001",
                    "status": "deployed",
                    "start_time": "2026-01-01T03:00:00+00:00",
                    "end_time": "2026-01-01T03:05:00+00:00",
                },
            },
            {"model": b, "production": None, "canary": None, "last_run": None},
        ]
        assert [entry["file"] for entry in data["broken"]] == [str(models_dir / "broken.yaml")]
        assert f"broken.yaml: {BROKEN_KEY}: " in data["broken"][0]["error"]

    def test_table_has_a_row_per_model_then_the_broken_file(
        self,
        models_dir: Path,
        names: tuple[str, str],
        fitted: Pipeline,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        a, b = names
        version = fleet_of(models_dir, a, fitted).to_production()

        code, out, _ = run(capsys, "status", "--config", str(models_dir))

        lines = out.splitlines()
        row_a = next(line for line in lines if a in line)
        row_b = next(line for line in lines if b in line)
        broken = next(i for i, line in enumerate(lines) if line.startswith("broken "))
        assert code == EXIT_BAD_INPUT
        assert row_a.split()[:3] == [a, f"v{version}", "-"]
        assert row_b.split() == [b, "-", "-", "-", "-", "-"]
        assert broken > lines.index(row_b)
        assert str(models_dir / "broken.yaml") in lines[broken] and BROKEN_KEY in out

    def test_without_a_broken_file_exits_0(
        self, models_dir: Path, names: tuple[str, str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        (models_dir / "broken.yaml").unlink()

        data = run_json(capsys, "status", "--config", str(models_dir))

        assert [m["model"] for m in data["models"]] == list(names)
        assert data["broken"] == []

    def test_repair_needs_a_model(
        self, models_dir: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, _, err = run(capsys, "status", "--repair", "--config", str(models_dir))

        assert code == EXIT_BAD_INPUT
        assert "--repair" in err and "--model NAME" in err

    def test_a_single_file_is_unchanged(
        self,
        config_file: Path,
        model_name: str,
        fitted: Pipeline,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        version = fleet_of(config_file, None, fitted).to_production()

        data = run_json(capsys, "status", "--config", str(config_file))
        code, out, _ = run(capsys, "status", "--config", str(config_file))

        assert set(data) == {"model", "tracking_uri", "aliases", "pending", "unannounced"}
        assert data["model"] == model_name
        assert data["aliases"]["production"]["version"] == version
        assert code == EXIT_OK
        assert f"Model {model_name!r} at" in out and "accuracy 0.913" in out


class TestValidateDirectory:
    def test_reports_each_model_and_the_broken_file_and_exits_2(
        self, models_dir: Path, names: tuple[str, str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, out, _ = run(capsys, "config", "validate", str(models_dir))

        assert code == EXIT_BAD_INPUT
        assert f"OK {models_dir / 'a.yaml'}: model {names[0]!r}" in out
        assert f"OK {models_dir / 'b.yaml'}: model {names[1]!r}" in out
        assert f"BROKEN {models_dir / 'broken.yaml'}: invalid config (1 problem)" in out
        assert f"{models_dir / 'broken.yaml'}: {BROKEN_KEY}: " in out
        assert f"{models_dir}: 2 models OK, 1 broken file" in out

    def test_json_lists_the_models_and_the_broken_file(
        self, models_dir: Path, names: tuple[str, str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        data = run_json(capsys, "config", "validate", str(models_dir), code=EXIT_BAD_INPUT)

        assert data["valid"] is False
        assert [(m["model"], m["file"]) for m in data["models"]] == [
            (names[0], str(models_dir / "a.yaml")),
            (names[1], str(models_dir / "b.yaml")),
        ]
        assert [b["file"] for b in data["broken"]] == [str(models_dir / "broken.yaml")]

    def test_without_the_broken_file_exits_0(
        self, models_dir: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        (models_dir / "broken.yaml").unlink()

        code, out, _ = run(capsys, "config", "validate", "--config", str(models_dir))

        assert code == EXIT_OK
        assert "BROKEN" not in out and f"{models_dir}: 2 models OK, 0 broken files" in out

    def test_an_estimator_that_does_not_build_breaks_its_model_only(
        self, models_dir: Path, names: tuple[str, str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = models_dir / "b.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data["model"]["estimator"]["params"] = {"no_such_parameter": 1}
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        (models_dir / "broken.yaml").unlink()

        result = run_json(capsys, "config", "validate", str(models_dir), code=EXIT_BAD_INPUT)

        assert [m["model"] for m in result["models"]] == [names[0]]
        assert [b["file"] for b in result["broken"]] == [str(path)]
        assert "no_such_parameter" in result["broken"][0]["error"]

    def test_model_validates_that_model_only(
        self, models_dir: Path, names: tuple[str, str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        data = run_json(capsys, "config", "validate", str(models_dir), "--model", names[1])

        assert data["valid"] is True
        assert data["path"] == str(models_dir / "b.yaml")
        assert data["config"]["model"]["name"] == names[1]
