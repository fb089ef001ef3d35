from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from retrain.errors import DataError
from retrain.serialization import dumps_trusted, load_trusted, unsafe_types


def test_a_model_round_trips_trusting_exactly_its_recorded_types(tmp_path: Path) -> None:
    x = np.random.default_rng(0).random((200, 3))
    model = HistGradientBoostingClassifier(max_iter=5).fit(x, x[:, 0] > 0.5)
    data, trusted = dumps_trusted(model)
    path = tmp_path / "m.skops"
    path.write_bytes(data)

    assert (load_trusted(path, trusted).predict(x) == model.predict(x)).all()
    assert any(t.endswith(".TreePredictor") for t in trusted)
    with pytest.raises(Exception, match="Untrusted types"):
        load_trusted(path, [])


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("builtins.exec", id="exec"),
        pytest.param("posix.system", id="os.system under its real module"),
        pytest.param("subprocess.Popen", id="a process"),
        pytest.param("numpy.load", id="numpy's pickle loader"),
        pytest.param("pickle.loads", id="pickle itself"),
        pytest.param("not a name", id="not a dotted name"),
    ],
)
def test_a_type_that_runs_code_is_never_trusted(tmp_path: Path, name: str) -> None:
    x = np.random.default_rng(0).random((50, 2))
    data, trusted = dumps_trusted(HistGradientBoostingClassifier(max_iter=2).fit(x, x[:, 0] > 0.5))
    path = tmp_path / "m.skops"
    path.write_bytes(data)

    assert unsafe_types([*trusted, name]) == [name]
    with pytest.raises(DataError, match="refusing to trust"):
        load_trusted(path, [*trusted, name])


def test_the_types_scikit_learn_pipelines_need_are_safe() -> None:
    assert (
        unsafe_types(
            [
                "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
                "sklearn.utils.validation.check_array",
                "tests.registry_builders.Majority",
                "numpy.dtype",
            ]
        )
        == []
    )
