"""Bad arguments and bad config files on the ``retrain`` command: exit 2 (or 1 for a server that
is down) with the argument or file named, no traceback, no secret printed, nothing changed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from retrain.config import RetrainConfig
from retrain.constants import ExitCode
from tests.config.helpers import MINIMAL, mutate
from tests.helpers import write_config
from tests.reliability.harness import cli_attempt

REPO = Path(__file__).resolve().parents[2]
SIGNALS = str(REPO / "examples" / "signals" / "healthy.json")
BAD = ExitCode.BAD_INPUT


@pytest.fixture
def config_file(
    make_config: Callable[..., RetrainConfig], tmp_path: Path
) -> tuple[RetrainConfig, str]:
    """A valid config on the session's MLflow server, and its file."""
    config = make_config(storage={"work_dir": str(tmp_path / "work")})
    return config, str(write_config(config, tmp_path / "retraining.yaml"))


class TestRunArguments:
    @pytest.mark.parametrize(
        ("case", "argv", "expect"),
        [
            pytest.param(
                "an --as-of that overflows when made UTC",
                ["run", "--as-of", "9999-12-31T23:59:59-05:00"],
                ["--as-of", "out of range"],
                id="the last second of year 9999 west of UTC overflows",
            ),
            pytest.param(
                "an --as-of before year 1 in UTC",
                ["run", "--as-of", "0001-01-01T00:00:00+01:00"],
                ["--as-of", "out of range"],
                id="the first second of year 1 east of UTC overflows",
            ),
            pytest.param(
                "an --as-of in year 99999",
                ["run", "--as-of", "99999-01-01"],
                ["--as-of", "not an ISO-8601 time", "99999-01-01"],
                id="a five-digit year is not a time",
            ),
            pytest.param(
                "an --as-of of 9e99",
                ["run", "--as-of", "9e99"],
                ["--as-of", "not an ISO-8601 time", "9e99"],
                id="a huge number is not a time",
            ),
            pytest.param(
                "an --as-of centuries ahead",
                ["run", "--as-of", "2999-01-01"],
                ["--as-of", "later than"],
                id="an as-of centuries in the future is refused before any work",
            ),
            pytest.param(
                "an --as-of before 1970",
                ["run", "--as-of", "1900-01-01"],
                ["--as-of", "earlier than 1970-01-01"],
                id="an as-of before the epoch is refused before any work",
            ),
            pytest.param(
                "a --window-days of 1e11",
                ["run", "--window-days", "1e11"],
                ["--window-days", "invalid int value: '1e11'"],
                id="a window of 1e11 days is not a whole number",
            ),
            pytest.param(
                "a --window-days of 10^11",
                ["run", "--window-days", "100000000000"],
                ["--window-days", "1-3650", "100000000000"],
                id="a window of 10^11 days is out of range",
            ),
            pytest.param(
                "a negative --window-days",
                ["run", "--window-days", "-5"],
                ["--window-days", "1-3650", "-5"],
                id="a negative window is refused naming the argument",
            ),
            pytest.param(
                "a --window-days of 0",
                ["run", "--window-days", "0"],
                ["--window-days", "0 is not 'all history'", "data.training_window_days"],
                id="a zero-day window is refused and says what to do for all history",
            ),
            pytest.param(
                "an --as-of on check that overflows",
                ["check", "--as-of", "9999-12-31T23:59:59-05:00"],
                ["--as-of", "out of range"],
                id="check refuses an overflowing as-of too",
            ),
        ],
    )
    def test_a_bad_argument_exits_2_naming_it(
        self,
        capsys: pytest.CaptureFixture[str],
        config_file: tuple[RetrainConfig, str],
        case: str,
        argv: list[str],
        expect: list[str],
    ) -> None:
        config, path = config_file
        cli_attempt(capsys, "cli", case, config, [*argv, "--config", path], code=BAD, expect=expect)


def _file(tmp_path: Path, content: str | bytes) -> str:
    path = tmp_path / "retraining.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return str(path)


