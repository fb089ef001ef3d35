"""A minimal valid config mapping and ways to break it, for the config tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

MINIMAL: dict[str, Any] = {
    "model": {
        "name": "churn-classifier",
        "target": "churned",
        "features": {"numeric": ["tenure", "monthly_charges"], "categorical": ["contract"]},
    },
    "data": {"source": {"kind": "parquet", "path": "data/events", "event_time_column": "ts"}},
    "registry": {"tracking_uri": "http://127.0.0.1:5000"},
}

DELETE = object()
"""Value for :func:`mutate` that deletes the key."""


def mutate(path: str, value: Any) -> dict[str, Any]:
    """A copy of MINIMAL with the dotted ``path`` set to ``value`` (or deleted)."""
    data = copy.deepcopy(MINIMAL)
    node = data
    *parents, last = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return data


def write(tmp_path: Path, data: Any, name: str = "retraining.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path
