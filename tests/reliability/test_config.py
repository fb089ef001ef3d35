"""Bad configs: each refused at load time with the file and key named, nothing changed.

Cases are tables: a file's text (or bytes) and the fragments its error must hold. The file is
always named; the key path is named wherever there is one. Secrets that reach a config through
``${VAR}`` or a URL's user info never appear in an error.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from retrain.config import load_config, load_model_config, parse_config
from retrain.errors import ConfigError
from retrain.train import build_pipeline
from tests.config.helpers import MINIMAL, mutate
from tests.reliability.harness import attempt

GOOD = Path(__file__).resolve().parents[2] / "config" / "retraining.yaml"
VALID = yaml.safe_dump(MINIMAL)


def _bomb(levels: int = 9, width: int = 9) -> str:
    """The classic "billion laughs": each level aliases the previous one ``width`` times."""
    text = 'lol0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for level in range(1, levels):
        refs = ", ".join([f"*l{level - 1}"] * width)
        text += f"lol{level}: &l{level} [{refs}]\n"
    return VALID + text


def _with(path: str, value: Any) -> str:
    return yaml.safe_dump(mutate(path, value))


def _rule(condition: str) -> str:
    rules = {"mine": {"trigger": "mine", "condition": condition}}
    return yaml.safe_dump(mutate("retraining_rules", rules))


def _write(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "retraining.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


class TestFile:
    def test_a_file_that_does_not_exist(self, tmp_path: Path) -> None:
        path = tmp_path / "nope.yaml"
        case = "a config file that does not exist"
        with attempt("config", case, None, expect=[str(path), "file not found"], error=ConfigError):
            load_config(path)

    def test_a_directory(self, tmp_path: Path) -> None:
        case = "a config path that is a directory"
        with attempt("config", case, None, expect=[str(tmp_path), "directory"], error=ConfigError):
            load_config(tmp_path)

    @pytest.mark.parametrize(
        ("group", "case", "content", "expect"),
        [
            pytest.param(
                "config",
                "an empty file",
                "",
                ["the file is empty", "model, data, registry"],
                id="an empty file is refused as empty",
            ),
            pytest.param(
                "config",
                "a file of comments only",
                "# nothing yet\n",
                ["the file is empty"],
                id="a file of comments only is refused as empty",
            ),
            pytest.param(
                "config",
                "a list instead of a mapping",
                "- model\n- data\n",
                ["(top level): expected a mapping of sections, got a list"],
                id="a list instead of a mapping is refused at the top level",
            ),
            pytest.param(
                "config",
                "a file that is not UTF-8",
                VALID.encode() + b"# caf\xe9 au lait\n",
                ["not UTF-8", "byte 0xe9", f"line {VALID.count(chr(10)) + 1}:"],
                id="a latin-1 file is refused naming the file and the line",
            ),
            pytest.param(
                "security",
                "a file larger than 1 MB",
                VALID + ("# " + "x" * 998 + "\n") * 1100,
                ["at most 1 MB"],
                id="a file larger than one megabyte is refused before parsing",
            ),
        ],
    )
    def test_an_unusable_file_is_refused_naming_it(
        self, tmp_path: Path, group: str, case: str, content: str | bytes, expect: list[str]
    ) -> None:
        path = _write(tmp_path, content)
        with attempt(group, case, None, expect=[str(path), *expect], error=ConfigError):
            load_config(path)


class TestYaml:
    @pytest.mark.parametrize(
        ("group", "case", "text", "expect"),
        [
            pytest.param(
                "config",
                "a key given twice",
                GOOD.read_text() + "\nstorage: {work_dir: /tmp/a}\nstorage: {work_dir: /tmp/b}\n",
                ["duplicate key"],
                id="duplicate key",
            ),
            pytest.param(
                "security",
                "a Python tag",
                "model: !!python/object/apply:os.system ['true']\n",
                ["python/object"],
                id="python tag",
            ),
            pytest.param(
                "config",
                "invalid YAML",
                "model: {name: [unclosed\n",
                ["line 2, column 1: invalid YAML"],
                id="invalid YAML is refused with its line and column",
            ),
            pytest.param(
                "security",
                "a YAML alias bomb",
                _bomb(),
                ["aliases", "more than 100,000 values"],
                id="a billion-laughs alias bomb is refused in well under a second",
            ),
            pytest.param(
                "security",
                "a value that contains itself",
                "model: &m [*m]\n",
                ["line 1", "recursive alias 'm'"],
                id="a recursive alias is refused naming the anchor",
            ),
            pytest.param(
                "security",
                "a mapping that merges itself",
                "model: &m {<<: *m}\n",
                ["recursive alias 'm'"],
                id="a mapping merging itself is refused as a recursive alias",
            ),
            pytest.param(
                "security",
                "nesting 5,000 levels deep",
                "model: " + "[" * 5000 + "]" * 5000 + "\n",
                ["line 1", "nested deeper than 50 levels"],
                id="deep nesting is refused before the parser recurses",
            ),
            pytest.param(
                "config",
                "a merge key of a scalar",
                VALID + "storage: {<<: 5}\n",
                ["line", "invalid YAML", "merg"],
                id="merging a scalar is refused as invalid YAML",
            ),
            pytest.param(
                "config",
                "a key that is a list",
                VALID + "? [a, b]\n: 1\n",
                ["line", "key", "must be a plain value"],
                id="a key that is a list is refused with its line",
            ),
            pytest.param(
                "config",
                "a key given twice beside a merge",
                "base: &b {work_dir: /tmp/a}\n"
                + VALID
                + "storage: {<<: *b, work_dir: /tmp/b, work_dir: /tmp/c}\n",
                ["duplicate key 'work_dir'"],
                id="a key written twice beside a merge key is still a duplicate",
            ),
        ],
    )
    def test_a_malformed_file_is_refused_naming_it(
        self, tmp_path: Path, group: str, case: str, text: str, expect: list[str]
    ) -> None:
        path = _write(tmp_path, text)
        started = time.perf_counter()
        with attempt(group, case, None, expect=[str(path), *expect], error=ConfigError):
            load_config(path)
        assert time.perf_counter() - started < 5, f"{case}: refused, but slowly"


class TestValues:
    @pytest.mark.parametrize(
        ("case", "text", "expect"),
        [
            pytest.param(
                "an unknown key",
                _with("model.features.numerc", ["x"]),
                ["model.features.numerc: unknown key"],
                id="a misspelled key is refused as unknown",
            ),
            pytest.param(
                "a value of the wrong type",
                _with("model.random_state", "forty-two"),
                ["model.random_state: Input should be a valid integer", "forty-two"],
                id="a string where a number belongs",
            ),
            pytest.param(
                "a section of the wrong type",
                _with("registry", ["http://127.0.0.1:5000"]),
                ["registry: Input should be a valid dictionary"],
                id="a list where a section belongs",
            ),
            pytest.param(
                "a condition outside the grammar",
                _rule("accuracy <<< 0.8"),
                ["retraining_rules.mine.condition", "expected a number"],
                id="a condition outside the grammar names the rule",
            ),
            pytest.param(
                "a rule on an unknown signal",
                _rule("latency > 5"),
                ["retraining_rules.mine.condition", "unknown signal 'latency'"],
                id="a rule on an unknown signal names the signal",
            ),
            pytest.param(
                "an infinite threshold",
                _rule("accuracy < 1e999"),
                ["retraining_rules.mine.condition", "not a finite number"],
                id="an infinite rule threshold is refused",
            ),
            pytest.param(
                "a huge seed",
                _with("model.random_state", 10**30),
                ["model.random_state", "less than or equal to 4294967295"],
                id="a seed beyond 32 bits is refused at load",
            ),
            pytest.param(
                "a huge bootstrap",
                _with("ab_test.n_bootstrap", 10**12),
                ["ab_test.n_bootstrap", "less than or equal to 100000"],
                id="a trillion bootstrap resamples are refused at load",
            ),
            pytest.param(
                "an infinite timeout",
                _with("registry.request_timeout_seconds", float("inf")),
                ["registry.request_timeout_seconds", "finite number"],
                id="an infinite request timeout is refused",
            ),
            pytest.param(
                "an absurd timeout",
                _with("registry.request_timeout_seconds", 1e9),
                ["registry.request_timeout_seconds", "less than or equal to 300"],
                id="a request timeout of thirty years is refused",
            ),
            pytest.param(
                "a NaN cooldown",
                _with("triggers.cooldown_hours", float("nan")),
                ["triggers.cooldown_hours", "finite number"],
                id="a NaN cooldown is refused",
            ),
            pytest.param(
                "a huge training window",
                _with("data.training_window_days", 10**11),
                ["data.training_window_days", "less than or equal to 3650"],
                id="a training window of 1e11 days is refused at load",
            ),
            pytest.param(
                "a cron minute out of range",
                _with("schedule.monitor", "61 * * * *"),
                ["schedule.monitor", "'61 * * * *'", "not a valid cron"],
                id="a cron minute of 61 is refused at load, not by the DAG file",
            ),
            pytest.param(
                "a cron with seconds",
                _with("schedule.retrain", "0 0 * * * *"),
                ["schedule.retrain", "5 fields"],
                id="a six-field cron is refused",
            ),
            pytest.param(
                "a cron that never fires",
                _with("schedule.retrain", "0 0 30 2 *"),
                ["schedule.retrain", "never fires"],
                id="a cron on the 30th of February is refused",
            ),
            pytest.param(
                "an unknown schedule preset",
                _with("schedule.monitor", "@fortnightly"),
                ["schedule.monitor", "@hourly"],
                id="an unknown preset lists the presets",
            ),
            pytest.param(
                "an unknown time zone",
                _with("schedule.timezone", "Mars/Olympus_Mons"),
                ["schedule.timezone", "unknown time zone 'Mars/Olympus_Mons'"],
                id="an unknown time zone is refused at load",
            ),
            pytest.param(
                "a time zone that is a path",
                _with("schedule.timezone", "../../etc/passwd"),
                ["schedule.timezone", "unknown time zone"],
                id="a time zone that is a path is refused",
            ),
            pytest.param(
                "an estimator parameter that is not a name",
                _with("model.estimator.params", {"max iter": 3}),
                ["model.estimator.params", "max iter"],
                id="an estimator parameter that is not a name is refused at load",
            ),
            pytest.param(
                "an allowed module that is not a module name",
                _with("model.estimator.allowed_modules", ["sklearn; rm -rf"]),
                ["model.estimator.allowed_modules[0]"],
                id="an allowed module that is not a dotted name is refused",
            ),
        ],
    )
    def test_a_bad_value_is_refused_naming_file_and_key(
        self, tmp_path: Path, case: str, text: str, expect: list[str]
    ) -> None:
        path = _write(tmp_path, text)
        with attempt("config", case, None, expect=[str(path), *expect], error=ConfigError):
            load_config(path)

    @pytest.mark.parametrize(
        ("case", "estimator", "expect", "never_imported"),
        [
            pytest.param(
                "an estimator outside the allowed modules",
                {"class": "this.Zen"},
                ["model.estimator.class", "'this.Zen'", "allowed_modules", "sklearn"],
                "this",
                id="this.Zen is refused at load without importing it",
            ),
            pytest.param(
                "an estimator from a module named like an allowed one",
                {"class": "sklearnx.Evil"},
                ["model.estimator.class", "'sklearnx.Evil'"],
                "sklearnx",
                id="a module that merely starts with sklearn is not sklearn",
            ),
            pytest.param(
                "an estimator in os",
                {"class": "os.system"},
                ["model.estimator.class", "'os.system'"],
                None,
                id="os.system is refused at load",
            ),
        ],
    )
    def test_an_estimator_outside_the_allowed_modules_is_never_imported(
        self,
        tmp_path: Path,
        case: str,
        estimator: dict[str, Any],
        expect: list[str],
        never_imported: str | None,
    ) -> None:
        path = _write(tmp_path, _with("model.estimator", estimator))
        with attempt("security", case, None, expect=[str(path), *expect], error=ConfigError):
            load_config(path)
        assert never_imported not in sys.modules


class TestEnvironment:
    def test_an_unset_variable_is_named(self, tmp_path: Path) -> None:
        path = _write(tmp_path, _with("registry.tracking_uri", "${NOT_SET_FOR_THIS_TEST}"))
        case = "a ${VAR} that is unset"
        expect = [str(path), "registry.tracking_uri", "NOT_SET_FOR_THIS_TEST is not set"]
        with attempt("config", case, None, expect=expect, error=ConfigError):
            load_config(path, env={})

    @pytest.mark.parametrize(
        ("case", "path", "template", "env", "secret"),
        [
            pytest.param(
                "a secret variable in a bad value",
                "model.random_state",
                "${DB_PASSWORD}",
                {"DB_PASSWORD": "hunter2-correct-horse"},
                "hunter2-correct-horse",
                id="the value of a password variable is not echoed",
            ),
            pytest.param(
                "a secret variable in a bad URL",
                "registry.request_timeout_seconds",
                "http://svc:${MLFLOW_TOKEN}@mlflow:5000",
                {"MLFLOW_TOKEN": "tok-9f8e7d6c5b4a"},
                "tok-9f8e7d6c5b4a",
                id="the value of a token variable inside a URL is not echoed",
            ),
            pytest.param(
                "a URL password in a bad value",
                "ab_test.n_bootstrap",
                "${WAREHOUSE}",
                {"WAREHOUSE": "postgresql://etl:s3cr3t-pw-42@db:5432/events"},
                "s3cr3t-pw-42",
                id="a URL password from any variable is not echoed",
            ),
        ],
    )
    def test_a_secret_never_appears_in_an_error(
        self,
        tmp_path: Path,
        *,
        case: str,
        path: str,
        template: str,
        env: dict[str, str],
        secret: str,
    ) -> None:
        file = _write(tmp_path, _with(path, template))
        caught: list[ConfigError] = []
        with attempt("security", case, None, expect=[str(file), path], error=ConfigError):
            try:
                load_config(file, env=env)
            except ConfigError as exc:
                caught.append(exc)
                raise
        assert secret not in str(caught[0]), str(caught[0])

    def test_relative_paths_resolve_against_the_file_not_the_working_directory(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        nested = tmp_path / "conf" / "prod"
        nested.mkdir(parents=True)
        path = nested / "retraining.yaml"
        path.write_text(_with("storage.work_dir", "../work"), encoding="utf-8")
        monkeypatch.chdir(tmp_path)
        config = load_config(Path("conf/prod/retraining.yaml"))
        assert config.data.source.path == str(nested / "data" / "events")
        assert config.storage.work_dir == str(tmp_path / "conf" / "work")
        assert config.source_path == path


class TestEstimatorParams:
    """Parameters are checked against the class when it is imported: at train time (and by
    ``retrain config validate``), with the key path in the message."""

    @pytest.mark.parametrize(
        ("case", "params", "expect"),
        [
            pytest.param(
                "an estimator parameter the class does not take",
                {"bogus": 1},
                ["model.estimator.params.bogus", "not a parameter of", "LogisticRegression"],
                id="an unknown parameter names the key and the class",
            ),
            pytest.param(
                "an estimator parameter out of range",
                {"C": -1},
                ["model.estimator.params.C", "must be a float in the range"],
                id="a negative regularisation strength names the key",
            ),
            pytest.param(
                "an estimator parameter of the wrong type",
                {"max_iter": "many"},
                ["model.estimator.params.max_iter", "must be an int"],
                id="a string iteration count names the key",
            ),
        ],
    )
    def test_a_bad_parameter_is_refused_before_fitting(
        self, case: str, params: dict[str, Any], expect: list[str]
    ) -> None:
        estimator = {"class": "sklearn.linear_model.LogisticRegression", "params": params}
        config = parse_config(mutate("model.estimator", estimator))
        with attempt("config", case, None, expect=expect, error=ConfigError):
            build_pipeline(config)


class TestDagFiles:
    @pytest.mark.parametrize(
        ("schedule", "fragment"),
        [
            pytest.param({"monitor": "61 * * * *"}, "schedule.monitor", id="a bad monitor cron"),
            pytest.param({"timezone": "Mars/Olympus"}, "schedule.timezone", id="a bad time zone"),
        ],
    )
    def test_a_bad_schedule_reaches_a_dag_file_as_a_config_error_naming_the_key(
        self,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        schedule: dict[str, str],
        fragment: str,
    ) -> None:
        from airflow.dag_processing.dagbag import DagBag

        from tests.airflow_harness import DAGS

        path = _write(tmp_path, yaml.safe_dump(mutate("schedule", schedule)))
        monkeypatch.setenv("RETRAIN_CONFIG", str(path))
        bag = DagBag(dag_folder=str(DAGS / "retrain_monitor.py"))
        (error,) = bag.import_errors.values()
        assert "ConfigError" in error and f"{path}: {fragment}" in error, error


def _model_dir(tmp_path: Path, files: dict[str, Any]) -> Path:
    root = tmp_path / "models"
    root.mkdir()
    for name, data in files.items():
        text = data if isinstance(data, str) else yaml.safe_dump(data)
        (root / name).write_text(text, encoding="utf-8")
    return root


_SHARED = {key: value for key, value in MINIMAL.items() if key != "model"}
_MODEL = {"model": {k: v for k, v in MINIMAL["model"].items() if k != "name"}}


class TestDirectory:
    """A config directory: one broken file is named, never hides which model or file it is."""

    @pytest.mark.parametrize(
        ("case", "files", "model", "expect"),
        [
            pytest.param(
                "a directory of models with a broken defaults.yaml",
                {"defaults.yaml": "data: [1\n", "a.yaml": _MODEL},
                "a",
                ["defaults.yaml", "invalid YAML"],
                id="broken defaults",
            ),
            pytest.param(
                "a model whose bad value comes from defaults.yaml",
                {
                    "defaults.yaml": {
                        **_SHARED,
                        "data": {**_SHARED["data"], "holdout_fraction": 3},
                    },
                    "a.yaml": _MODEL,
                },
                "a",
                ["a.yaml: data.holdout_fraction", "(from defaults.yaml)"],
                id="bad default",
            ),
            pytest.param(
                "two model files naming the same model",
                {
                    "defaults.yaml": _SHARED,
                    "a.yaml": _MODEL,
                    "b.yaml": {"model": {**_MODEL["model"], "name": "a"}},
                },
                "b",
                ["b.yaml", "model 'a' is already used by a.yaml"],
                id="duplicate model",
            ),
            pytest.param(
                "a model name the directory does not hold",
                {"defaults.yaml": _SHARED, "a.yaml": _MODEL},
                "zz",
                ["no model 'zz' here", "1 model (a)"],
                id="unknown model",
            ),
            pytest.param(
                "a directory of several models without a model chosen",
                {"defaults.yaml": _SHARED, "a.yaml": _MODEL, "b.yaml": _MODEL},
                None,
                ["2 models (a, b)", "--model NAME"],
                id="no model chosen",
            ),
            pytest.param(
                "a defaults.yaml that names the model",
                {"defaults.yaml": {**_SHARED, "model": {"name": "x"}}, "a.yaml": _MODEL},
                "a",
                ["defaults.yaml", "model.name"],
                id="name in defaults",
            ),
        ],
    )
    def test_a_broken_directory_is_named(
        self, tmp_path: Path, case: str, files: dict[str, Any], model: str | None, expect: list[str]
    ) -> None:
        root = _model_dir(tmp_path, files)
        with attempt("config", case, None, expect=[*expect], error=ConfigError):
            load_model_config(root, model)
