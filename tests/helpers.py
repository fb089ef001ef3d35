"""Shared builders for tests: a config for the synthetic churn stream."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retrain.config import RetrainConfig, parse_config
from retrain.synthetic import CATEGORICAL, NUMERIC, TARGET


def churn_config_dict(
    data_path: str | Path,
    *,
    tracking_uri: str = "http://127.0.0.1:1",
    model_name: str = "churn-test",
    **sections: Any,
) -> dict[str, Any]:
    """A config mapping for the synthetic churn stream at ``data_path``."""
    data: dict[str, Any] = {
        "model": {
            "name": model_name,
            "target": TARGET,
            "features": {"numeric": list(NUMERIC), "categorical": list(CATEGORICAL)},
            "estimator": {
                "class": "sklearn.ensemble.HistGradientBoostingClassifier",
                "params": {"max_iter": 50},
            },
        },
        "data": {
            "source": {"kind": "parquet", "path": str(data_path), "event_time_column": "event_time"}
        },
        "registry": {"tracking_uri": tracking_uri},
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    return data


def churn_config(data_path: str | Path, **kwargs: Any) -> RetrainConfig:
    return parse_config(churn_config_dict(data_path, **kwargs))
