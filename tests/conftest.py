"""Shared fixtures: one real MLflow server per session, fresh model names, valid configs.

* ``mlflow_server``: a real ``mlflow server`` (SQLite, local artifacts, 127.0.0.1, free port,
  job execution off) started once per session in a temporary directory; its whole process group
  is stopped at the end. Started lazily: only sessions that use it pay the ~6-13 s start-up.
* ``tracking_uri``: the server's URL (also exported as ``MLFLOW_TRACKING_URI`` for the test).
* ``model_name``: a registered-model name unique to the test.
* ``make_config(**sections)``: a valid :class:`~retrain.config.RetrainConfig` pointing at the
  test server, with ``model_name``; keyword arguments are merged into the config mapping, e.g.
  ``make_config(deployment={"skip_canary": True})``.

MLflow client settings for the whole session: one HTTP retry, a 10 s request timeout, no
telemetry, no "View run at" URLs printed.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.airflow_harness import configure_environment

configure_environment()  # before anything imports airflow: private AIRFLOW_HOME, repo dags/

from retrain.config import RetrainConfig, parse_config  # noqa: E402
from tools.mlflow_server import MlflowServer  # noqa: E402

CLIENT_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}


@pytest.fixture(scope="session", autouse=True)
def _mlflow_client_env() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for key, value in CLIENT_ENV.items():
            patch.setenv(key, value)
        yield


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A real MLflow server for the session; stopped (whole process group) at the end."""
    root = tmp_path_factory.mktemp("mlflow-server")
    server = MlflowServer(root=root, env={"MLFLOW_DISABLE_TELEMETRY": "true"})
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def tracking_uri(mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """URL of the session's MLflow server."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    return mlflow_server.url


@pytest.fixture
def model_name(request: pytest.FixtureRequest) -> str:
    """A registered-model name no other test uses."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-.")[:80] or "model"
    return f"t-{stem}-{uuid.uuid4().hex[:8]}"


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@pytest.fixture
def make_config(
    request: pytest.FixtureRequest, model_name: str, tmp_path: Path
) -> Callable[..., RetrainConfig]:
    """Factory of valid configs for this test; the server starts only if the config needs it."""

    def make(**sections: Any) -> RetrainConfig:
        data: dict[str, Any] = {
            "model": {
                "name": model_name,
                "target": "label",
                "features": {"numeric": ["x1", "x2"], "categorical": ["segment"]},
                "estimator": {"class": "sklearn.linear_model.LogisticRegression"},
            },
            "data": {
                "source": {
                    "kind": "parquet",
                    "path": str(tmp_path / "data"),
                    "event_time_column": "event_time",
                }
            },
            "registry": {"request_timeout_seconds": 5, "max_retries": 1},
        }
        data = _merge(data, sections)
        if "tracking_uri" not in data["registry"]:
            data["registry"]["tracking_uri"] = request.getfixturevalue("tracking_uri")
        return parse_config(data, source=f"<{request.node.name}>", env=os.environ)

    return make
