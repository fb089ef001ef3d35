"""The full rebuild end to end (real MLflow server): all history catches a recurring pattern the
weekly window misses; its comprehensive tests block a candidate whose overall metric hides a
slice regression, naming the slice; a scheduled rebuild runs whatever the rules say; the search
and every test result reach the retraining log and the report.

The generated stream: ``x1``, ``x2`` numeric, ``segment`` categorical, label ``x1 + x2/2 > 0``.
Two departures from it, each switched on per test:

* ``promo`` rows, whose label is inverted, appear in the first ten days and again in the last
  day and a bit: the weekly window's training part never sees them (they fall in its holdout);
* ``x`` rows invert their label from day 28 on: recent behaviour the weekly window learns and
  all history, dominated by the old behaviour, does not.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts

from retrain.config import RetrainConfig
from retrain.data import read_frame
from retrain.pipeline import run_pipeline
from retrain.registry import ModelRegistry
from tests.helpers import HGB, production

START = datetime(2026, 1, 5, tzinfo=UTC)
DAYS = 35
AS_OF = START + timedelta(days=DAYS)
PROMO_BACK = DAYS - 1.2  # the recurring pattern's return: inside the weekly run's holdout


def _labels(x1: np.ndarray[Any, Any], x2: np.ndarray[Any, Any], noise: np.ndarray[Any, Any]) -> Any:
    return (x1 + 0.5 * x2 + 0.3 * noise > 0).astype("int64")


def stream(*, rows_per_day: int = 400, seed: int = 0, x_flips: bool = False) -> pd.DataFrame:
    """The generated stream (see the module docstring)."""
    rng = np.random.default_rng(seed)
    n = DAYS * rows_per_day
    day = np.sort(rng.uniform(0, DAYS, n))
    x1, x2, noise = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)
    segment = rng.choice(np.array(["a", "b", "c"], dtype=object), n)
    promo = ((day < 10) | (day >= PROMO_BACK)) & (rng.uniform(size=n) < 0.3)
    segment[promo] = "promo"
    if x_flips:
        segment[(~promo) & (rng.uniform(size=n) < 0.04)] = "x"
    label = _labels(x1, x2, noise)
    label[promo] = 1 - label[promo]
    if x_flips:
        flipped = (segment == "x") & (day >= 28)
        label[flipped] = 1 - label[flipped]
    return pd.DataFrame(
        {
            "event_time": [START + timedelta(days=float(d)) for d in day],
            "x1": x1,
            "x2": x2,
            "segment": segment,
            "label": label,
        }
    )


def promo_rows(n: int = 2000) -> pd.DataFrame:
    """Fresh rows of the recurring pattern only (a later promotion)."""
    rng = np.random.default_rng(99)
    x1, x2, noise = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)
    return pd.DataFrame(
        {"x1": x1, "x2": x2, "segment": "promo", "label": 1 - _labels(x1, x2, noise)}
    )


@pytest.fixture
def rebuild_config(
    make_config: Callable[..., RetrainConfig], tmp_path: Path
) -> Callable[..., RetrainConfig]:
    def make(frame: pd.DataFrame, **sections: Any) -> RetrainConfig:
        root = tmp_path / "data"
        root.mkdir(exist_ok=True)
        frame.to_parquet(root / "part-0.parquet", index=False)
        base: dict[str, Any] = {
            "model": {"estimator": {"class": HGB, "params": {"max_iter": 60}}},
            "data": {"training_window_days": 7},
            "evaluation": {"thresholds": {"accuracy": 0.5}, "non_inferiority_margin": 0.03},
            "deployment": {"skip_canary": True},
            "full_rebuild": {"checks": {"min_slice_rows": 50}},
            "storage": {"work_dir": str(tmp_path / "work")},
        }
        for key, value in sections.items():
            base[key] = {**base.get(key, {}), **value}
        return make_config(**base)

    return make


def accuracy(config: RetrainConfig, version: int, frame: pd.DataFrame) -> float:
    model = ModelRegistry(config).load_model(version)
    predicted = model.predict(frame[["x1", "x2", "segment"]])
    return float(np.mean(predicted == frame["label"].to_numpy()))


def report(run_id: str | None) -> str:
    """The evaluation report the run logged to MLflow."""
    path = download_artifacts(run_id=run_id, artifact_path="evaluation.html")
    return Path(path).read_text("utf-8")


class TestFullRebuild:
    def test_all_history_catches_the_recurring_pattern_the_weekly_window_misses(
        self, rebuild_config: Callable[..., RetrainConfig]
    ) -> None:
        config = rebuild_config(stream())
        weekly = run_pipeline(config, trigger="manual", as_of=AS_OF).record
        assert weekly.status == "deployed" and weekly.model_version == "1"
        # scheduled, at the same as_of: no new rows and no rule, but the monthly rebuild runs
        rebuild = run_pipeline(config, trigger="scheduled", as_of=AS_OF, mode="full_rebuild")
        record = rebuild.record
        assert record.trigger_reasons[0].startswith("full rebuild: the monthly schedule")
        assert record.status == "deployed", record.notes
        assert record.model_version == "2" and production(config) == 2
        assert record.rebuild_tests["passed"] is True
        names = [item["name"] for item in record.rebuild_tests["items"]]
        assert names == [
            "cross_validated",
            "slices",
            "calibration",
            "robustness",
            "latency_and_size",
        ]
        checklist = {item["key"]: item["passed"] for item in record.checklist}
        assert checklist["rebuild_slices"] and checklist["rebuild_robustness"]

        later = promo_rows()
        window_trained, rebuilt = accuracy(config, 1, later), accuracy(config, 2, later)
        assert window_trained < 0.3, "the window never saw the pattern: it predicts it inverted"
        assert rebuilt > 0.85, "all history saw it in the first ten days"

    def test_a_slice_regression_the_overall_metric_hides_blocks_the_deploy_naming_the_slice(
        self, rebuild_config: Callable[..., RetrainConfig]
    ) -> None:
        config = rebuild_config(stream(x_flips=True))
        weekly = run_pipeline(config, trigger="manual", as_of=AS_OF).record
        assert weekly.status == "deployed" and weekly.model_version == "1"

        record = run_pipeline(config, trigger="manual", as_of=AS_OF, mode="full_rebuild").record
        assert record.status == "rejected", record.notes
        assert production(config) == 1
        versions = MlflowClient().search_model_versions(f"name='{config.model.name}'")
        assert [v.version for v in versions] == ["1"], "nothing registered"
        gate = record.gate
        overall = next(c for c in gate["checks"] if c["check"].startswith("accuracy >= production"))
        assert overall["passed"], "the overall accuracy alone would have deployed it"
        slices = next(c for c in gate["checks"] if c["check"] == "slices")
        assert not slices["passed"]
        reason = next(r for r in gate["reasons"] if r.startswith("slices FAILED"))
        assert "segment=x" in reason
        assert record.rebuild_tests["results"]["slices"]["regressions"] == ["segment=x"]
        page = report(record.mlflow_run_id)
        assert "Comprehensive tests" in page and "segment=x" in page

    def test_the_weekly_run_runs_no_comprehensive_tests_and_no_search(
        self, rebuild_config: Callable[..., RetrainConfig]
    ) -> None:
        search = {"space": {"learning_rate": [0.05, 0.2]}, "method": "grid", "budget": 2}
        config = rebuild_config(stream(), model={"search": search})
        record = run_pipeline(config, trigger="manual", as_of=AS_OF).record
        assert record.status == "deployed"
        assert record.rebuild_tests == {} and record.search == {}
        assert not any(item["key"].startswith("rebuild_") for item in record.checklist)


class TestSearchAndSample:
    def test_the_search_and_the_sample_reach_the_log_the_mlflow_run_and_the_report(
        self, rebuild_config: Callable[..., RetrainConfig]
    ) -> None:
        search = {
            "method": "halving_random",
            "budget": 6,
            "cv_folds": 3,
            "space": {
                "learning_rate": {"distribution": "loguniform", "low": 0.02, "high": 0.3},
                "max_leaf_nodes": {"distribution": "randint", "low": 8, "high": 40},
            },
        }
        config = rebuild_config(
            stream(rows_per_day=200),
            model={"search": search},
            full_rebuild={"max_rows": 5000, "checks": {"min_slice_rows": 50}},
        )
        first = run_pipeline(config, trigger="manual", as_of=AS_OF, mode="full_rebuild")
        record = first.record
        assert record.status == "deployed", record.notes
        assert record.search["method"] == "halving_random"
        assert record.search["candidates"] == 6
        assert set(record.search["best_params"]) == {"learning_rate", "max_leaf_nodes"}
        assert record.search["chosen"] in {"search", "configured"}
        # the first model: only robustness can run, the rest say why not
        assert [i["name"] for i in record.rebuild_tests["items"]] == ["robustness"]
        assert len(record.rebuild_tests["not_run"]) == 4

        run = MlflowClient().get_run(record.mlflow_run_id or "")
        assert run.data.metrics["rows"] == 5000
        assert run.data.metrics["rows_before_sampling"] == DAYS * 200
        assert run.data.params["search_method"] == "halving_random"
        assert "search_best_score" in run.data.metrics
        trained = {i["key"]: i["evidence"] for i in record.checklist}
        assert "a uniform sample of 7000" in trained["trained_on_full_window"]

        # the same history gives the same sample
        again = run_pipeline(config, trigger="manual", as_of=AS_OF, mode="full_rebuild").record
        assert again.data_version == record.data_version
        page = report(record.mlflow_run_id)
        assert "Hyperparameter search" in page and "Robustness" in page
        sample = read_frame(next(Path(config.storage.work_dir).rglob("data.parquet")))
        assert len(sample) == 5000 and sample["event_time"].is_monotonic_increasing
