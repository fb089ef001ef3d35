"""The HTTP app (retrain.serving.app) in-process through Starlette's TestClient, on the session's
real MLflow server: the protocol, authentication, refusals and feedback."""

from __future__ import annotations

import json
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from retrain.config import RetrainConfig, parse_config
from retrain.registry import ModelRegistry
from retrain.serving.app import create_app
from retrain.serving.inputs import Limits
from retrain.serving.service import ServeSettings, build_models
from tests.helpers import write_config
from tests.registry_builders import Fleet, config_dict
from tests.serving.conftest import Served, count_rows, fetch, register_served
from tools.mlflow_server import MlflowServer

with warnings.catch_warnings():  # starlette deprecates its httpx-based client (httpx2 instead)
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROW = {"x1": 0.3, "x2": -0.2, "segment": "b"}
LIMITS = Limits(max_rows=50, max_bytes=20_000)


def client_for(settings: ServeSettings) -> TestClient:
    app = create_app(lambda: build_models(settings), token=TOKEN, limits=settings.limits)
    return TestClient(app)


@pytest.fixture(scope="module")
def module_served(mlflow_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory) -> Served:
    """One served model for the module (registering versions is the slow part)."""
    root = tmp_path_factory.mktemp("app")
    data = config_dict(mlflow_server.url, f"t-app-{uuid.uuid4().hex[:8]}")
    config = parse_config({**data, "storage": {"work_dir": str(root / "work")}})
    return register_served(config)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('log') / 'predictions.db'}"


@pytest.fixture(scope="module")
def client(
    module_served: Served, tmp_path_factory: pytest.TempPathFactory, db: str
) -> Iterator[TestClient]:
    path = write_config(module_served.config, tmp_path_factory.mktemp("cfg") / "model.yaml")
    settings = ServeSettings(config_path=str(path), prediction_log_url=db, limits=LIMITS)
    with client_for(settings) as found:
        yield found


class TestProtocol:
    @pytest.mark.parametrize(
        "body",
        [
            {"dataframe_split": {"columns": list(ROW), "data": [list(ROW.values())] * 3}},
            {"dataframe_records": [ROW] * 3},
            {"instances": [ROW] * 3},
        ],
        ids=["dataframe_split", "dataframe_records", "instances"],
    )
    def test_mlflow_formats_answer_predictions_plus_version_and_arm_per_row(
        self, client: TestClient, module_served: Served, body: dict[str, Any]
    ) -> None:
        served = module_served
        body = {**body, "entity_ids": ["c1", "c2", None]}
        response = client.post("/invocations", json=body, headers=AUTH)

        assert response.status_code == 200, response.text
        answer = response.json()
        assert len(answer["predictions"]) == 3 and set(answer["predictions"]) <= {0, 1}
        assert [r["entity_id"] for r in answer["retrain"]] == ["c1", "c2", None]
        for row in answer["retrain"]:
            assert row["arm"] in ("production", "canary")
            assert (
                row["version"]
                == {"production": served.production, "canary": served.canary}[row["arm"]]
            )
            assert 0 <= row["probability"] <= 1 and len(row["request_id"]) == 32

    def test_ping_health_and_version(self, client: TestClient, module_served: Served) -> None:
        served = module_served
        assert client.get("/ping").status_code == 200
        health = client.get("/health").json()
        name = served.config.model.name
        assert health == {
            "status": "ok",
            "models": {
                name: {
                    "status": "ok",
                    "versions": {"production": served.production, "canary": served.canary},
                    "error": None,
                }
            },
        }
        version = client.get("/version", headers=AUTH).json()["models"][name]
        assert version["arms"]["production"]["version"] == served.production
        assert version["arms"]["canary"]["fraction"] == 0.1
        assert version["arms"]["production"]["fraction"] == 0.9
        assert version["arms"]["canary"]["loaded_at"].endswith("Z")
        one = client.get(f"/models/{name}/version", headers=AUTH).json()
        assert one["arms"] == version["arms"] and one["model"] == name

    def test_feedback_is_stored_in_the_labels_table(self, client: TestClient, db: str) -> None:
        answer = client.post("/invocations", json={"instances": [ROW]}, headers=AUTH).json()
        request_id = answer["retrain"][0]["request_id"]
        body = {"labels": [{"request_id": request_id, "label": 1}, {"entity_id": "c9", "label": 0}]}

        response = client.post("/feedback", json=body, headers=AUTH)

        assert response.json() == {"stored": 2}
        labels = fetch(db, "SELECT request_id, entity_id, label FROM retrain_labels ORDER BY id")
        assert labels[-2:] == [(request_id, None, "1"), (None, "c9", "0")]


