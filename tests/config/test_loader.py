"""The loader: the shipped file, ``${VAR}`` expansion, relative paths and bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from retrain.config import RetrainConfig, load_config, parse_config
from retrain.errors import ConfigError
from retrain.redact import redact, url_secrets
from tests.config.helpers import MINIMAL, mutate, write

REPO = Path(__file__).resolve().parents[2]


class TestShippedConfig:
    def test_shipped_config_loads_with_seed_thresholds(self) -> None:
        config = load_config(REPO / "config" / "retraining.yaml", env={})
        rules = config.retraining_rules
        assert rules["performance_based"].condition == "accuracy < 0.85"
        assert rules["scheduled"].condition == "days_since_training > 7"
        assert rules["data_based"].condition == "new_samples > 10000"
        assert rules["drift_based"].condition == "drift_count > 5"
        assert rules["drift_based"].action == "investigate_and_retrain"
        assert config.evaluation.thresholds == {"accuracy": 0.85}
        assert config.deployment.skip_canary is False

    def test_environment_overrides_deployment_settings(self) -> None:
        env = {"RETRAIN_TRACKING_URI": "http://mlflow:5000", "RETRAIN_DATA_PATH": "s3://b/events"}
        config = load_config(REPO / "config" / "retraining.yaml", env=env)
        assert config.registry.tracking_uri == "http://mlflow:5000"
        assert config.data.source.path == "s3://b/events"


class TestPaths:
    def test_relative_data_path_resolves_against_config_file(self, tmp_path: Path) -> None:
        config = load_config(write(tmp_path, MINIMAL))
        assert config.data.source.path == str(tmp_path / "data" / "events")

    def test_default_path_comes_from_environment(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = write(tmp_path, MINIMAL, name="other.yaml")
        monkeypatch.setenv("RETRAIN_CONFIG", str(path))
        assert isinstance(load_config(), RetrainConfig)
        assert load_config().source_path == path.resolve()


class TestBadFiles:
    def test_a_list_instead_of_a_mapping_names_file_and_top_level(self, tmp_path: Path) -> None:
        path = write(tmp_path, ["model"])
        with pytest.raises(ConfigError) as info:
            load_config(path)
        message = str(info.value)
        assert str(path) in message
        assert "(top level): expected a mapping" in message, message

    def test_duplicate_rule_names_are_rejected_with_line_numbers(self, tmp_path: Path) -> None:
        text = yaml.safe_dump(MINIMAL) + (
            "retraining_rules:\n"
            "  scheduled: {trigger: a, condition: days_since_training > 7}\n"
            "  scheduled: {trigger: b, condition: days_since_training > 1}\n"
        )
        path = write(tmp_path, text)
        with pytest.raises(ConfigError, match=r"line \d+: duplicate key 'scheduled' \(first "):
            load_config(path)

    def test_all_problems_are_reported_at_once(self, tmp_path: Path) -> None:
        data = mutate("triggers.cooldown_hours", -1)
        data["data"]["holdout_fraction"] = 2
        data["model"]["extra"] = True
        with pytest.raises(ConfigError) as info:
            load_config(write(tmp_path, data))
        assert len(info.value.problems) == 3

    def test_missing_environment_variable_is_named(self, tmp_path: Path) -> None:
        data = mutate("registry.tracking_uri", "${MLFLOW_URL_FOR_TEST}")
        with pytest.raises(
            ConfigError,
            match=r"registry\.tracking_uri: environment variable MLFLOW_URL_FOR_TEST is not set",
        ):
            load_config(write(tmp_path, data), env={})

    def test_invalid_yaml_gives_line_and_column(self, tmp_path: Path) -> None:
        path = write(tmp_path, "model: {name: [unclosed\n")
        with pytest.raises(ConfigError, match=r"line \d+, column \d+: invalid YAML"):
            load_config(path)

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match=r"nope\.yaml: file not found"):
            load_config(tmp_path / "nope.yaml")

    def test_yaml_python_tags_are_not_constructed(self, tmp_path: Path) -> None:
        path = write(tmp_path, "model: !!python/object/apply:os.system ['true']\n")
        with pytest.raises(ConfigError, match="invalid YAML"):
            load_config(path)


class TestAnchorsAndMerges:
    """Anchors, aliases and merge keys work as YAML defines them, within bounds."""

    def test_merge_keys_take_the_mappings_own_keys_first(self, tmp_path: Path) -> None:
        text = yaml.safe_dump(MINIMAL) + (
            "rule_defaults: &rule {trigger: shared, action: notify}\n"
            "retraining_rules:\n"
            "  first: {<<: *rule, condition: new_samples > 5}\n"
            "  second: {<<: *rule, trigger: own, condition: new_samples > 9}\n"
        )
        with pytest.raises(ConfigError, match=r"rule_defaults: unknown key") as info:
            load_config(write(tmp_path, text))
        assert len(info.value.problems) == 1, "the merges themselves are fine"
        data = yaml.safe_load(text.replace("rule_defaults", "x_defaults"))
        del data["x_defaults"]
        config = parse_config(data)
        assert config.retraining_rules["first"].trigger == "shared"
        assert config.retraining_rules["second"].trigger == "own"
        assert config.retraining_rules["second"].action == "notify"

    def test_the_first_of_several_merged_mappings_wins(self, tmp_path: Path) -> None:
        text = yaml.safe_dump(MINIMAL) + (
            "triggers:\n  <<: [{cooldown_hours: 1}, {cooldown_hours: 2, recent_window_days: 3}]\n"
        )
        config = load_config(write(tmp_path, text))
        assert config.triggers.cooldown_hours == 1
        assert config.triggers.recent_window_days == 3

    def test_one_anchor_shared_by_many_features(self, tmp_path: Path) -> None:
        features = [f"f{i}" for i in range(300)]
        data = mutate("model.features", {"numeric": features})
        text = (
            yaml.safe_dump(data)
            + "drift:\n  features:\n"
            + "".join(
                f"    {name}: {'&cuts ' if i == 0 else ''}"
                + ("{thresholds: {psi: {low: 0.1, medium: 0.2, high: 0.3}}}" if i == 0 else "*cuts")
                + "\n"
                for i, name in enumerate(features)
            )
        )
        config = load_config(write(tmp_path, text))
        assert config.drift.features["f299"].thresholds["psi"].high == 0.3

    @pytest.mark.parametrize(
        ("text", "fragment"),
        [
            pytest.param("a: 1\n---\nb: 2\n", "expected a single document", id="two documents"),
            pytest.param("a: \x00\n", "control character #x0000", id="a NUL character"),
            pytest.param("a: *nope\n", "found undefined alias 'nope'", id="an undefined alias"),
        ],
    )
    def test_other_yaml_problems_are_named(self, tmp_path: Path, text: str, fragment: str) -> None:
        with pytest.raises(ConfigError, match=r"line \d+.*invalid YAML: " + fragment):
            load_config(write(tmp_path, text))

    def test_a_bom_is_allowed(self, tmp_path: Path) -> None:
        path = tmp_path / "bom.yaml"
        path.write_bytes(b"\xef\xbb\xbf" + yaml.safe_dump(MINIMAL).encode())
        assert load_config(path).model.name == "churn-classifier"


class TestSecrets:
    """What the loader registers as secret, and what its errors say about secret values."""

    def test_a_secret_variable_is_registered_and_named_not_shown(self, tmp_path: Path) -> None:
        data = mutate("model.random_state", "${SEED_TOKEN}")
        with pytest.raises(ConfigError) as info:
            load_config(write(tmp_path, data), env={"SEED_TOKEN": "tkn-0123456789"})
        message = str(info.value)
        assert "model.random_state: Input should be a valid integer" in message
        assert "(got the value of ${SEED_TOKEN}, not shown)" in message
        assert redact("leaked tkn-0123456789") == "leaked ***"

    def test_an_ordinary_variable_is_shown(self, tmp_path: Path) -> None:
        data = mutate("model.random_state", "${SEED}")
        with pytest.raises(ConfigError, match=r"\(got 'forty-two'\)"):
            load_config(write(tmp_path, data), env={"SEED": "forty-two"})
        assert redact("forty-two") == "forty-two"

    def test_a_variables_value_is_not_expanded_again(self, tmp_path: Path) -> None:
        data = mutate("registry.tracking_uri", "${OUTER}")
        config = load_config(write(tmp_path, data), env={"OUTER": "${INNER}", "INNER": "x"})
        assert config.registry.tracking_uri == "${INNER}"

    def test_url_passwords_written_in_the_file_are_registered(self, tmp_path: Path) -> None:
        config = load_config(
            write(tmp_path, mutate("registry.tracking_uri", "http://a:pw-in-file@h"))
        )
        assert config.registry.tracking_uri == "http://a:pw-in-file@h", "the config keeps it"
        assert redact("pw-in-file") == "***"

    @pytest.mark.parametrize(
        ("url", "secrets"),
        [
            pytest.param("postgresql://etl:pw-1@db/x", ["pw-1"], id="a user-info password"),
            pytest.param("mysql://root:p@ss-2@db/x", ["p@ss-2"], id="an unescaped @ in it"),
            pytest.param(
                "https://h/x?sslmode=on&api_key=key-3", ["key-3"], id="a secret query value"
            ),
            pytest.param("http://mlflow:5000/a?b=c@d", [], id="an @ in a path is no password"),
        ],
    )
    def test_the_secrets_of_a_url_are_registered(self, url: str, secrets: list[str]) -> None:
        assert url_secrets(url) == secrets
        parse_config(mutate("registry.tracking_uri", url))
        for secret in secrets:
            assert redact(f"leaked {secret}!") == "leaked ***!"
        assert redact(url).count("***") == len(secrets)

    def test_a_slack_webhook_url_is_registered(self) -> None:
        hook = "https://hooks.slack.example/services/T1/B2/webhook-secret-part"
        parse_config(mutate("notifications", {"kind": "slack", "slack_webhook_url": hook}))
        assert redact(f"posting to {hook}") == "posting to ***"
