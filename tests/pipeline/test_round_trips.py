"""How many HTTP requests a deploying ``retrain run`` sends to MLflow, against a real server.

Each run is measured in a fresh interpreter (as ``retrain run`` and the benchmark run it), so no
process-wide cache that another test warmed (fitted models, reference profiles, MLflow's
artifact repositories and server info) can change the count: the figures are deterministic and
independent of test order. ``benchmarks/pipeline.py`` prints the same breakdown at scale.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from retrain.config import RetrainConfig
from tests.helpers import churn_sections, write_config
from tools.http_calls import count_http_requests, endpoint_of
from tools.synthetic import StreamSpec, write_stream

ROOT = Path(__file__).resolve().parents[2]
SPEC = StreamSpec(weeks=8, rows_per_week=2000, drift_week=5)
WEEK = timedelta(weeks=1)

#: The issue's budget for a deploying run: MLflow REST calls (everything but artifact files),
#: 40, plus 8 for running safely beside other runs of the model (rel-log): the model's lease
#: around ``deploy`` (create, read, ticket, read, give back: Lamport's bakery over MLflow runs,
#: which has no compare-and-set; plus its experiment's lookup, and its creation on a model's
#: first run), production read again under the lease (deploy only if it did not move since
#: check), and the check that the retraining id is not taken by a run started at the same
#: moment (a CLI run no longer looks up its freshly made run key: -1).
REST_BUDGET = 48
#: Every HTTP request, artifact uploads and downloads included (nine files of an MLflow model
#: go up one request each, see benchmarks/README.md): a ceiling so that the count cannot creep
#: (60, plus the 8 above).
HTTP_BUDGET = 68

_CHILD = """
import json, sys
from datetime import datetime
from retrain.config import load_config
from retrain.pipeline import run_pipeline
from tools.http_calls import count_http_requests

config = load_config(sys.argv[1])
with count_http_requests(config.registry.tracking_uri) as calls:
    outcome = run_pipeline(config, trigger="manual", as_of=datetime.fromisoformat(sys.argv[2]))
record = outcome.record
print(json.dumps({"status": record.status, "notes": record.notes,
                  "baseline": record.baseline_version, "calls": dict(calls.by_endpoint)}))
"""


def measured_run(config_path: Path, weeks: int) -> dict[str, Any]:
    """``retrain run`` as of ``weeks`` after the stream's start, in a fresh interpreter."""
    as_of = (SPEC.start + weeks * WEEK).isoformat()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(config_path), as_of],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def rest(calls: dict[str, int]) -> int:
    return sum(n for e, n in calls.items() if "/mlflow-artifacts/" not in e)


def table(calls: dict[str, int]) -> str:
    return "\n".join(f"{n:4d}  {e}" for e, n in sorted(calls.items(), key=lambda c: -c[1]))


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("churn-calls") / "events"
    write_stream(root, SPEC)
    return root


class TestDeployingRunBudget:
    def test_bootstrap_and_a_run_with_a_production_baseline_stay_within_budget(
        self, make_config: Callable[..., RetrainConfig], stream: Path, tmp_path: Path
    ) -> None:
        sections = churn_sections(
            stream,
            params={"max_iter": 40},
            data={"training_window_days": 21},
            triggers={"cooldown_hours": 0},
            storage={"work_dir": str(tmp_path / "work")},
        )
        path = write_config(make_config(**sections), tmp_path / "retraining.yaml")

        first = measured_run(path, 4)
        assert first["status"] == "deployed", first["notes"]
        calls = first["calls"]
        assert rest(calls) <= REST_BUDGET, table(calls)
        assert sum(calls.values()) <= HTTP_BUDGET, table(calls)

        # the harder run: production exists, so check loads it and reads its profile, and the
        # deploy archives it
        second = measured_run(path, 7)
        assert second["status"] == "deployed", second["notes"]
        assert second["baseline"] == 1
        calls = second["calls"]
        assert rest(calls) <= REST_BUDGET, table(calls)
        assert sum(calls.values()) <= HTTP_BUDGET, table(calls)
        # production is looked up by check (which pins it) and once more under the lease at
        # deploy (has it moved since?), and no version is read back
        assert calls.get("GET /api/2.0/mlflow/registered-models/alias") == 2, table(calls)
        assert "GET /api/2.0/mlflow/model-versions/get" not in calls, table(calls)
        # one reconcile for the whole deploy step, one search for the idempotency key
        assert calls.get("GET /api/2.0/mlflow/model-versions/search") == 1, table(calls)
        # the production model (MLmodel + model file), its profile, the new model's load check
        # (MLmodel, model file, input example): nothing else is downloaded, nothing listed
        assert calls.get("GET /api/2.0/mlflow-artifacts/artifacts/{file}") == 6, table(calls)
        assert "GET /api/2.0/mlflow-artifacts/artifacts" not in calls, table(calls)


class TestCounter:
    @pytest.mark.parametrize(
        ("method", "url", "endpoint"),
        [
            (
                "get",
                "http://h:5000/api/2.0/mlflow/registered-models/get?name=m",
                "GET /api/2.0/mlflow/registered-models/get",
            ),
            (
                "PUT",
                "http://h:5000/api/2.0/mlflow-artifacts/artifacts/1/models/m-x/artifacts/MLmodel",
                "PUT /api/2.0/mlflow-artifacts/artifacts/{file}",
            ),
            (
                "GET",
                "http://h:5000/api/2.0/mlflow-artifacts/artifacts?path=1/abc",
                "GET /api/2.0/mlflow-artifacts/artifacts",
            ),
            (
                "PATCH",
                "http://h:5000/api/2.0/mlflow/logged-models/m-0123456789abcdef0123456789abcdef",
                "PATCH /api/2.0/mlflow/logged-models/{id}",
            ),
        ],
    )
    def test_endpoints_are_named_without_ids_or_files(
        self, method: str, url: str, endpoint: str
    ) -> None:
        assert endpoint_of(method, url) == endpoint

    def test_counts_requests_of_every_session_only_inside_the_block(self) -> None:
        import requests

        sent: list[str] = []

        def fake(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> str:
            sent.append(url)
            return "ok"

        original = requests.Session.request
        requests.Session.request = fake  # type: ignore[method-assign,assignment]
        try:
            with count_http_requests("http://server") as calls:
                requests.Session().request("GET", "http://server/api/2.0/mlflow/runs/get")
                requests.Session().request("GET", "http://elsewhere/x")
            requests.Session().request("GET", "http://server/api/2.0/mlflow/runs/get")
        finally:
            requests.Session.request = original  # type: ignore[method-assign]
        assert len(sent) == 3
        assert dict(calls.by_endpoint) == {"GET /api/2.0/mlflow/runs/get": 1}
        assert calls.total == 1
        assert calls.lines() == ["   1  GET /api/2.0/mlflow/runs/get"]