class TestRefusals:
    @pytest.mark.parametrize(
        ("body", "headers", "status", "message"),
        [
            ({"instances": [{**ROW, "age": 3}]}, AUTH, 400, "unknown column(s) 'age'"),
            ({"instances": [{"x1": 1.0, "segment": "a"}]}, AUTH, 400, "missing column(s) 'x2'"),
            ({"instances": [{**ROW, "x1": "high"}]}, AUTH, 400, "column 'x1' takes a number"),
            ({"instances": [ROW, {**ROW, "x1": None}]}, AUTH, 422, "could not predict"),
            ({"instances": [ROW] * 51}, AUTH, 413, "51 rows: at most 50"),
            ({"instances": [{**ROW, "segment": "s" * 30_000}]}, AUTH, 413, "larger than 20000"),
            (b"{not json", AUTH, 400, "bad JSON"),
            ({"instances": [ROW]}, {}, 401, "missing bearer token"),
            ({"instances": [ROW]}, {"Authorization": "Bearer nope"}, 401, "wrong bearer token"),
            ({"instances": [ROW]}, {"Authorization": TOKEN}, 401, "missing bearer token"),
        ],
        ids=[
            "unknown column",
            "missing column",
            "wrong type",
            "a row the model refuses",
            "too many rows",
            "too many bytes",
            "bad JSON",
            "no token",
            "wrong token",
            "not a bearer",
        ],
    )
    def test_named_4xx_and_nothing_logged(  # noqa: PLR0917 - parametrised
        self,
        client: TestClient,
        db: str,
        body: Any,
        headers: dict[str, str],
        status: int,
        message: str,
    ) -> None:
        before = wait_rows(db, 0)
        failed_before = count_rows(db, where="WHERE error IS NOT NULL")
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = client.post(
            "/invocations",
            content=content,
            headers={**headers, "Content-Type": "application/json"},
        )

        assert response.status_code == status, response.text
        assert message in response.json()["message"]
        if status == 401:
            assert response.headers["WWW-Authenticate"] == "Bearer"
        client.post("/invocations", json={"instances": [ROW]}, headers=AUTH)  # one good one
        assert wait_rows(db, before + 1) == before + 1, "the refused request logged no answer"
        errors = fetch(
            db, "SELECT prediction, error FROM retrain_predictions WHERE error IS NOT NULL"
        )[failed_before:]
        if status == 422:  # the model failed: its arm's rows are logged as errors, which the
            # canary judge's error-rate guardrail counts
            assert errors and all(p is None and message in e for p, e in errors)
        else:
            assert errors == [], "a request refused before the model logs nothing"

    def test_other_content_types_and_protected_endpoints(self, client: TestClient) -> None:
        response = client.post("/invocations", content=b"x1,x2\n1,2", headers=AUTH)
        assert response.status_code == 415 and "application/json" in response.json()["message"]
        assert client.get("/version").status_code == 401
        assert client.post("/feedback", json={"labels": []}).status_code == 401
        bad = client.post("/feedback", json={"labels": [{"label": 1}]}, headers=AUTH)
        assert bad.status_code == 400 and "needs a request_id or an entity_id" in bad.text
        assert client.post("/models/nope/invocations", json={}, headers=AUTH).status_code == 404


class TestWithoutAuthentication:
    def test_no_token_means_no_check(self, module_served: Served, tmp_path: Path) -> None:
        path = write_config(module_served.config, tmp_path / "model.yaml")
        db = f"sqlite:///{tmp_path / 'p.db'}"
        settings = ServeSettings(config_path=str(path), prediction_log_url=db, auth=False)
        app = create_app(lambda: build_models(settings), token=None)
        with TestClient(app) as client:
            assert client.get("/version").status_code == 200
            answer = client.post("/invocations", json={"instances": [ROW]})
            assert answer.status_code == 200 and len(answer.json()["predictions"]) == 1
            assert client.get("/health?name=other").json()["status"] == "ok"


class TestManyModels:
    def test_a_directory_serves_each_model_under_its_path(
        self,
        make_config: Callable[..., RetrainConfig],
        module_served: Served,
        fitted: Any,
        example: Any,
        tmp_path: Path,
    ) -> None:
        served = module_served
        other_name = f"{served.config.model.name}-b"
        other = make_config(model={"name": other_name}, storage={"work_dir": str(tmp_path / "b")})
        other_version = Fleet(ModelRegistry(other), fitted, example).to_production()
        directory = tmp_path / "models"
        directory.mkdir()
        write_config(served.config, directory / "a.yaml")
        write_config(other, directory / "b.yaml")
        (directory / "broken.yaml").write_text("model: [", encoding="utf-8")
        settings = ServeSettings(config_path=str(directory), limits=LIMITS)

        with client_for(settings) as client:
            top = client.post("/invocations", json={"instances": [ROW]}, headers=AUTH)
            one = client.post(
                f"/models/{other_name}/invocations", json={"instances": [ROW]}, headers=AUTH
            )
            health = client.get("/health").json()

        assert top.status_code == 404 and "/models/<name>/invocations" in top.json()["message"]
        assert one.status_code == 200 and one.json()["retrain"][0]["version"] == other_version
        assert set(health["models"]) == {served.config.model.name, other_name}
        assert health["status"] == "degraded" and "broken.yaml" in next(iter(health["broken"]))


ANSWERED = "WHERE error IS NULL"


def wait_rows(db: str, expected: int, timeout: float = 10.0) -> int:
    """Answered rows in the log once ``expected`` are there (the writer is asynchronous)."""
    deadline = time.monotonic() + timeout
    while count_rows(db, where=ANSWERED) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # a row that should not be there would have arrived by now
    return count_rows(db, where=ANSWERED)


def test_concurrent_requests_answer_as_one_request_alone_does(
    client: TestClient, module_served: Served
) -> None:
    """Requests sent together are batched by the router: each gets what it gets alone."""
    rows = [{"x1": 0.1 * i, "x2": -0.05 * i, "segment": "abc"[i % 3]} for i in range(40)]
    bodies = [
        {
            "dataframe_records": rows[i : i + 1 + i % 3],
            "entity_ids": [f"c{i}-{j}" for j in range(1 + i % 3)],
            "request_ids": [f"batch-{i}-{j}" for j in range(1 + i % 3)],
        }
        for i in range(32)
    ]
    together: dict[int, Any] = {}

    def send(i: int) -> None:
        together[i] = client.post("/invocations", json=bodies[i], headers=AUTH).json()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    alone = [client.post("/invocations", json=b, headers=AUTH).json() for b in bodies]

    assert [together[i] for i in range(len(bodies))] == alone
    name = module_served.config.model.name
    arms = client.get("/version", headers=AUTH).json()["models"][name]["arms"]
    assert {a["calls"] for a in arms.values()} == {"predict_proba"}
