"""``ModelRegistry.input_example``: the rows a version's load check predicts on, read back as
JSON from the session's real MLflow server (no model file, nothing unpickled)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from mlflow.models import Model

from retrain.errors import RegistryError
from retrain.registry import ModelRegistry
from retrain.registry.artifacts import check_example
from tests.registry_builders import Fleet


def test_the_registered_example_comes_back_as_mlflow_reads_it(
    fleet: Fleet, registry: ModelRegistry, example: pd.DataFrame, tmp_path: Path
) -> None:
    version = fleet.register()
    fresh = ModelRegistry(registry.config, actor="reader")  # another process's view

    found = fresh.input_example(version)

    assert found is not None
    expected = check_example(example)
    assert list(found.columns) == list(expected.columns)
    assert found.to_dict("list") == expected.to_dict("list")
    # what MLflow's own reader gives from the downloaded model directory
    local = registry._artifacts.download(registry._version_files(version), str(tmp_path))
    pd.testing.assert_frame_equal(found, Model.load(local).load_input_example(local))
    assert fresh.input_example(str(version)) is not None  # read again: cached, same answer


def test_an_unknown_version_is_a_registry_error(fleet: Fleet, registry: ModelRegistry) -> None:
    fleet.register()
    with pytest.raises(RegistryError):
        registry.input_example(99)
