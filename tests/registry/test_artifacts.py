"""What retrain loads from a version's files: ``MLmodel`` is read (YAML, safe_load) and checked
before any model file is fetched or deserialised (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from retrain.errors import RegistryError
from retrain.registry.artifacts import SKOPS_FILE, read_flavor

GOOD = {
    "flavors": {
        "sklearn": {
            "pickled_model": SKOPS_FILE,
            "serialization_format": "skops",
            "skops_trusted_types": [],
        },
        "python_function": {"loader_module": "mlflow.sklearn"},
    },
    "saved_input_example_info": {"artifact_path": "input_example.json", "type": "dataframe"},
}


def write(tmp_path: Path, meta: object) -> Path:
    text = meta if isinstance(meta, str) else yaml.safe_dump(meta)
    (tmp_path / "MLmodel").write_text(text, encoding="utf-8")
    return tmp_path


def sklearn(**conf: object) -> dict[str, object]:
    return {**GOOD, "flavors": {"sklearn": {**GOOD["flavors"]["sklearn"], **conf}}}  # type: ignore[index]


def test_the_layout_registration_writes_is_accepted(tmp_path: Path) -> None:
    assert read_flavor(write(tmp_path, GOOD), "v1")["flavors"]["sklearn"]["pickled_model"] == (
        SKOPS_FILE
    )


@pytest.mark.parametrize(
    ("meta", "fragment"),
    [
        pytest.param(
            sklearn(serialization_format="cloudpickle"), "'cloudpickle'", id="cloudpickle"
        ),
        pytest.param(sklearn(serialization_format="pickle"), "'pickle'", id="pickle"),
        pytest.param(
            {"flavors": {"sklearn": {"pickled_model": "model.pkl"}}},
            "serialization_format 'pickle'",
            id="no format is mlflow's default, pickle",
        ),
        pytest.param(
            sklearn(pickled_model="../model.skops"), "'../model.skops'", id="another file"
        ),
        pytest.param(sklearn(code="code"), "ships code", id="code to import"),
        pytest.param({"flavors": {"python_function": {}}}, "no sklearn flavor", id="no sklearn"),
        pytest.param(
            {**GOOD, "saved_input_example_info": {"artifact_path": "../../etc/passwd"}},
            "input example path",
            id="an input example outside the model directory",
        ),
        pytest.param(
            "flavors: !!python/object/apply:os.system ['true']\n",
            "cannot be read",
            id="a python tag in the MLmodel file",
        ),
    ],
)
def test_anything_else_is_refused_naming_the_version(
    tmp_path: Path, meta: object, fragment: str
) -> None:
    with pytest.raises(RegistryError, match="version 7 of 'm' is refused") as caught:
        read_flavor(write(tmp_path, meta), "version 7 of 'm'")
    assert fragment in str(caught.value)
