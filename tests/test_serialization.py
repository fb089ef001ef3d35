from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from retrain.serialization import dumps_trusted, load_trusted


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
