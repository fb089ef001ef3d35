"""``retrain status|history|rollback|promote`` against a real MLflow server."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sklearn.pipeline import Pipeline

from retrain.cli import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, main
from retrain.config import DriftSettings, RetrainConfig
from retrain.drift import build_profile
from retrain.registry import ModelRegistry
from tests.helpers import write_config
from tests.registry_builders import Fleet, make_data, make_pipeline_model
from tools.mlflow_server import free_port


@pytest.fixture(scope="module")
def fitted() -> Pipeline:
    return make_pipeline_model()


@pytest.fixture
def config_file(make_config: Callable[..., RetrainConfig], tmp_path: Path) -> Path:
    return write_config(make_config(), tmp_path / "retraining.yaml")


@pytest.fixture
def fleet(config_file: Path, fitted: Pipeline) -> Fleet:
    from retrain.config import load_config

    registry = ModelRegistry(load_config(config_file), actor="setup")
    return Fleet(registry, fitted, make_data(10, seed=3)[0])


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = run(capsys, *argv, "--json")
    assert code == EXIT_OK, err
    return json.loads(out)


class TestStatus:
    def test_json_lists_versions_by_alias_with_metrics_and_age(
        self, fleet: Fleet, config_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        production = fleet.to_production()
        staging = fleet.register()

        data = run_json(capsys, "status", "--config", str(config_file))

        assert {a: v["version"] for a, v in data["aliases"].items()} == {
            "production": production,
            "staging": staging,
        }
        assert data["aliases"]["production"]["record"]["metrics"]["accuracy"] == 0.913
        assert data["aliases"]["production"]["age_seconds"] >= 0
        assert data["pending"] == []

    def test_table_names_each_alias_and_version(
        self, fleet: Fleet, config_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        version = fleet.to_production()

        code, out, _ = run(capsys, "status", "--config", str(config_file))

        assert code == EXIT_OK
        assert "production" in out and f"v{version}" in out and "accuracy 0.913" in out


class TestHistory:
    def test_lists_moves_newest_first(
        self, fleet: Fleet, config_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        version = fleet.to_production()

        data = run_json(capsys, "history", "--config", str(config_file))

        assert [(e["op"], e["alias"], e["to_version"]) for e in data] == [
            ("promote", "production", version),
            ("promote", "canary", version),
            ("register", "staging", version),
        ]

    def test_limit_keeps_the_newest(
        self, fleet: Fleet, config_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        fleet.to_production()

        data = run_json(capsys, "history", "--limit", "1", "--config", str(config_file))

        assert [e["alias"] for e in data] == ["production"]


class TestPromoteAndRollback:
    def test_promote_then_rollback_returns_to_the_serving_version(
        self, fleet: Fleet, config_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        first = fleet.to_production()
        # the production checklist needs a reference profile to monitor the version with
        numeric = [c for c in fleet.example if c != "segment"]
        profile = build_profile(
            fleet.example, numeric=numeric, categorical=["segment"], settings=DriftSettings()
        )
        second = fleet.register(profile=profile.to_dict())
        cfg = ("--config", str(config_file), "--actor", "alice")

        run_json(capsys, "promote", str(second), "--to", "canary", "--reason", "checks", *cfg)
        moved = run_json(
            capsys, "promote", str(second), "--to", "production", "--reason", "ok", *cfg
        )
        back = run_json(capsys, "rollback", "--reason", "errors up", "--run-id", "r1", *cfg)

        assert (moved["from_version"], moved["to_version"]) == (first, second)
        assert (back["from_version"], back["to_version"], back["actor"]) == (second, first, "alice")
        assert back["run_id"] == "r1"
        assert fleet.registry.current()["production"].version == first

    def test_a_repeated_rollback_with_its_key_says_it_was_done_and_moves_nothing(
        self, fleet: Fleet, config_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        first = fleet.to_production()
        fleet.to_production()
        argv = ("rollback", "--reason", "x", "--idempotency-key", "inc-1", "--config")

        code, out, _ = run(capsys, *argv, str(config_file))
        assert code == EXIT_OK and "Rolled back" in out
        code, out, _ = run(capsys, *argv, str(config_file))

        assert code == EXIT_OK
        assert "already rolled back" in out and "'inc-1'" in out
        assert fleet.registry.current()["production"].version == first

    def test_rollback_to_an_explicit_version(
        self, fleet: Fleet, config_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        first = fleet.to_production()
        fleet.to_production()
        fleet.to_production()

        code, out, _ = run(
            capsys, "rollback", "--to", str(first), "--reason", "x", "--config", str(config_file)
        )

        assert code == EXIT_OK
        assert f"-> v{first}" in out

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            pytest.param(
                ["rollback", "--reason", "x"],
                "nothing to roll back to",
                id="rollback without a production version fails",
            ),
            pytest.param(
                ["promote", "1", "--to", "production", "--reason", "x"],
                "illegal transition for version 1",
                id="an illegal promotion fails",
            ),
            pytest.param(
                ["promote", "7", "--to", "canary", "--reason", "x"],
                "has no version 7",
                id="promoting an unknown version fails",
            ),
        ],
    )
    def test_registry_refusals_exit_1_with_a_clear_message(
        self,
        fleet: Fleet,
        config_file: Path,
        capsys: pytest.CaptureFixture[str],
        argv: list[str],
        message: str,
    ) -> None:
        fleet.register()

        code, out, err = run(capsys, *argv, "--config", str(config_file))

        assert (code, out) == (EXIT_FAILURE, "")
        assert err.startswith("error: ") and message in err


class TestErrors:
    @pytest.mark.parametrize(
        "argv",
        [
            pytest.param(
                ["promote", "1", "--to", "staging", "--reason", "x"], id="promote to staging"
            ),
            pytest.param(["promote", "1", "--to", "canary"], id="promote without a reason"),
            pytest.param(
                ["promote", "one", "--to", "canary", "--reason", "x"],
                id="a version that is not a number",
            ),
            pytest.param(["rollback"], id="rollback without a reason"),
            pytest.param(["history", "--limit", "many"], id="a limit that is not a number"),
        ],
    )
    def test_bad_arguments_exit_2(
        self, argv: list[str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        with pytest.raises(SystemExit) as caught:
            main(argv)

        assert caught.value.code == EXIT_BAD_INPUT

    def test_an_invalid_config_exits_2(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        bad = tmp_path / "bad.yaml"
        bad.write_text("model: {name: x}\n")

        code, _, err = run(capsys, "status", "--config", str(bad))

        assert code == EXIT_BAD_INPUT
        assert "registry: required key is missing" in err

    def test_a_blank_reason_exits_2(
        self, fleet: Fleet, config_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        fleet.to_production()

        code, _, err = run(capsys, "rollback", "--reason", " ", "--config", str(config_file))

        assert code == EXIT_BAD_INPUT
        assert "reason is required" in err

    def test_server_down_exits_1_within_seconds(
        self,
        make_config: Callable[..., RetrainConfig],
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        url = f"http://127.0.0.1:{free_port()}"
        path = write_config(make_config(registry={"tracking_uri": url}), tmp_path / "down.yaml")

        started = time.monotonic()
        code, _, err = run(capsys, "status", "--config", str(path))

        assert code == EXIT_FAILURE
        assert f"{url} is unreachable" in err
        assert time.monotonic() - started < 10

    def test_an_unknown_model_exits_1(
        self, config_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, _, err = run(capsys, "history", "--config", str(config_file))

        assert code == EXIT_FAILURE
        assert "is not registered" in err