LATIN1 = yaml.safe_dump(MINIMAL).encode() + b"# caf\xe9\n"
BOMB = (
    yaml.safe_dump(MINIMAL)
    + "a: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
        for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
    )
)


class TestConfigFiles:
    @pytest.mark.parametrize(
        ("group", "case", "command", "content", "expect"),
        [
            pytest.param(
                "cli",
                "validate a file that is not UTF-8",
                ["config", "validate"],
                LATIN1,
                ["not UTF-8", "byte 0xe9"],
                id="validate names a latin-1 file",
            ),
            pytest.param(
                "cli",
                "check with a file that is not UTF-8",
                ["check", "--signals", SIGNALS, "--config"],
                LATIN1,
                ["not UTF-8"],
                id="check names a latin-1 config file",
            ),
            pytest.param(
                "security",
                "validate an alias bomb",
                ["config", "validate"],
                BOMB,
                ["aliases", "more than 100,000 values"],
                id="validate refuses an alias bomb at once",
            ),
            pytest.param(
                "cli",
                "validate a bad cron",
                ["config", "validate"],
                yaml.safe_dump(mutate("schedule.retrain", "0 25 * * *")),
                ["schedule.retrain", "not a valid cron"],
                id="validate refuses a cron hour of 25",
            ),
            pytest.param(
                "cli",
                "validate an unknown estimator parameter",
                ["config", "validate"],
                yaml.safe_dump(
                    mutate(
                        "model.estimator",
                        {"class": "sklearn.linear_model.LogisticRegression", "params": {"Cc": 1}},
                    )
                ),
                ["model.estimator.params.Cc", "not a parameter of"],
                id="validate imports the estimator and checks its parameter names",
            ),
            pytest.param(
                "cli",
                "validate an estimator parameter out of range",
                ["config", "validate"],
                yaml.safe_dump(
                    mutate(
                        "model.estimator",
                        {
                            "class": "sklearn.ensemble.RandomForestClassifier",
                            "params": {"n_estimators": 0},
                        },
                    )
                ),
                ["model.estimator.params.n_estimators", "range"],
                id="validate checks parameter values against the class",
            ),
            pytest.param(
                "cli",
                "validate an estimator class that does not exist",
                ["config", "validate"],
                yaml.safe_dump(mutate("model.estimator", {"class": "sklearn.ensemble.Nope"})),
                ["model.estimator.class", "cannot import"],
                id="validate imports the estimator class",
            ),
        ],
    )
    def test_a_bad_config_file_exits_2_naming_it(
        self,
        capsys: pytest.CaptureFixture[str],
        tmp_path: Path,
        *,
        group: str,
        case: str,
        command: list[str],
        content: str | bytes,
        expect: list[str],
    ) -> None:
        path = _file(tmp_path, content)
        cli_attempt(capsys, group, case, None, [*command, path], code=BAD, expect=[path, *expect])

    @pytest.mark.parametrize(
        ("case", "argv", "expect"),
        [
            pytest.param(
                "a config file that does not exist",
                ["check", "--signals", SIGNALS, "--config", "{tmp}/nope.yaml"],
                ["{tmp}/nope.yaml", "file not found"],
                id="a missing config file is named",
            ),
            pytest.param(
                "a config directory without model files",
                ["config", "validate", "{tmp}"],
                ["{tmp}", "no model files"],
                id="a config directory without model files is named",
            ),
            pytest.param(
                "drift with a config that does not exist",
                ["drift", "--reference", "r.parquet", "--current", "c.parquet", "-c", "{tmp}/x"],
                ["{tmp}/x", "file not found"],
                id="drift names a missing config file before reading data",
            ),
        ],
    )
    def test_a_missing_config_file_exits_2_naming_it(
        self,
        capsys: pytest.CaptureFixture[str],
        tmp_path: Path,
        case: str,
        argv: list[str],
        expect: list[str],
    ) -> None:
        tmp = str(tmp_path)
        argv = [a.replace("{tmp}", tmp) for a in argv]
        expect = [e.replace("{tmp}", tmp) for e in expect]
        cli_attempt(capsys, "cli", case, None, argv, code=BAD, expect=expect)


