"""Shared builders for tests: a config for the synthetic churn stream, served traffic."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
import yaml

from retrain.config import RetrainConfig, parse_config
from tools.synthetic import CATEGORICAL, NUMERIC, TARGET

HGB = "sklearn.ensemble.HistGradientBoostingClassifier"
LOGREG = "sklearn.linear_model.LogisticRegression"


def merge_sections(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with each section of ``overrides`` merged one level deep (keys replaced)."""
    merged = dict(base)
    for key, value in overrides.items():
        merged[key] = {**merged.get(key, {}), **value}
    return merged


def churn_sections(
    data_path: str | Path,
    *,
    estimator: str = HGB,
    params: dict[str, Any] | None = None,
    **sections: Any,
) -> dict[str, Any]:
    """``model`` and ``data`` sections for the synthetic churn stream at ``data_path`` (the
    estimator by dotted path; ``params`` default ``{"max_iter": 50}``), merged with ``sections``."""
    base: dict[str, Any] = {
        "model": {
            "target": TARGET,
            "features": {"numeric": list(NUMERIC), "categorical": list(CATEGORICAL)},
            "estimator": {
                "class": estimator,
                "params": {"max_iter": 50} if params is None else params,
            },
        },
        "data": {
            "source": {"kind": "parquet", "path": str(data_path), "event_time_column": "event_time"}
        },
    }
    return merge_sections(base, sections)


def churn_config_dict(
    data_path: str | Path,
    *,
    tracking_uri: str = "http://127.0.0.1:1",
    model_name: str = "churn-test",
    **sections: Any,
) -> dict[str, Any]:
    """A config mapping for the synthetic churn stream at ``data_path``."""
    base = churn_sections(data_path)
    base["model"] = {"name": model_name, **base["model"]}
    base["registry"] = {"tracking_uri": tracking_uri}
    return merge_sections(base, sections)


def write_config(config: RetrainConfig, path: Path) -> Path:
    """``config`` as a YAML file that :func:`retrain.config.load_config` reads back."""
    data = config.model_dump(mode="json", by_alias=True, exclude={"source_path"})
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def run_record(config: RetrainConfig, **options: Any) -> dict[str, Any]:
    """``retrain run`` in-process; its retraining log record as the dict ``--json`` prints."""
    from retrain.pipeline import run_pipeline

    return run_pipeline(config, **options).record.to_dict()


def churn_config(data_path: str | Path, **kwargs: Any) -> RetrainConfig:
    return parse_config(churn_config_dict(data_path, **kwargs))


def production(config: RetrainConfig) -> int | None:
    """The version holding ``production`` (one registry request), or ``None``."""
    from retrain.registry import ModelRegistry

    current = ModelRegistry(config).current("production").get("production")
    return current.version if current else None


def serve(
    engine: sa.Engine,
    model: str,
    *,
    version: int,
    arm: str,
    n: int,
    accuracy: float,
    start: datetime,
    seed: int,
    label_by: str = "request",
    error: str | None = None,
) -> None:
    """``n`` predictions of ``version`` a second apart from ``start`` in the serving database,
    as ``retrain serve`` logs them, each labelled 30 s later; a share ``accuracy`` of them
    right. ``error``: the model failed on these rows (logged, unanswered, unlabelled)."""
    from retrain.serving.tables import LABELS, PREDICTIONS

    rng = np.random.default_rng(seed)
    right = rng.random(n) < accuracy
    predictions, labels = [], []
    for i in range(n):
        request = f"{arm}-{seed}-{i}"
        at = start + timedelta(seconds=i)
        predictions.append(
            {
                "model": model,
                "request_id": request,
                "entity_id": f"e-{arm}-{seed}-{i}",
                "version": version,
                "arm": arm,
                "prediction": None if error else json.dumps(1),
                "probability": 0.7,
                "latency_ms": 2.0,
                "predicted_at": at,
                "feature_hash": "0" * 32,
                "error": error,
            }
        )
        label: dict[str, Any] = {"model": model, "label": json.dumps(1 if right[i] else 0)}
        if label_by == "request":
            label.update(request_id=request, entity_id=None)
        else:
            label.update(request_id=None, entity_id=f"e-{arm}-{seed}-{i}")
        labels.append({**label, "received_at": at + timedelta(seconds=30)})
    with engine.begin() as connection:
        connection.execute(sa.insert(PREDICTIONS), predictions)
        connection.execute(sa.insert(LABELS), labels)


#: The PostgreSQL server the SQL tests use (its ``postgres`` database is only used to create and
#: drop each test's own database).
POSTGRES_URL = os.environ.get(
    "RETRAIN_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)


@contextlib.contextmanager
def postgres_database(prefix: str = "retrain_test") -> Iterator[str]:
    """The URL of a new database with a random name on :data:`POSTGRES_URL`'s server, dropped
    afterwards (also when the test fails). Without a reachable server the test is skipped, except
    under CI (``CI`` set), where that is a failure."""
    import pytest

    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        admin.dispose()
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL server at {POSTGRES_URL}: {exc.orig}")
    try:
        yield sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
