"""Config directories: one file per model over ``defaults.yaml``, isolation, selection."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from retrain.config import (
    Catalog,
    deep_merge,
    load_catalog,
    load_config,
    load_model_config,
)
from retrain.errors import ConfigError
from tests.config.helpers import MINIMAL

REPO = Path(__file__).resolve().parents[2]

DEFAULTS: dict[str, Any] = {
    "data": MINIMAL["data"],
    "registry": MINIMAL["registry"],
    "retraining_rules": {
        "weekly": {"trigger": "weekly", "condition": "days_since_training > 7"},
        "drift": {"trigger": "drift", "condition": "drift_count > 5"},
    },
    "evaluation": {"thresholds": {"accuracy": 0.85}, "non_inferiority_margin": 0.01},
}


def model(target: str = "churned", **extra: Any) -> dict[str, Any]:
    section = copy.deepcopy(MINIMAL["model"])
    section.pop("name")
    section["target"] = target
    return {"model": section, **extra}


def write_dir(root: Path, files: dict[str, Any]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        text = data if isinstance(data, str) else yaml.safe_dump(data)
        (root / name).write_text(text, encoding="utf-8")
    return root


class TestDeepMerge:
    def test_mappings_merge_and_other_values_replace(self) -> None:
        base = {"a": {"x": 1, "y": [1, 2]}, "b": 1, "c": {"k": 1}}
        merged = deep_merge(base, {"a": {"y": [3]}, "b": None, "d": 2})
        assert merged == {"a": {"x": 1, "y": [3]}, "b": None, "c": {"k": 1}, "d": 2}
        assert base["a"] == {"x": 1, "y": [1, 2]}, "the defaults are not modified"


class TestDirectory:
    def test_models_share_defaults_and_override_one_rule(self, tmp_path: Path) -> None:
        root = write_dir(
            tmp_path / "models",
            {
                "defaults.yaml": DEFAULTS,
                "churn.yaml": model(),
                "fraud.yml": model(
                    "is_fraud",
                    retraining_rules={
                        "drift": {"trigger": "drift", "condition": "drift_count > 2"}
                    },
                    evaluation={"thresholds": {"accuracy": 0.9}},
                ),
                ".hidden.yaml": "not: [a model",
                "notes.txt": "not a model",
            },
        )
        catalog = load_catalog(root)
        assert catalog.directory and catalog.names == ["churn", "fraud"]
        assert catalog.errors == {}
        churn, fraud = catalog.configs["churn"], catalog.configs["fraud"]
        assert churn.model.name == "churn", "model.name defaults to the file's stem"
        assert fraud.model.target == "is_fraud"
        assert fraud.retraining_rules["drift"].condition == "drift_count > 2"
        assert fraud.retraining_rules["weekly"].condition == "days_since_training > 7"
        assert fraud.evaluation.thresholds == {"accuracy": 0.9}
        assert fraud.evaluation.non_inferiority_margin == 0.01, "a nested default is kept"
        assert churn.evaluation.thresholds == {"accuracy": 0.85}
        assert churn.data.source.path == str(root / "data" / "events")

    def test_each_model_works_in_its_own_directory(self, tmp_path: Path) -> None:
        root = write_dir(
            tmp_path / "m",
            {
                "defaults.yaml": {**DEFAULTS, "storage": {"work_dir": "work"}},
                "a.yaml": model(),
                "b.yaml": model(),
            },
        )
        catalog = load_catalog(root)
        dirs = {name: c.storage.work_dir for name, c in catalog.configs.items()}
        assert dirs == {"a": str(root / "work" / "a"), "b": str(root / "work" / "b")}

    def test_explicit_name_wins_over_the_stem(self, tmp_path: Path) -> None:
        data = model()
        data["model"]["name"] = "churn-v2"
        root = write_dir(tmp_path / "m", {"defaults.yaml": DEFAULTS, "file.yaml": data})
        assert load_catalog(root).names == ["churn-v2"]

    def test_no_defaults_file_is_fine(self, tmp_path: Path) -> None:
        root = write_dir(tmp_path / "m", {"a.yaml": {**DEFAULTS, **model()}})
        assert load_catalog(root).names == ["a"]

    def test_the_shipped_directory_holds_two_models_sharing_defaults(self) -> None:
        catalog = load_catalog(REPO / "config" / "models", env={})
        assert catalog.errors == {}
        assert catalog.names == ["churn-baseline", "churn-classifier"]
        baseline, main = (catalog.configs[n] for n in catalog.names)
        assert set(baseline.retraining_rules) == set(main.retraining_rules)
        assert baseline.retraining_rules["drift_based"].condition == "drift_count > 3"
        assert main.retraining_rules["drift_based"].condition == "drift_count > 5"
        assert baseline.evaluation.thresholds == {"accuracy": 0.8}
        assert main.evaluation.thresholds == {"accuracy": 0.85}
        assert baseline.storage.work_dir != main.storage.work_dir


class TestBrokenFiles:
    def test_a_broken_model_file_leaves_the_others_loading(self, tmp_path: Path) -> None:
        root = write_dir(
            tmp_path / "m",
            {
                "defaults.yaml": DEFAULTS,
                "good.yaml": model(),
                "typo.yaml": model(evaluation={"thresholds": {"accuracy": 2}}),
                "syntax.yaml": "model: [1\n",
                "list.yaml": "- 1\n",
            },
        )
        catalog = load_catalog(root)
        assert catalog.names == ["good"]
        errors = {file.name: str(error) for file, error in catalog.errors.items()}
        assert set(errors) == {"typo.yaml", "syntax.yaml", "list.yaml"}
        assert f"{root / 'typo.yaml'}: evaluation.thresholds.accuracy" in errors["typo.yaml"]
        assert "(got 2)" in errors["typo.yaml"]
        assert "invalid YAML" in errors["syntax.yaml"]
        assert "expected a mapping" in errors["list.yaml"]

    def test_a_bad_value_from_the_defaults_says_so(self, tmp_path: Path) -> None:
        defaults = copy.deepcopy(DEFAULTS)
        defaults["evaluation"]["thresholds"] = {"accuracy": 7}
        root = write_dir(
            tmp_path / "m",
            {
                "defaults.yaml": defaults,
                "a.yaml": model(),
                "b.yaml": model(evaluation={"thresholds": {"accuracy": 0.8}}),
            },
        )
        catalog = load_catalog(root)
        assert catalog.names == ["b"], "b overrides the bad default"
        message = str(catalog.errors[root / "a.yaml"])
        assert f"{root / 'a.yaml'}: evaluation.thresholds.accuracy" in message
        assert "(from defaults.yaml)" in message

    def test_duplicate_model_names_and_experiments_are_refused(self, tmp_path: Path) -> None:
        named = model()
        named["model"]["name"] = "a"
        shared = model(registry={**DEFAULTS["registry"], "experiment": "retrain/a"})
        root = write_dir(
            tmp_path / "m",
            {"defaults.yaml": DEFAULTS, "a.yaml": model(), "b.yaml": named, "c.yaml": shared},
        )
        catalog = load_catalog(root)
        assert catalog.names == ["a"]
        b, c = str(catalog.errors[root / "b.yaml"]), str(catalog.errors[root / "c.yaml"])
        assert "model.name: model 'a' is already used by a.yaml" in b
        assert "registry.experiment: experiment 'retrain/a' is already used by a.yaml" in c

    @pytest.mark.parametrize(
        ("files", "fragment"),
        [
            pytest.param(
                {"defaults.yaml": "a: [1\n", "a.yaml": model()}, "defaults.yaml", id="yaml"
            ),
            pytest.param(
                {"defaults.yaml": {"model": {"name": "x"}}, "a.yaml": model()},
                "a name shared by every model cannot be a default",
                id="name in defaults",
            ),
            pytest.param(
                {"defaults.yaml": DEFAULTS, "defaults.yml": DEFAULTS, "a.yaml": model()},
                "keep one",
                id="two defaults",
            ),
            pytest.param({"defaults.yaml": DEFAULTS}, "no model files", id="no models"),
        ],
    )
    def test_what_breaks_every_model_is_raised(
        self, tmp_path: Path, files: dict[str, Any], fragment: str
    ) -> None:
        root = write_dir(tmp_path / "m", files)
        with pytest.raises(ConfigError, match=fragment):
            load_catalog(root)


class TestSelect:
    @pytest.fixture
    def root(self, tmp_path: Path) -> Path:
        return write_dir(
            tmp_path / "m",
            {
                "defaults.yaml": DEFAULTS,
                "a.yaml": model(),
                "b.yaml": model(),
                "c.yaml": model(evaluation={"thresholds": {"accuracy": 2}}),
            },
        )

    def test_a_model_is_selected_by_name(self, root: Path) -> None:
        assert load_model_config(root, "b").model.name == "b"

    def test_without_a_name_the_message_lists_the_models(self, root: Path) -> None:
        with pytest.raises(ConfigError) as caught:
            load_model_config(root)
        message = str(caught.value)
        assert str(root) in message and "a, b" in message and "c.yaml" in message
        assert "--model" in message

    def test_an_unknown_name_lists_the_models(self, root: Path) -> None:
        with pytest.raises(ConfigError, match=r"no model 'zz' here; it holds 2 models \(a, b"):
            load_model_config(root, "zz")

    def test_a_broken_models_own_error_is_raised(self, root: Path) -> None:
        with pytest.raises(ConfigError, match=r"c\.yaml: evaluation\.thresholds\.accuracy"):
            load_model_config(root, "c")

    def test_a_directory_with_one_model_needs_no_name(self, tmp_path: Path) -> None:
        root = write_dir(tmp_path / "one", {"defaults.yaml": DEFAULTS, "only.yaml": model()})
        assert load_model_config(root).model.name == "only"


class TestSingleFile:
    def test_a_file_is_one_model_unchanged(self, tmp_path: Path) -> None:
        file = tmp_path / "retraining.yaml"
        file.write_text(yaml.safe_dump(MINIMAL), encoding="utf-8")
        catalog = load_catalog(file)
        assert catalog == Catalog(
            root=file, directory=False, configs={"churn-classifier": load_config(file)}
        )
        assert load_model_config(file) == load_config(file)
        assert load_model_config(file, "churn-classifier") == load_config(file)
        with pytest.raises(ConfigError, match=r"model\.name is 'churn-classifier', not 'other'"):
            load_model_config(file, "other")
