"""The DAGs under the real scheduler: ``airflow standalone`` (scheduler, DAG processor,
triggerer, API server; LocalExecutor on SQLite, one process per task) and a real MLflow server,
driven over the REST API as a named user, the way an operator drives them.

One module-scoped deployment (about a minute to start): two pipeline runs and a rollback
triggered by ``admin`` over REST, then what an operator sees is checked: the runs succeed, the
audit history names ``admin``, no task log repeats a warning, and a bad run parameter is refused
with HTTP 400 before any run exists.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from retrain.config import RetrainConfig, load_config
from retrain.log import LogStore
from retrain.registry import ModelRegistry
from tools import standalone
from tools.airflow_rest import Deployment, throwaway

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with throwaway(tmp_path_factory.mktemp("standalone")) as running:
        yield running


def config_of(deployment: Deployment) -> RetrainConfig:
    env = standalone.airflow_env(deployment.settings)
    return load_config(deployment.settings.config_path, env=env)


def registry(deployment: Deployment) -> ModelRegistry:
    return ModelRegistry(config_of(deployment))


def log_store(deployment: Deployment) -> LogStore:
    return LogStore.of(config_of(deployment))


def warning_repeats(lines: list[str]) -> dict[str, int]:
    """Warning lines (JSON log records at level warning) seen more than once."""
    seen: Counter[str] = Counter()
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if str(record.get("level", "")).lower() == "warning":
            seen[str(record.get("event"))] += 1
    return {event: count for event, count in seen.items() if count > 1}


class TestUnderTheScheduler:
    def test_runs_and_rollback_over_rest_record_the_user_and_keep_logs_clean(
        self, deployment: Deployment
    ) -> None:
        first = deployment.trigger("retrain_pipeline", {"force": True, "reason": "first model"})
        assert deployment.wait("retrain_pipeline", first) == "success"
        second = deployment.trigger("retrain_pipeline", {"force": True, "reason": "a second"})
        assert deployment.wait("retrain_pipeline", second) == "success"
        rollback = deployment.trigger("retrain_rollback", {"reason": "second one misbehaves"})
        assert deployment.wait("retrain_rollback", rollback) == "success"

        models = registry(deployment)
        assert models.current()["production"].version == 1
        entry = models.history()[0]
        assert (entry.op, entry.from_version, entry.to_version) == ("rollback", 2, 1)
        assert entry.actor == "admin", "the Airflow user who triggered it, not the OS user"
        promoted = [e for e in models.history() if e.op == "promote" and e.to_version == 2]
        assert promoted and all(e.actor == "admin" for e in promoted)
        records = log_store(deployment).records()
        assert [r.actor for r in records] == ["admin", "admin"], "the log names the user too"

        # the figures benchmarks/README.md quotes (printed; timing goals are not asserted here)
        timings = {
            "pipeline (bootstrap)": deployment.timings("retrain_pipeline", first),
            "pipeline (with a baseline)": deployment.timings("retrain_pipeline", second),
            "rollback": deployment.timings("retrain_rollback", rollback),
        }
        print(json.dumps(timings, indent=1))
        out = REPO / ".state" / "scheduler-timings.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(timings, indent=1), encoding="utf-8")

        for dag_id, run_id in (
            ("retrain_pipeline", first),
            ("retrain_pipeline", second),
            ("retrain_rollback", rollback),
        ):
            logs = deployment.task_logs(dag_id, run_id)
            assert logs, f"no task logs for {dag_id} {run_id}"
            for task_id, lines in logs.items():
                assert warning_repeats(lines) == {}, f"{dag_id}.{task_id} repeats warnings"

    @pytest.mark.parametrize(
        "conf",
        [
            pytest.param({"as_of": "next tuesday"}, id="as_of not a date-time"),
            pytest.param({"window_days": 0}, id="zero-day window"),
        ],
    )
    def test_a_bad_run_parameter_is_http_400_and_creates_no_run(
        self, deployment: Deployment, conf: dict[str, Any]
    ) -> None:
        before = len(deployment.runs("retrain_pipeline"))
        with pytest.raises(urllib.error.HTTPError) as refused:
            deployment.trigger("retrain_pipeline", conf)
        assert refused.value.code == 400
        assert len(deployment.runs("retrain_pipeline")) == before