class TestSecrets:
    def test_a_secret_variable_is_not_printed_in_a_config_error(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("RETRAIN_DB_PASSWORD", "pa55-word-from-env")
        path = _file(
            tmp_path, yaml.safe_dump(mutate("model.random_state", "${RETRAIN_DB_PASSWORD}"))
        )
        err = cli_attempt(
            capsys,
            "security",
            "a secret variable in a config error on the command line",
            None,
            ["config", "validate", path],
            code=BAD,
            expect=[path, "model.random_state"],
        )
        assert "pa55-word-from-env" not in err

    def test_a_tracking_uri_password_is_not_printed_when_the_server_is_down(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        data = mutate("registry.tracking_uri", "http://alice:s3cret-pw-77@127.0.0.1:1")
        data["registry"].update({"request_timeout_seconds": 2, "max_retries": 0})
        path = _file(tmp_path, yaml.safe_dump(data))
        err = cli_attempt(
            capsys,
            "security",
            "a tracking URI password in an unreachable-server error",
            None,
            ["status", "--config", path],
            code=ExitCode.FAILURE,
            expect=["http://alice:***@127.0.0.1:1", "unreachable"],
        )
        assert "s3cret-pw-77" not in err


class TestDriftArguments:
    @pytest.fixture
    def data(self, tmp_path: Path) -> tuple[str, str]:
        import numpy as np
        import pandas as pd

        rng = np.random.default_rng(0)
        paths = []
        for name, shift in (("reference", 0.0), ("current", 0.5)):
            frame = pd.DataFrame({"x": rng.normal(shift, 1, 500)})
            frame.to_parquet(tmp_path / f"{name}.parquet")
            paths.append(str(tmp_path / f"{name}.parquet"))
        return paths[0], paths[1]

    @pytest.mark.parametrize(
        ("case", "html", "expect"),
        [
            pytest.param(
                "drift --html naming a directory",
                "{tmp}",
                ["--html", "is a directory"],
                id="an html report path that is a directory is refused before any work",
            ),
            pytest.param(
                "drift --html under a file",
                "{tmp}/reference.parquet/drift.html",
                ["--html", "cannot write"],
                id="an html report under a file is a clear error, not a traceback",
            ),
        ],
    )
    def test_a_bad_report_path_exits_2_naming_it(
        self,
        capsys: pytest.CaptureFixture[str],
        tmp_path: Path,
        data: tuple[str, str],
        *,
        case: str,
        html: str,
        expect: list[str],
    ) -> None:
        reference, current = data
        argv = ["drift", "--reference", reference, "--current", current]
        argv += ["--html", html.replace("{tmp}", str(tmp_path))]
        cli_attempt(capsys, "cli", case, None, argv, code=BAD, expect=expect)


class TestCheckArguments:
    @pytest.mark.parametrize(
        ("case", "content", "expect"),
        [
            pytest.param(
                "check --signals naming a directory",
                None,
                ["--signals", "Is a directory"],
                id="a signals path that is a directory is named, not a traceback",
            ),
            pytest.param(
                "check --signals with a file that is not UTF-8",
                b'{"accuracy": 0.9, "note": "caf\xe9"}',
                ["--signals", "not UTF-8"],
                id="a latin-1 signals file is named",
            ),
            pytest.param(
                "check --signals nested 100,000 deep",
                b"[" * 100_000 + b"]" * 100_000,
                ["--signals", "nested too deeply"],
                id="a signals file nested 100,000 deep is refused, not a RecursionError",
            ),
        ],
    )
    def test_a_bad_signals_file_exits_2_naming_it(
        self,
        capsys: pytest.CaptureFixture[str],
        tmp_path: Path,
        *,
        case: str,
        content: bytes | None,
        expect: list[str],
    ) -> None:
        path = tmp_path / "signals.json"
        if content is None:
            path.mkdir()
        else:
            path.write_bytes(content)
        config = str(REPO / "config" / "retraining.yaml")
        argv = ["check", "--config", config, "--signals", str(path)]
        cli_attempt(capsys, "cli", case, None, argv, code=BAD, expect=[str(path), *expect])
